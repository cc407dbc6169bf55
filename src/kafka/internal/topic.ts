import { Consumer, type Message as KafkaMessage, type MessagesStream } from "@platformatic/kafka"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
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
import { App, defaultCreateEvent } from "../../App.ts"
import type * as Channel from "../../Channel.ts"
import * as Codec from "../../Codec.ts"
import {
  ChannelClosedError,
  CodecError,
  type DecodeError,
  InvalidChannelOptionsError,
  KeyDecodeError,
  NotATopicError,
  type TransportError,
  ValueDecodeError
} from "../../Errors.ts"
import { EventBase } from "../../Event.ts"
import type * as Event from "../../Event.ts"
import * as FutureMessage from "../../FutureMessage.ts"
import { doneUnsafe, fromSendOptions } from "../../internal/futureMessage.ts"
import { publishAllOf } from "./groupPublish.ts"
import { Kafka, KafkaError, type ProducerRecord as KafkaProducerRecord } from "../Kafka.ts"
import * as Message from "../../Message.ts"
import type { MessageSchema } from "../../MessageSchema.ts"
import type * as RecordMetadata from "../../RecordMetadata.ts"
import type * as Topic from "../Topic.ts"
import { TypeId as ChannelTypeId } from "../../internal/channel.ts"
import type { ChannelImpl } from "../../internal/channel.ts"
import * as kafkaMetrics from "./kafkaMetrics.ts"
import { bySubscription } from "./assignor.ts"
import * as metrics from "../../internal/metrics.ts"
import * as newPartitions from "./newPartitions.ts"
import * as sendGuard from "./sendGuard.ts"
import * as subscriberList from "../../internal/subscriberList.ts"
import { partitionForKey } from "./murmur2.ts"
import { isUtf8 } from "node:buffer"

/** @internal */
export const TypeId = "~effect-faust/Topic" as const

/** What a topic is besides a channel (its properties), resolved from its options. @internal */
export interface TopicSettings extends
  Pick<
    Topic.Topic<unknown, unknown, never>,
    "topics" | "pattern" | "groupId" | "partitions" | "replicas" | "retention" | "compacting" | "deleting" | "config" | "acks" | "internal"
  >
{
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
  /** Counters for the Kafka metrics (acknowledged, committed). */
  readonly kafkaStats: kafkaMetrics.Stats
  /** Set while the topic's metrics are registered. */
  metrics: metrics.Registry | undefined
  declared: Deferred.Deferred<void, TransportError> | undefined
  /** Set once a declare succeeded: senders skip `maybeDeclare`. */
  declaredOk: boolean
  /** The consumer session, running while anyone streams the topic. */
  readonly sessions: RcRef.RcRef<Session, TransportError>
  session: Session | undefined
  /** Round-robin position per topic, for records without a key. */
  readonly nextPartition: Map<string, number>
  /** Which consumer sessions a refused sendSoon record stops (see `sendGuard.ts`). */
  readonly sendGuards: sendGuard.Registry
}

/** An offset to commit, with the tracker it comes from (its `committed` moves when the commit lands). */
interface CommitOffset {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  readonly leaderEpoch: number
  readonly tracker: PartitionTracker
}

/** One run of the topic's consumer, from the first subscriber to the last. */
interface Session {
  readonly names: ReadonlyArray<string>
  /** The current assignment: empty while a rebalance runs (the eager protocol revokes everything first). */
  assignment: HashSet.HashSet<Message.TopicPartition>
  /** The generation whose messages are delivered; none, or a revoked one, while a rebalance runs. */
  current: Generation | undefined
  /** The last generation joined, until a rebalance starts. */
  joined: { readonly id: number; readonly assignment: HashSet.HashSet<Message.TopicPartition> } | undefined
  /** What revoked generations had acknowledged and not committed, committed before the next assignment is read. */
  revoked: Array<CommitOffset>
  /** Per `topic:partition`, the log end offset and the group's committed offset as last read (for the lag). */
  readonly offsets: Map<string, { end: bigint; committed: bigint }>
  /** Per `topic:partition`, the removal of its metric series. */
  readonly partitionMetrics: Map<string, () => void>
  /** Whether a refused sendSoon record stops this session's commits (see `sendGuard.ts`). */
  readonly guard: sendGuard.SessionGuard
}

/**
 * One generation of the consumer group as this member sees it: the
 * partitions assigned, the client stream fetching them (opened after the
 * join, so it starts from the committed offsets), and delivery tracking.
 */
class Generation {
  readonly id: number
  readonly assignment: HashSet.HashSet<Message.TopicPartition>
  readonly assigned: Set<string>
  readonly stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>
  readonly partitions = new Map<string, PartitionTracker>()
  /** Set when a rebalance starts or the session ends: nothing more is delivered, late acknowledgements do not count. */
  revoked = false
  pump: Fiber.Fiber<void> | undefined = undefined
  constructor(id: number, assignment: HashSet.HashSet<Message.TopicPartition>, stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>) {
    this.id = id
    this.assignment = assignment
    this.assigned = new Set(Array.from(assignment, (tp) => `${tp.topic}:${tp.partition}`))
    this.stream = stream
  }
}

/**
 * A received message on its way through the subscribers: `pending` counts
 * the copies not yet acknowledged or refused, plus one until every copy is
 * made. It is done when nothing is pending and some subscriber (or the
 * decode-error policy) handled it: a message every subscriber refused (their
 * queues shut down) stays undone, so it is read again.
 */
interface Tracked {
  readonly tracker: PartitionTracker
  readonly offset: bigint
  readonly leaderEpoch: number
  pending: number
  handled: boolean
  done: boolean
}

/** One subscriber's copy of a tracked message. */
interface Delivery {
  readonly tracked: Tracked
  acked: boolean
  /** The `noack` subscriber holding it, until acknowledged. */
  holder: Set<Delivery> | undefined
}

/**
 * The messages of one partition in one generation, in the order they
 * arrived: the generation's stream starts at the group's committed offset,
 * so the first one is the first record at or after it. Commits move to just after the longest prefix that
 * is done: the highest contiguous acknowledged offset.
 */
