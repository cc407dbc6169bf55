import type * as Cause from "effect/Cause"
import * as CauseM from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HashSet from "effect/HashSet"
import { NodeInspectSymbol } from "effect/Inspectable"
import { pipeArguments } from "effect/Pipeable"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type App, defaultCreateEvent } from "../App.ts"
import type { AsFutureMessageOptions, SendOptions } from "../Channel.ts"
import * as Codec from "../Codec.ts"
import {
  ChannelClosedError,
  CodecError,
  type DecodeError,
  InvalidChannelOptionsError,
  NoSubscribersError,
  NotATopicError,
  PublishInterruptedError,
  UnsupportedOperationError
} from "../Errors.ts"
import type * as Event from "../Event.ts"
import type * as FutureMessage from "../FutureMessage.ts"
import * as Message from "../Message.ts"
import type { MessageSchema } from "../MessageSchema.ts"
import * as RecordMetadata from "../RecordMetadata.ts"
import * as reader from "./channelReader.ts"
import { cloneSettings } from "./channelSettings.ts"
import { closedByOf, subscribe, unsubscribe } from "./channelSubscribers.ts"
import { decodeMessage, isDecodeError } from "./decode.ts"
import { applyDecodeErrorPolicy, routeDecodeError } from "./decodeErrorPolicy.ts"
import * as fanOut from "./fanOut.ts"
import { fromSendOptions } from "./futureMessage.ts"
import * as metrics from "./metrics.ts"
import { anonTopic, currentTimeMillis, sentExit } from "./sendClock.ts"
import { SentEvent } from "./sentEvent.ts"

import { TypeId } from "./channelTypeId.ts"
import { partitionKeys } from "./partitionKey.ts"

export { TypeId }

/** What a channel does with a message it cannot decode. @internal */
export type DecodeErrorPolicy = "fail" | "skip" | {
  readonly deadLetter: {
    readonly label: string
    readonly put: (event: Event.Event<any, any>) => Effect.Effect<void, FutureMessage.PublishError>
  }
}

/** What `send` does while nobody subscribes. @internal */
export type NoSubscribersPolicy = "buffer" | "drop" | "fail"

/** The resolved, validated settings of one channel instance. @internal */
export interface Settings<K, V> {
  readonly app: App["Service"]
  readonly label: string
  readonly schema: MessageSchema<K, V>
  readonly keyCodec: Codec.Codec
  readonly valueCodec: Codec.Codec
  readonly maxsize: number
  readonly activePartitions: HashSet.HashSet<Message.TopicPartition> | undefined
  readonly onDecodeError: DecodeErrorPolicy
  readonly whenNoSubscribers: NoSubscribersPolicy
  readonly decodeKey: SchemaDecoder | undefined
  readonly decodeValue: SchemaDecoder | undefined
  readonly keyBytesAsString: boolean
  readonly valueBytesAsString: boolean
  /** Wrap `send` and `deliver` in tracing spans. */
  readonly spans: boolean
}

/** @internal */
export type SchemaDecoder = (input: unknown) => Result.Result<unknown, Schema.SchemaError>

type QueueError<E> = E | DecodeError | CauseM.Done

/**
 * State shared by a root channel and all its clones: who subscribes, whether
 * the channel is closed, and the root's buffer for messages sent while nobody
 * subscribes.
 */
export interface Root extends fanOut.FanOut {
  subscribers: ReadonlyArray<ChannelImpl<any, any, any>>
  /**
   * The subscriber reading the root buffer before its own queue, if any: the
   * first to subscribe while the buffer held messages, then (if it leaves
   * first) another subscriber, so the buffer is never stranded.
   */
  drainer: ChannelImpl<any, any, any> | undefined
  /** Set by `throw` or `end` on the root; late subscribers get it at once. */
  closed: Cause.Cause<unknown> | undefined
  closedBy: "throw" | "end" | undefined
  readonly stats: metrics.Stats
  /** Set while the channel's metrics are registered (see `registerMetrics`). */
  metrics: metrics.Registry | undefined
  declared: Deferred.Deferred<void> | undefined
  readonly buffer: Queue.Queue<Event.Event<any, any>, any>
}

