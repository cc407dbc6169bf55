/**
 * The produce path of a topic: encoding, partitioning, and the hand-off of
 * records to the Kafka service's send buffer, for `send`, `sendSoon`,
 * `sendAll`, `publishMessage` and `put`. One per topic root; clones share it.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import type * as Channel from "../../Channel.ts"
import * as Codec from "../../Codec.ts"
import { ChannelClosedError, CodecError, NotATopicError, type TransportError } from "../../Errors.ts"
import type * as Event from "../../Event.ts"
import * as FutureMessage from "../../FutureMessage.ts"
import { CurrentPendingSends } from "../../internal/acknowledging.ts"
import type { Settings as ChannelSettings } from "../../internal/channel.ts"
import { fromSendOptions, FutureMessageImpl } from "../../internal/futureMessage.ts"
import * as traceContext from "../../internal/traceContext.ts"
import * as Message from "../../Message.ts"
import type * as RecordMetadata from "../../RecordMetadata.ts"
import { type ProducerRecord as KafkaProducerRecord } from "../Kafka.ts"
import { KafkaError } from "../KafkaError.ts"
import { metadataOf } from "./sendBuffer.ts"
import * as sendGuard from "./sendGuard.ts"

import { encodeUnsafe } from "./encode.ts"
import { partitionOf } from "./partitioner.ts"
import { exactHeaders } from "./received.ts"
import type { TopicSettings } from "./settings.ts"
import type { Root, TopicContext } from "./topic.ts"

/** Whether a sender waits for the broker's answer (`send`) or not (`sendSoon`). */
type Waiting = "awaited" | "detached"

/** What producing needs of a topic. */
export interface ProducingTopic<K, V> {
  readonly label: string
  readonly settings: TopicSettings
  readonly context: TopicContext
  readonly root: Root
  /** The channel settings: schema, codecs, spans. */
  readonly channelSettings: ChannelSettings<K, V>
  readonly maybeDeclare: Effect.Effect<void, TransportError>
  readonly closedError: ChannelClosedError | undefined
  getTopicName(): Effect.Effect<string, NotATopicError>
  futureFor(options: Channel.AsFutureMessageOptions<K, V>): Effect.Effect<FutureMessage.FutureMessage<K, V>>
}

/** @internal */
export class TopicProducer<K, V> {
  readonly topic: ProducingTopic<K, V>
  constructor(topic: ProducingTopic<K, V>) {
    this.topic = topic
  }

  /** The name to produce to: sending needs exactly one. */
  get produceTopicName(): Effect.Effect<string, KafkaError> {
    return Effect.mapError(this.topic.getTopicName(), (cause) => new KafkaError({ operation: "produce", cause }))
  }

  /**
   * The common path of `send`, `sendSoon`, `sendAll` and `publishMessage`:
   * encodes the message, picks its partition and adds it to the Kafka send
   * buffer. When the broker answers, the future completes, then its callback
   * runs, then the returned deferred completes (`"detached"`, for
   * `sendSoon`: nobody waits for it, and there is none).
   *
   * Once the topic is declared and its partition count is cached, the record
   * is built without an effect per step (see `recordUnsafe`).
   */
  enqueue(
    future: FutureMessage.FutureMessage<K, V>,
    waiting: Waiting = "awaited"
  ): Effect.Effect<Deferred.Deferred<void> | undefined, TransportError> {
    return Effect.withFiber((fiber) => {
      const traceparent = traceContext.current(fiber)
      const record = this.recordUnsafe(future.message, fiber.getRef(Clock.Clock), traceparent)
      if (record === undefined) return this.enqueueSlow(future, waiting, traceparent)
      if (record instanceof CodecError) return Effect.andThen(future.fail(record), Effect.fail(record))
      return this.publishRecord(future, record, waiting)
    })
  }

  /** The topic name to produce to when it is known without an effect. */
  private get singleTopicName(): string | undefined {
    const { pattern, topics } = this.topic.settings
    return pattern === undefined && topics.length === 1 ? topics[0] : undefined
  }

