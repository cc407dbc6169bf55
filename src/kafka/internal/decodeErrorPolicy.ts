/**
 * A topic's decode-error policy: the shared one
 * (`internal/decodeErrorPolicy.ts`), with what a topic adds. As in Faust, the
 * bad message is acknowledged in every case, so its offset is committed and
 * the topic can go on; a dead letter carries `x-source-topic`,
 * `x-source-partition` and `x-source-offset` headers and keeps the header
 * bytes of the record it forwards.
 */
import type * as Effect from "effect/Effect"
import type { App } from "../../App.ts"
import type { DecodeError } from "../../Errors.ts"
import type * as FutureMessage from "../../FutureMessage.ts"
import type { DecodeErrorPolicy } from "../../internal/channel.ts"
import * as policy from "../../internal/decodeErrorPolicy.ts"
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
  const tracked = trackedMessages.get(message)
  trackedMessages.delete(message)
  return policy.applyDecodeErrorPolicy(
    {
      label: topic.label,
      policy: topic.channelSettings.onDecodeError,
      counts: topic.root.stats.decodeErrors,
      createEvent: topic.context.app.createEvent,
      failReaders,
      settle: tracked === undefined ? undefined : () => {
        tracked.handled = true
        release(tracked)
      },
      sourceHeaders: (received) => [
        ["x-source-topic", received.topic],
        ["x-source-partition", String(received.partition)],
        ["x-source-offset", String(received.offset)]
      ],
      forwarding: (deadLetter, added) => {
        const original = rawHeaders.get(message)
        if (original === undefined) return
        deadLetterHeaders.set(deadLetter, [
          ...original,
          ...added.map(([name, value]) => [utf8Bytes(name), utf8Bytes(value as string)] as const)
        ])
      }
    },
    error,
    message
  )
}