const noHeaders: Message.Headers = []

/**
 * One channel instance. The first instance owns the shared root state; clones share it. Iterator
 * clones are the root's subscribers: `put` offers each event to every
 * subscriber's own bounded queue.
 *
 * @internal
 */
export class ChannelImpl<K, V, E> {
  readonly [TypeId] = TypeId
  readonly settings: Settings<K, V>
  readonly queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>
  readonly isIterator: boolean
  readonly root: Root
  /** Root buffer this subscriber reads first (messages sent before it subscribed). */
  drainFrom: Queue.Queue<Event.Event<K, V>, any> | undefined = undefined
  /**
   * Events taken from this subscriber's own queue after it became the
   * buffer's reader: they are newer than the buffer's, so they wait here
   * until the buffer is read.
   */
  held: Array<Event.Event<K, V>> | undefined = undefined
  /** A `Wake` is in this subscriber's queue. */
  wakeQueued = false
  /** It has handed out events already (a buffer taken over now would come after them). */
  hasRead = false
  /** The take of this subscriber's queue its stream repeats, built once (see `channelReader.ts`). */
  takeBatchEffect: Effect.Effect<ReadonlyArray<Event.Event<K, V>>, any> | undefined = undefined
  /** Read through this channel (`stream`, `get`), so its queue may carry a `Wake`; not a `cloneUsingQueue` queue. */
  readonly readsThroughChannel: boolean
  /** Removes this subscriber's queue-depth series, when metrics are registered. */
  unregisterMetrics: (() => void) | undefined = undefined

  constructor(
    settings: Settings<K, V>,
    queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>,
    isIterator: boolean,
    root: Root | undefined,
    readsThroughChannel = true
  ) {
    this.settings = settings
    this.queue = queue
    this.isIterator = isIterator
    this.readsThroughChannel = readsThroughChannel
    this.root = root ?? {
      subscribers: [],
      drainer: undefined,
      closed: undefined,
      closedBy: undefined,
      stats: metrics.makeStats(),
      metrics: undefined,
      declared: undefined,
      buffer: queue,
      bufferTarget: [{ queue }],
      ...fanOut.makeWaiting()
    }
  }

  // ---------------------------------------------------------------------------
  // properties

  get label(): string {
    return this.settings.label
  }
  get schema(): MessageSchema<K, V> {
    return this.settings.schema
  }
  get keyType() {
    return this.settings.schema.key
  }
  get valueType() {
    return this.settings.schema.value
  }
  get maxsize(): number {
    return this.settings.maxsize
  }
  get activePartitions() {
    return this.settings.activePartitions
  }
  get subscriberCount(): number {
    return this.root.subscribers.length
  }
  get decodeErrorCounts(): Readonly<metrics.Stats["decodeErrors"]> {
    return { ...this.root.stats.decodeErrors }
  }
  get isRoot(): boolean {
    return this.root.buffer === this.queue
  }

  // ---------------------------------------------------------------------------
  // clones and subscription

  clone(options?: {
    readonly isIterator?: boolean | undefined
    readonly maxsize?: number | undefined
    readonly activePartitions?: Iterable<Message.TopicPartition> | undefined
    readonly onDecodeError?: DecodeErrorPolicy | undefined
  }): Effect.Effect<ChannelImpl<K, V, E>, InvalidChannelOptionsError> {
    const settings = cloneSettings(this.settings, options)
    if (Result.isFailure(settings)) return Exit.fail(settings.failure)
    return Effect.map(
      Queue.bounded<Event.Event<K, V>, QueueError<E>>(settings.success.maxsize),
      (queue) => this.attach(settings.success, queue, options?.isIterator ?? false, true)
    )
  }

  /** A subscriber with this instance's settings (they are valid already). */
  private get iteratorClone(): Effect.Effect<ChannelImpl<K, V, E>> {
    return Effect.map(
      Queue.bounded<Event.Event<K, V>, QueueError<E>>(this.settings.maxsize),
      (queue) => this.attach(this.settings, queue, true, true)
    )
  }

