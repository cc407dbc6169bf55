import type * as Cause from "effect/Cause"
import * as CauseM from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as HashSet from "effect/HashSet"
import { NodeInspectSymbol } from "effect/Inspectable"
import { pipeArguments } from "effect/Pipeable"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import type * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { type App, defaultCreateEvent } from "../App.ts"
import * as Codec from "../Codec.ts"
import {
  ChannelClosedError,
  CodecError,
  type DecodeError,
  InvalidChannelOptionsError,
  KeyDecodeError,
  NoSubscribersError,
  NotATopicError,
  UnsupportedOperationError,
  ValueDecodeError
} from "../Errors.ts"
import type { AsFutureMessageOptions, SendOptions } from "../Channel.ts"
import type * as Event from "../Event.ts"
import * as FutureMessage from "../FutureMessage.ts"
import * as Message from "../Message.ts"
import type { MessageSchema } from "../MessageSchema.ts"
import * as RecordMetadata from "../RecordMetadata.ts"
import { fromSendOptions } from "./futureMessage.ts"
import * as metrics from "./metrics.ts"
import * as subscriberList from "./subscriberList.ts"
import { SentEvent } from "./sentEvent.ts"

/** @internal */
export const TypeId = "~effect-faust/Channel" as const

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
interface Hub {
  subscribers: ReadonlyArray<ChannelImpl<any, any, any>>
  /** The subscriber reading the root buffer before its own queue, if any. */
  drainer: ChannelImpl<any, any, any> | undefined
  /** Set by `throw` or `end` on the root; late subscribers get it at once. */
  closed: Cause.Cause<unknown> | undefined
  readonly stats: metrics.Stats
  /** Set while the channel's metrics are registered (see `registerMetrics`). */
  metrics: metrics.Registry | undefined
  declared: Deferred.Deferred<void> | undefined
  readonly buffer: Queue.Queue<Event.Event<any, any>, any>
}

const anonTopic = "<anon>"

/**
 * Milliseconds from the fiber's Clock. With effect's default Clock,
 * `Date.now()` (~40 ns on the benchmark machine, a tenth of a send) is read
 * once per event-loop turn (effect's scheduler runs a batch of fibers per
 * turn) and shared by the sends of that turn; any other Clock (a TestClock)
 * is asked every time.
 */
const DefaultClock = Clock.Clock.defaultValue().constructor
let turnNow = 0
let turnValid = false
const endTurn = () => {
  turnValid = false
}
let lastContext: unknown = undefined
let lastClock: Clock.Clock | undefined = undefined
const currentTimeMillis = (fiber: Fiber.Fiber<unknown, unknown>): number => {
  if (fiber.context !== lastContext) {
    lastContext = fiber.context
    lastClock = fiber.getRef(Clock.Clock)
  }
  const clock = lastClock!
  if (clock.constructor !== DefaultClock) return clock.currentTimeMillisUnsafe()
  if (!turnValid) {
    turnNow = Date.now()
    turnValid = true
    setImmediate(endTurn)
  }
  return turnNow
}

/**
 * The result of an in-memory send is immutable: consecutive sends with the
 * same partition and timestamp share one RecordMetadata and one Exit.
 */
