import { Consumer, type Message as KafkaMessage, type MessagesStream } from "@platformatic/kafka"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HashSet from "effect/HashSet"
import { NodeInspectSymbol } from "effect/Inspectable"
import * as Option from "effect/Option"
import { pipeArguments } from "effect/Pipeable"
import * as Queue from "effect/Queue"
import * as RcRef from "effect/RcRef"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as Stream from "effect/Stream"
import { App } from "../App.ts"
import type * as Channel from "../Channel.ts"
import * as Codec from "../Codec.ts"
import {
  ChannelClosedError,
  CodecError,
  type DecodeError,
  InvalidChannelOptionsError,
  KeyDecodeError,
  NotATopicError,
  type TransportError,
  ValueDecodeError
} from "../Errors.ts"
import type * as Event from "../Event.ts"
import * as FutureMessage from "../FutureMessage.ts"
import { Kafka, KafkaError } from "../KafkaService.ts"
import * as Message from "../Message.ts"
import type { MessageSchema } from "../MessageSchema.ts"
import type * as RecordMetadata from "../RecordMetadata.ts"
import type * as Topic from "../Topic.ts"
import { TypeId as ChannelTypeId } from "./channel.ts"
import type { ChannelImpl } from "./channel.ts"
import * as metrics from "./metrics.ts"
import { partitionForKey } from "./murmur2.ts"

/** @internal */
export const TypeId = "~effect-faust/Topic" as const

/** What a topic is besides a channel, resolved from its options. @internal */
export interface TopicSettings {
  readonly topics: ReadonlyArray<string>
  readonly pattern: RegExp | undefined
  readonly groupId: string
  readonly partitions: number | undefined
  readonly replicas: number | undefined
  readonly retention: Duration.Duration | undefined
  readonly compacting: boolean | undefined
  readonly deleting: boolean | undefined
  readonly config: Readonly<Record<string, string>>
  readonly acks: boolean
  readonly internal: boolean
  /** The options the topic was made from: `derive` starts from them. */
  readonly options: Topic.Options
}

/** The services a topic was made with, so that `derive` needs none. @internal */
export interface TopicContext {
  readonly app: App["Service"]
  readonly kafka: Kafka["Service"]
  readonly registry: Codec.Registry
  readonly make: (options: Topic.Options) => Effect.Effect<TopicImpl<any, any, any>, InvalidChannelOptionsError>
}

type QueueError<E> = E | DecodeError | Cause.Done

/** What a subscriber's pull can fail with: its queue also fails with the consumer's errors. */
type PullError<E> = QueueError<E> | TransportError

/** State shared by a topic and its clones. */
interface Root {
  subscribers: ReadonlyArray<TopicImpl<any, any, any>>
  /** Set by `throw` or `end` on the root; later subscribers get it at once. */
  closed: Cause.Cause<unknown> | undefined
  /** Counters for the metrics; `stats.decodeErrors` are the decode-error counts. */
  readonly stats: metrics.Stats
  /** Set while the topic's metrics are registered. */
  metrics: { readonly context: Context.Context<never>; nextSubscriber: number } | undefined
  declared: Deferred.Deferred<void, TransportError> | undefined
  /** The consumer session, running while anyone streams the topic. */
  readonly sessions: RcRef.RcRef<Session, TransportError>
  session: Session | undefined
  /** Round-robin position per topic, for records without a key. */
  readonly nextPartition: Map<string, number>
}

/** One run of the topic's consumer, from the first subscriber to the last. */
interface Session {
  readonly names: ReadonlyArray<string>
  generation: number
  assignment: HashSet.HashSet<Message.TopicPartition>
  /** The assignment as `topic:partition` keys, checked for every message. */
  assigned: Set<string>
  /** Delivery tracking of the current generation, by `topic:partition`. */
  partitions: Map<string, PartitionTracker>
}

/**
 * A received message on its way through the subscribers: `pending` counts
 * the subscribers that still hold it, plus one while it is being delivered.
 */
interface Tracked {
  readonly tracker: PartitionTracker
  readonly offset: bigint
  readonly leaderEpoch: number
  pending: number
  done: boolean
}

/** One subscriber's copy of a tracked message. */
interface Delivery {
  readonly tracked: Tracked
  acked: boolean
}

/**
 * The messages of one partition in the order they arrived. Commits move to
 * just after the longest prefix that is done: the highest contiguous
 * acknowledged offset.
 */
class PartitionTracker {
  readonly topic: string
  readonly partition: number
  entries: Array<Tracked> = []
  head = 0
  committable: bigint | undefined = undefined
  committed: bigint | undefined = undefined
  leaderEpoch = -1
  /** Set when a rebalance starts a new generation: late acknowledgements no longer count. */
  revoked = false
  constructor(topic: string, partition: number) {
    this.topic = topic
    this.partition = partition
  }
  /** The last offset tracked, to drop what the client fetches twice in one generation. */
  get lastOffset(): bigint {
    return this.entries.length === 0 ? -1n : this.entries[this.entries.length - 1].offset
  }
  track(offset: bigint, leaderEpoch: number): Tracked {
    const tracked: Tracked = { tracker: this, offset, leaderEpoch, pending: 1, done: false }
    this.entries.push(tracked)
    return tracked
  }
  advance(): void {
    const entries = this.entries
    while (this.head < entries.length && entries[this.head].done) {
      const entry = entries[this.head++]
      this.committable = entry.offset + 1n
      this.leaderEpoch = entry.leaderEpoch
    }
    // Keeps the last entry: `lastOffset` reads it.
    if (this.head > 1024 && this.head * 2 > entries.length) {
      this.entries = entries.slice(this.head - 1)
      this.head = 1
    }
  }
}