  cloneUsingQueue(queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>): Effect.Effect<ChannelImpl<K, V, E>> {
    return Effect.sync(() => this.attach(this.settings, queue, true, false))
  }

  /** A clone on the same root; an iterator clone subscribes at once. */
  private attach(
    settings: Settings<K, V>,
    queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>,
    isIterator: boolean,
    readsThroughChannel: boolean
  ): ChannelImpl<K, V, E> {
    const clone = new ChannelImpl<K, V, E>(settings, queue, isIterator, this.root, readsThroughChannel)
    if (isIterator) subscribe(clone)
    return clone
  }

  get onStopIteration(): Effect.Effect<void> {
    return Effect.sync(() => unsubscribe(this))
  }

  /** The next batch for this subscriber's stream (see `channelReader.ts`). */
  nextBatch(): Effect.Effect<ReadonlyArray<Event.Event<K, V>>, QueueError<E>> {
    return reader.nextBatch(this)
  }

  stopDraining(): void {
    reader.stopDraining(this)
  }

  events(): Stream.Stream<Event.Event<K, V>, E | DecodeError> {
    return Stream.unwrap(
      Effect.map(
        Effect.acquireRelease(this.iteratorClone, (subscriber) => subscriber.onStopIteration),
        (subscriber) => Stream.fromPull(Effect.succeed(Effect.suspend(() => subscriber.nextBatch()) as any))
      )
    ) as Stream.Stream<Event.Event<K, V>, E | DecodeError>
  }

  stream(): Stream.Stream<V, E | DecodeError> {
    return Stream.map(this.events(), (event) => event.value)
  }

  items(): Stream.Stream<readonly [K | null, V], E | DecodeError> {
    return Stream.map(this.events(), (event) => [event.key, event.value] as const)
  }

  // ---------------------------------------------------------------------------
  // sending

  /**
   * Offers an event to every subscriber at once, or applies the
   * no-subscriber policy. While any subscriber's queue is full (or earlier
   * sends wait), it waits without offering to anyone (see `fanOut.ts`).
   */
  put(event: Event.Event<K, V>): Effect.Effect<void, FutureMessage.PublishError> {
    const root = this.root
    if (root.closed !== undefined) return Exit.fail(this.closedError())
    const subscribers = root.subscribers
    if (subscribers.length === 0) return this.putAllWithoutSubscribers([event])
    if (root.waitingForSubscribers.length === 0) {
      if (subscribers.length === 1) {
        const queue = subscribers[0].queue
        if (Queue.offerUnsafe(queue, event) || queue.state._tag !== "Open") {
          root.stats.sent++
          return Exit.void
        }
      } else if (fanOut.roomIn(subscribers) > 0) {
        fanOut.offerToAll(subscribers, event)
        root.stats.sent++
        return Exit.void
      }
    }
    return fanOut.waitForRoom(root, [event], false, this.retryPutAll)
  }

  /** Sends again what a waiting send had left when every subscriber left. */
  private readonly retryPutAll = (events: ReadonlyArray<Event.Event<K, V>>) => this.putAll(events)

  private putAllWithoutSubscribers(
    events: ReadonlyArray<Event.Event<K, V>>
  ): Effect.Effect<void, FutureMessage.PublishError> {
    const root = this.root
    switch (this.settings.whenNoSubscribers) {
      case "drop":
        root.stats.sent += events.length
        root.stats.dropped += events.length
        return Exit.void
      case "fail":
        return Exit.fail(new NoSubscribersError({ channel: this.label }))
      case "buffer": {
        if (root.waitingForBuffer.length === 0 && fanOut.roomOf(root.buffer) >= events.length) {
          fanOut.offerAllToAll(root.bufferTarget, events)
          root.stats.sent += events.length
          return Exit.void
        }
        return fanOut.waitForRoom(root, events, true, this.retryPutAll)
      }
    }
  }

  send(options: SendOptions<K, V>): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> {
    return this.settings.spans
      ? Effect.withSpan(this.sendUntraced(options), "Channel.send", this.spanOptions)
      : this.sendUntraced(options)
  }

