import type * as Cause from "effect/Cause"
import * as CauseM from "effect/Cause"
import type * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as RcRef from "effect/RcRef"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { App } from "../../App.ts"
import type * as Channel from "../../Channel.ts"
import type * as Codec from "../../Codec.ts"
import {
  ChannelClosedError,
  type CodecError,
  type DecodeError,
  type InvalidChannelOptionsError,
  NotATopicError,
  type TransportError
} from "../../Errors.ts"
import type * as Event from "../../Event.ts"
import * as FutureMessage from "../../FutureMessage.ts"
import * as acknowledging from "../../internal/acknowledging.ts"
import { TypeId as ChannelTypeId } from "../../internal/channel.ts"
import type { Settings as ChannelSettings } from "../../internal/channel.ts"
import { cloneSettings } from "../../internal/channelSettings.ts"
import { decode } from "../../internal/decode.ts"
import { fromSendOptions } from "../../internal/futureMessage.ts"
import * as metrics from "../../internal/metrics.ts"
import * as Message from "../../Message.ts"
import type * as RecordMetadata from "../../RecordMetadata.ts"
import type { Kafka } from "../Kafka.ts"
import type * as Topic from "../Topic.ts"
import { ack, type Delivery, type HeldRun, isStale } from "./acknowledgement.ts"
import * as capabilities from "./capabilities.ts"
import { registerTopicMetrics } from "./consumerMetrics.ts"
import * as declaring from "./declare.ts"
import { applyDecodeErrorPolicy } from "./decodeErrorPolicy.ts"
import * as delivery from "./delivery.ts"
import { derive } from "./derive.ts"
import * as kafkaMetrics from "./kafkaMetrics.ts"
import { TopicProducer } from "./produce.ts"
import * as reader from "./reader.ts"
import { acquireSession, type Session } from "./session.ts"
import type { TopicSettings } from "./settings.ts"
import { failSubscribers, subscribe, unsubscribe } from "./subscribers.ts"
import { type QueueError, TopicProperties } from "./topicProperties.ts"

/** @internal */
export const TypeId = "~effect-faust/Topic" as const

/** The services a topic was made with, so that `derive` needs none. @internal */
export interface TopicContext {
  readonly app: App["Service"]
  readonly kafka: Kafka["Service"]
  readonly registry: Codec.Registry
  readonly make: (options: Topic.Options) => Effect.Effect<TopicImpl<any, any, any>, InvalidChannelOptionsError>
}

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

/** What delivering a message can fail with: its decode error (policy `fail`), or a dead letter's send. */
type DeliverError = DecodeError | FutureMessage.PublishError

/**
 * A topic instance. The root owns the shared state; clones share it.
 * Iterator clones are subscribers: while anyone streams the topic, a consumer
 * session reads the broker and offers each message to every subscriber's own
 * bounded queue. What it holds and its properties are in `topicProperties.ts`.
 *
 * @internal
 */
export class TopicImpl<K, V, E> extends TopicProperties<K, V, E> implements Topic.Topic<K, V, E> {
  readonly [ChannelTypeId] = ChannelTypeId
  readonly [TypeId] = TypeId
  /** The subscriber's event handed out last, acknowledged on the next pull. */
  last: Delivery | undefined = undefined
  /** A `noack` subscriber's events handed out and not acknowledged yet. */
  held: Set<HeldRun> | undefined = undefined
  unregisterMetrics: (() => void) | undefined = undefined

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
  // clones and subscription

  clone(options?: Channel.CloneOptions): Effect.Effect<TopicImpl<K, V, E>, InvalidChannelOptionsError> {
    const settings = cloneSettings(this.channelSettings, options)
    if (Result.isFailure(settings)) return Effect.fail(settings.failure)
    return Effect.map(
      Queue.bounded<Event.Event<K, V>, QueueError<E>>(settings.success.maxsize),
      (queue) => this.attach(settings.success, queue, options?.isIterator ?? false)
    )
  }

  cloneUsingQueue(queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>): Effect.Effect<TopicImpl<K, V, E>> {
    return Effect.sync(() => this.attach(this.channelSettings, queue, true))
  }

  /** A subscriber with this instance's settings, for a stream. */
  get iteratorClone(): Effect.Effect<TopicImpl<K, V, E>> {
    return Effect.map(
      Queue.bounded<Event.Event<K, V>, QueueError<E>>(this.maxsize),
      (queue) => this.attach(this.channelSettings, queue, true)
    )
  }