const trackedMessages = new WeakMap<Message.Message, Tracked>()
const deliveries = new WeakMap<Event.Event<any, any>, Delivery>()

const release = (tracked: Tracked): void => {
  if (--tracked.pending === 0) {
    tracked.done = true
    tracked.tracker.advance()
  }
}

const acknowledge = (delivery: Delivery): boolean => {
  if (delivery.acked) return false
  delivery.acked = true
  release(delivery.tracked)
  return true
}

/** Acknowledges one subscriber's event; `false` if it was not a topic's or was acknowledged already. @internal */
export const ack = (event: Event.Event<any, any>): boolean => {
  const delivery = deliveries.get(event)
  return delivery !== undefined && acknowledge(delivery)
}

const isDecodeError = (u: unknown): u is DecodeError => u instanceof KeyDecodeError || u instanceof ValueDecodeError

const bytesOf = (buffer: Uint8Array): Uint8Array => new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)

const toMessage = (m: KafkaMessage): Message.Message =>
  Message.make({
    topic: m.topic,
    partition: m.partition,
    offset: Number(m.offset),
    timestamp: Number(m.timestamp),
    timestampType: 0,
    headers: m.headerEntries.map(([name, value]) => [
      name.toString("utf8"),
      value === undefined || value === null ? new Uint8Array(0) : bytesOf(value)
    ]),
    key: m.key === undefined || m.key === null ? null : bytesOf(m.key),
    value: m.value === undefined || m.value === null ? null : bytesOf(m.value),
    generationId: generationOf(m)
  })

const generationOf = (m: KafkaMessage): number | undefined => {
  const consumer = m.metadata.consumer as { readonly generationId?: number } | undefined
  return consumer?.generationId
}

/**
 * A topic instance. The root owns the shared state; clones share it.
 * Iterator clones are subscribers: while anyone streams the topic, a consumer
 * session reads the broker and offers each message to every subscriber's own
 * bounded queue.
 *
 * @internal
 */
export class TopicImpl<K, V, E> implements Topic.Topic<K, V, E> {
  readonly [ChannelTypeId] = ChannelTypeId
  readonly [TypeId] = TypeId
  readonly base: ChannelImpl<K, V, E>
  readonly settings: TopicSettings
  readonly context: TopicContext
  readonly root: Root
  /** A subscriber's queue may also fail with a `TransportError` (see `failSubscribers`). */
  readonly queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>
  readonly isIterator: boolean
  /** The subscriber's event handed out last, acknowledged on the next pull. */
  last: Delivery | undefined = undefined
  unregisterMetrics: (() => void) | undefined = undefined

  constructor(
    base: ChannelImpl<K, V, E>,
    settings: TopicSettings,
    context: TopicContext,
    root: Root,
    queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>,
    isIterator: boolean
  ) {
    this.base = base
    this.settings = settings
    this.context = context
    this.root = root
    this.queue = queue
    this.isIterator = isIterator
  }

  /** Creates a root topic: its consumer sessions live in the Kafka layer's scope. */
  static make<K, V, E>(
    base: ChannelImpl<K, V, E>,
    settings: TopicSettings,
    context: TopicContext
  ): Effect.Effect<TopicImpl<K, V, E>> {
    return Effect.suspend(() => {
      // The session needs the topic, which needs the RcRef: acquire reads it
      // lazily, on the first subscription.
      let topic: TopicImpl<K, V, E> | undefined
      return RcRef.make({ acquire: Effect.suspend(() => acquireSession(topic!)) }).pipe(
        Scope.provide(context.kafka.scope),
        Effect.map((sessions) => {
          const root: Root = {
            subscribers: [],
            closed: undefined,
            stats: metrics.makeStats(),
            metrics: undefined,
            declared: undefined,
            sessions,
            session: undefined,
            nextPartition: new Map()
          }
          topic = new TopicImpl(base, settings, context, root, base.queue, false)
          return topic
        })
      )
    })
  }

  // ---------------------------------------------------------------------------
  // properties

  get label(): string {
    return this.base.settings.label
  }
  get schema(): MessageSchema<K, V> {
    return this.base.settings.schema
  }
  get keyType() {
    return this.base.settings.schema.key
  }
  get valueType() {
    return this.base.settings.schema.value
  }
  get maxsize(): number {
    return this.base.settings.maxsize
  }
  get activePartitions(): HashSet.HashSet<Message.TopicPartition> | undefined {
    return this.base.settings.activePartitions ?? this.root.session?.assignment
  }
  get subscriberCount(): number {
    return this.root.subscribers.length
  }
  get decodeErrorCounts(): Channel.DecodeErrorCounts {
    return { ...this.root.stats.decodeErrors }
  }
  get topics(): ReadonlyArray<string> {
    return this.settings.topics
  }
  get pattern(): RegExp | undefined {
    return this.settings.pattern
  }
  get groupId(): string {
    return this.settings.groupId
  }
  get partitions(): number | undefined {
    return this.settings.partitions
  }
  get replicas(): number | undefined {
    return this.settings.replicas
  }
  get retention(): Duration.Duration | undefined {
    return this.settings.retention
  }
  get compacting(): boolean | undefined {
    return this.settings.compacting
  }
  get deleting(): boolean | undefined {
    return this.settings.deleting
  }
  get config(): Readonly<Record<string, string>> {
    return this.settings.config
  }
  get acks(): boolean {
    return this.settings.acks
  }
  get internal(): boolean {
    return this.settings.internal
  }

  // ---------------------------------------------------------------------------
  // clones and subscription