  private sendUntraced(
    options: SendOptions<K, V>
  ): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> {
    if (options.callback !== undefined) {
      return Effect.flatMap(
        this.asFutureMessage(options as AsFutureMessageOptions<K, V>),
        (future) => this.publishMessage(future)
      ) as Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError>
    }
    return Effect.withFiber((fiber) => {
      const timestamp = options.timestamp ?? currentTimeMillis(fiber)
      const partition = options.partition ?? -1
      const event = this.eventFor(options.key ?? null, options.value, options.headers, partition, timestamp)
      const sent = sentExit(partition, timestamp)
      const put = this.put(event)
      return put === Exit.void ? sent : Effect.as(put, sent.value)
    })
  }

  /** Sends every value in order; waits only while a subscriber queue is full. */
  sendAll(values: Iterable<V>): Effect.Effect<void, FutureMessage.PublishError> {
    return Effect.withFiber((fiber) => {
      const timestamp = currentTimeMillis(fiber)
      if (this.settings.app.createEvent !== defaultCreateEvent || !Array.isArray(values)) {
        const events: Array<Event.Event<K, V>> = []
        for (const value of values) events.push(this.eventFor(null, value, undefined, -1, timestamp))
        return this.putAll(events)
      }
      // An array of values, default events: one loop without the iterator protocol or per-value checks.
      const list = values as ReadonlyArray<V>
      const events = new Array<Event.Event<K, V>>(list.length)
      for (let i = 0; i < list.length; i++) events[i] = new SentEvent(null, list[i], noHeaders, -1, timestamp)
      return this.putAll(events)
    })
  }

  /**
   * Offers events, in order, to every subscriber. Where they do not all fit,
   * they go in prefixes as room appears, each prefix to every subscriber:
   * interrupted, it leaves every subscriber with the same prefix.
   */
  putAll(events: ReadonlyArray<Event.Event<K, V>>): Effect.Effect<void, FutureMessage.PublishError> {
    const root = this.root
    if (root.closed !== undefined) return Exit.fail(this.closedError())
    if (events.length === 0) return Exit.void
    const subscribers = root.subscribers
    if (subscribers.length === 0) return this.putAllWithoutSubscribers(events)
    if (root.waitingForSubscribers.length === 0 && fanOut.roomIn(subscribers) >= events.length) {
      fanOut.offerAllToAll(subscribers, events)
      root.stats.sent += events.length
      return Exit.void
    }
    return fanOut.waitForRoom(root, events, false, this.retryPutAll)
  }

  /** The error of a send to a closed channel, saying how it was closed. */
  closedError(closedBy: "throw" | "end" | undefined = this.root.closedBy): ChannelClosedError {
    return new ChannelClosedError({ channel: this.label, closedBy })
  }

  eventFor(
    key: K | null,
    value: V,
    headers: Message.OpenHeaders | undefined,
    partition: number,
    timestamp: number
  ): Event.Event<K, V> {
    const list = headers === undefined ? noHeaders : Message.headersToList(headers)
    const event = new SentEvent(key, value, list, partition, timestamp)
    const createEvent = this.settings.app.createEvent
    return createEvent === defaultCreateEvent ? event : createEvent(key, value, list, event.message)
  }

  sendSoon(_options: SendOptions<K, V>): Effect.Effect<FutureMessage.FutureMessage<K, V>, UnsupportedOperationError> {
    return Exit.fail(
      new UnsupportedOperationError({
        channel: this.label,
        operation: "sendSoon",
        reason: "in-memory channels have no send buffer; use send, or a Topic"
      })
    )
  }

  asFutureMessage(
    options: AsFutureMessageOptions<K, V>
  ): Effect.Effect<FutureMessage.FutureMessage<K, V>, NotATopicError> {
    if (options.eagerPartitioning === true) {
      return Exit.fail(
        new NotATopicError({ channel: this.label, operation: "asFutureMessage({ eagerPartitioning: true })" })
      )
    }
    return Effect.sync(() => fromSendOptions(this, options))
  }