  /**
   * The record of a pending message, built synchronously, in `enqueue`'s
   * order (name, declare, key, value, partition, timestamp); `undefined`
   * when a step needs an effect (no single name, not declared yet, no cached
   * partition count). `traceparent` is the current span's (see
   * `traceContext.current`), added to the headers unless they name one.
   */
  private recordUnsafe(
    pending: FutureMessage.PendingMessage<K, V>,
    clock: Clock.Clock,
    traceparent: string | undefined
  ): KafkaProducerRecord | CodecError | undefined {
    const topic = pending.topic ?? this.singleTopicName
    if (topic === undefined || !this.topic.root.declaredOk) return undefined
    const key = this.encodeUnsafe("key", pending.key, pending.keySerializer)
    if (key instanceof CodecError) return key
    const value = this.encodeUnsafe("value", pending.value, pending.valueSerializer)
    if (value instanceof CodecError) return value
    let partition = pending.partition
    if (partition === undefined) {
      const count = this.topic.root.capabilities.partitionCountCached?.(topic)
      if (count === undefined) return undefined
      partition = this.partitionOf(topic, key, count)
    }
    return {
      topic,
      partition,
      key,
      value,
      headers: headersOf(pending.headers, traceparent),
      timestamp: pending.timestamp ?? clock.currentTimeMillisUnsafe(),
      acks: this.topic.settings.acks
    }
  }

  /** `enqueue` one effect at a time: declares, reads the partition count. */
  private enqueueSlow(
    future: FutureMessage.FutureMessage<K, V>,
    waiting: Waiting,
    traceparent: string | undefined
  ): Effect.Effect<Deferred.Deferred<void> | undefined, TransportError> {
    return Effect.gen({ self: this }, function*() {
      const pending = future.message
      const topic = pending.topic ?? (yield* this.produceTopicName)
      yield* this.topic.maybeDeclare
      const key = yield* this.encode("key", pending.key, pending.keySerializer)
      const value = yield* this.encode("value", pending.value, pending.valueSerializer)
      const partition = pending.partition ?? (yield* this.partitionFor(topic, key))
      const timestamp = pending.timestamp ?? (yield* Clock.currentTimeMillis)
      const record = {
        topic,
        partition,
        key,
        value,
        headers: headersOf(pending.headers, traceparent),
        timestamp,
        acks: this.topic.settings.acks
      }
      return yield* this.publishRecord(future, record, waiting)
    }).pipe(Effect.tapError((error) => future.fail(error)))
  }

  /** Adds the record to the send buffer; see `enqueue`. */
  publishRecord(
    future: FutureMessage.FutureMessage<K, V>,
    record: KafkaProducerRecord,
    waiting: Waiting
  ): Effect.Effect<Deferred.Deferred<void> | undefined> {
    const settled = waiting === "detached" ? undefined : Deferred.makeUnsafe<void>()
    return Effect.as(
      this.topic.context.kafka.publish(record, this.completion(future, record, settled, waiting)),
      settled
    )
  }