  clone(options?: Channel.CloneOptions): Effect.Effect<TopicImpl<K, V, E>, InvalidChannelOptionsError> {
    return Effect.map(
      this.base.clone({
        maxsize: options?.maxsize,
        activePartitions: options?.activePartitions,
        onDecodeError: options?.onDecodeError
      }),
      (base) => {
        const clone = new TopicImpl(base, this.settings, this.context, this.root, base.queue, options?.isIterator ?? false)
        if (clone.isIterator) subscribe(clone)
        return clone
      }
    )
  }

  cloneUsingQueue(queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>): Effect.Effect<TopicImpl<K, V, E>> {
    return Effect.sync(() => {
      const clone = new TopicImpl<K, V, E>(this.base, this.settings, this.context, this.root, queue, true)
      subscribe(clone)
      return clone
    })
  }

  private get iteratorClone(): Effect.Effect<TopicImpl<K, V, E>> {
    return Effect.map(Queue.bounded<Event.Event<K, V>, QueueError<E>>(this.maxsize), (queue) => {
      const clone = new TopicImpl<K, V, E>(this.base, this.settings, this.context, this.root, queue, true)
      subscribe(clone)
      return clone
    })
  }

  get onStopIteration(): Effect.Effect<void> {
    return Effect.sync(() => unsubscribe(this))
  }

  /**
   * Subscribes, joins the consumer session (starting it if this is the first
   * subscriber) and emits one event per pull. Faust's rule: pulling the next
   * event acknowledges the previous one, and so does ending the stream
   * successfully; failing or being interrupted leaves it unacknowledged.
   */
  events(): Stream.Stream<Event.Event<K, V>, E | DecodeError | TransportError> {
    return Stream.unwrap(Effect.gen({ self: this }, function*() {
      const subscriber = yield* Effect.acquireRelease(this.iteratorClone, (subscriber) => subscriber.onStopIteration)
      yield* RcRef.get(this.root.sessions)
      yield* Effect.addFinalizer((exit) => Exit.isSuccess(exit) ? Effect.sync(() => subscriber.ackLast()) : Effect.void)
      return Stream.fromPull(Effect.succeed(subscriber.pullOne))
    })) as Stream.Stream<Event.Event<K, V>, E | DecodeError | TransportError>
  }

  stream(): Stream.Stream<V, E | DecodeError | TransportError> {
    return Stream.map(this.events(), (event) => event.value)
  }

  items(): Stream.Stream<readonly [K | null, V], E | DecodeError | TransportError> {
    return Stream.map(this.events(), (event) => [event.key, event.value] as const)
  }

  ackLast(): void {
    const last = this.last
    if (last !== undefined) {
      this.last = undefined
      acknowledge(last)
    }
  }

  private get pullOne(): Effect.Effect<readonly [Event.Event<K, V>], PullError<E>> {
    return Effect.suspend(() => {
      this.ackLast()
      return Effect.map(Queue.takeUnsafe(this.queue) ?? Queue.take(this.queue), (event) => {
        this.last = deliveries.get(event)
        return [event] as const
      })
    })
  }

  // ---------------------------------------------------------------------------
  // sending

  getTopicName(): Effect.Effect<string, NotATopicError> {
    const { pattern, topics } = this.settings
    if (pattern === undefined && topics.length === 1) return Effect.succeed(topics[0])
    return Effect.fail(
      new NotATopicError({
        channel: this.label,
        operation: "getTopicName",
        reason: pattern !== undefined
          ? `it subscribes to the pattern ${pattern}`
          : `it has ${topics.length} topic names (${topics.join(", ")})`
      })
    )
  }

  /** The name to produce to: sending needs exactly one. */
  private get produceTopicName(): Effect.Effect<string, KafkaError> {
    return Effect.mapError(this.getTopicName(), (cause) => new KafkaError({ operation: "produce", cause }))
  }

  private futureFor(options: Channel.AsFutureMessageOptions<K, V>): Effect.Effect<FutureMessage.FutureMessage<K, V>> {
    return FutureMessage.make(
      FutureMessage.PendingMessage.make<K, V>({
        channel: this,
        key: options.key ?? null,
        value: options.value,
        partition: options.partition,
        timestamp: options.timestamp,
        headers: this.prepareHeaders(options.headers),
        keySerializer: options.keySerializer,
        valueSerializer: options.valueSerializer,
        callback: options.callback
      })
    )
  }

  private get closedError(): ChannelClosedError | undefined {
    return this.root.closed === undefined ? undefined : new ChannelClosedError({ channel: this.label })
  }

  /**
   * The common path of `send`, `sendSoon`, `sendAll` and `publishMessage`:
   * encodes the message, picks its partition and adds it to the Kafka send
   * buffer. When the broker answers, the future completes, then its callback
   * runs, then the returned deferred completes.
   */
  private enqueue(future: FutureMessage.FutureMessage<K, V>): Effect.Effect<Deferred.Deferred<void>, TransportError> {
    return Effect.gen({ self: this }, function*() {
      const pending = future.message
      const topic = pending.topic ?? (yield* this.produceTopicName)
      yield* this.maybeDeclare
      const key = yield* this.encode("key", pending.key, pending.keySerializer)
      const value = yield* this.encode("value", pending.value, pending.valueSerializer)
      const partition = pending.partition ?? (yield* this.partitionFor(topic, key))
      const timestamp = pending.timestamp ?? (yield* Clock.currentTimeMillis)
      const settled = yield* Deferred.make<void>()
      const record = {
        topic,
        partition,
        key,
        value,
        headers: Message.headersToList(pending.headers),
        timestamp,
        acks: this.settings.acks
      }
      const stats = this.root.stats
      yield* this.context.kafka.publish(record, (exit) =>
        Effect.ensuring(
          Exit.isSuccess(exit)
            ? Effect.sync(() => stats.sent++).pipe(
              Effect.andThen(future.succeed(exit.value)),
              Effect.andThen(runCallback(future))
            )
            : Effect.asVoid(future.fail(asKafkaError(topic, Cause.squash(exit.cause)))),
          Deferred.succeed(settled, undefined)
        ))
      return settled
    }).pipe(Effect.tapError((error) => future.fail(error)))
  }