  prepareHeaders(headers?: Message.OpenHeaders | undefined): Array<[string, Message.HeaderValue]> {
    return Message.headersToList(headers)
  }

  publishMessage(
    future: FutureMessage.FutureMessage<K, V>,
    _options?: { readonly wait?: boolean | undefined }
  ): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> {
    return Effect.withFiber((fiber) => {
      const pending = future.message
      const timestamp = pending.timestamp ?? currentTimeMillis(fiber)
      const partition = pending.partition ?? -1
      const event = this.eventFor(pending.key, pending.value, pending.headers, partition, timestamp)
      const metadata = RecordMetadata.make({
        topic: pending.topic ?? anonTopic,
        partition,
        offset: -1,
        timestamp,
        timestampType: 1
      })
      return this.put(event).pipe(
        Effect.tapError((error) => future.fail(error)),
        // A put is all or nothing: interrupted before it completed, the message reached no one.
        Effect.onInterrupt(() => future.fail(new PublishInterruptedError({ channel: this.label }))),
        Effect.andThen(future.succeed(metadata)),
        Effect.andThen(() => {
          const after = pending.callback?.(future)
          return after === undefined ? Effect.void : after
        }),
        Effect.as(metadata)
      )
    })
  }

  /**
   * Registers this channel's metrics (and its subscribers' queue depths) with
   * the metric registry of the current context, until the scope closes.
   */
  get registerMetrics(): Effect.Effect<void, never, Scope.Scope> {
    return metrics.registerRoot(this.root, this.label, this.root.buffer)
  }

  get declare(): Effect.Effect<void> {
    return Effect.void
  }