  /**
   * What runs when the broker answers a record (see `enqueue`): with the
   * offset it was appended at or why it failed (the send buffer's own
   * answer), or with the `Exit` of a Kafka service's `publish`.
   */
  private completion(
    future: FutureMessage.FutureMessage<K, V>,
    record: KafkaProducerRecord,
    settled: Deferred.Deferred<void> | undefined,
    waiting: Waiting
  ): (answer: Answer) => Effect.Effect<void> {
    const stats = this.topic.root.stats
    const guards = this.topic.root.capabilities.sendGuards
    const sent = waiting === "detached" ? sendGuard.numberSend(guards) : 0
    return (answer) => {
      let error: KafkaError | undefined
      let metadata: RecordMetadata.RecordMetadata | undefined
      if (typeof answer !== "number") {
        if (!Exit.isExit(answer)) error = asKafkaError(record.topic, answer)
        else if (Exit.isSuccess(answer)) metadata = answer.value
        else error = asKafkaError(record.topic, Cause.squash(answer.cause))
      }
      if (error === undefined) stats.sent++
      // Nobody waits for a sendSoon: the consumer sessions that may have made it must know.
      else if (waiting === "detached") sendGuard.refused(guards, sent)
      // The future completes now, so that the futures of a batch complete in send order; what
      // needs an effect (the callback, the waiting sender) runs after.
      let after: Effect.Effect<unknown> | undefined
      if (future instanceof FutureMessageImpl) {
        if (error !== undefined) future.complete(Exit.fail(error))
        else if (metadata !== undefined) future.complete(Exit.succeed(metadata))
        else future.sentTo(record.topic, record.partition, answer as number, record.timestamp)
      } else {
        after = error !== undefined
          ? future.fail(error)
          : future.succeed(metadata ?? metadataOf(record, answer as number))
      }
      if (error === undefined && future.message.callback !== undefined) {
        after = after === undefined ? runCallback(future) : Effect.andThen(after, runCallback(future))
      }
      if (settled !== undefined) {
        after = after === undefined
          ? Deferred.succeed(settled, undefined)
          : Effect.ensuring(after, Deferred.succeed(settled, undefined))
      }
      return after === undefined ? Effect.void : Effect.asVoid(after)
    }
  }

  /**
   * Encodes every value in a plain loop (same timestamp, no key, partitions
   * round-robin) and hands them to the send buffer as one group with one
   * completion; fails with the first record's error, in order. A value that
   * does not encode fails the call once the values before it are
   * acknowledged (as sending them one by one would).
   */
  sendAll(values: Iterable<V>): Effect.Effect<void, FutureMessage.PublishError> {
    const publishAll = this.topic.root.capabilities.publishAll
    if (publishAll === undefined) return this.sendEach(values)
    // The generator ends once the records are in the buffer and hands back what waits for their
    // answer: a generator suspended while its batch is in flight holds the values and records
    // for the collector to promote (see `complete` in `sendBuffer.ts`).
    return Effect.flatten(Effect.gen({ self: this }, function*() {
      const closed = this.topic.closedError
      if (closed !== undefined) return awaiting(Effect.fail(closed))
      const timestamp = yield* Clock.currentTimeMillis
      const traceparent = yield* currentTraceparent
      // One list for every record (the client only reads it).
      const headers: Message.Headers = traceparent === undefined ? [] : [[traceContext.TRACEPARENT, traceparent]]
      const list = Array.from(values)
      if (list.length === 0) return awaiting(Effect.void)
      const topic = yield* this.produceTopicName
      yield* this.topic.maybeDeclare
      const records: Array<KafkaProducerRecord & { partition: number }> = []
      let failure: CodecError | undefined
      for (const value of list) {
        const bytes = this.encodeUnsafe("value", value, undefined)
        if (bytes instanceof CodecError) {
          failure = bytes
          break
        }
        records.push({
          topic,
          partition: 0,
          key: null,
          value: bytes,
          headers,
          timestamp,
          acks: this.topic.settings.acks
        })
      }
      if (records.length === 0) return awaiting(Effect.fail(failure!))
      const count = yield* this.topic.context.kafka.partitionCount(topic)
      for (const record of records) record.partition = this.partitionOf(topic, null, count)
      const stats = this.topic.root.stats
      const settled = Deferred.makeUnsafe<void, KafkaError>()
      yield* publishAll(records, (failures) =>
        Effect.suspend(() => {
          let first: KafkaError | undefined
          for (const failure of failures) {
            if (failure === undefined) stats.sent++
            else if (first === undefined) first = asKafkaError(topic, failure)
          }
          return Effect.asVoid(
            first === undefined ? Deferred.succeed(settled, undefined) : Deferred.fail(settled, first)
          )
        }))
      // As sending them one by one would: the values before a bad one are acknowledged (or the
      // first of their errors is the call's) before the call fails with the bad value's error.
      const answered = Deferred.await(settled)
      return awaiting(failure === undefined ? answered : Effect.andThen(answered, Effect.fail(failure)))
    }))
  }

