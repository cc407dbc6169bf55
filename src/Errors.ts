/**
 * The typed errors of effect-faust. Each carries what a user needs to act:
 * the channel's label, the offending option or message, and the cause.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A codec could not encode or decode a payload.
 *
 * @since 0.1.0
 * @category errors
 */
export class CodecError extends Schema.TaggedError<CodecError>()("CodecError", {
  codec: Schema.String,
  operation: Schema.Literals(["dumps", "loads"]),
  cause: Schema.Defect()
}) {
  override get message(): string {
    return `codec "${this.codec}" failed to ${this.operation}: ${describe(this.cause)}`
  }
}

/**
 * Options given to a channel constructor (or `clone`, `Codecs.layer`) are
 * invalid: `option` names which one, `reason` says why.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidChannelOptionsError extends Schema.TaggedError<InvalidChannelOptionsError>()(
  "InvalidChannelOptionsError",
  {
    option: Schema.String,
    value: Schema.Unknown,
    reason: Schema.String
  }
) {
  override get message(): string {
    return `invalid channel option "${this.option}": ${this.reason}`
  }
}

/**
 * The key of a received message could not be decoded. `received` is the
 * message exactly as it arrived; `cause` is the codec or Schema error.
 *
 * @since 0.1.0
 * @category errors
 */
export class KeyDecodeError extends Schema.TaggedError<KeyDecodeError>()("KeyDecodeError", {
  channel: Schema.String,
  received: Schema.Any,
  cause: Schema.Defect()
}) {
  override get message(): string {
    return `cannot decode the key of a message on ${this.channel}: ${describe(this.cause)}`
  }
}

/**
 * The value of a received message could not be decoded (or was empty on a
 * channel that does not allow empty values). `received` is the message
 * exactly as it arrived; `cause` is the codec or Schema error.
 *
 * @since 0.1.0
 * @category errors
 */
export class ValueDecodeError extends Schema.TaggedError<ValueDecodeError>()("ValueDecodeError", {
  channel: Schema.String,
  received: Schema.Any,
  cause: Schema.Defect()
}) {
  override get message(): string {
    return `cannot decode the value of a message on ${this.channel}: ${describe(this.cause)}`
  }
}

/**
 * Either decode error.
 *
 * @since 0.1.0
 * @category errors
 */
export type DecodeError = KeyDecodeError | ValueDecodeError

/**
 * The channel was closed by `throw`: it accepts no more messages.
 *
 * @since 0.1.0
 * @category errors
 */
export class ChannelClosedError extends Schema.TaggedError<ChannelClosedError>()("ChannelClosedError", {
  channel: Schema.String
}) {
  override get message(): string {
    return `${this.channel} is closed: throw() was called on it`
  }
}

/**
 * `send` on a channel created with `whenNoSubscribers: "fail"` found nobody
 * subscribed.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoSubscribersError extends Schema.TaggedError<NoSubscribersError>()("NoSubscribersError", {
  channel: Schema.String
}) {
  override get message(): string {
    return `${this.channel} has no subscribers and was created with whenNoSubscribers: "fail"`
  }
}

/**
 * An operation that only means something on a topic was called on an
 * in-memory channel.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotATopicError extends Schema.TaggedError<NotATopicError>()("NotATopicError", {
  channel: Schema.String,
  operation: Schema.String,
  /** Why, when the channel is a topic that still cannot do it (a pattern, several names). */
  reason: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return this.reason === undefined
      ? `${this.operation} needs a topic, and ${this.channel} is an in-memory channel`
      : `${this.operation} is not possible on ${this.channel}: ${this.reason}`
  }
}

/**
 * The operation is not supported by this kind of channel.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnsupportedOperationError extends Schema.TaggedError<UnsupportedOperationError>()(
  "UnsupportedOperationError",
  {
    channel: Schema.String,
    operation: Schema.String,
    reason: Schema.String
  }
) {
  override get message(): string {
    return `${this.operation} is not supported on ${this.channel}: ${this.reason}`
  }
}

/**
 * The errors a channel's transport adds, by tag. Empty in memory, so
 * {@link TransportError} is `never` and in-memory channels keep their exact
 * types; a transport module (`effect-faust/kafka`) adds its errors here by
 * module augmentation, so that a Topic is a `Channel` with the same types.
 *
 * @since 0.1.0
 * @category errors
 */
export interface TransportErrors {}

/**
 * Any error a channel's transport can add to sends, declares and streams
 * (`never` unless a transport module is loaded).
 *
 * @since 0.1.0
 * @category errors
 */
export type TransportError = TransportErrors[keyof TransportErrors]

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : String(cause)