  send(options: Channel.SendOptions<K, V>): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> {
    const send = Effect.flatMap(this.futureFor(options), (future) => this.publishMessage(future))
    return this.base.settings.spans ? Effect.withSpan(send, "Topic.send", this.spanOptions) : send
  }

  private get spanOptions() {
    return { attributes: { "channel.label": this.label, "messaging.destination.name": this.settings.topics.join(",") } }
  }

  sendAll(values: Iterable<V>): Effect.Effect<void, FutureMessage.PublishError> {
    return Effect.gen({ self: this }, function*() {
      const closed = this.closedError
      if (closed !== undefined) return yield* closed
      const timestamp = yield* Clock.currentTimeMillis
      const settled: Array<Deferred.Deferred<void>> = []
      const futures: Array<FutureMessage.FutureMessage<K, V>> = []
      for (const value of values) {
        const future = yield* this.futureFor({ value, timestamp })
        futures.push(future)
        settled.push(yield* this.enqueue(future))
      }
      yield* Effect.forEach(settled, Deferred.await, { discard: true })
      yield* Effect.forEach(futures, (future) => future.await, { discard: true })
    })
  }

  /** Adds the message to the send buffer; the future completes when the broker acknowledges it. */
  sendSoon(options: Channel.SendOptions<K, V>): Effect.Effect<FutureMessage.FutureMessage<K, V>, TransportError> {
    return Effect.flatMap(this.futureFor(options), (future) => {
      const closed = this.closedError
      if (closed !== undefined) return Effect.as(future.fail(closed), future)
      return Effect.as(this.enqueue(future), future)
    })
  }

  asFutureMessage(
    options: Channel.AsFutureMessageOptions<K, V>
  ): Effect.Effect<FutureMessage.FutureMessage<K, V>, NotATopicError | TransportError> {
    if (options.eagerPartitioning !== true) return this.futureFor(options)
    return Effect.gen({ self: this }, function*() {
      const topic = yield* this.getTopicName()
      const key = yield* this.encode("key", options.key ?? null, options.keySerializer)
      const partition = options.partition ?? (yield* this.partitionFor(topic, key))
      const future = yield* this.futureFor(options)
      return yield* FutureMessage.make({ ...future.message, topic, partition })
    })
  }

  prepareHeaders(headers?: Message.OpenHeaders | undefined): Array<[string, Message.HeaderValue]> {
    return Message.headersToList(headers)
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
    const closed = this.closedError
    if (closed !== undefined) return Effect.andThen(future.fail(closed), Effect.fail(closed))
    return Effect.flatMap(this.enqueue(future), (settled) => Effect.andThen(Deferred.await(settled), future.await))
  }

  /**
   * Kafka's default partitioner: murmur2 of the key bytes, so that Java and
   * Python producers agree; keyless records go round-robin.
   */
  private partitionFor(topic: string, key: Uint8Array | null): Effect.Effect<number, KafkaError> {
    return Effect.map(this.context.kafka.partitionCount(topic), (count) => {
      if (key !== null) return partitionForKey(key, count)
      const next = this.root.nextPartition.get(topic) ?? 0
      this.root.nextPartition.set(topic, next + 1)
      return next % count
    })
  }

  get maybeDeclare(): Effect.Effect<void, TransportError> {
    return Effect.suspend(() => {
      const root = this.root
      if (root.declared !== undefined) return Deferred.await(root.declared)
      const declared = Deferred.makeUnsafe<void, TransportError>()
      root.declared = declared
      return Effect.flatMap(Effect.exit(this.declare), (exit) => {
        // A failed declare (a broker down) is tried again by the next caller.
        if (Exit.isFailure(exit)) root.declared = undefined
        return Effect.andThen(Deferred.done(declared, exit), exit)
      })
    })
  }

  /**
   * Creates each named topic with its partitions, replicas and config
   * (existing topics are left alone). An internal topic must also have the
   * partitions it declares, as keys must land where the app expects them.
   */
  get declare(): Effect.Effect<void, TransportError> {
    const { kafka } = this.context
    const settings = this.settings
    if (!kafka.settings.topicAllowDeclare) return Effect.void
    return Effect.forEach(settings.topics, (topic) =>
      Effect.gen(function*() {
        const created = yield* kafka.createTopic({
          topic,
          partitions: settings.partitions ?? kafka.settings.topicPartitions,
          replicas: settings.replicas ?? kafka.settings.topicReplicationFactor,
          config: settings.config
        })
        if (created || !settings.internal || settings.partitions === undefined) return
        const count = yield* kafka.partitionCount(topic)
        if (count !== settings.partitions) {
          return yield* new KafkaError({
            operation: "declare",
            topic,
            cause: new Error(`the internal topic has ${count} partitions, and declares ${settings.partitions}`)
          })
        }
      }), { discard: true })
  }

  prepareKey(
    key: unknown,
    options?: { readonly keySerializer?: Codec.Serializer | undefined; readonly headers?: Message.OpenHeaders | undefined }
  ): Effect.Effect<readonly [unknown, Message.OpenHeaders | undefined], CodecError> {
    return Effect.map(this.encode("key", key, options?.keySerializer), (bytes) => [bytes, options?.headers] as const)
  }

