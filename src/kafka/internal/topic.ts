import * as Cause from "effect/Cause"
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
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { App, defaultCreateEvent } from "../../App.ts"
import type * as Channel from "../../Channel.ts"
import * as Codec from "../../Codec.ts"
import {
  ChannelClosedError,
  CodecError,
  type DecodeError,
  InvalidChannelOptionsError,
  NotATopicError,
  type TransportError
} from "../../Errors.ts"
import type * as Event from "../../Event.ts"
import * as FutureMessage from "../../FutureMessage.ts"
import { TypeId as ChannelTypeId } from "../../internal/channel.ts"
import type { Settings as ChannelSettings } from "../../internal/channel.ts"
import { cloneSettings } from "../../internal/channelSettings.ts"
import { decodeMessage } from "../../internal/decode.ts"
import { fromSendOptions } from "../../internal/futureMessage.ts"
import * as metrics from "../../internal/metrics.ts"
import * as Message from "../../Message.ts"
import type { MessageSchema } from "../../MessageSchema.ts"
import type * as RecordMetadata from "../../RecordMetadata.ts"
import { Kafka } from "../Kafka.ts"
import { KafkaError } from "../KafkaError.ts"
import type * as Topic from "../Topic.ts"
import * as capabilities from "./capabilities.ts"
import * as kafkaMetrics from "./kafkaMetrics.ts"

import { isDecodeError } from "../../internal/decode.ts"
import { routeDecodeError } from "../../internal/decodeErrorPolicy.ts"
import { partitionKeys } from "../../internal/partitionKey.ts"
import { ack, type Delivery, makeTopicEvent, type Tracked, trackedMessages } from "./acknowledgement.ts"
import { syncPartitionMetrics } from "./consumerMetrics.ts"
import { applyDecodeErrorPolicy } from "./decodeErrorPolicy.ts"
import { offerRun } from "./delivery.ts"
import { TopicProducer } from "./produce.ts"
import * as reader from "./reader.ts"
import { acquireSession, type Session } from "./session.ts"
import type { TopicSettings } from "./settings.ts"
import { failSubscribers, subscribe, unsubscribe } from "./subscribers.ts"