let lastSent: Exit.Success<RecordMetadata.RecordMetadata, never> | undefined = undefined
const sentExit = (partition: number, timestamp: number): Exit.Success<RecordMetadata.RecordMetadata, never> => {
  const last = lastSent
  if (last !== undefined && last.value.timestamp === timestamp && last.value.partition === partition) return last
  const metadata = RecordMetadata.make({ topic: anonTopic, partition, offset: -1, timestamp, timestampType: 1 })
  return lastSent = Exit.succeed(metadata) as Exit.Success<RecordMetadata.RecordMetadata, never>
}
const noHeaders: Message.Headers = []
const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * One channel instance. The root owns the hub; clones share it. Iterator
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
  readonly hub: Hub
  /** Root buffer this subscriber reads first (messages sent before it subscribed). */
  drainFrom: Queue.Queue<Event.Event<K, V>, any> | undefined = undefined
  /** Removes this subscriber's queue-depth series, when metrics are registered. */
  unregisterMetrics: (() => void) | undefined = undefined

  constructor(
    settings: Settings<K, V>,
    queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>,
    isIterator: boolean,
    hub: Hub | undefined
  ) {
    this.settings = settings
    this.queue = queue
    this.isIterator = isIterator
    this.hub = hub ?? {
      subscribers: [],
      drainer: undefined,
      closed: undefined,
      stats: metrics.makeStats(),
      metrics: undefined,
      declared: undefined,
      buffer: queue
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
    return this.hub.subscribers.length
  }
  get decodeErrorCounts(): Readonly<metrics.Stats["decodeErrors"]> {
    return { ...this.hub.stats.decodeErrors }
  }
  get isRoot(): boolean {
    return this.hub.buffer === this.queue
  }

  // ---------------------------------------------------------------------------
  // clones and subscription

  clone(options?: {
    readonly isIterator?: boolean | undefined
    readonly maxsize?: number | undefined
    readonly activePartitions?: Iterable<Message.TopicPartition> | undefined
    readonly onDecodeError?: DecodeErrorPolicy | undefined
  }): Effect.Effect<ChannelImpl<K, V, E>, InvalidChannelOptionsError> {
    const maxsize = options?.maxsize ?? this.settings.maxsize
    if (!Number.isInteger(maxsize) || maxsize < 1) {
      return Exit.fail(
        new InvalidChannelOptionsError({ option: "maxsize", value: maxsize, reason: "must be an integer of at least 1" })
      )
    }
    const settings: Settings<K, V> = options === undefined ? this.settings : {
      ...this.settings,
      maxsize,
      activePartitions: options.activePartitions === undefined
        ? this.settings.activePartitions
        : HashSet.fromIterable(options.activePartitions),
      onDecodeError: options.onDecodeError ?? this.settings.onDecodeError
    }
    return Effect.map(
      Queue.bounded<Event.Event<K, V>, QueueError<E>>(maxsize),
      (queue) => this.attach(settings, queue, options?.isIterator ?? false)
    )
  }

  /** A subscriber with this instance's settings (they are valid already). */
  private get iteratorClone(): Effect.Effect<ChannelImpl<K, V, E>> {
    return Effect.map(
      Queue.bounded<Event.Event<K, V>, QueueError<E>>(this.settings.maxsize),
      (queue) => this.attach(this.settings, queue, true)
    )
  }

  cloneUsingQueue(queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>): Effect.Effect<ChannelImpl<K, V, E>> {
    return Effect.sync(() => this.attach(this.settings, queue, true))
  }

  /** A clone on the same hub; an iterator clone subscribes at once. */
  private attach(
    settings: Settings<K, V>,
    queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>,
    isIterator: boolean
  ): ChannelImpl<K, V, E> {
    const clone = new ChannelImpl<K, V, E>(settings, queue, isIterator, this.hub)
    if (isIterator) subscribe(clone)
    return clone
  }

  get onStopIteration(): Effect.Effect<void> {
    return Effect.sync(() => unsubscribe(this))
  }

  /** The next batch of events for this instance: the root buffer first, if it drains it. */
  get pull(): Effect.Effect<ReadonlyArray<Event.Event<K, V>>, QueueError<E>> {
    if (this.drainFrom === undefined) return Queue.takeAll(this.queue)
    return Effect.flatMap(
      Effect.catchCause(Queue.clear(this.drainFrom), () => Exit.succeed([])),
      (events) => {
        if (events.length > 0) return Exit.succeed(events)
        this.stopDraining()
        return Queue.takeAll(this.queue)
      }
    )
  }

  stopDraining(): void {
    this.drainFrom = undefined
    if (this.hub.drainer === this) this.hub.drainer = undefined
  }

  events(): Stream.Stream<Event.Event<K, V>, E | DecodeError> {
    return Stream.unwrap(
      Effect.map(
        Effect.acquireRelease(this.iteratorClone, (subscriber) => subscriber.onStopIteration),
        (subscriber) => Stream.fromPull(Effect.succeed(subscriber.pull as any))
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

  /** Offers an event to every subscriber, or applies the no-subscriber policy. */
  put(event: Event.Event<K, V>): Effect.Effect<void, FutureMessage.PublishError> {
    const hub = this.hub
    if (hub.closed !== undefined) return Exit.fail(new ChannelClosedError({ channel: this.label }))
    const subscribers = hub.subscribers
    if (subscribers.length === 0) return this.putWithoutSubscribers(event)
    hub.stats.sent++
    for (let i = 0; i < subscribers.length; i++) {
      if (!Queue.offerUnsafe(subscribers[i].queue, event)) return offerFrom(subscribers, i, event)
    }
    return Exit.void
  }

  private putWithoutSubscribers(event: Event.Event<K, V>): Effect.Effect<void, FutureMessage.PublishError> {
    switch (this.settings.whenNoSubscribers) {
      case "drop":
        this.hub.stats.sent++
        this.hub.stats.dropped++
        return Exit.void
      case "fail":
        return Exit.fail(new NoSubscribersError({ channel: this.label }))
      case "buffer": {
        this.hub.stats.sent++
        const buffer = this.hub.buffer
        if (Queue.offerUnsafe(buffer, event)) return Exit.void
        return Effect.flatMap(Queue.offer(buffer, event), (offered) =>
          offered ? Exit.void : Exit.fail(new ChannelClosedError({ channel: this.label })))
      }
    }
  }

  send(options: SendOptions<K, V>): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> {
    return this.settings.spans ? Effect.withSpan(this.sendUntraced(options), "Channel.send", this.spanOptions) : this.sendUntraced(options)
  }

  private sendUntraced(options: SendOptions<K, V>): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> {
    if (options.callback !== undefined) {
      return Effect.flatMap(this.asFutureMessage(options as AsFutureMessageOptions<K, V>), (future) =>
        this.publishMessage(future)) as Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError>
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

  putAll(events: ReadonlyArray<Event.Event<K, V>>): Effect.Effect<void, FutureMessage.PublishError> {
    const hub = this.hub
    if (hub.closed !== undefined) return Exit.fail(new ChannelClosedError({ channel: this.label }))
    const subscribers = hub.subscribers
    if (subscribers.length === 0) {
      return Effect.forEach(events, (event) => this.putWithoutSubscribers(event), { discard: true })
    }
    hub.stats.sent += events.length
    let pending: Array<Effect.Effect<unknown>> | undefined
    for (let i = 0; i < subscribers.length; i++) {
      const rest = Queue.offerAllUnsafe(subscribers[i].queue, events)
      if (rest.length > 0) {
        ;(pending ??= []).push(Queue.offerAll(subscribers[i].queue, rest))
      }
    }
    return pending === undefined ? Exit.void : Effect.asVoid(Effect.all(pending, { concurrency: "unbounded" }))
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
      return Exit.fail(new NotATopicError({ channel: this.label, operation: "asFutureMessage({ eagerPartitioning: true })" }))
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
    return Effect.flatMap(Effect.context<never>(), (context) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const hub = this.hub
          if (hub.metrics !== undefined) return undefined
          hub.metrics = { context, nextSubscriber: 0 }
          const remove = metrics.registerChannel(context, this.label, hub.stats, () => hub.subscribers.length, hub.buffer)
          for (const subscriber of hub.subscribers) metrics.trackSubscriber(hub.metrics, subscriber)
          return remove
        }),
        (remove) =>
          Effect.sync(() => {
            if (remove === undefined) return
            remove()
            for (const subscriber of this.hub.subscribers) metrics.untrackSubscriber(subscriber)
            this.hub.metrics = undefined
          })
      ))
  }

  get declare(): Effect.Effect<void> {
    return Effect.void
  }

  get maybeDeclare(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const hub = this.hub
      if (hub.declared !== undefined) return Deferred.await(hub.declared)
      const declared = Deferred.makeUnsafe<void>()
      hub.declared = declared
      return Effect.flatMap(Effect.exit(this.declare), (exit) => Deferred.done(declared, exit))
    })
  }

  prepareKey(
    key: unknown,
    options?: { readonly keySerializer?: Codec.Serializer | undefined; readonly headers?: Message.OpenHeaders | undefined }
  ): Effect.Effect<readonly [unknown, Message.OpenHeaders | undefined], CodecError> {
    return Exit.succeed([key, options?.headers] as const)
  }

  prepareValue(
    value: unknown,
    options?: { readonly valueSerializer?: Codec.Serializer | undefined; readonly headers?: Message.OpenHeaders | undefined }
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
    const settings = this.settings
    let key: unknown = message.key
    if (key !== null && key !== undefined) {
      if (key instanceof Uint8Array) {
        try {
          key = settings.keyCodec.loads(key)
          if (settings.keyBytesAsString && key instanceof Uint8Array) key = utf8.decode(key)
        } catch (cause) {
          return new KeyDecodeError({
            channel: this.label,
            received: message,
            cause: new CodecError({ codec: settings.keyCodec.name, operation: "loads", cause })
          })
        }
      }
      if (settings.decodeKey !== undefined) {
        const decoded = settings.decodeKey(key)
        if (Result.isFailure(decoded)) {
          return new KeyDecodeError({ channel: this.label, received: message, cause: decoded.failure })
        }
        key = decoded.success
      }
    } else {
      key = null
    }
    let value: unknown = message.value
    if (value === null || value === undefined || (value instanceof Uint8Array && value.byteLength === 0)) {
      if (!settings.schema.allowEmpty) {
        return new ValueDecodeError({
          channel: this.label,
          received: message,
          cause: new Error("the value is empty and the channel does not allow empty values (allowEmpty: false)")
        })
      }
      value = null
    } else {
      if (value instanceof Uint8Array) {
        try {
          value = settings.valueCodec.loads(value)
          if (settings.valueBytesAsString && value instanceof Uint8Array) value = utf8.decode(value)
        } catch (cause) {
          return new ValueDecodeError({
            channel: this.label,
            received: message,
            cause: new CodecError({ codec: settings.valueCodec.name, operation: "loads", cause })
          })
        }
      }
      if (settings.decodeValue !== undefined) {
        const decoded = settings.decodeValue(value)
        if (Result.isFailure(decoded)) {
          return new ValueDecodeError({ channel: this.label, received: message, cause: decoded.failure })
        }
        value = decoded.success
      }
    }
    return createEvent(key as K | null, value as V, message.headers, message)
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
      this.hub.stats.delivered++
      if (Queue.offerUnsafe(this.queue, decoded)) return Exit.void
      return Effect.flatMap(Queue.offer(this.queue, decoded), (offered) =>
        offered ? Exit.void : Exit.fail(new ChannelClosedError({ channel: this.label })))
    })
    return this.settings.spans ? Effect.withSpan(deliver, "Channel.deliver", this.spanOptions) : deliver
  }

  get spanOptions() {
    return { attributes: { "channel.label": this.label } }
  }

  /** Routes a decode error to the key or value hook. */
  handleDecodeError(error: DecodeError, message: Message.Message): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    return error._tag === "KeyDecodeError"
      ? this.onKeyDecodeError(error, message)
      : this.onValueDecodeError(error, message)
  }

  onKeyDecodeError(error: DecodeError, message: Message.Message): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    return this.onDecodeError(error, message)
  }

  onValueDecodeError(error: DecodeError, message: Message.Message): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    return this.onDecodeError(error, message)
  }

  /**
   * Applies the channel's decode-error policy: `fail` logs, throws the error
   * to this channel's readers and fails; `skip` logs and counts;
   * `deadLetter` forwards the raw message and counts.
   */
  onDecodeError(error: DecodeError, message: Message.Message): Effect.Effect<void, DecodeError | FutureMessage.PublishError> {
    const policy = this.settings.onDecodeError
    const counts = this.hub.stats.decodeErrors
    const annotations = {
      channel: this.label,
      topic: message.topic,
      partition: message.partition,
      offset: message.offset
    }
    if (policy === "fail") {
      counts.failed++
      return Effect.logError(error.message, error.cause).pipe(
        Effect.annotateLogs(annotations),
        Effect.andThen(this.throw(error)),
        Effect.andThen(Exit.fail(error))
      )
    }
    if (policy === "skip") {
      counts.skipped++
      return Effect.logWarning(`skipped: ${error.message}`).pipe(Effect.annotateLogs(annotations))
    }
    const target = policy.deadLetter
    const forwarded = this.settings.app.createEvent(message.key, message.value, [
      ...message.headers,
      ["x-decode-error", error._tag],
      ["x-decode-error-message", error.message],
      ["x-source-channel", this.label]
    ], message)
    return Effect.flatMap(target.put(forwarded), () => {
      counts.deadLettered++
      return Effect.logWarning(`dead-lettered to ${target.label}: ${error.message}`).pipe(Effect.annotateLogs(annotations))
    })
  }

  get(options?: { readonly timeout?: Duration.Input | undefined }): Effect.Effect<
    Event.Event<K, V>,
    E | DecodeError | ChannelClosedError | CauseM.TimeoutError
  > {
    const take = Effect.catchIf(
      Effect.suspend(() => this.takeOne()),
      CauseM.isDone,
      () => Exit.fail(new ChannelClosedError({ channel: this.label }))
    ) as Effect.Effect<Event.Event<K, V>, E | DecodeError | ChannelClosedError>
    return options?.timeout === undefined ? take : Effect.timeout(take, options.timeout)
  }

  private takeOne(): Effect.Effect<Event.Event<K, V>, QueueError<E>> {
    const from = this.drainFrom
    if (from !== undefined) {
      const taken = Queue.takeUnsafe(from)
      if (taken !== undefined && Exit.isSuccess(taken)) return taken
      this.stopDraining()
    }
    return Queue.take(this.queue)
  }

  get empty(): Effect.Effect<boolean> {
    return Effect.sync(() =>
      Queue.sizeUnsafe(this.queue) === 0 && (this.drainFrom === undefined || Queue.sizeUnsafe(this.drainFrom) === 0)
    )
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
    if (!this.isRoot) {
      Queue.failCauseUnsafe(this.queue, cause)
      return
    }
    const hub = this.hub
    if (hub.closed !== undefined) return
    hub.closed = cause
    Queue.failCauseUnsafe(hub.buffer, cause)
    for (const subscriber of hub.subscribers) Queue.failCauseUnsafe(subscriber.queue, cause)
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
      activePartitions: this.activePartitions === undefined
        ? null
        : Array.from(this.activePartitions, (tp) => `${tp.topic}:${tp.partition}`),
      subscriberCount: this.subscriberCount
    }
  }

  toString(): string {
    const partitions = this.activePartitions === undefined
      ? "all"
      : `{${Array.from(this.activePartitions, (tp) => `${tp.topic}:${tp.partition}`).join(", ")}}`
    return `${this.label}(maxsize=${this.maxsize}, isIterator=${this.isIterator}, activePartitions=${partitions}, subscribers=${this.subscriberCount})`
  }

  [NodeInspectSymbol]() {
    return this.toJSON()
  }
}