  prepareValue(
    value: unknown,
    options?: { readonly valueSerializer?: Codec.Serializer | undefined; readonly headers?: Message.OpenHeaders | undefined }
  ): Effect.Effect<readonly [unknown, Message.OpenHeaders | undefined], CodecError> {
    return Effect.map(this.encode("value", value, options?.valueSerializer), (bytes) => [bytes, options?.headers] as const)
  }

  /** Schema, then codec: the reverse of `decode`. `null` stays `null` (no key, or a tombstone). */
  encode(kind: "key" | "value", input: unknown, serializer: Codec.Serializer | undefined): Effect.Effect<Uint8Array | null, CodecError> {
    return Effect.suspend(() => {
      if (input === null || input === undefined) return Effect.succeed(null)
      const settings = this.base.settings
      const schema = kind === "key" ? settings.schema.key : settings.schema.value
      let encoded: unknown = input
      if (schema !== undefined) {
        const result = Schema.encodeUnknownResult(schema as Schema.Codec<unknown, unknown>)(input)
        if (Result.isFailure(result)) {
          return Effect.fail(new CodecError({ codec: "schema", operation: "dumps", cause: result.failure }))
        }
        encoded = result.success
      }
      let codec = kind === "key" ? settings.keyCodec : settings.valueCodec
      if (serializer !== undefined) {
        const resolved = Codec.resolve(this.context.registry, serializer)
        if (Result.isFailure(resolved)) {
          return Effect.fail(new CodecError({ codec: String(serializer), operation: "dumps", cause: resolved.failure }))
        }
        codec = resolved.success
      }
      return Codec.dumps(codec, encoded)
    })
  }

  // ---------------------------------------------------------------------------
  // receiving

  decode(message: Message.Message, options?: { readonly propagate?: boolean | undefined }): Effect.Effect<Event.Event<K, V>, DecodeError> {
    return Effect.suspend(() => {
      const decoded = this.base.decodeUnsafe(message)
      if (!isDecodeError(decoded)) return Effect.succeed(decoded)
      if (options?.propagate === true) return Effect.fail(decoded)
      return Effect.andThen(Effect.ignore(this.handleDecodeError(decoded, message)), Effect.fail(decoded))
    })
  }