/** @internal */
export const TypeId = "~effect-faust/Topic" as const

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
export interface Root {
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
  /** What the Kafka service's send buffer can do beyond its interface (see `capabilities.ts`). */
  readonly capabilities: capabilities.Capabilities
  /** The produce path, shared by the root and its clones (made on the first send). */
  producer: TopicProducer<any, any> | undefined
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
  /** The settings a topic shares with in-memory channels: label, schema, codecs, maxsize, policy, spans. */
  readonly channelSettings: ChannelSettings<K, V>
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
    channelSettings: ChannelSettings<K, V>,
    settings: TopicSettings,
    context: TopicContext,
    root: Root,
    queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>,
    isIterator: boolean
  ) {
    this.channelSettings = channelSettings
    this.settings = settings
    this.context = context
    this.root = root
    this.queue = queue
    this.isIterator = isIterator
  }

  /** Creates a root topic: its consumer sessions live in the Kafka layer's scope. */
  static make<K, V, E>(
    channelSettings: ChannelSettings<K, V>,
    settings: TopicSettings,
    context: TopicContext
  ): Effect.Effect<TopicImpl<K, V, E>> {
    return Effect.suspend(() => {
      // The session needs the topic, which needs the RcRef: acquire reads it
      // lazily, on the first subscription.
      let topic: TopicImpl<K, V, E> | undefined
      return RcRef.make({ acquire: Effect.suspend(() => acquireSession(topic!)) }).pipe(
        Scope.provide(context.kafka.scope),
        Effect.flatMap((sessions) =>
          Effect.map(Queue.bounded<Event.Event<K, V>, QueueError<E>>(channelSettings.maxsize), (queue) => {
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
              capabilities: capabilities.of(context.kafka.publish),
              producer: undefined
            }
            topic = new TopicImpl(channelSettings, settings, context, root, queue, false)
            return topic
          })
        )
      )
    })
  }

  // ---------------------------------------------------------------------------
  // properties

  get label(): string {
    return this.channelSettings.label
  }
  get schema(): MessageSchema<K, V> {
    return this.channelSettings.schema
  }
  get keyType() {
    return this.channelSettings.schema.key
  }
  get valueType() {
    return this.channelSettings.schema.value
  }
  get maxsize(): number {
    return this.channelSettings.maxsize
  }
  get activePartitions(): HashSet.HashSet<Message.TopicPartition> | undefined {
    return this.channelSettings.activePartitions ?? this.root.session?.assignment
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
    const settings = cloneSettings(this.channelSettings, options)
    if (Result.isFailure(settings)) return Effect.fail(settings.failure)
    return Effect.map(Queue.bounded<Event.Event<K, V>, QueueError<E>>(settings.success.maxsize), (queue) => {
      const clone = new TopicImpl(
        settings.success,
        this.settings,
        this.context,
        this.root,
        queue,
        options?.isIterator ?? false
      )
      if (clone.isIterator) subscribe(clone)
      return clone
    })
  }

  cloneUsingQueue(queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>): Effect.Effect<TopicImpl<K, V, E>> {
    return Effect.sync(() => {
      const clone = new TopicImpl<K, V, E>(this.channelSettings, this.settings, this.context, this.root, queue, true)
      subscribe(clone)
      return clone
    })
  }

  private get iteratorClone(): Effect.Effect<TopicImpl<K, V, E>> {
    return Effect.map(Queue.bounded<Event.Event<K, V>, QueueError<E>>(this.maxsize), (queue) => {
      const clone = new TopicImpl<K, V, E>(this.channelSettings, this.settings, this.context, this.root, queue, true)
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
    return this.eventsWith("onNextPull")
  }

  /**
   * The events, acknowledged on the next pull (Faust's rule), or
   * `"manually"` (Faust's `noack`) only by `Topic.ack`: for handlers that run
   * concurrently or out of order, where a pull says nothing about the events
   * before it.
   */
  eventsWith(
    acknowledged: "onNextPull" | "manually"
  ): Stream.Stream<Event.Event<K, V>, E | DecodeError | TransportError> {
    return Stream.unwrap(Effect.gen({ self: this }, function*() {
      const subscriber = yield* Effect.acquireRelease(this.iteratorClone, (subscriber) => subscriber.onStopIteration)
      if (acknowledged === "manually") subscriber.held = new Set()
      if (this.context.kafka.scope.state._tag === "Closed") {
        return yield* new KafkaError({
          operation: "consume",
          topic: this.settings.topics.join(", "),
          cause: new Error("the Kafka layer this topic was made with is closed")
        })
      }
      yield* RcRef.get(this.root.sessions)
      if (acknowledged === "onNextPull") {
        yield* Effect.addFinalizer((exit) =>
          Exit.isSuccess(exit) ? Effect.sync(() => subscriber.ackLast()) : Effect.void
        )
      }
      const pull = acknowledged === "manually" ? reader.pullHeld(subscriber) : reader.pullOne(subscriber)
      return Stream.fromPull(Effect.succeed(pull as Effect.Effect<readonly [Event.Event<K, V>], PullError<E>>))
    })) as Stream.Stream<Event.Event<K, V>, E | DecodeError | TransportError>
  }

  stream(): Stream.Stream<V, E | DecodeError | TransportError> {
    return Stream.map(this.events(), (event) => event.value)
  }

  items(): Stream.Stream<readonly [K | null, V], E | DecodeError | TransportError> {
    return Stream.map(this.events(), (event) => [event.key, event.value] as const)
  }

  /** Acknowledges the event this subscriber handed out last (see `reader.ts`). */
  ackLast(): void {
    reader.ackLast(this)
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

  futureFor(options: Channel.AsFutureMessageOptions<K, V>): Effect.Effect<FutureMessage.FutureMessage<K, V>> {
    return Effect.sync(() => fromSendOptions(this, options))
  }

  get closedError(): ChannelClosedError | undefined {
    return this.root.closed === undefined ? undefined : new ChannelClosedError({ channel: this.label })
  }

  send(options: Channel.SendOptions<K, V>): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> {
    const send = Effect.flatMap(this.futureFor(options), (future) => this.publishMessage(future))
    return this.channelSettings.spans ? Effect.withSpan(send, "Topic.send", this.spanOptions) : send
  }

  private get spanOptions() {
    return { attributes: { "channel.label": this.label, "messaging.destination.name": this.settings.topics.join(",") } }
  }
  /** The produce path (see `produce.ts`), one per root. */
  private get producer(): TopicProducer<K, V> {
    return this.root.producer ??= new TopicProducer<K, V>(this)
  }

  /** Sends every value (no keys, one timestamp) as one group; see `TopicProducer.sendAll`. */
  sendAll(values: Iterable<V>): Effect.Effect<void, FutureMessage.PublishError> {
    return this.producer.sendAll(values)
  }

  /** Adds the message to the send buffer; the future completes when the broker acknowledges it. */
  sendSoon(options: Channel.SendOptions<K, V>): Effect.Effect<FutureMessage.FutureMessage<K, V>, TransportError> {
    return this.producer.sendSoon(options)
  }

  /** Publishes through the send buffer and waits for the broker's answer. */
  publishMessage(
    future: FutureMessage.FutureMessage<K, V>,
    _options?: { readonly wait?: boolean | undefined }
  ): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> {
    return this.producer.publishMessage(future)
  }

  /** Produces a ready event as it is: bytes pass through, other keys and values are encoded. */
  put(event: Event.Event<K, V>): Effect.Effect<void, FutureMessage.PublishError> {
    return this.producer.put(event)
  }

  /** Schema, then codec: the reverse of `decode`. `null` stays `null` (no key, or a tombstone). */
  encode(
    kind: "key" | "value",
    input: unknown,
    serializer: Codec.Serializer | undefined
  ): Effect.Effect<Uint8Array | null, CodecError> {
    return this.producer.encode(kind, input, serializer)
  }

  asFutureMessage(
    options: Channel.AsFutureMessageOptions<K, V>
  ): Effect.Effect<FutureMessage.FutureMessage<K, V>, NotATopicError | TransportError> {
    if (options.eagerPartitioning !== true) return this.futureFor(options)
    return Effect.gen({ self: this }, function*() {
      const topic = yield* this.getTopicName()
      const key = yield* this.encode("key", options.key ?? null, options.keySerializer)
      const partition = options.partition ?? (yield* this.producer.partitionFor(topic, key))
      const future = yield* this.futureFor(options)
      return yield* FutureMessage.make({ ...future.message, topic, partition })
    })
  }

  prepareHeaders(headers?: Message.OpenHeaders | undefined): Array<[string, Message.HeaderValue]> {
    return Message.headersToList(headers)
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
    options?: {
      readonly keySerializer?: Codec.Serializer | undefined
      readonly headers?: Message.OpenHeaders | undefined
    }
  ): Effect.Effect<readonly [unknown, Message.OpenHeaders | undefined], CodecError> {
    return Effect.map(this.encode("key", key, options?.keySerializer), (bytes) => [bytes, options?.headers] as const)
  }

  prepareValue(
    value: unknown,
    options?: {
      readonly valueSerializer?: Codec.Serializer | undefined
      readonly headers?: Message.OpenHeaders | undefined
    }
  ): Effect.Effect<readonly [unknown, Message.OpenHeaders | undefined], CodecError> {
    return Effect.map(
      this.encode("value", value, options?.valueSerializer),
      (bytes) => [bytes, options?.headers] as const
    )
  }

  // ---------------------------------------------------------------------------
  // receiving

  decode(
    message: Message.Message,
    options?: { readonly propagate?: boolean | undefined }
  ): Effect.Effect<Event.Event<K, V>, DecodeError> {
    return Effect.suspend(() => {
      const decoded = decodeMessage(this.channelSettings, message, this.channelSettings.app.createEvent)
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
      const decoded = decodeMessage(this.channelSettings, message, this.eventFactory)
      if (isDecodeError(decoded)) return this.decodeFailed(decoded, message, tracked)
      this.root.stats.delivered++
      const subscribers = this.isIterator ? [this] : this.root.subscribers
      return offerRun(subscribers, [decoded], tracked === undefined ? undefined : [tracked], this.eventFactory) ??
        Effect.void
    })
    return this.channelSettings.spans ? Effect.withSpan(deliver, "Topic.deliver", this.spanOptions) : deliver
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

  private handleDecodeError(
    error: DecodeError,
    message: Message.Message
  ): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    return routeDecodeError(this, error, message)
  }

  onKeyDecodeError(
    error: DecodeError,
    message: Message.Message
  ): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    return this.onDecodeError(error, message)
  }

  onValueDecodeError(
    error: DecodeError,
    message: Message.Message
  ): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    return this.onDecodeError(error, message)
  }

  /** Applies the decode-error policy (see `decodeErrorPolicy.ts`). */
  onDecodeError(
    error: DecodeError,
    message: Message.Message
  ): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    return applyDecodeErrorPolicy(this, error, message, () => failSubscribers(this, Cause.fail(error)))
  }

  get(options?: { readonly timeout?: Duration.Input | undefined }): Effect.Effect<
    Event.Event<K, V>,
    E | DecodeError | ChannelClosedError | Cause.TimeoutError | TransportError
  > {
    const closed = () => Effect.fail(new ChannelClosedError({ channel: this.label }))
    // A subscriber reads its own queue; any other instance reads the next
    // event from the broker through a one-event subscription.
    const take: Effect.Effect<Event.Event<K, V>, E | DecodeError | ChannelClosedError | TransportError> =
      this.isIterator
        ? Effect.catchIf(
          Effect.tap(
            reader.takeFresh(this) as Effect.Effect<Event.Event<K, V>, PullError<E>>,
            (event) => Effect.sync(() => ack(event))
          ),
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
    const { label: _label, ...inherited } = this.settings.options
    const merged: Topic.Options = { ...inherited, ...overrides }
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

  /**
   * Registers the topic's metrics (the channel series, with queue depths of
   * its subscribers) with the current metric registry until the scope closes.
   */
  get registerMetrics(): Effect.Effect<void, never, Scope.Scope> {
    const root = this.root
    return metrics.registerRoot(root, this.label, undefined, {
      register: (context) => kafkaMetrics.registerTopic(context, this.label, root.kafkaStats),
      resync: () => {
        if (root.session !== undefined) syncPartitionMetrics(this, root.session)
      }
    })
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
      activePartitions: partitionKeys(this.activePartitions),
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
