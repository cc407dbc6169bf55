/**
 * Faust's `PendingMessage` (everything needed to publish a message) and
 * `FutureMessage` (a pending message plus the promise of its
 * {@link RecordMetadata}, resolved once the message is published).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type { Serializer } from "./Codec.ts"
import type { ChannelClosedError, NoSubscribersError, PublishInterruptedError, TransportError } from "./Errors.ts"
import { FutureMessageImpl, makePendingMessage, TypeId } from "./internal/futureMessage.ts"
import type { OpenHeaders } from "./Message.ts"
import type { RecordMetadata } from "./RecordMetadata.ts"

/**
 * Why publishing a message can fail: the channel's own errors, plus its
 * transport's (`never` in memory; see `TransportErrors`).
 *
 * @since 0.1.0
 * @category errors
 */
export type PublishError = ChannelClosedError | NoSubscribersError | TransportError

/**
 * Why a future can fail: its publication's error, or
 * `PublishInterruptedError` when the fiber publishing it was interrupted
 * before the message was sent.
 *
 * @since 0.1.0
 * @category errors
 */
export type FutureError = PublishError | PublishInterruptedError

/**
 * Runs after a message is published, with its completed future.
 *
 * @since 0.1.0
 * @category models
 */
export type Callback<K, V> = (future: FutureMessage<K, V>) => Effect.Effect<void> | void

/**
 * A message waiting to be published. `channel` is the channel it was
 * created by (its label and kind), as in Faust.
 *
 * @since 0.1.0
 * @category models
 */
export interface PendingMessage<K, V> {
  readonly channel: { readonly label: string }
  readonly key: K | null
  readonly value: V
  readonly partition: number | undefined
  readonly timestamp: number | undefined
  readonly headers: OpenHeaders | undefined
  readonly keySerializer: Serializer | undefined
  readonly valueSerializer: Serializer | undefined
  readonly callback: Callback<K, V> | undefined
  readonly topic: string | undefined
  readonly offset: number | undefined
  readonly generationId: number | undefined
}

/**
 * Builds a {@link PendingMessage}; absent fields are `undefined`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const PendingMessage: {
  readonly make: <K, V>(
    fields:
      & { readonly channel: { readonly label: string }; readonly value: V }
      & Partial<Omit<PendingMessage<K, V>, "channel" | "value">>
  ) => PendingMessage<K, V>
} = { make: makePendingMessage }

/**
 * A promise that a {@link PendingMessage} will be published.
 *
 * @since 0.1.0
 * @category models
 */
export interface FutureMessage<K, V> {
  readonly [TypeId]: typeof TypeId
  readonly message: PendingMessage<K, V>
  /** Waits for the publication's metadata (or its failure). */
  readonly await: Effect.Effect<RecordMetadata, FutureError>
  /** Whether the future is completed, successfully or not. */
  readonly isDone: boolean
  /** Resolves the future (Faust's `set_result`); `false` if it was already done. */
  readonly succeed: (metadata: RecordMetadata) => Effect.Effect<boolean>
  /** Fails the future (Faust's `set_exception`); `false` if it was already done. */
  readonly fail: (error: FutureError) => Effect.Effect<boolean>
}

/**
 * Wraps a pending message in a new, unresolved future.
 *
 * **Example**
 *
 * ```ts
 * import { Effect } from "effect"
 * import { FutureMessage } from "effect-faust"
 *
 * const program = Effect.gen(function*() {
 *   const pending = FutureMessage.PendingMessage.make({ channel: { label: "demo" }, value: 1 })
 *   const future = yield* FutureMessage.make(pending)
 *   return future.isDone // false
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <K, V>(message: PendingMessage<K, V>): Effect.Effect<FutureMessage<K, V>> =>
  Effect.sync(() => new FutureMessageImpl(message))

/**
 * @since 0.1.0
 * @category guards
 */
export const isFutureMessage = (u: unknown): u is FutureMessage<unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u