  /**
   * Decodes a message and offers it to this subscriber's queue, or on a root
   * to every subscriber; decode errors go through the policy.
   */
  deliver(message: Message.Message): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    const deliver = Effect.suspend(() => {
      const decoded = this.base.decodeUnsafe(message)
      if (isDecodeError(decoded)) return this.handleDecodeError(decoded, message)
      this.root.stats.delivered++
      return this.fanOut(decoded, trackedMessages.get(message))
    })
    return this.base.settings.spans ? Effect.withSpan(deliver, "Topic.deliver", this.spanOptions) : deliver
  }

  /**
   * Offers the event to each subscriber (a copy each, so that each can
   * acknowledge its own), waiting on full queues. A message no subscriber
   * took stays unacknowledged, so it is read again by the next session.
   */
  private fanOut(event: Event.Event<K, V>, tracked: Tracked | undefined): Effect.Effect<void> {
    const subscribers = this.isIterator ? [this] : this.root.subscribers
    const createEvent = this.context.app.createEvent
    let accepted = 0
    return Effect.as(
      Effect.forEach(subscribers, (subscriber, i) => {
        const copy = i === 0 ? event : createEvent(event.key, event.value, event.headers, event.message)
        if (tracked !== undefined) {
          deliveries.set(copy, { tracked, acked: false })
          tracked.pending++
        }
        const taken = (offered: boolean) => {
          if (offered) accepted++
          else if (tracked !== undefined) tracked.pending--
        }
        if (Queue.offerUnsafe(subscriber.queue, copy)) return Effect.sync(() => taken(true))
        return Effect.map(Queue.offer(subscriber.queue, copy), taken)
      }, { discard: true }),
      undefined
    ).pipe(Effect.ensuring(Effect.sync(() => {
      if (tracked !== undefined && accepted > 0) release(tracked)
    })))
  }

  private handleDecodeError(error: DecodeError, message: Message.Message): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    return error._tag === "KeyDecodeError" ? this.onKeyDecodeError(error, message) : this.onValueDecodeError(error, message)
  }

  onKeyDecodeError(error: DecodeError, message: Message.Message): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    return this.onDecodeError(error, message)
  }

  onValueDecodeError(error: DecodeError, message: Message.Message): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    return this.onDecodeError(error, message)
  }

  /**
   * Applies the decode-error policy. As in Faust, the bad message is
   * acknowledged in every case, so its offset is committed and the topic can
   * go on. `fail` logs, fails the current subscribers with the error (after
   * what they hold) and fails; `skip` logs and counts; `deadLetter` produces
   * the raw message with `x-decode-error*` and `x-source-*` headers, then
   * counts.
   */
  onDecodeError(error: DecodeError, message: Message.Message): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    const policy = this.base.settings.onDecodeError
    const counts = this.root.stats.decodeErrors
    const tracked = trackedMessages.get(message)
    const settle = Effect.sync(() => {
      if (tracked !== undefined) release(tracked)
    })
    const annotations = { channel: this.label, topic: message.topic, partition: message.partition, offset: message.offset }
    if (policy === "fail") {
      return Effect.suspend(() => {
        counts.failed++
        failSubscribers(this, Cause.fail(error))
        return Effect.logError(error.message, error.cause).pipe(
          Effect.annotateLogs(annotations),
          Effect.andThen(settle),
          Effect.andThen(Effect.fail(error))
        )
      })
    }
    if (policy === "skip") {
      return Effect.suspend(() => {
        counts.skipped++
        return Effect.logWarning(`skipped: ${error.message}`).pipe(Effect.annotateLogs(annotations), Effect.andThen(settle))
      })
    }
    const target = policy.deadLetter
    const forwarded = this.context.app.createEvent(message.key, message.value, [
      ...message.headers,
      ["x-decode-error", error._tag],
      ["x-decode-error-message", error.message],
      ["x-source-channel", this.label],
      ["x-source-topic", message.topic],
      ["x-source-partition", String(message.partition)],
      ["x-source-offset", String(message.offset)]
    ], message)
    return Effect.flatMap(target.put(forwarded), () => {
      counts.deadLettered++
      return Effect.logWarning(`dead-lettered to ${target.label}: ${error.message}`).pipe(
        Effect.annotateLogs(annotations),
        Effect.andThen(settle)
      )
    })
  }

  get(options?: { readonly timeout?: Duration.Input | undefined }): Effect.Effect<
    Event.Event<K, V>,
    E | DecodeError | ChannelClosedError | Cause.TimeoutError | TransportError
  > {
    const closed = () => Effect.fail(new ChannelClosedError({ channel: this.label }))
    // A subscriber reads its own queue; any other instance reads the next
    // event from the broker through a one-event subscription.
    const take: Effect.Effect<Event.Event<K, V>, E | DecodeError | ChannelClosedError | TransportError> = this.isIterator
      ? Effect.catchIf(
        Effect.tap(Queue.take(this.queue), (event) => Effect.sync(() => ack(event))),
        Cause.isDone,
        closed
      ) as Effect.Effect<Event.Event<K, V>, E | DecodeError | ChannelClosedError | TransportError>
      : Effect.flatMap(Stream.runHead(this.events()), Option.match({ onNone: closed, onSome: Effect.succeed }))
    return options?.timeout === undefined ? take : Effect.timeout(take, options.timeout)
  }

  get empty(): Effect.Effect<boolean> {
    return Effect.sync(() => Queue.sizeUnsafe(this.queue) === 0)
  }

  // ---------------------------------------------------------------------------
  // deriving and closing

  derive(options?: Topic.DeriveOptions): Effect.Effect<TopicImpl<K, V, E>, InvalidChannelOptionsError> {
    const { prefix = "", suffix = "", ...overrides } = options ?? {}
    // The label is derived from the names again, unless the overrides set one.
    const { label: _label, ...base } = this.settings.options
    const merged: Topic.Options = { ...base, ...overrides }
    if (merged.pattern === undefined) {
      return this.context.make({ ...merged, topics: (merged.topics ?? []).map((name) => `${prefix}${name}${suffix}`) })
    }
    if (prefix.length > 0 || suffix.length > 0) {
      return Effect.fail(
        new InvalidChannelOptionsError({
          option: prefix.length > 0 ? "prefix" : "suffix",
          value: prefix || suffix,
          reason: "a topic subscribed by pattern has no names to add it to"
        })
      )
    }
    return this.context.make(merged)
  }

  throw(error: E | DecodeError): Effect.Effect<void> {
    return Effect.sync(() => this.close(Cause.fail(error)))
  }

  get end(): Effect.Effect<void> {
    return Effect.sync(() => this.close(Cause.fail(Cause.Done())))
  }

  private close(cause: Cause.Cause<any>): void {
    if (this.isIterator) {
      Queue.failCauseUnsafe(this.queue, cause)
      return
    }
    if (this.root.closed !== undefined) return
    this.root.closed = cause
    failSubscribers(this, cause)
  }

  /** Produces a ready event as it is: bytes pass through, other keys and values are encoded. */
  put(event: Event.Event<K, V>): Effect.Effect<void, FutureMessage.PublishError> {
    return Effect.gen({ self: this }, function*() {
      const closed = this.closedError
      if (closed !== undefined) return yield* closed
      const topic = yield* this.produceTopicName
      yield* this.maybeDeclare
      const key = event.key instanceof Uint8Array ? event.key : yield* this.encode("key", event.key, undefined)
      const value = event.value instanceof Uint8Array ? event.value : yield* this.encode("value", event.value, undefined)
      const partition = yield* this.partitionFor(topic, key)
      const timestamp = yield* Clock.currentTimeMillis
      yield* this.context.kafka.produce([{
        topic,
        partition,
        key,
        value,
        headers: event.headers,
        timestamp,
        acks: this.settings.acks
      }])
      this.root.stats.sent++
    })
  }

  /**
   * Registers the topic's metrics (the channel series, with queue depths of
   * its subscribers) with the current metric registry until the scope closes.
   */
  get registerMetrics(): Effect.Effect<void, never, Scope.Scope> {
    return Effect.flatMap(Effect.context<never>(), (context) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const root = this.root
          if (root.metrics !== undefined) return undefined
          root.metrics = { context, nextSubscriber: 0 }
          const remove = metrics.registerChannel(context, this.label, root.stats, () => root.subscribers.length, this.queue)
          for (const subscriber of root.subscribers) registerSubscriberMetrics(subscriber)
          return remove
        }),
        (remove) =>
          Effect.sync(() => {
            if (remove === undefined) return
            remove()
            for (const subscriber of this.root.subscribers) unregisterSubscriberMetrics(subscriber)
            this.root.metrics = undefined
          })
      ))
  }

  // ---------------------------------------------------------------------------
  // inspection

  pipe() {
    return pipeArguments(this, arguments)
  }

  toJSON() {
    return {
      _id: "Topic",
      label: this.label,
      topics: this.settings.topics,
      pattern: this.settings.pattern?.source ?? null,
      groupId: this.settings.groupId,
      isIterator: this.isIterator,
      activePartitions: this.activePartitions === undefined
        ? null
        : Array.from(this.activePartitions, (tp) => `${tp.topic}:${tp.partition}`),
      subscriberCount: this.subscriberCount
    }
  }

  toString(): string {
    return `${this.label}(group=${this.settings.groupId}, isIterator=${this.isIterator}, subscribers=${this.subscriberCount})`
  }

  [NodeInspectSymbol]() {
    return this.toJSON()
  }
}

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

