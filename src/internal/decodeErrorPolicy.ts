/**
 * The decode-error policy, for channels and topics alike: `fail` counts,
 * settles the message, fails the readers with the error (after what they
 * hold), logs, and fails; `skip` counts, logs and settles; `deadLetter`
 * forwards the raw message with `x-decode-error`, `x-decode-error-message`
 * and `x-source-channel` headers (a transport adds its own), counts, logs and
 * settles. A transport supplies what differs through a {@link PolicyHost}.
 */
import * as Effect from "effect/Effect"
import type { App } from "../App.ts"
import type { DecodeError } from "../Errors.ts"
import type * as Event from "../Event.ts"
import type * as FutureMessage from "../FutureMessage.ts"
import type * as Message from "../Message.ts"
import type { DecodeErrorPolicy } from "./channel.ts"
import type * as metrics from "./metrics.ts"

/** What the policy needs from the channel or topic applying it. */
export interface PolicyHost {
  readonly label: string
  readonly policy: DecodeErrorPolicy
  readonly counts: metrics.Stats["decodeErrors"]
  readonly createEvent: App["Service"]["createEvent"]
  /** Fails the current readers with the error, after what they hold. */
  readonly failReaders: (error: DecodeError) => void
  /** Marks the message handled, so that a topic commits past it; before the readers fail. */
  readonly settle?: (() => void) | undefined
  /** Headers a dead letter carries besides the error's: where the message came from. */
  readonly sourceHeaders?: ((message: Message.Message) => Message.Headers) | undefined
  /** Called with the dead letter and the headers added to it, before it is sent. */
  readonly forwarding?: ((deadLetter: Event.Event<any, any>, added: Message.Headers) => void) | undefined
}

/** Applies `host`'s policy to a message that did not decode. */
export const applyDecodeErrorPolicy = (
  host: PolicyHost,
  error: DecodeError,
  message: Message.Message
): Effect.Effect<void, DecodeError | FutureMessage.PublishError> => {
  const { counts, policy } = host
  const annotations = {
    channel: host.label,
    topic: message.topic,
    partition: message.partition,
    offset: message.offset
  }
  const settle = host.settle === undefined ? Effect.void : Effect.sync(host.settle)
  if (policy === "fail") {
    return Effect.suspend(() => {
      counts.failed++
      // Settled first: failing the readers can end their streams, and a topic's session with them,
      // at once; the bad record must be done by then, so that the session's last commit covers it.
      host.settle?.()
      host.failReaders(error)
      return Effect.logError(error.message, error.cause).pipe(
        Effect.annotateLogs(annotations),
        Effect.andThen(Effect.fail(error))
      )
    })
  }
  if (policy === "skip") {
    return Effect.suspend(() => {
      counts.skipped++
      return Effect.logWarning(`skipped: ${error.message}`).pipe(
        Effect.annotateLogs(annotations),
        Effect.andThen(settle)
      )
    })
  }
  const target = policy.deadLetter
  const added: Message.Headers = [
    ["x-decode-error", error._tag],
    ["x-decode-error-message", error.message],
    ["x-source-channel", host.label],
    ...(host.sourceHeaders?.(message) ?? [])
  ]
  const forwarded = host.createEvent(message.key, message.value, [...message.headers, ...added], message)
  host.forwarding?.(forwarded, added)
  return Effect.flatMap(target.put(forwarded), () => {
    counts.deadLettered++
    return Effect.logWarning(`dead-lettered to ${target.label}: ${error.message}`).pipe(
      Effect.annotateLogs(annotations),
      Effect.andThen(settle)
    )
  })
}

/** A decode-error hook of a channel or topic (`onKeyDecodeError`, `onValueDecodeError`). */
export type Hook = (
  error: DecodeError,
  message: Message.Message
) => Effect.Effect<void, DecodeError | FutureMessage.PublishError>

/** Faust's hooks: a key that did not decode goes to `onKeyDecodeError`, a value to `onValueDecodeError`. */
export const routeDecodeError = (
  hooks: { readonly onKeyDecodeError: Hook; readonly onValueDecodeError: Hook },
  error: DecodeError,
  message: Message.Message
): Effect.Effect<void, DecodeError | FutureMessage.PublishError> =>
  error._tag === "KeyDecodeError" ? hooks.onKeyDecodeError(error, message) : hooks.onValueDecodeError(error, message)