  /** A clone on the same root; an iterator clone subscribes at once. */
  private attach(
    channelSettings: ChannelSettings<K, V>,
    queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>,
    isIterator: boolean
  ): TopicImpl<K, V, E> {
    const clone = new TopicImpl<K, V, E>(channelSettings, this.settings, this.context, this.root, queue, isIterator)
    if (isIterator) subscribe(clone)
    return clone
  }

  get onStopIteration(): Effect.Effect<void> {
    return Effect.sync(() => unsubscribe(this))
  }

  /** The events, each acknowledged by the next pull (Faust's rule; see `reader.ts`). */
  events(): Stream.Stream<Event.Event<K, V>, E | DecodeError | TransportError> {
    return this.eventsWith("onNextPull")
  }

  /**
   * The events, acknowledged on the next pull, or `"manually"` (Faust's
   * `noack`) only by `Topic.ack`: for handlers that run concurrently or out
   * of order, where a pull says nothing about the events before it.
   */
  eventsWith(
    acknowledged: "onNextPull" | "manually"
  ): Stream.Stream<Event.Event<K, V>, E | DecodeError | TransportError> {
    return reader.events(this, acknowledged)
  }

  /** How an agent reads the topic: events it acknowledges itself once each is done with. */
  get [acknowledging.TypeId](): acknowledging.Protocol<K, V, E | DecodeError | TransportError> {
    return { events: () => this.eventsWith("manually"), ack, stale: isStale }
  }

  stream(): Stream.Stream<V, E | DecodeError | TransportError> {
    return reader.events(this, "onNextPull", valueOf)
  }

  items(): Stream.Stream<readonly [K | null, V], E | DecodeError | TransportError> {
    return reader.events(this, "onNextPull", itemOf)
  }

  /** Acknowledges the event this subscriber handed out last (see `reader.ts`). */
  ackLast(): void {
    reader.ackLast(this)
  }

  // ---------------------------------------------------------------------------
  // sending (see `produce.ts`)

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

  /** The produce path, one per root. */
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

  /** Declares the topic once (see `declare.ts`). */
  get maybeDeclare(): Effect.Effect<void, TransportError> {
    return declaring.maybeDeclare(this)
  }

  get declare(): Effect.Effect<void, TransportError> {
    return declaring.declare(this)
  }

  // ---------------------------------------------------------------------------
  // receiving

  decode(
    message: Message.Message,
    options?: { readonly propagate?: boolean | undefined }
  ): Effect.Effect<Event.Event<K, V>, DecodeError> {
    return decode(this.channelSettings, this, message, options)
  }

  /** Decodes a message and offers it to the subscribers (see `delivery.ts`). */
  deliver(message: Message.Message): Effect.Effect<void, DeliverError> {
    return delivery.deliver(this, message, undefined)
  }

  onKeyDecodeError(error: DecodeError, message: Message.Message): Effect.Effect<void, DeliverError> {
    return this.onDecodeError(error, message)
  }

  onValueDecodeError(error: DecodeError, message: Message.Message): Effect.Effect<void, DeliverError> {
    return this.onDecodeError(error, message)
  }

  /** Applies the decode-error policy (see `decodeErrorPolicy.ts`). */
  onDecodeError(error: DecodeError, message: Message.Message): Effect.Effect<void, DeliverError> {
    return applyDecodeErrorPolicy(this, error, message, () => failSubscribers(this, CauseM.fail(error)))
  }

  get(options?: { readonly timeout?: Duration.Input | undefined }): Effect.Effect<
    Event.Event<K, V>,
    E | DecodeError | ChannelClosedError | CauseM.TimeoutError | TransportError
  > {
    return reader.get(this, options?.timeout)
  }

  get empty(): Effect.Effect<boolean> {
    return Effect.sync(() => Queue.sizeUnsafe(this.queue) === 0)
  }

  // ---------------------------------------------------------------------------
  // deriving and closing

  derive(options?: Topic.DeriveOptions): Effect.Effect<TopicImpl<K, V, E>, InvalidChannelOptionsError> {
    return derive(this, options)
  }

  throw(error: E | DecodeError): Effect.Effect<void> {
    return Effect.sync(() => this.close(CauseM.fail(error)))
  }

  get end(): Effect.Effect<void> {
    return Effect.sync(() => this.close(CauseM.fail(CauseM.Done())))
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

  /** Registers the topic's metrics until the scope closes (see `consumerMetrics.ts`). */
  get registerMetrics(): Effect.Effect<void, never, Scope.Scope> {
    return registerTopicMetrics(this)
  }
}

const valueOf = <V>(event: Event.Event<any, V>): V => event.value

const itemOf = <K, V>(event: Event.Event<K, V>): readonly [K | null, V] => [event.key, event.value]