const subscribe = (subscriber: TopicImpl<any, any, any>): void => {
  const root = subscriber.root
  if (root.closed !== undefined) Queue.failCauseUnsafe(subscriber.queue, root.closed)
  root.subscribers = [...root.subscribers, subscriber]
  registerSubscriberMetrics(subscriber)
}

const registerSubscriberMetrics = (subscriber: TopicImpl<any, any, any>): void => {
  const registry = subscriber.root.metrics
  if (registry === undefined) return
  subscriber.unregisterMetrics = metrics.registerSubscriber(
    registry.context,
    subscriber.label,
    registry.nextSubscriber++,
    subscriber.queue
  )
}

const unregisterSubscriberMetrics = (subscriber: TopicImpl<any, any, any>): void => {
  subscriber.unregisterMetrics?.()
  subscriber.unregisterMetrics = undefined
}

/**
 * Removes a subscriber and shuts its queue down, which releases a delivery
 * waiting on it. While others still read the topic, what this one held
 * counts as handled (else its partitions' commits would stall); the last one
 * leaves it unacknowledged, to be read again.
 */
const unsubscribe = (subscriber: TopicImpl<any, any, any>): void => {
  const root = subscriber.root
  const index = root.subscribers.indexOf(subscriber)
  if (index === -1) return
  const next = root.subscribers.slice()
  next.splice(index, 1)
  root.subscribers = next
  if (next.length > 0) {
    subscriber.ackLast()
    let taken = Queue.takeUnsafe(subscriber.queue)
    while (taken !== undefined && Exit.isSuccess(taken)) {
      ack(taken.value)
      taken = Queue.takeUnsafe(subscriber.queue)
    }
  }
  unregisterSubscriberMetrics(subscriber)
  Queue.shutdownUnsafe(subscriber.queue)
}

/** Fails every current subscriber (each reads what it holds first), without closing the topic. */
const failSubscribers = (topic: TopicImpl<any, any, any>, cause: Cause.Cause<unknown>): void => {
  for (const subscriber of topic.isIterator ? [topic] : topic.root.subscribers) {
    Queue.failCauseUnsafe(subscriber.queue, cause as Cause.Cause<any>)
  }
}

/**
 * Starts a consumer session: declares the topics, joins the consumer group,
 * then pumps messages to the subscribers and commits the acknowledged
 * offsets every `commitInterval`, when a rebalance starts, and at the end.
 */
const acquireSession = (topic: TopicImpl<any, any, any>): Effect.Effect<Session, TransportError, Scope.Scope> =>
  Effect.gen(function*() {
    const { kafka } = topic.context
    const settings = kafka.settings
    yield* topic.maybeDeclare
    const pattern = topic.settings.pattern
    const names = pattern === undefined
      ? topic.settings.topics
      : (yield* kafka.topicNames).filter((name) => pattern.test(name))
    if (names.length === 0) {
      return yield* new KafkaError({ operation: "consume", cause: new Error(`no topic matches ${pattern}`) })
    }
    const session: Session = { names, generation: -1, assignment: HashSet.empty(), assigned: new Set(), partitions: new Map() }
    const consumer = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Consumer({
          clientId: settings.clientId,
          groupId: topic.settings.groupId,
          bootstrapBrokers: [...settings.bootstrapServers],
          connectTimeout: settings.connectTimeout,
          requestTimeout: settings.requestTimeout,
          retries: settings.retries,
          retryDelay: settings.retryDelay,
          autocommit: false,
          sessionTimeout: settings.sessionTimeout,
          rebalanceTimeout: settings.rebalanceTimeout,
          heartbeatInterval: settings.heartbeatInterval,
          maxWaitTime: settings.maxWaitTime
        })
      ),
      (consumer) => Effect.promise(() => consumer.close().catch(() => undefined))
    )
    const commitRequests = yield* Queue.sliding<void>(1)
    consumer.on("consumer:group:join", ({ assignments, generationId }) => {
      // A new generation re-reads every partition from its committed offset:
      // what was tracked before no longer counts.
      for (const tracker of session.partitions.values()) tracker.revoked = true
      session.partitions = new Map()
      session.generation = generationId ?? -1
      const assigned = (assignments ?? []).filter((assignment) => names.includes(assignment.topic)).flatMap((assignment) =>
        assignment.partitions.map((partition) => Message.TopicPartition.make(assignment.topic, partition))
      )
      session.assignment = HashSet.fromIterable(assigned)
      session.assigned = new Set(assigned.map((tp) => `${tp.topic}:${tp.partition}`))
    })
    consumer.on("consumer:group:rebalance", () => Queue.offerUnsafe(commitRequests, undefined))
    // The client reports a group it could not rejoin as an "error" event
    // (an unheard one would crash the process): it ends the session.
    const lost = Deferred.makeUnsafe<never, KafkaError>()
    consumer.on("error", (cause: unknown) => {
      Deferred.doneUnsafe(lost, Effect.fail(new KafkaError({ operation: "consume", topic: names.join(", "), cause })))
    })
    const stream = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          consumer.consume({
            topics: [...names],
            mode: "committed",
            fallbackMode: settings.autoOffsetReset,
            autocommit: false,
            maxWaitTime: settings.maxWaitTime
          }),
        catch: (cause) => new KafkaError({ operation: "consume", topic: names.join(", "), cause })
      }),
      (stream) => Effect.promise(() => stream.close().catch(() => undefined))
    )
    const lock = yield* Semaphore.make(1)
    const commit = lock.withPermits(1)(commitAcknowledged(consumer, session))
    yield* Effect.forkScoped(
      Effect.forever(Effect.andThen(Effect.timeoutOption(Queue.take(commitRequests), settings.commitInterval), commit))
    )
    yield* Effect.addFinalizer(() => commit)
    topic.root.session = session
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (topic.root.session === session) topic.root.session = undefined
      })
    )
    yield* Effect.forkScoped(pump(topic, session, stream, lost))
    return session
  })