const isDecodeError = (u: unknown): u is DecodeError =>
  u instanceof KeyDecodeError || u instanceof ValueDecodeError

/** Offers to subscribers `from` onward, waiting on full queues (a closed queue is skipped). */
const offerFrom = (
  subscribers: ReadonlyArray<ChannelImpl<any, any, any>>,
  from: number,
  event: Event.Event<any, any>
): Effect.Effect<void> =>
  Effect.flatMap(Queue.offer(subscribers[from].queue, event), () => {
    for (let i = from + 1; i < subscribers.length; i++) {
      if (!Queue.offerUnsafe(subscribers[i].queue, event)) return offerFrom(subscribers, i, event)
    }
    return Exit.void
  })

/**
 * Registers an iterator clone with its root. If messages wait in the root
 * buffer and nobody is draining it, this subscriber reads them first.
 */
const subscribe = (subscriber: ChannelImpl<any, any, any>): void => {
  const hub = subscriber.hub
  if (hub.drainer === undefined && hub.closed === undefined && Queue.sizeUnsafe(hub.buffer) > 0) {
    hub.drainer = subscriber
    subscriber.drainFrom = hub.buffer
  }
  subscriberList.join(hub, subscriber)
}

/**
 * Removes a subscriber and shuts its queue down, which releases any sender
 * suspended on it (its `offer` returns `false` and the sender moves on).
 */
const unsubscribe = (subscriber: ChannelImpl<any, any, any>): void => {
  if (subscriberList.leave(subscriber.hub, subscriber) === undefined) return
  subscriber.stopDraining()
  Queue.shutdownUnsafe(subscriber.queue)
}