class PartitionTracker {
  readonly topic: string
  readonly partition: number
  readonly stats: kafkaMetrics.Stats
  entries: Array<Tracked> = []
  head = 0
  /** Where this generation started reading. */
  readonly base: bigint
  committable: bigint | undefined = undefined
  committed: bigint | undefined = undefined
  leaderEpoch = -1
  /** Set when its generation is revoked: its events are no longer delivered, its acknowledgements no longer count. */
  revoked = false
  readonly guard: sendGuard.SessionGuard
  constructor(topic: string, partition: number, base: bigint, stats: kafkaMetrics.Stats, guard: sendGuard.SessionGuard) {
    this.topic = topic
    this.partition = partition
    this.base = base
    this.stats = stats
    this.guard = guard
  }
  /** The last offset tracked, to drop what the client fetches twice in one generation. */
  get lastOffset(): bigint {
    return this.entries.length === 0 ? -1n : this.entries[this.entries.length - 1].offset
  }
  track(offset: bigint, leaderEpoch: number): Tracked {
    const tracked: Tracked = { tracker: this, offset, leaderEpoch, pending: 1, handled: false, done: false }
    this.entries.push(tracked)
    this.guard.tracked()
    return tracked
  }
  /** Its generation was revoked: what is not done is dropped (the new owner reads it again). */
  abandon(): void {
    let unsettled = 0
    for (let i = this.head; i < this.entries.length; i++) if (!this.entries[i].done) unsettled++
    if (unsettled > 0) this.guard.settled(unsettled)
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
  /** What to commit now, if the commit can move. */
  toCommit(): CommitOffset | undefined {
    const offset = this.committable
    if (offset === undefined || offset === this.committed) return undefined
    return { topic: this.topic, partition: this.partition, offset, leaderEpoch: this.leaderEpoch, tracker: this }
  }
}

/** The tracking of a message whose decoding failed, for the decode-error policy (called with the message alone). */
const trackedMessages = new WeakMap<Message.Message, Tracked>()
/** Deliveries of events built by an app's own `createEvent`; the default events carry theirs. */
const deliveries = new WeakMap<Event.Event<any, any>, Delivery>()

/**
 * A topic's event when the app builds default events: it carries its
 * delivery, which saves a WeakMap entry per event and per subscriber.
 */
class TopicEvent<K, V> extends EventBase<K, V> {
  readonly key: K | null
  readonly value: V
  readonly headers: Message.Headers
  readonly message: Message.Message
  // Private: not serialized, not logged with the event (it points into the consumer's tracking).
  #delivery: Delivery | undefined
  constructor(key: K | null, value: V, headers: Message.Headers, message: Message.Message) {
    super()
    this.key = key
    this.value = value
    this.headers = headers
    this.message = message
    this.#delivery = undefined
  }
  static deliveryOf(event: TopicEvent<unknown, unknown>): Delivery | undefined {
    return event.#delivery
  }
  static setDelivery(event: TopicEvent<unknown, unknown>, delivery: Delivery): void {
    event.#delivery = delivery
  }
}

const makeTopicEvent = <K, V>(key: K | null, value: V, headers: Message.Headers, message: Message.Message): Event.Event<K, V> =>
  new TopicEvent(key, value, headers, message)

const deliveryOf = (event: Event.Event<any, any>): Delivery | undefined =>
  event instanceof TopicEvent ? TopicEvent.deliveryOf(event) : deliveries.get(event)

const setDelivery = (event: Event.Event<any, any>, delivery: Delivery): void => {
  if (event instanceof TopicEvent) TopicEvent.setDelivery(event, delivery)
  else deliveries.set(event, delivery)
}

/** One pending copy (or the hold while copies are made) is over: acknowledged, refused, or all made. */
const release = (tracked: Tracked): void => {
  if (--tracked.pending === 0 && tracked.handled) {
    tracked.done = true
    const tracker = tracked.tracker
    tracker.stats.acknowledged++
    // A revoked tracker's guard no longer counts it (see `abandon`).
    if (!tracker.revoked) tracker.guard.settled()
    tracker.advance()
  }
}

const acknowledge = (delivery: Delivery): boolean => {
  if (delivery.acked) return false
  delivery.acked = true
  delivery.holder?.delete(delivery)
  delivery.holder = undefined
  delivery.tracked.handled = true
  release(delivery.tracked)
  return true
}

/**
 * Acknowledges one subscriber's event: `true` if the acknowledgement counts,
 * `false` if it was not a topic's, was acknowledged already, or belongs to a
 * revoked generation (it no longer counts: the partition's new owner reads
 * the event again). @internal
 */
export const ack = (event: Event.Event<any, any>): boolean => {
  const delivery = deliveryOf(event)
  return delivery !== undefined && acknowledge(delivery) && !delivery.tracked.tracker.revoked
}

/** Whether an event belongs to a revoked generation: it is dropped, never delivered. */
const isStale = (event: Event.Event<any, any>): boolean => {
  const delivery = deliveryOf(event)
  if (delivery === undefined || !delivery.tracked.tracker.revoked) return false
  delivery.acked = true
  return true
}

const isDecodeError = (u: unknown): u is DecodeError => u instanceof KeyDecodeError || u instanceof ValueDecodeError

const bytesOf = (buffer: Uint8Array): Uint8Array => new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)

/** Shared by every message without headers (headers are read-only). */
const noHeaders: Message.Headers = []

const toMessage = (m: KafkaMessage): Message.Message => {
  const message = Message.make({
    topic: m.topic,
    partition: m.partition,
    offset: Number(m.offset),
    timestamp: Number(m.timestamp),
    timestampType: 0,
    headers: m.headerEntries.length === 0 ? noHeaders : m.headerEntries.map(([name, value]) => [
      name.toString("utf8"),
      value === undefined || value === null ? new Uint8Array(0) : bytesOf(value)
    ]),
    key: m.key === undefined || m.key === null ? null : bytesOf(m.key),
    value: m.value === undefined || m.value === null ? null : bytesOf(m.value),
    generationId: generationOf(m)
  })
  if (m.headerEntries.length > 0 && m.headerEntries.some(([name, value]) => value == null || !isUtf8(name))) {
    rawHeaders.set(message, m.headerEntries.map(([name, value]) => [bytesOf(name), value == null ? null : bytesOf(value)]))
  }
  return message
}

/**
 * The header bytes of received messages whose headers do not survive as
 * text (a name that is not UTF-8, a null value), for dead letters.
 */
const rawHeaders = new WeakMap<Message.Message, ReadonlyArray<readonly [Uint8Array, Uint8Array | null]>>()

const utf8Bytes = (text: string): Uint8Array => Buffer.from(text, "utf8")