/**
 * Reads the consumer's stream into the topic. Messages of an older group
 * generation, or of a partition no longer assigned (a fetch sent before a
 * rebalance may answer after it), are dropped: their owner reads them again
 * from the committed offset. So are offsets this generation delivered
 * already: the client re-reads from the committed offset when a join's
 * offset refresh races a fetch. A consumer failure fails the subscribers,
 * and the next subscriber starts a new session.
 */
const pump = (
  topic: TopicImpl<any, any, any>,
  session: Session,
  stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>,
  lost: Deferred.Deferred<never, KafkaError>
): Effect.Effect<void> =>
  Stream.fromAsyncIterable(stream, (cause) => new KafkaError({ operation: "consume", topic: session.names.join(", "), cause })).pipe(
    Stream.runForEach((received) => {
      const key = `${received.topic}:${received.partition}`
      if (generationOf(received) !== session.generation || !session.assigned.has(key)) return Effect.void
      let tracker = session.partitions.get(key)
      if (tracker === undefined) {
        tracker = new PartitionTracker(received.topic, received.partition)
        session.partitions.set(key, tracker)
      } else if (received.offset <= tracker.lastOffset) {
        return Effect.void
      }
      const message = toMessage(received)
      trackedMessages.set(message, tracker.track(received.offset, received.leaderEpoch))
      return Effect.catch(topic.deliver(message), (error) =>
        isDecodeError(error)
          ? Effect.void // the policy already failed the subscribers
          : Effect.sync(() => failSubscribers(topic, Cause.fail(error))))
    }),
    Effect.raceFirst(Deferred.await(lost)),
    Effect.catch((error) =>
      Effect.andThen(
        RcRef.invalidate(topic.root.sessions),
        Effect.sync(() => failSubscribers(topic, Cause.fail(error)))
      )
    )
  )

const commitAcknowledged = (consumer: Consumer<Buffer, Buffer, Buffer, Buffer>, session: Session): Effect.Effect<void> =>
  Effect.suspend(() => {
    const trackers = Array.from(session.partitions.values()).filter((tracker) =>
      !tracker.revoked && tracker.committable !== undefined && tracker.committable !== tracker.committed
    )
    if (trackers.length === 0) return Effect.void
    const offsets = trackers.map((tracker) => ({
      topic: tracker.topic,
      partition: tracker.partition,
      offset: tracker.committable!,
      leaderEpoch: tracker.leaderEpoch
    }))
    return Effect.tryPromise({
      try: () => consumer.commit({ offsets }),
      catch: (cause) => new KafkaError({ operation: "commit", topic: session.names.join(", "), cause })
    }).pipe(
      Effect.tap(() =>
        Effect.sync(() => {
          for (let i = 0; i < trackers.length; i++) trackers[i].committed = offsets[i].offset
        })
      ),
      // Committing again later is harmless; a failure only means more is read twice after a restart.
      Effect.catch((error) => Effect.logWarning(error.message))
    )
  })

/** Resolves topic options against the app and Kafka settings. @internal */
export const resolveSettings = (
  options: Topic.Options,
  kafka: Kafka["Service"],
  invalid: (option: string, value: unknown, reason: string) => InvalidChannelOptionsError
): Result.Result<TopicSettings, InvalidChannelOptionsError> => {
  const { pattern, topics } = options
  if ((pattern === undefined) === (topics === undefined)) {
    return Result.fail(invalid("topics", topics, "give either topics (names) or a pattern, not both"))
  }
  const names = topics ?? []
  if (pattern === undefined && (names.length === 0 || names.some((name) => !/^[a-zA-Z0-9._-]{1,249}$/.test(name)))) {
    return Result.fail(invalid("topics", topics, "must be one or more names of letters, digits, '.', '_' and '-'"))
  }
  for (const option of ["partitions", "replicas"] as const) {
    const value = options[option]
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
      return Result.fail(invalid(option, value, "must be an integer of at least 1"))
    }
  }
  const retention = options.retention === undefined ? undefined : Option.getOrUndefined(Duration.fromInput(options.retention))
  if (options.retention !== undefined && retention === undefined) {
    return Result.fail(invalid("retention", options.retention, "must be a Duration"))
  }
  const config: Record<string, string> = {}
  if (retention !== undefined) config["retention.ms"] = String(Duration.toMillis(retention))
  const policies = [options.compacting === true ? "compact" : undefined, options.deleting === true ? "delete" : undefined]
    .filter((policy) => policy !== undefined)
  if (policies.length > 0) config["cleanup.policy"] = policies.join(",")
  for (const [name, value] of Object.entries(options.config ?? {})) config[name] = String(value)
  const regex = pattern === undefined ? undefined : typeof pattern === "string" ? new RegExp(pattern) : pattern
  return Result.succeed({
    topics: names,
    pattern: regex,
    groupId: options.groupId ?? `${kafka.settings.groupId}.${regex === undefined ? names.join(",") : regex.source}`,
    partitions: options.partitions,
    replicas: options.replicas,
    retention,
    compacting: options.compacting,
    deleting: options.deleting,
    config,
    acks: options.acks ?? true,
    internal: options.internal ?? false,
    options
  })
}