  /** `sendAll` one `enqueue` per value, for a Kafka service whose `publish` has no group publisher. */
  private sendEach(values: Iterable<V>): Effect.Effect<void, FutureMessage.PublishError> {
    return Effect.gen({ self: this }, function*() {
      const closed = this.topic.closedError
      if (closed !== undefined) return yield* closed
      const timestamp = yield* Clock.currentTimeMillis
      const settled: Array<Deferred.Deferred<void>> = []
      const futures: Array<FutureMessage.FutureMessage<K, V>> = []
      let failure: TransportError | undefined
      for (const value of values) {
        const future = yield* this.topic.futureFor({ value, timestamp })
        const enqueued = yield* Effect.result(this.enqueue(future))
        if (Result.isFailure(enqueued)) {
          failure = enqueued.failure
          break
        }
        futures.push(future)
        if (enqueued.success !== undefined) settled.push(enqueued.success)
      }
      // The values before a bad one are acknowledged (or fail the call first), as in `sendAll`.
      yield* Effect.forEach(settled, Deferred.await, { discard: true })
      yield* Effect.forEach(futures, awaitPublication, { discard: true })
      if (failure !== undefined) return yield* Effect.fail(failure)
    })
  }

  /**
   * Adds the message to the send buffer; the future completes when the
   * broker acknowledges it. Once the topic is declared, the record is built
   * without an effect per step (see `recordUnsafe`).
   */
  sendSoon(options: Channel.SendOptions<K, V>): Effect.Effect<FutureMessage.FutureMessage<K, V>, TransportError> {
    return Effect.withFiber((fiber) => {
      const future = fromSendOptions(this.topic, options)
      // An agent acknowledges the event being handled only once this record is answered.
      fiber.getRef(CurrentPendingSends)?.add(future.await)
      const closed = this.topic.closedError
      if (closed !== undefined) return Effect.as(future.fail(closed), future)
      const record = this.recordUnsafe(future.message, fiber.getRef(Clock.Clock), traceContext.current(fiber))
      if (record === undefined || record instanceof CodecError) {
        return Effect.as(this.enqueue(future, "detached"), future)
      }
      const onDone = this.completion(future, record, undefined, "detached")
      // Without an effect while the buffer has room (and the service's publish is the buffer's own).
      const publishUnsafe = this.topic.root.capabilities.publishUnsafe
      if (publishUnsafe !== undefined && publishUnsafe(record, onDone)) return Exit.succeed(future)
      return Effect.as(this.topic.context.kafka.publish(record, onDone), future)
    })
  }

  /**
   * Publishes through the send buffer and waits for the broker's answer
   * (`wait` is accepted for Faust's signature; `sendSoon` is the way not to
   * wait).
   */
  publishMessage(
    future: FutureMessage.FutureMessage<K, V>,
    _options?: { readonly wait?: boolean | undefined }
  ): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> {
    const closed = this.topic.closedError
    if (closed !== undefined) return Effect.andThen(future.fail(closed), Effect.fail(closed))
    return Effect.flatMap(
      this.enqueue(future),
      (settled) =>
        settled === undefined
          ? awaitPublication(future)
          : Effect.andThen(Deferred.await(settled), awaitPublication(future))
    )
  }

  /**
   * Kafka's default partitioner: murmur2 of the key bytes, so that Java and
   * Python producers agree; keyless records go round-robin.
   */
  partitionFor(topic: string, key: Uint8Array | null): Effect.Effect<number, KafkaError> {
    return Effect.map(this.topic.context.kafka.partitionCount(topic), (count) => this.partitionOf(topic, key, count))
  }

  /** `partitionFor` with the partition count known. */
  private partitionOf(topic: string, key: Uint8Array | null, count: number): number {
    return partitionOf(this.topic.root.nextPartition, topic, key, count)
  }

