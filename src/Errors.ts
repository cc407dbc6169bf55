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
  override toJSON(): unknown {
    return toJSONSafe(this)
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
  override toJSON(): unknown {
    return toJSONSafe(this)
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
  override toJSON(): unknown {
    return toJSONSafe(this)
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
  override toJSON(): unknown {
    return toJSONSafe(this)
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
 * The channel was closed by `throw` or `end`: it accepts no more messages.
 * `closedBy` says which, when it is known.
 *
 * @since 0.1.0
 * @category errors
 */
export class ChannelClosedError extends Schema.TaggedError<ChannelClosedError>()("ChannelClosedError", {
  channel: Schema.String,
  closedBy: Schema.optional(Schema.Literals(["throw", "end"]))
}) {
  override get message(): string {
    return this.closedBy === undefined
      ? `${this.channel} is closed`
      : `${this.channel} is closed: ${this.closedBy}() was called on it`
  }
  override toJSON(): unknown {
    return toJSONSafe(this)
  }
}

/**
 * A publication was interrupted before its message was delivered: the
 * message was not sent (in memory, to no subscriber at all). A future
 * published with `publishMessage` fails with it when the publishing fiber is
 * interrupted, so `future.await` never waits for ever.
 *
 * @since 0.1.0
 * @category errors
 */
export class PublishInterruptedError extends Schema.TaggedError<PublishInterruptedError>()("PublishInterruptedError", {
  channel: Schema.String
}) {
  override get message(): string {
    return `the publication of a message to ${this.channel} was interrupted before the message was sent`
  }
  override toJSON(): unknown {
    return toJSONSafe(this)
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
  override toJSON(): unknown {
    return toJSONSafe(this)
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
  override toJSON(): unknown {
    return toJSONSafe(this)
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
  override toJSON(): unknown {
    return toJSONSafe(this)
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

/**
 * A one-line description of any cause that never throws: an Error's message
 * (its tag or name when the message is empty),
 * a string as it is, anything else through `String` — and for objects that
 * cannot be turned into text (a null prototype, a `toString` that throws, a
 * revoked proxy), their tag.
 *
 * @internal
 */
export const describe = (cause: unknown): string => {
  try {
    if (typeof cause === "string") return cause
    if (cause instanceof Error) {
      const message = String(cause.message)
      if (message.length > 0) return message
      // A tagged error without a message is described by its tag (its fields are in its JSON).
      const tag = (cause as { readonly _tag?: unknown })._tag
      return typeof tag === "string" ? tag : String(cause.name)
    }
    return String(cause)
  } catch {
    try {
      return Object.prototype.toString.call(cause)
    } catch {
      return "<a cause that cannot be described>"
    }
  }
}

/**
 * What `JSON.stringify` gets for an error: its tag, message and fields, with
 * circular references, bigints, throwing getters and functions made safe, so
 * that logging an error can never throw.
 *
 * @internal
 */
export const toJSONSafe = (error: { readonly _tag: string; readonly message: string }): unknown => {
  const json: Record<string, unknown> = { _tag: error._tag, message: error.message }
  const seen = new Set<unknown>([error])
  for (const key of Object.keys(error)) {
    if (key === "_tag") continue
    json[key] = jsonValue(() => (error as unknown as Record<string, unknown>)[key], seen, 0)
  }
  return json
}

const maxJSONDepth = 8

const jsonValue = (read: () => unknown, seen: Set<unknown>, depth: number): unknown => {
  let value: unknown
  try {
    value = read()
    switch (typeof value) {
      case "bigint":
        return `${value}n`
      case "function":
      case "symbol":
        return undefined
      case "object":
        break
      default:
        return value
    }
    if (value === null || ArrayBuffer.isView(value)) return value
    if (seen.has(value)) return "[Circular]"
    if (depth >= maxJSONDepth) return "[Nested too deep]"
    seen.add(value)
    try {
      if (value instanceof Error) {
        const error = value
        return { name: jsonValue(() => error.name, seen, depth + 1), message: describe(error) }
      }
      if (Array.isArray(value)) {
        const array = value
        return array.map((_, i) => jsonValue(() => array[i], seen, depth + 1))
      }
      const object = value as Record<string, unknown>
      if (typeof object.toJSON === "function") {
        const converted = object.toJSON()
        return jsonValue(() => converted, seen, depth + 1)
      }
      const out: Record<string, unknown> = {}
      for (const key of Object.keys(object)) out[key] = jsonValue(() => object[key], seen, depth + 1)
      return out
    } finally {
      seen.delete(value)
    }
  } catch {
    return describe(value)
  }
}
