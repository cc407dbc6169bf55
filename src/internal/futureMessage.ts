import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { AsFutureMessageOptions } from "../Channel.ts"
import type { FutureError, FutureMessage, PendingMessage } from "../FutureMessage.ts"
import { headersToList } from "../Message.ts"
import * as RecordMetadata from "../RecordMetadata.ts"

/** @internal */
export const TypeId = "~effect-faust/FutureMessage" as const

/**
 * A future holds its outcome itself; a `Deferred` is made only for a fiber
 * that awaits it before it completes. A `sendSoon` burst keeps every future
 * alive until it is awaited: each object less per future is memory the
 * collector does not copy, so a record the broker appended is kept as where
 * it went (`sentTo`), and its metadata and exit are built when first read.
 *
 * @internal
 */
export class FutureMessageImpl<K, V> implements FutureMessage<K, V> {
  get [TypeId](): typeof TypeId {
    return TypeId
  }
  readonly message: PendingMessage<K, V>
  #exit: Exit.Exit<RecordMetadata.RecordMetadata, FutureError> | undefined = undefined
  #waiting: Deferred.Deferred<RecordMetadata.RecordMetadata, FutureError> | undefined = undefined
  /** The topic of a record appended by `sentTo`, with its partition, offset and timestamp, until `#exit` is built. */
  #topic: string | undefined = undefined
  #partition = 0
  #offset = 0
  #timestamp = 0
  constructor(message: PendingMessage<K, V>) {
    this.message = message
  }
  get await(): Effect.Effect<RecordMetadata.RecordMetadata, FutureError> {
    return Effect.suspend(() => {
      const exit = this.outcome
      if (exit !== undefined) return exit
      this.#waiting ??= Deferred.makeUnsafe<RecordMetadata.RecordMetadata, FutureError>()
      return Deferred.await(this.#waiting)
    })
  }
  get isDone(): boolean {
    return this.#exit !== undefined || this.#topic !== undefined
  }
  /** The outcome once it is done, built from where the record went if `sentTo` completed it. */
  get outcome(): Exit.Exit<RecordMetadata.RecordMetadata, FutureError> | undefined {
    if (this.#exit === undefined && this.#topic !== undefined) {
      this.#exit = Exit.succeed(appendedAt(this.#topic, this.#partition, this.#offset, this.#timestamp))
    }
    return this.#exit
  }
  /**
   * Completes it once with the record appended at `offset` of `partition`
   * (its metadata built when read): `false` if it was done already.
   */
  sentTo(topic: string, partition: number, offset: number, timestamp: number): boolean {
    if (this.isDone) return false
    this.#topic = topic
    this.#partition = partition
    this.#offset = offset
    this.#timestamp = timestamp
    if (this.#waiting !== undefined) Deferred.doneUnsafe(this.#waiting, this.outcome!)
    return true
  }
  succeed(metadata: RecordMetadata.RecordMetadata): Effect.Effect<boolean> {
    return Effect.sync(() => this.complete(Exit.succeed(metadata)))
  }
  fail(error: FutureError): Effect.Effect<boolean> {
    return Effect.sync(() => this.complete(Exit.fail(error)))
  }
  /** Completes it once: `false` if it was done already. */
  complete(exit: Exit.Exit<RecordMetadata.RecordMetadata, FutureError>): boolean {
    if (this.isDone) return false
    this.#exit = exit
    if (this.#waiting !== undefined) Deferred.doneUnsafe(this.#waiting, exit)
    return true
  }
}

/**
 * The metadata of a record a broker appended at `offset` (-1 without acks),
 * its timestamp the producer's (create time).
 *
 * @internal
 */
export const appendedAt = (
  topic: string,
  partition: number,
  offset: number,
  timestamp: number
): RecordMetadata.RecordMetadata => RecordMetadata.make({ topic, partition, offset, timestamp, timestampType: 0 })

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