  /** Schema, then codec: the reverse of `decode`. `null` stays `null` (no key, or a tombstone). */
  encode(
    kind: "key" | "value",
    input: unknown,
    serializer: Codec.Serializer | undefined
  ): Effect.Effect<Uint8Array | null, CodecError> {
    return Effect.suspend(() => {
      const encoded = this.encodeUnsafe(kind, input, serializer)
      return encoded instanceof CodecError ? Effect.fail(encoded) : Effect.succeed(encoded)
    })
  }

  /** `encode` without an effect: the bytes, or the error. */
  encodeUnsafe(
    kind: "key" | "value",
    input: unknown,
    serializer: Codec.Serializer | undefined
  ): Uint8Array | null | CodecError {
    return encodeUnsafe(this.topic.channelSettings, this.topic.context.registry, kind, input, serializer)
  }

  /** Produces a ready event as it is: bytes pass through, other keys and values are encoded. */
  put(event: Event.Event<K, V>): Effect.Effect<void, FutureMessage.PublishError> {
    return Effect.gen({ self: this }, function*() {
      const closed = this.topic.closedError
      if (closed !== undefined) return yield* closed
      const topic = yield* this.produceTopicName
      yield* this.topic.maybeDeclare
      const key = event.key instanceof Uint8Array ? event.key : yield* this.encode("key", event.key, undefined)
      const value = event.value instanceof Uint8Array
        ? event.value
        : yield* this.encode("value", event.value, undefined)
      const partition = yield* this.partitionFor(topic, key)
      const timestamp = yield* Clock.currentTimeMillis
      yield* this.topic.context.kafka.produce([{
        topic,
        partition,
        key,
        value,
        headers: event.headers,
        rawHeaders: exactHeaders(event),
        timestamp,
        acks: this.topic.settings.acks
      }])
      this.topic.root.stats.sent++
    })
  }
}

/**
 * A record's headers: the message's, plus the `traceparent` of the span
 * that sent it when there is one and the message does not name its own.
 */
const headersOf = (
  headers: Message.OpenHeaders | undefined,
  traceparent: string | undefined
): ReadonlyArray<readonly [string, Message.HeaderValue]> => {
  const withTrace = traceparent !== undefined && !traceContext.hasHeader(headers)
  if (!withTrace && (headers === undefined || (Array.isArray(headers) && headers.length === 0))) return noHeaders
  const list = Message.headersToList(headers)
  if (withTrace) list.push([traceContext.TRACEPARENT, traceparent])
  return list
}

/** What a `sendAll` does once its records are in the buffer (one type for every way it ends). */
const awaiting = (effect: Effect.Effect<void, FutureMessage.PublishError>) => effect

/** The headers of every record sent without any (read-only from here on). */
const noHeaders: ReadonlyArray<readonly [string, Message.HeaderValue]> = []

const currentTraceparent: Effect.Effect<string | undefined> = Effect.withFiber((fiber) =>
  Effect.succeed(traceContext.current(fiber))
)

/** How the broker answered a record: see `TopicProducer.completion`. */
type Answer = number | KafkaError | Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>

const asKafkaError = (topic: string, error: unknown): KafkaError =>
  error instanceof KafkaError ? error : new KafkaError({ operation: "produce", topic, cause: error })

const runCallback = <K, V>(future: FutureMessage.FutureMessage<K, V>): Effect.Effect<void> =>
  Effect.suspend(() => {
    const after = future.message.callback?.(future)
    return after === undefined ? Effect.void : after
  }).pipe(
    // A callback runs on the send buffer's fiber: its failure must not stop
    // the buffer.
    Effect.catchCause((cause) => Effect.logError("a send callback failed", cause))
  )

/**
 * The outcome of a future this topic is publishing. Only the send buffer
 * completes it, with the record's metadata or a `PublishError`: never with
 * `PublishInterruptedError`, which in-memory publications use.
 */
const awaitPublication = <K, V>(
  future: FutureMessage.FutureMessage<K, V>
): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> =>
  future.await as Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError>
