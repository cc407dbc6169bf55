/**
 * A topic's decode-error policy. As in Faust, the bad message is
 * acknowledged in every case, so its offset is committed and the topic can
 * go on. `fail` settles it, fails the current readers with the error (after
 * what they hold) and fails; `skip` logs and counts; `deadLetter` produces
 * the raw message (with its header bytes) plus `x-decode-error*` and
 * `x-source-*` headers, then counts.
 */
import * as Effect from "effect/Effect"
import type { App } from "../../App.ts"
import type { DecodeError } from "../../Errors.ts"
import type * as FutureMessage from "../../FutureMessage.ts"
import type { DecodeErrorPolicy } from "../../internal/channel.ts"
import type * as metrics from "../../internal/metrics.ts"
import type * as Message from "../../Message.ts"
import { release, trackedMessages } from "./acknowledgement.ts"
import { deadLetterHeaders, rawHeaders, utf8Bytes } from "./received.ts"

/** What the policy needs of a topic. */
export interface PolicyTopic {
  readonly label: string
  readonly channelSettings: { readonly onDecodeError: DecodeErrorPolicy }
  readonly root: { readonly stats: metrics.Stats }
  readonly context: { readonly app: App["Service"] }
}

/** Applies `topic`'s policy to a message that did not decode; `failReaders` fails its current readers. */
export const applyDecodeErrorPolicy = (
  topic: PolicyTopic,
  error: DecodeError,
  message: Message.Message,
  failReaders: () => void
): Effect.Effect<void, DecodeError | FutureMessage.PublishError> => {
  const policy = topic.channelSettings.onDecodeError
  const counts = topic.root.stats.decodeErrors
  const tracked = trackedMessages.get(message)
  trackedMessages.delete(message)
  const settle = Effect.sync(() => {
    if (tracked === undefined) return
    tracked.handled = true
    release(tracked)
  })
  const annotations = {
    channel: topic.label,
    topic: message.topic,
    partition: message.partition,
    offset: message.offset
  }
  if (policy === "fail") {
    return Effect.suspend(() => {
      counts.failed++
      // Settled first: failing the subscribers can end their streams, and the session with them,
      // at once; the bad record must be done by then, so that the session's last commit covers it.
      if (tracked !== undefined) {
        tracked.handled = true
        release(tracked)
      }
      failReaders()
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
    ["x-source-channel", topic.label],
    ["x-source-topic", message.topic],
    ["x-source-partition", String(message.partition)],
    ["x-source-offset", String(message.offset)]
  ]
  const forwarded = topic.context.app.createEvent(message.key, message.value, [...message.headers, ...added], message)
  const original = rawHeaders.get(message)
  if (original !== undefined) {
    deadLetterHeaders.set(forwarded, [
      ...original,
      ...added.map(([name, value]) => [utf8Bytes(name), utf8Bytes(value as string)] as const)
    ])
  }
  return Effect.flatMap(target.put(forwarded), () => {
    counts.deadLettered++
    return Effect.logWarning(`dead-lettered to ${target.label}: ${error.message}`).pipe(
      Effect.annotateLogs(annotations),
      Effect.andThen(settle)
    )
  })
}
