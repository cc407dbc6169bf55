import * as Deferred from "effect/Deferred"
import type * as Exit from "effect/Exit"
import type { AsFutureMessageOptions } from "../Channel.ts"
import type { FutureError, FutureMessage, PendingMessage } from "../FutureMessage.ts"
import { headersToList } from "../Message.ts"
import type { RecordMetadata } from "../RecordMetadata.ts"

/** @internal */
export const TypeId = "~effect-faust/FutureMessage" as const

/** @internal */
export class FutureMessageImpl<K, V> implements FutureMessage<K, V> {
  readonly [TypeId] = TypeId
  readonly deferred = Deferred.makeUnsafe<RecordMetadata, FutureError>()
  readonly message: PendingMessage<K, V>
  constructor(message: PendingMessage<K, V>) {
    this.message = message
  }
  get await() {
    return Deferred.await(this.deferred)
  }
  get isDone() {
    return Deferred.isDoneUnsafe(this.deferred)
  }
  succeed(metadata: RecordMetadata) {
    return Deferred.succeed(this.deferred, metadata)
  }
  fail(error: FutureError) {
    return Deferred.fail(this.deferred, error)
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
  Deferred.doneUnsafe(future.deferred, exit)
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