/** Dead letters to send with exact header bytes (see `rawHeaders`). */
const deadLetterHeaders = new WeakMap<Event.Event<any, any>, ReadonlyArray<readonly [Uint8Array, Uint8Array | null]>>()

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
  /** A `noack` subscriber's events handed out and not acknowledged yet. */
  held: Set<Delivery> | undefined = undefined
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
            kafkaStats: kafkaMetrics.makeStats(),
            metrics: undefined,
            declared: undefined,
            declaredOk: false,
            sessions,
            session: undefined,
            nextPartition: new Map(),
            sendGuards: sendGuard.registryOf(context.kafka)
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
    return this.eventsWith(false)
  }

  /**
   * The events, acknowledged on the next pull (Faust's rule), or with
   * `manual` (Faust's `noack`) only by `Topic.ack`: for handlers that run
   * concurrently or out of order, where a pull says nothing about the events
   * before it.
   */
  eventsWith(manual: boolean): Stream.Stream<Event.Event<K, V>, E | DecodeError | TransportError> {
    return Stream.unwrap(Effect.gen({ self: this }, function*() {
      const subscriber = yield* Effect.acquireRelease(this.iteratorClone, (subscriber) => subscriber.onStopIteration)
      if (manual) subscriber.held = new Set()
      if (this.context.kafka.scope.state._tag === "Closed") {
        return yield* new KafkaError({
          operation: "consume",
          topic: this.settings.topics.join(", "),
          cause: new Error("the Kafka layer this topic was made with is closed")
        })
      }
      yield* RcRef.get(this.root.sessions)
      if (!manual) {
        yield* Effect.addFinalizer((exit) => Exit.isSuccess(exit) ? Effect.sync(() => subscriber.ackLast()) : Effect.void)
      }
      return Stream.fromPull(Effect.succeed(manual ? subscriber.pullHeld : subscriber.pullOne))
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
      // Without an effect per event while the queue has some.
      const taken = this.takeFreshUnsafe()
      if (taken === undefined) return Effect.map(this.takeFresh, (event) => this.handOut(event))
      return Exit.isSuccess(taken) ? Exit.succeed(this.handOut(taken.value)) : taken as Exit.Exit<never, PullError<E>>
    })
  }

  private handOut(event: Event.Event<K, V>): readonly [Event.Event<K, V>] {
    this.last = deliveryOf(event)
    return [event]
  }

  private get pullHeld(): Effect.Effect<readonly [Event.Event<K, V>], PullError<E>> {
    return Effect.map(this.takeFresh, (event) => {
      const delivery = deliveryOf(event)
      if (delivery !== undefined && !delivery.acked && this.held !== undefined) {
        delivery.holder = this.held
        this.held.add(delivery)
      }
      return [event] as const
    })
  }

  /** The next event of the subscriber's queue if it has one, dropping those of revoked generations. */
  private takeFreshUnsafe(): Exit.Exit<Event.Event<K, V>, PullError<E>> | undefined {
    let taken = Queue.takeUnsafe(this.queue)
    while (taken !== undefined && Exit.isSuccess(taken) && isStale(taken.value)) taken = Queue.takeUnsafe(this.queue)
    return taken
  }

  /**
   * The next event of the subscriber's queue, dropping those of revoked
   * generations: a member never hands out an event of a partition it may no
   * longer own (its new owner reads it from the committed offset).
   */
  private get takeFresh(): Effect.Effect<Event.Event<K, V>, PullError<E>> {
    return Effect.suspend(() => {
      const taken = this.takeFreshUnsafe()
      if (taken !== undefined) return taken
      return Effect.flatMap(Queue.take(this.queue), (event) => isStale(event) ? this.takeFresh : Effect.succeed(event))
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
    return Effect.sync(() => fromSendOptions(this, options))
  }

  private get closedError(): ChannelClosedError | undefined {
    return this.root.closed === undefined ? undefined : new ChannelClosedError({ channel: this.label })
  }

  /**
   * The common path of `send`, `sendSoon`, `sendAll` and `publishMessage`:
   * encodes the message, picks its partition and adds it to the Kafka send
   * buffer. When the broker answers, the future completes, then its callback
   * runs, then the returned deferred completes (`detached`: nobody waits for
   * it, and there is none).
   *
   * Once the topic is declared and its partition count is cached, the record
   * is built without an effect per step (see `recordUnsafe`).
   */
  private enqueue(
    future: FutureMessage.FutureMessage<K, V>,
    detached = false
  ): Effect.Effect<Deferred.Deferred<void> | undefined, TransportError> {
    return Effect.clockWith((clock) => {
      const record = this.recordUnsafe(future.message, clock)
      if (record === undefined) return this.enqueueSlow(future, detached)
      if (record instanceof CodecError) return Effect.andThen(future.fail(record), Effect.fail(record))
      return this.publishRecord(future, record, detached)
    })
  }

  /** The topic name to produce to when it is known without an effect. */
  private get singleTopicName(): string | undefined {
    const { pattern, topics } = this.settings
    return pattern === undefined && topics.length === 1 ? topics[0] : undefined
  }

  /**
   * The record of a pending message, built synchronously, in `enqueue`'s
   * order (name, declare, key, value, partition, timestamp); `undefined`
   * when a step needs an effect (no single name, not declared yet, no cached
   * partition count).
   */
  private recordUnsafe(pending: FutureMessage.PendingMessage<K, V>, clock: Clock.Clock): KafkaProducerRecord | CodecError | undefined {
    const topic = pending.topic ?? this.singleTopicName
    if (topic === undefined || !this.root.declaredOk) return undefined
    const key = this.encodeUnsafe("key", pending.key, pending.keySerializer)
    if (key instanceof CodecError) return key
    const value = this.encodeUnsafe("value", pending.value, pending.valueSerializer)
    if (value instanceof CodecError) return value
    let partition = pending.partition
    if (partition === undefined) {
      const count = this.context.kafka.partitionCountUnsafe?.(topic)
      if (count === undefined) return undefined
      partition = this.partitionOf(topic, key, count)
    }
    return {
      topic,
      partition,
      key,
      value,
      headers: Message.headersToList(pending.headers),
      timestamp: pending.timestamp ?? clock.currentTimeMillisUnsafe(),
      acks: this.settings.acks
    }
  }

  /** `enqueue` one effect at a time: declares, reads the partition count. */
  private enqueueSlow(
    future: FutureMessage.FutureMessage<K, V>,
    detached: boolean
  ): Effect.Effect<Deferred.Deferred<void> | undefined, TransportError> {
    return Effect.gen({ self: this }, function*() {
      const pending = future.message
      const topic = pending.topic ?? (yield* this.produceTopicName)
      yield* this.maybeDeclare
      const key = yield* this.encode("key", pending.key, pending.keySerializer)
      const value = yield* this.encode("value", pending.value, pending.valueSerializer)
      const partition = pending.partition ?? (yield* this.partitionFor(topic, key))
      const timestamp = pending.timestamp ?? (yield* Clock.currentTimeMillis)
      const record = {
        topic,
        partition,
        key,
        value,
        headers: Message.headersToList(pending.headers),
        timestamp,
        acks: this.settings.acks
      }
      return yield* this.publishRecord(future, record, detached)
    }).pipe(Effect.tapError((error) => future.fail(error)))
  }

  /** Adds the record to the send buffer; see `enqueue`. */
  private publishRecord(
    future: FutureMessage.FutureMessage<K, V>,
    record: KafkaProducerRecord,
    detached: boolean
  ): Effect.Effect<Deferred.Deferred<void> | undefined> {
    const settled = detached ? undefined : Deferred.makeUnsafe<void>()
    return Effect.as(this.context.kafka.publish(record, this.completion(future, record.topic, settled, detached)), settled)
  }

  /** What runs when the broker answers a record: see `enqueue`. */
  private completion(
    future: FutureMessage.FutureMessage<K, V>,
    topic: string,
    settled: Deferred.Deferred<void> | undefined,
    detached: boolean
  ): (exit: Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>) => Effect.Effect<void> {
    const stats = this.root.stats
    const guards = this.root.sendGuards
    const sent = detached ? sendGuard.numberSend(guards) : 0
    return (exit) => {
      const error = Exit.isSuccess(exit) ? undefined : asKafkaError(topic, Cause.squash(exit.cause))
      if (error === undefined) stats.sent++
      // Nobody waits for a sendSoon: the consumer sessions that may have made it must know.
      else if (detached) sendGuard.refused(guards, sent)
      // The future completes now, so that the futures of a batch complete in send order; what
      // needs an effect (the callback, the waiting sender) runs after.
      let after: Effect.Effect<unknown> | undefined
      if (!doneUnsafe(future, error === undefined ? exit : Exit.fail(error))) {
        after = error === undefined ? future.succeed((exit as Exit.Success<RecordMetadata.RecordMetadata>).value) : future.fail(error)
      }
      if (error === undefined && future.message.callback !== undefined) {
        after = after === undefined ? runCallback(future) : Effect.andThen(after, runCallback(future))
      }
      if (settled !== undefined) {
        after = after === undefined ? Deferred.succeed(settled, undefined) : Effect.ensuring(after, Deferred.succeed(settled, undefined))
      }
      return after === undefined ? Effect.void : Effect.asVoid(after)
    }
  }

  send(options: Channel.SendOptions<K, V>): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> {
    const send = Effect.flatMap(this.futureFor(options), (future) => this.publishMessage(future))
    return this.base.settings.spans ? Effect.withSpan(send, "Topic.send", this.spanOptions) : send
  }

  private get spanOptions() {
    return { attributes: { "channel.label": this.label, "messaging.destination.name": this.settings.topics.join(",") } }
  }

  /**
   * Encodes every value in a plain loop (same timestamp, no key, partitions
   * round-robin) and hands them to the send buffer as one group with one
   * completion; fails with the first record's error, in order. A value that
   * does not encode fails the call after the values before it were handed
   * over (as sending them one by one would).
   */
  sendAll(values: Iterable<V>): Effect.Effect<void, FutureMessage.PublishError> {
    const publishAll = publishAllOf(this.context.kafka.publish)
    if (publishAll === undefined) return this.sendEach(values)
    return Effect.gen({ self: this }, function*() {
      const closed = this.closedError
      if (closed !== undefined) return yield* closed
      const timestamp = yield* Clock.currentTimeMillis
      const list = Array.from(values)
      if (list.length === 0) return
      const topic = yield* this.produceTopicName
      yield* this.maybeDeclare
      const records: Array<KafkaProducerRecord & { partition: number }> = []
      let failure: CodecError | undefined
      for (const value of list) {
        const bytes = this.encodeUnsafe("value", value, undefined)
        if (bytes instanceof CodecError) {
          failure = bytes
          break
        }
        records.push({ topic, partition: 0, key: null, value: bytes, headers: [], timestamp, acks: this.settings.acks })
      }
      if (records.length === 0) return yield* failure!
      const count = yield* this.context.kafka.partitionCount(topic)
      for (const record of records) record.partition = this.partitionOf(topic, null, count)
      const stats = this.root.stats
      const settled = Deferred.makeUnsafe<void, KafkaError>()
      yield* publishAll(records, (exits) =>
        Effect.suspend(() => {
          let first: KafkaError | undefined
          for (const exit of exits) {
            if (Exit.isSuccess(exit)) stats.sent++
            else if (first === undefined) first = asKafkaError(topic, Cause.squash(exit.cause))
          }
          return Effect.asVoid(first === undefined ? Deferred.succeed(settled, undefined) : Deferred.fail(settled, first))
        }))
      if (failure !== undefined) return yield* failure
      yield* Deferred.await(settled)
    })
  }

  /** `sendAll` one `enqueue` per value, for a Kafka service whose `publish` has no group publisher. */
  private sendEach(values: Iterable<V>): Effect.Effect<void, FutureMessage.PublishError> {
    return Effect.gen({ self: this }, function*() {
      const closed = this.closedError
      if (closed !== undefined) return yield* closed
      const timestamp = yield* Clock.currentTimeMillis
      const settled: Array<Deferred.Deferred<void>> = []
      const futures: Array<FutureMessage.FutureMessage<K, V>> = []
      for (const value of values) {
        const future = yield* this.futureFor({ value, timestamp })
        futures.push(future)
        const done = yield* this.enqueue(future)
        if (done !== undefined) settled.push(done)
      }
      yield* Effect.forEach(settled, Deferred.await, { discard: true })
      yield* Effect.forEach(futures, awaitPublication, { discard: true })
    })
  }

  /**
   * Adds the message to the send buffer; the future completes when the
   * broker acknowledges it. Once the topic is declared, the record is built
   * without an effect per step (see `recordUnsafe`).
   */
  sendSoon(options: Channel.SendOptions<K, V>): Effect.Effect<FutureMessage.FutureMessage<K, V>, TransportError> {
    return Effect.withFiber((fiber) => {
      const future = fromSendOptions(this, options)
      const closed = this.closedError
      if (closed !== undefined) return Effect.as(future.fail(closed), future)
      const record = this.recordUnsafe(future.message, fiber.getRef(Clock.Clock))
      if (record === undefined || record instanceof CodecError) return Effect.as(this.enqueue(future, true), future)
      return Effect.as(this.publishRecord(future, record, true), future)
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
    return Effect.flatMap(
      this.enqueue(future),
      (settled) => settled === undefined ? awaitPublication(future) : Effect.andThen(Deferred.await(settled), awaitPublication(future))
    )
  }

  /**
   * Kafka's default partitioner: murmur2 of the key bytes, so that Java and
   * Python producers agree; keyless records go round-robin.
   */
  private partitionFor(topic: string, key: Uint8Array | null): Effect.Effect<number, KafkaError> {
    return Effect.map(this.context.kafka.partitionCount(topic), (count) => this.partitionOf(topic, key, count))
  }

  /** `partitionFor` with the partition count known. */
  private partitionOf(topic: string, key: Uint8Array | null, count: number): number {
    if (key !== null) return partitionForKey(key, count)
    const next = this.root.nextPartition.get(topic) ?? 0
    this.root.nextPartition.set(topic, next + 1)
    return next % count
  }

  get maybeDeclare(): Effect.Effect<void, TransportError> {
    return Effect.suspend(() => {
      const root = this.root
      if (root.declaredOk) return Effect.void
      if (root.declared !== undefined) return Deferred.await(root.declared)
      const declared = Deferred.makeUnsafe<void, TransportError>()
      root.declared = declared
      return Effect.flatMap(Effect.exit(this.declare), (exit) => {
        // A failed declare (a broker down) is tried again by the next caller.
        if (Exit.isFailure(exit)) root.declared = undefined
        else root.declaredOk = true
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
      const encoded = this.encodeUnsafe(kind, input, serializer)
      return encoded instanceof CodecError ? Effect.fail(encoded) : Effect.succeed(encoded)
    })
  }

  /** `encode` without an effect: the bytes, or the error. */
  encodeUnsafe(kind: "key" | "value", input: unknown, serializer: Codec.Serializer | undefined): Uint8Array | null | CodecError {
    if (input === null || input === undefined) return null
    const settings = this.base.settings
    const schema = kind === "key" ? settings.schema.key : settings.schema.value
    let encoded: unknown = input
    if (schema !== undefined) {
      const result = encoderOf(schema)(input)
      if (Result.isFailure(result)) return new CodecError({ codec: "schema", operation: "dumps", cause: result.failure })
      encoded = result.success
    }
    let codec = kind === "key" ? settings.keyCodec : settings.valueCodec
    if (serializer !== undefined) {
      const resolved = Codec.resolve(this.context.registry, serializer)
      if (Result.isFailure(resolved)) {
        return new CodecError({ codec: String(serializer), operation: "dumps", cause: resolved.failure })
      }
      codec = resolved.success
    }
    try {
      return codec.dumps(encoded)
    } catch (cause) {
      return new CodecError({ codec: codec.name, operation: "dumps", cause })
    }
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
    return this.deliverTracked(message, undefined)
  }

  /** `deliver` of a message, tracked when the consumer read it. */
  deliverTracked(
    message: Message.Message,
    tracked: Tracked | undefined
  ): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    const deliver = Effect.suspend(() => {
      const decoded = this.base.decodeUnsafe(message, this.eventFactory)
      if (isDecodeError(decoded)) return this.decodeFailed(decoded, message, tracked)
      this.root.stats.delivered++
      const subscribers = this.isIterator ? [this] : this.root.subscribers
      return this.offerRun(subscribers, [decoded], tracked === undefined ? undefined : [tracked]) ?? Effect.void
    })
    return this.base.settings.spans ? Effect.withSpan(deliver, "Topic.deliver", this.spanOptions) : deliver
  }

  /** The app's event constructor; for the default one, events that carry their delivery. */
  get eventFactory(): App["Service"]["createEvent"] {
    const createEvent = this.context.app.createEvent
    return createEvent === defaultCreateEvent ? makeTopicEvent : createEvent
  }

  decodeFailed(
    error: DecodeError,
    message: Message.Message,
    tracked: Tracked | undefined
  ): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    // The policy is Faust's public hook, called with the message alone.
    if (tracked !== undefined) trackedMessages.set(message, tracked)
    return this.handleDecodeError(error, message)
  }

  /** Delivers a run of decoded events of tracked messages, in order, to every subscriber; see `offerRun`. */
  fanOutAll(events: Array<Event.Event<K, V>>, tracked: ReadonlyArray<Tracked>): Effect.Effect<void> | undefined {
    this.root.stats.delivered += events.length
    return this.offerRun(this.root.subscribers, events, tracked)
  }

  /**
   * Offers a run of events, in order, to each subscriber: a copy each (so
   * that each acknowledges its own), with one `offerAll` per subscriber, so a
   * full queue costs one wait for the run rather than one per event.
   * `undefined` when every queue took everything; otherwise the effect that
   * waits for room. Every copy is counted before the first is offered, so a
   * copy acknowledged early cannot complete its message while others are
   * still to be offered; a message no subscriber took stays undone.
   */
  private offerRun(
    subscribers: ReadonlyArray<TopicImpl<K, V, E>>,
    events: Array<Event.Event<K, V>>,
    tracked: ReadonlyArray<Tracked> | undefined
  ): Effect.Effect<void> | undefined {
    const n = events.length
    if (subscribers.length === 0) return undefined
    const copies = subscribers.map((_, s) =>
      s === 0 ? events : events.map((event) => this.eventFactory(event.key, event.value, event.headers, event.message))
    )
    if (tracked !== undefined) {
      for (const run of copies) for (let j = 0; j < n; j++) this.track(run[j], tracked[j])
      for (let j = 0; j < n; j++) release(tracked[j])
    }
    let waits: Array<Effect.Effect<void>> | undefined
    for (let s = 0; s < subscribers.length; s++) {
      const queue = subscribers[s].queue
      const rest = Queue.offerAllUnsafe(queue, copies[s])
      if (rest.length === 0) continue
      ;(waits ??= []).push(Effect.map(Queue.offerAll(queue, rest), (refused) => {
        // what a queue shut down while waiting did not take: the suffix of the run
        if (tracked !== undefined) for (let j = n - refused.length; j < n; j++) release(tracked[j])
      }))
    }
    // Concurrently: a subscriber must not wait for its run behind another's full queue (a reader
    // taking from both in step would never drain the first).
    return waits === undefined ? undefined : Effect.all(waits, { concurrency: "unbounded", discard: true })
  }

  private track(event: Event.Event<K, V>, tracked: Tracked): void {
    setDelivery(event, { tracked, acked: false, holder: undefined })
    tracked.pending++
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
    trackedMessages.delete(message)
    const settle = Effect.sync(() => {
      if (tracked === undefined) return
      tracked.handled = true
      release(tracked)
    })
    const annotations = { channel: this.label, topic: message.topic, partition: message.partition, offset: message.offset }
    if (policy === "fail") {
      return Effect.suspend(() => {
        counts.failed++
        // Settled first: failing the subscribers can end their streams, and the session with them,
        // at once; the bad record must be done by then, so that the session's last commit covers it.
        if (tracked !== undefined) {
          tracked.handled = true
          release(tracked)
        }
        failSubscribers(this, Cause.fail(error))
        return Effect.logError(error.message, error.cause).pipe(
          Effect.annotateLogs(annotations),
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
    const added: Message.Headers = [
      ["x-decode-error", error._tag],
      ["x-decode-error-message", error.message],
      ["x-source-channel", this.label],
      ["x-source-topic", message.topic],
      ["x-source-partition", String(message.partition)],
      ["x-source-offset", String(message.offset)]
    ]
    const forwarded = this.context.app.createEvent(message.key, message.value, [...message.headers, ...added], message)
    const original = rawHeaders.get(message)
    if (original !== undefined) {
      deadLetterHeaders.set(forwarded, [...original, ...added.map(([name, value]) => [utf8Bytes(name), utf8Bytes(value as string)] as const)])
    }
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
        Effect.tap(this.takeFresh, (event) => Effect.sync(() => ack(event))),
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
        rawHeaders: deadLetterHeaders.get(event),
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
          const removeChannel = metrics.registerChannel(context, this.label, root.stats, () => root.subscribers.length, this.queue)
          const removeTopic = kafkaMetrics.registerTopic(context, this.label, root.kafkaStats)
          for (const subscriber of root.subscribers) metrics.trackSubscriber(root.metrics, subscriber)
          if (root.session !== undefined) syncPartitionMetrics(this, root.session)
          return () => {
            removeChannel()
            removeTopic()
          }
        }),
        (remove) =>
          Effect.sync(() => {
            if (remove === undefined) return
            remove()
            for (const subscriber of this.root.subscribers) metrics.untrackSubscriber(subscriber)
            this.root.metrics = undefined
            if (this.root.session !== undefined) syncPartitionMetrics(this, this.root.session)
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

/** The Schema encoder of each key or value schema, made once. */
const encoders = new WeakMap<object, (input: unknown) => Result.Result<unknown, Schema.SchemaError>>()

const encoderOf = (schema: unknown): (input: unknown) => Result.Result<unknown, Schema.SchemaError> => {
  let encoder = encoders.get(schema as object)
  if (encoder === undefined) {
    encoder = Schema.encodeUnknownResult(schema as Schema.Codec<unknown, unknown>) as (input: unknown) => Result.Result<unknown, Schema.SchemaError>
    encoders.set(schema as object, encoder)
  }
  return encoder
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
  subscriberList.join(subscriber.root, subscriber)
}

/**
 * Removes a subscriber and shuts its queue down, which releases a delivery
 * waiting on it. While others still read the topic, what this one held
 * counts as handled (else its partitions' commits would stall); the last one
 * leaves it unacknowledged, to be read again.
 */
const unsubscribe = (subscriber: TopicImpl<any, any, any>): void => {
  const next = subscriberList.leave(subscriber.root, subscriber)
  if (next === undefined) return
  if (next.length > 0) {
    subscriber.ackLast()
    if (subscriber.held !== undefined) for (const delivery of Array.from(subscriber.held)) acknowledge(delivery)
    let taken = Queue.takeUnsafe(subscriber.queue)
    while (taken !== undefined && Exit.isSuccess(taken)) {
      ack(taken.value)
      taken = Queue.takeUnsafe(subscriber.queue)
    }
  }
  Queue.shutdownUnsafe(subscriber.queue)
}

/** Fails every current subscriber (each reads what it holds first), without closing the topic. */
const failSubscribers = (topic: TopicImpl<any, any, any>, cause: Cause.Cause<unknown>): void => {
  for (const subscriber of topic.isIterator ? [topic] : topic.root.subscribers) {
    Queue.failCauseUnsafe(subscriber.queue, cause as Cause.Cause<any>)
  }
}

/**
 * Why a consumer session ends early: the client broke (`KafkaError`), or a
 * delivery failed — a record the "fail" policy refused, a dead letter that
 * could not be sent.
 */
type SessionFailure = KafkaError | DecodeError | FutureMessage.PublishError

/** A failure of one delivery, which leaves the consumer itself healthy. */
const isDelivered = (error: SessionFailure): boolean => !(error instanceof KafkaError)

/**
 * Starts a consumer session: declares the topics, joins the consumer group
 * and runs one generation of the group at a time.
 *
 * Each generation (an assignment from a join) gets a client stream opened
 * after the join, so it starts from the group's committed offsets: a fetch
 * sent before a rebalance, or a position left from an earlier assignment,
 * can neither skip nor repeat what the new assignment delivers, and a
 * partition's first tracked offset is where its commits start. A rebalance
 * revokes the current generation at once: nothing more of it is delivered,
 * what subscribers still hold of it is dropped when reached (its new owner
 * reads it again), and what it had acknowledged is committed before the next
 * generation's stream reads the committed offsets.
 *
 * Acknowledged offsets are also committed every `commitInterval` and when
 * the session ends. Each commit first waits for the send buffer, so that it
 * never covers an event whose `sendSoon` records are unanswered; a refused
 * `sendSoon` record stops the commits and fails the subscribers, whose next
 * session reads those events again.
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
    const label = names.join(", ")
    const scope = yield* Effect.scope
    const guard = yield* Effect.acquireRelease(Effect.sync(() => sendGuard.register(topic.root.sendGuards)), (guard) => Effect.sync(() => guard.close()))
    const session: Session = {
      names,
      assignment: HashSet.empty(),
      current: undefined,
      joined: undefined,
      revoked: [],
      offsets: new Map(),
      partitionMetrics: new Map(),
      guard
    }
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
          maxWaitTime: settings.maxWaitTime,
          partitionAssigner: bySubscription
        })
      ),
      (consumer) => Effect.promise(() => consumer.close(true).catch(() => undefined))
    )
    // The session fails (its subscribers get the error, the next subscriber
    // starts a new session) when the client gives up on the group, a stream
    // fails, or a sendSoon record is refused.
    const failure = Deferred.makeUnsafe<never, SessionFailure>()
    const fail = (error: SessionFailure): void => {
      Deferred.doneUnsafe(failure, Exit.fail(error))
    }
    const joins = yield* Queue.sliding<void>(1)
    // The eager protocol revokes every partition when a rebalance starts.
    consumer.on("consumer:group:rebalance", () => {
      revoke(topic, session)
      session.joined = undefined
    })
    consumer.on("consumer:group:join", ({ assignments, generationId }) => {
      revoke(topic, session)
      const assigned = (assignments ?? []).filter((assignment) => names.includes(assignment.topic)).flatMap((assignment) =>
        assignment.partitions.map((partition) => Message.TopicPartition.make(assignment.topic, partition))
      )
      session.joined = { id: generationId ?? -1, assignment: HashSet.fromIterable(assigned) }
      session.assignment = session.joined.assignment
      Queue.offerUnsafe(joins, undefined)
    })
    // The client reports a group it could not rejoin as an "error" event
    // (an unheard one would crash the process).
    consumer.on("error", (cause: unknown) => fail(new KafkaError({ operation: "consume", topic: label, cause })))

    const streams = new Set<MessagesStream<Buffer, Buffer, Buffer, Buffer>>()
    const openStream = Effect.tryPromise({
      try: () =>
        consumer.consume({
          topics: [...names],
          mode: "committed",
          fallbackMode: settings.autoOffsetReset,
          autocommit: false,
          maxWaitTime: settings.maxWaitTime
        }),
      catch: (cause) => new KafkaError({ operation: "consume", topic: label, cause })
    }).pipe(Effect.tap((stream) => Effect.sync(() => streams.add(stream))))
    const closeStream = (stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>) =>
      Effect.promise(() => {
        streams.delete(stream)
        return stream.close().catch(() => undefined)
      })
    // Runs after the session's own finalizer, before the consumer closes.
    yield* Effect.addFinalizer(() => Effect.forEach(Array.from(streams), closeStream, { discard: true }))

    const lock = yield* Semaphore.make(1)
    let poisoned = false
    /**
     * Commits what the current generation acknowledged, and what revoked
     * ones did (unless a rebalance is running: those wait for its join, or
     * `all`), after the send buffer has been answered.
     */
    const commit = (all: boolean): Effect.Effect<void> =>
      lock.withPermits(1)(Effect.suspend(() => {
        if (poisoned) return Effect.void
        const pending = new Map<string, CommitOffset>()
        const add = (offset: CommitOffset) => {
          const key = `${offset.topic}:${offset.partition}`
          const existing = pending.get(key)
          if (existing === undefined || existing.offset < offset.offset) pending.set(key, offset)
        }
        const current = session.current
        const rebalancing = current === undefined || current.revoked
        if (all || !rebalancing) for (const offset of session.revoked.splice(0)) add(offset)
        if (current !== undefined && !current.revoked) {
          for (const tracker of current.partitions.values()) {
            const offset = tracker.toCommit()
            if (offset !== undefined) add(offset)
          }
        }
        if (pending.size === 0) return Effect.void
        const offsets = Array.from(pending.values())
        return Effect.andThen(
          kafka.flush,
          Effect.suspend(() => {
            if (guard.poisoned) {
              poisoned = true
              fail(
                new KafkaError({
                  operation: "commit",
                  topic: label,
                  cause: new Error(
                    "a sendSoon record made while this consumer had events in its handlers was refused by the broker; the events that produced it must be read again, so this consumer commits no more"
                  )
                })
              )
              return Effect.void
            }
            return Effect.tryPromise({
              try: () =>
                consumer.commit({
                  offsets: offsets.map(({ leaderEpoch, offset, partition, topic }) => ({ topic, partition, offset, leaderEpoch }))
                }),
              catch: (cause) => new KafkaError({ operation: "commit", topic: label, cause })
            }).pipe(
              Effect.tap(() =>
                Effect.sync(() => {
                  const stats = topic.root.kafkaStats
                  for (const { offset, tracker } of offsets) {
                    const previous = tracker.committed ?? tracker.base
                    if (offset > previous) stats.committed += Number(offset - previous)
                    if (tracker.committed === undefined || tracker.committed < offset) tracker.committed = offset
                  }
                })
              ),
              // Committing again later is harmless; a failure only means more is read twice after a restart.
              Effect.catch((error) => Effect.logWarning(error.message))
            )
          })
        )
      }))

    /** Makes a generation of `stream`, delivered unless a rebalance started since `joined`. */
    const install = (
      stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>,
      joined: Session["joined"]
    ): Effect.Effect<void> =>
      Effect.gen(function*() {
        const generation = new Generation(joined?.id ?? -1, joined?.assignment ?? HashSet.empty(), stream)
        if (joined === undefined || session.joined !== joined) generation.revoked = true
        const previous = session.current
        session.current = generation
        if (previous !== undefined) {
          if (previous.pump !== undefined) yield* Fiber.interrupt(previous.pump)
          yield* closeStream(previous.stream)
        }
        generation.pump = yield* Effect.forkIn(pump(topic, session, generation, fail), scope)
        syncPartitionMetrics(topic, session)
      })

    // The first stream joins the group (its join event has run when it is returned).
    yield* install(yield* openStream, session.joined)

    /**
     * After each join: commit what the revoked generation acknowledged, then
     * open the new generation's stream (before closing the old one, which
     * keeps the topics subscribed: no extra rejoin).
     */
    const switcher = yield* Effect.forkIn(
      Effect.forever(Effect.gen(function*() {
        yield* Queue.take(joins)
        const target = session.joined
        const current = session.current
        if (target === undefined || (current !== undefined && !current.revoked && current.id === target.id)) return
        yield* commit(true)
        yield* install(yield* openStream, target)
      })).pipe(Effect.catch((error) => Effect.sync(() => fail(error)))),
      scope
    )
    const committer = yield* Effect.forkIn(
      Effect.forever(Effect.andThen(Effect.sleep(settings.commitInterval), commit(false))),
      scope
    )
    const lag = yield* Effect.forkIn(
      Effect.forever(Effect.andThen(Effect.sleep(settings.commitInterval), readOffsets(consumer, topic, session))),
      scope
    )
    const growth = yield* Effect.forkIn(
      newPartitions.watch({
        consumer,
        names,
        interval: Math.max(settings.commitInterval, 1_000),
        fromEarliest: settings.autoOffsetReset === "latest"
      }),
      scope
    )
    const watcher = yield* Effect.forkIn(
      Effect.catch(Deferred.await(failure), (error) =>
        Effect.gen(function*() {
          // A record the policy failed on leaves the consumer healthy: what the subscribers
          // acknowledge while they read what they hold still counts, and the session's last
          // commit (when they have left) covers it and the bad record. Anything else broke the
          // consumer: its acknowledgements no longer count.
          if (!isDelivered(error)) {
            revoke(topic, session)
            session.joined = undefined
          }
          yield* RcRef.invalidate(topic.root.sessions)
          failSubscribers(topic, Cause.fail(error))
        })),
      scope
    )
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        for (const fiber of [watcher, switcher, committer, lag, growth]) yield* Fiber.interrupt(fiber)
        const current = session.current
        if (current?.pump !== undefined) yield* Fiber.interrupt(current.pump)
        revoke(topic, session)
        session.joined = undefined
        yield* commit(true)
        if (topic.root.session === session) topic.root.session = undefined
        syncPartitionMetrics(topic, session)
      })
    )
    topic.root.session = session
    syncPartitionMetrics(topic, session)
    return session
  })

/**
 * Revokes the current generation: nothing more of it is delivered, and what
 * it acknowledged is kept for the next commit.
 */
const revoke = (topic: TopicImpl<any, any, any>, session: Session): void => {
  session.assignment = HashSet.empty()
  const generation = session.current
  if (generation === undefined || generation.revoked) return
  generation.revoked = true
  for (const tracker of generation.partitions.values()) {
    tracker.revoked = true
    tracker.abandon()
    const offset = tracker.toCommit()
    if (offset !== undefined) session.revoked.push(offset)
  }
  syncPartitionMetrics(topic, session)
}

/**
 * Reads one generation's stream into the topic. Messages of another group
 * generation (the client tags each with the generation current when its
 * fetch answered), of a partition not assigned, or fetched twice, are
 * dropped. A stream that fails, or ends without this member closing it,
 * fails the session.
 */
const pump = (
  topic: TopicImpl<any, any, any>,
  session: Session,
  generation: Generation,
  fail: (error: SessionFailure) => void
): Effect.Effect<void> => {
  const label = session.names.join(", ")
  // The tracker of the last message's partition: a fetched batch is mostly one partition's run.
  let last: PartitionTracker | undefined = undefined
  const trackerOf = (received: KafkaMessage): PartitionTracker | undefined => {
    if (last !== undefined && last.partition === received.partition && last.topic === received.topic) return last
    const key = `${received.topic}:${received.partition}`
    if (!generation.assigned.has(key)) return undefined
    let tracker = generation.partitions.get(key)
    if (tracker === undefined) {
      tracker = new PartitionTracker(received.topic, received.partition, received.offset, topic.root.kafkaStats, session.guard)
      generation.partitions.set(key, tracker)
    }
    return last = tracker
  }
  /**
   * Goes on with `next` once a message is delivered. A delivery that failed
   * (the "fail" policy on a bad record, a dead letter refused) stops this
   * generation: nothing after it is handled or settled, so the next session
   * starts right after the bad record (settled by the policy) and the next
   * bad record fails the next stream in its turn.
   */
  const failed = (
    delivered: Effect.Effect<void, DecodeError | FutureMessage.PublishError>,
    next: () => Effect.Effect<void, unknown>
  ): Effect.Effect<void, unknown> =>
    Effect.matchEffect(delivered, {
      onFailure: (error) => Effect.andThen(Effect.sync(() => fail(error)), Effect.never),
      onSuccess: next
    })
  const reader = readerOf(generation.stream)
  const createEvent = topic.eventFactory
  const decode = topic.base
  const spans = decode.settings.spans
  /**
   * Delivers a fetched batch from `from` on: decodes the messages of this
   * generation's partitions (dropping those fetched twice) and hands each run
   * of decoded events to the subscribers at once; a decode error goes
   * through the policy between two runs, so the order holds.
   */
  const handleFrom = (batch: ReadonlyArray<KafkaMessage>, from: number): Effect.Effect<void, unknown> => {
    const events: Array<Event.Event<any, any>> = []
    const tracked: Array<Tracked> = []
    for (let i = from; i < batch.length; i++) {
      const received = batch[i]
      if (generation.revoked || generationOf(received) !== generation.id) continue
      const tracker = trackerOf(received)
      // not assigned, or fetched twice in one generation
      if (tracker === undefined || received.offset <= tracker.lastOffset) continue
      const message = toMessage(received)
      const entry = tracker.track(received.offset, received.leaderEpoch)
      if (spans) return failed(topic.deliverTracked(message, entry), () => handleFrom(batch, i + 1))
      const decoded = decode.decodeUnsafe(message, createEvent)
      if (!isDecodeError(decoded)) {
        events.push(decoded)
        tracked.push(entry)
        continue
      }
      // After a wait for room, the partition may be revoked: its new owner applies the policy.
      const rest = Effect.suspend(() =>
        generation.revoked
          ? handleFrom(batch, i + 1)
          : failed(topic.decodeFailed(decoded, message, entry), () => handleFrom(batch, i + 1))
      )
      const waiting = events.length === 0 ? undefined : topic.fanOutAll(events, tracked)
      return waiting === undefined ? rest : Effect.andThen(waiting, rest)
    }
    const waiting = events.length === 0 ? undefined : topic.fanOutAll(events, tracked)
    return waiting === undefined ? loop : Effect.andThen(waiting, loop)
  }
  const loop: Effect.Effect<void, unknown> = Effect.flatMap(
    reader.next,
    (batch) => batch === undefined ? Effect.void : handleFrom(batch, 0)
  )
  return loop.pipe(
    Effect.mapError((cause) => new KafkaError({ operation: "consume", topic: label, cause })),
    Effect.ensuring(Effect.sync(reader.done)),
    Effect.andThen(Effect.sync(() => {
      if (session.current === generation) {
        fail(new KafkaError({ operation: "consume", topic: label, cause: new Error("the consumer's stream ended") }))
      }
    })),
    Effect.catch((error) =>
      Effect.sync(() => {
        if (session.current === generation) fail(error)
      })
    ),
    // A throw while delivering (an app's own createEvent, the client stream) fails the session
    // like a stream error, rather than leaving it without a pump.
    Effect.catchDefect((defect) =>
      Effect.sync(() => {
        if (session.current === generation) fail(new KafkaError({ operation: "consume", topic: label, cause: defect }))
      })
    )
  )
}

/** At most this many messages are read from a client stream at once. */
const READ_BATCH = 1024

/**
 * Reads a client stream in batches: `next` is what the stream has buffered
 * (waiting for some), `undefined` once it ended, or fails with its error (a
 * stream closed before its end fails, as its async iterator would). `done`
 * stops reading: a stream left while a batch was being handled is destroyed
 * (as the async iterator's `return` does); one left while waiting is left
 * for its `close`.
 */
const readerOf = (stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>): {
  readonly next: Effect.Effect<ReadonlyArray<KafkaMessage> | undefined, unknown>
  readonly done: () => void
} => {
  let error: unknown = undefined
  let errored = false
  let ended = false
  let closed = false
  let waiting = false
  let wake: (() => void) | undefined
  const notify = () => {
    const resume = wake
    wake = undefined
    resume?.()
  }
  const onError = (cause: unknown) => {
    if (!errored) {
      errored = true
      error = cause
    }
    notify()
  }
  const onEnd = () => {
    ended = true
    notify()
  }
  const onClose = () => {
    closed = true
    notify()
  }
  stream.on("readable", notify)
  stream.on("error", onError)
  stream.on("end", onEnd)
  stream.on("close", onClose)
  const next = Effect.callback<ReadonlyArray<KafkaMessage> | undefined, unknown>((resume) => {
    const attempt = (): boolean => {
      if (errored) {
        resume(Effect.fail(error))
        return true
      }
      const batch: Array<KafkaMessage> = []
      let message: KafkaMessage | null
      while (batch.length < READ_BATCH && (message = stream.read()) !== null) batch.push(message)
      if (batch.length > 0) {
        resume(Effect.succeed(batch))
        return true
      }
      if (ended) {
        resume(Effect.succeed(undefined))
        return true
      }
      if (closed || stream.destroyed) {
        resume(Effect.fail(Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" })))
        return true
      }
      return false
    }
    waiting = true
    if (attempt()) {
      waiting = false
      return
    }
    const retry = () => {
      if (attempt()) waiting = false
      else wake = retry
    }
    wake = retry
    return Effect.sync(() => {
      wake = undefined
    })
  })
  const done = () => {
    wake = undefined
    stream.off("readable", notify)
    stream.off("end", onEnd)
    stream.off("close", onClose)
    // The error listener stays: an error emitted later must not go unheard.
    if (!waiting && !stream.destroyed) stream.destroy()
  }
  return { next, done }
}

/**
 * Reads the log end offsets and the group's committed offsets of the
 * assigned partitions, for the lag gauges: only while the topic's metrics
 * are registered, and a failure only leaves the last values.
 */
const readOffsets = (
  consumer: Consumer<Buffer, Buffer, Buffer, Buffer>,
  topic: TopicImpl<any, any, any>,
  session: Session
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const generation = session.current
    if (topic.root.metrics === undefined || generation === undefined || generation.revoked || generation.assigned.size === 0) {
      return Effect.void
    }
    const byTopic = new Map<string, Array<number>>()
    for (const tp of generation.assignment) byTopic.set(tp.topic, [...(byTopic.get(tp.topic) ?? []), tp.partition])
    return Effect.tryPromise(async () => {
      const ends = await consumer.listOffsets({ topics: [...byTopic.keys()] })
      const committed = await consumer.listCommittedOffsets({
        topics: Array.from(byTopic, ([topic, partitions]) => ({ topic, partitions }))
      })
      return { ends, committed }
    }).pipe(
      Effect.map(({ committed, ends }) => {
        for (const [name, partitions] of byTopic) {
          for (const partition of partitions) {
            session.offsets.set(`${name}:${partition}`, {
              end: ends.get(name)?.[partition] ?? -1n,
              committed: committed.get(name)?.[partition] ?? -1n
            })
          }
        }
      }),
      Effect.ignore
    )
  })

/** The offset committed on a partition, as far as this member knows (-1: none). */
const committedOffsetOf = (session: Session, key: string): bigint => {
  const ours = session.current?.partitions.get(key)?.committed ?? -1n
  const group = session.offsets.get(key)?.committed ?? -1n
  return ours > group ? ours : group
}

/** Registers the partition series of the current assignment, removes the others. */
const syncPartitionMetrics = (topic: TopicImpl<any, any, any>, session: Session): void => {
  const registry = topic.root.metrics
  const generation = session.current
  const wanted = registry !== undefined && generation !== undefined && !generation.revoked && topic.root.session === session
    ? generation.assignment
    : HashSet.empty<Message.TopicPartition>()
  const keys = new Set(Array.from(wanted, (tp) => `${tp.topic}:${tp.partition}`))
  for (const [key, remove] of session.partitionMetrics) {
    if (!keys.has(key)) {
      remove()
      session.partitionMetrics.delete(key)
    }
  }
  if (registry === undefined) return
  for (const tp of wanted) {
    const key = `${tp.topic}:${tp.partition}`
    if (session.partitionMetrics.has(key)) continue
    session.partitionMetrics.set(
      key,
      kafkaMetrics.registerPartition(registry.context, topic.label, tp.topic, tp.partition, {
        committedOffset: () => Number(committedOffsetOf(session, key)),
        lag: () => {
          const end = session.offsets.get(key)?.end ?? -1n
          if (end < 0n) return 0
          const committed = committedOffsetOf(session, key)
          return Number(end - (committed < 0n ? 0n : committed))
        }
      })
    )
  }
}

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

/**
 * The outcome of a future this topic is publishing. Only the send buffer
 * completes it, with the record's metadata or a `PublishError`: never with
 * `PublishInterruptedError`, which in-memory publications use.
 */
const awaitPublication = <K, V>(
  future: FutureMessage.FutureMessage<K, V>
): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> =>
  future.await as Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError>