  get maybeDeclare(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const root = this.root
      if (root.declared !== undefined) return Deferred.await(root.declared)
      const declared = Deferred.makeUnsafe<void>()
      root.declared = declared
      return Effect.flatMap(Effect.exit(this.declare), (exit) => Deferred.done(declared, exit))
    })
  }

  prepareKey(
    key: unknown,
    options?: {
      readonly keySerializer?: Codec.Serializer | undefined
      readonly headers?: Message.OpenHeaders | undefined
    }
  ): Effect.Effect<readonly [unknown, Message.OpenHeaders | undefined], CodecError> {
    return Exit.succeed([key, options?.headers] as const)
  }

  prepareValue(
    value: unknown,
    options?: {
      readonly valueSerializer?: Codec.Serializer | undefined
      readonly headers?: Message.OpenHeaders | undefined
    }
  ): Effect.Effect<readonly [unknown, Message.OpenHeaders | undefined], CodecError> {
    return Exit.succeed([value, options?.headers] as const)
  }

  getTopicName(): Effect.Effect<string, NotATopicError> {
    return Exit.fail(new NotATopicError({ channel: this.label, operation: "getTopicName" }))
  }

  derive(_options?: Record<string, unknown>): Effect.Effect<ChannelImpl<K, V, E>> {
    return Exit.succeed(this)
  }

  // ---------------------------------------------------------------------------
  // receiving

  /**
   * Decodes a raw message: codec, then Schema. Returns the event (built by
   * `createEvent`, the app's by default) or the typed error.
   */
  decodeUnsafe(
    message: Message.Message,
    createEvent: App["Service"]["createEvent"] = this.settings.app.createEvent
  ): Event.Event<K, V> | DecodeError {
    return decodeMessage(this.settings, message, createEvent)
  }

  decode(
    message: Message.Message,
    options?: { readonly propagate?: boolean | undefined }
  ): Effect.Effect<Event.Event<K, V>, DecodeError> {
    return Effect.suspend(() => {
      const decoded = this.decodeUnsafe(message)
      if (!isDecodeError(decoded)) return Exit.succeed(decoded)
      if (options?.propagate === true) return Exit.fail(decoded)
      return Effect.andThen(Effect.ignore(this.handleDecodeError(decoded, message)), Exit.fail(decoded))
    })
  }

  deliver(message: Message.Message): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    const deliver = Effect.suspend(() => {
      const decoded = this.decodeUnsafe(message)
      if (isDecodeError(decoded)) return this.handleDecodeError(decoded, message)
      this.root.stats.delivered++
      if (Queue.offerUnsafe(this.queue, decoded)) return Exit.void
      return Effect.flatMap(
        Queue.offer(this.queue, decoded),
        (offered) => offered ? Exit.void : Exit.fail(this.closedError())
      )
    })
    return this.settings.spans ? Effect.withSpan(deliver, "Channel.deliver", this.spanOptions) : deliver
  }

  get spanOptions() {
    return { attributes: { "channel.label": this.label } }
  }

  /** Routes a decode error to the key or value hook. */
  handleDecodeError(
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

  /**
   * Applies the channel's decode-error policy: `fail` logs, throws the error
   * to this channel's readers and fails; `skip` logs and counts;
   * `deadLetter` forwards the raw message and counts.
   */
  onDecodeError(
    error: DecodeError,
    message: Message.Message
  ): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    return applyDecodeErrorPolicy(
      {
        label: this.label,
        policy: this.settings.onDecodeError,
        counts: this.root.stats.decodeErrors,
        createEvent: this.settings.app.createEvent,
        failReaders: (failure) => this.close(CauseM.fail(failure))
      },
      error,
      message
    )
  }

  get(options?: { readonly timeout?: Duration.Input | undefined }): Effect.Effect<
    Event.Event<K, V>,
    E | DecodeError | ChannelClosedError | CauseM.TimeoutError
  > {
    const take = Effect.catchIf(
      Effect.suspend(() => reader.takeOne(this)),
      CauseM.isDone,
      () => Exit.fail(this.closedError("end"))
    ) as Effect.Effect<Event.Event<K, V>, E | DecodeError | ChannelClosedError>
    return options?.timeout === undefined ? take : Effect.timeout(take, options.timeout)
  }

  get empty(): Effect.Effect<boolean> {
    return Effect.sync(() => reader.isEmpty(this))
  }

  // ---------------------------------------------------------------------------
  // closing

  throw(error: E | DecodeError): Effect.Effect<void> {
    return Effect.sync(() => this.close(CauseM.fail(error)))
  }

  get end(): Effect.Effect<void> {
    return Effect.sync(() => this.close(CauseM.fail(CauseM.Done())))
  }

  /**
   * Fails (or ends) this instance's queue; on the root, also every current
   * subscriber, and the channel accepts no more sends. Queues close
   * gracefully: readers get what was buffered, then the cause.
   */
  private close(cause: Cause.Cause<any>): void {
    const root = this.root
    if (!this.isRoot) {
      fanOut.unwatch(root, this.queue)
      Queue.failCauseUnsafe(this.queue, cause)
      // A closed queue no longer holds sends back.
      fanOut.offerWaiting(root)
      return
    }
    if (root.closed !== undefined) return
    root.closed = cause
    root.closedBy = closedByOf(cause)
    // Sends still waiting for room were not sent: they fail, and say why. First, because
    // closing a queue can run its reader at once, and a reader that leaves offers the waiting sends.
    fanOut.failWaiting(root, this.closedError())
    fanOut.unwatchAll(root)
    Queue.failCauseUnsafe(root.buffer, cause)
    for (const subscriber of root.subscribers) Queue.failCauseUnsafe(subscriber.queue, cause)
  }

  // ---------------------------------------------------------------------------
  // inspection

  pipe() {
    return pipeArguments(this, arguments)
  }

  toJSON() {
    return {
      _id: "Channel",
      label: this.label,
      maxsize: this.maxsize,
      isIterator: this.isIterator,
      activePartitions: partitionKeys(this.activePartitions),
      subscriberCount: this.subscriberCount
    }
  }

  toString(): string {
    const keys = partitionKeys(this.activePartitions)
    const partitions = keys === null ? "all" : `{${keys.join(", ")}}`
    return `${this.label}(maxsize=${this.maxsize}, isIterator=${this.isIterator}, activePartitions=${partitions}, subscribers=${this.subscriberCount})`
  }

  [NodeInspectSymbol]() {
    return this.toJSON()
  }
}
