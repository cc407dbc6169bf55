import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { AsFutureMessageOptions } from "../Channel.ts"
import type { FutureError, FutureMessage, PendingMessage } from "../FutureMessage.ts"
import { headersToList } from "../Message.ts"
import type { RecordMetadata } from "../RecordMetadata.ts"

/** @internal */
export const TypeId = "~effect-faust/FutureMessage" as const

/**
 * A future holds its outcome itself; a `Deferred` is made only for a fiber
 * that awaits it before it completes. A `sendSoon` burst keeps every future
 * alive until it is awaited: each object less per future is memory the
 * collector does not copy.
 *
 * @internal
 */
export class FutureMessageImpl<K, V> implements FutureMessage<K, V> {
  get [TypeId](): typeof TypeId {
    return TypeId
  }
  readonly message: PendingMessage<K, V>
  #exit: Exit.Exit<RecordMetadata, FutureError> | undefined = undefined
  #waiting: Deferred.Deferred<RecordMetadata, FutureError> | undefined = undefined
  constructor(message: PendingMessage<K, V>) {
    this.message = message
  }
  get await(): Effect.Effect<RecordMetadata, FutureError> {
    return Effect.suspend(() => {
      if (this.#exit !== undefined) return this.#exit
      this.#waiting ??= Deferred.makeUnsafe<RecordMetadata, FutureError>()
      return Deferred.await(this.#waiting)
    })
  }
  get isDone(): boolean {
    return this.#exit !== undefined
  }
  succeed(metadata: RecordMetadata): Effect.Effect<boolean> {
    return Effect.sync(() => this.complete(Exit.succeed(metadata)))
  }
  fail(error: FutureError): Effect.Effect<boolean> {
    return Effect.sync(() => this.complete(Exit.fail(error)))
  }
  /** Completes it once: `false` if it was done already. */
  complete(exit: Exit.Exit<RecordMetadata, FutureError>): boolean {
    if (this.#exit !== undefined) return false
    this.#exit = exit
    if (this.#waiting !== undefined) Deferred.doneUnsafe(this.#waiting, exit)
    return true
  }
}

/**
 * Completes a future built by `FutureMessage.make` at once, without an
 * effect (the send buffer completes a batch of futures in a loop): `true` if
 * it did, `false` for another implementation, which the caller completes
 * with `succeed` / `fail`.
 *
 * @internal
 */
export const doneUnsafe = <K, V>(
  future: FutureMessage<K, V>,
  exit: Exit.Exit<RecordMetadata, FutureError>
): boolean => {
  if (!(future instanceof FutureMessageImpl)) return false
  future.complete(exit)
  return true
}

/**
 * A new future for a message to send with these options (Faust's
 * `as_future_message` without eager partitioning), from `channel`.
 *
 * @internal
 */
export const fromSendOptions = <K, V>(
  channel: { readonly label: string },
  options: AsFutureMessageOptions<K, V>
): FutureMessageImpl<K, V> =>
  new FutureMessageImpl(
    makePendingMessage<K, V>({
      channel,
      key: options.key ?? null,
      value: options.value,
      partition: options.partition,
      timestamp: options.timestamp,
      headers: headersToList(options.headers),
      keySerializer: options.keySerializer,
      valueSerializer: options.valueSerializer,
      callback: options.callback
    })
  )

/** `PendingMessage.make`: absent fields are `undefined`. @internal */
export const makePendingMessage = <K, V>(
  fields:
    & { readonly channel: { readonly label: string }; readonly value: V }
    & Partial<Omit<PendingMessage<K, V>, "channel" | "value">>
): PendingMessage<K, V> => ({
  channel: fields.channel,
  key: fields.key ?? null,
  value: fields.value,
  partition: fields.partition,
  timestamp: fields.timestamp,
  headers: fields.headers,
  keySerializer: fields.keySerializer,
  valueSerializer: fields.valueSerializer,
  callback: fields.callback,
  topic: fields.topic,
  offset: fields.offset,
  generationId: fields.generationId
})
