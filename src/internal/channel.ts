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
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { App } from "../App.ts"
import type { AsFutureMessageOptions, SendOptions } from "../Channel.ts"
import * as Codec from "../Codec.ts"
import {
  ChannelClosedError,
  CodecError,
  type DecodeError,
  InvalidChannelOptionsError,
  NotATopicError,
  UnsupportedOperationError
} from "../Errors.ts"
import type * as Event from "../Event.ts"
import type * as FutureMessage from "../FutureMessage.ts"
import * as Message from "../Message.ts"
import type { MessageSchema } from "../MessageSchema.ts"
import * as RecordMetadata from "../RecordMetadata.ts"
import * as reader from "./channelReader.ts"
import * as channelSend from "./channelSend.ts"
import { cloneSettings } from "./channelSettings.ts"
import { close, subscribe, unsubscribe } from "./channelSubscribers.ts"
import { TypeId } from "./channelTypeId.ts"
import { decode, decodeMessage, isDecodeError } from "./decode.ts"
import { applyDecodeErrorPolicy, routeDecodeError } from "./decodeErrorPolicy.ts"
import * as fanOut from "./fanOut.ts"
import * as inspect from "./inspect.ts"
import * as metrics from "./metrics.ts"
import type { SchemaRunner } from "./plainSchema.ts"

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
  readonly decodeKey: SchemaRunner | undefined
  readonly decodeValue: SchemaRunner | undefined
  readonly keyBytesAsString: boolean
  readonly valueBytesAsString: boolean
  /** Wrap `send` and `deliver` in tracing spans. */
  readonly spans: boolean
}

type QueueError<E> = E | DecodeError | CauseM.Done

/** What delivering a message can fail with: its decode error (policy `fail`), or a dead letter's send. */
type DeliverError = DecodeError | FutureMessage.PublishError

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

/** The root state of a new channel, whose own queue is the no-subscriber buffer. */
const makeRoot = (buffer: Queue.Queue<Event.Event<any, any>, any>): Root => ({
  subscribers: [],
  drainer: undefined,
  closed: undefined,
  closedBy: undefined,
  stats: metrics.makeStats(),
  metrics: undefined,
  declared: undefined,
  buffer,
  bufferTarget: [{ queue: buffer }],
  ...fanOut.makeWaiting()
})

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
    this.root = root ?? makeRoot(queue)
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

  /** A subscriber with this instance's settings (they are valid already), for a stream. */
  get iteratorClone(): Effect.Effect<ChannelImpl<K, V, E>> {
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

  stopDraining(): void {
    reader.stopDraining(this)
  }

  /** The events sent from the moment the stream starts (see `channelReader.ts`). */
  events(): Stream.Stream<Event.Event<K, V>, E | DecodeError> {
    return reader.events(this)
  }

  stream(): Stream.Stream<V, E | DecodeError> {
    return Stream.map(this.events(), (event) => event.value)
  }

  items(): Stream.Stream<readonly [K | null, V], E | DecodeError> {
    return Stream.map(this.events(), (event) => [event.key, event.value] as const)
  }

  // ---------------------------------------------------------------------------
  // sending (see `channelSend.ts`)

  put(event: Event.Event<K, V>): Effect.Effect<void, FutureMessage.PublishError> {
    return channelSend.put(this, event)
  }

  /** Sends again what a waiting send had left when every subscriber left. */
  readonly retryPutAll = (events: ReadonlyArray<Event.Event<K, V>>) => channelSend.putAll(this, events)

  send(options: SendOptions<K, V>): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> {
    return channelSend.send(this, options)
  }

  sendAll(values: Iterable<V>): Effect.Effect<void, FutureMessage.PublishError> {
    return channelSend.sendAll(this, values)
  }

  sendSoon(_options: SendOptions<K, V>): Effect.Effect<FutureMessage.FutureMessage<K, V>, UnsupportedOperationError> {
    return channelSend.sendSoon(this.label)
  }

  asFutureMessage(
    options: AsFutureMessageOptions<K, V>
  ): Effect.Effect<FutureMessage.FutureMessage<K, V>, NotATopicError> {
    return channelSend.asFutureMessage(this, options)
  }

  publishMessage(
    future: FutureMessage.FutureMessage<K, V>,
    _options?: { readonly wait?: boolean | undefined }
  ): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> {
    return channelSend.publishMessage(this, future)
  }

  /** The error of a send to a closed channel, saying how it was closed. */
  closedError(closedBy: "throw" | "end" | undefined = this.root.closedBy): ChannelClosedError {
    return new ChannelClosedError({ channel: this.label, closedBy })
  }

  prepareHeaders(headers?: Message.OpenHeaders | undefined): Array<[string, Message.HeaderValue]> {
    return Message.headersToList(headers)
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

  /** In memory, keys and values are sent as they are (serializers are the Topic's); headers pass through. */
  prepareKey(
    key: unknown,
    options?: { readonly headers?: Message.OpenHeaders | undefined }
  ): Effect.Effect<readonly [unknown, Message.OpenHeaders | undefined], CodecError> {
    return Exit.succeed([key, options?.headers] as const)
  }

  prepareValue(
    value: unknown,
    options?: { readonly headers?: Message.OpenHeaders | undefined }
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

  decode(
    message: Message.Message,
    options?: { readonly propagate?: boolean | undefined }
  ): Effect.Effect<Event.Event<K, V>, DecodeError> {
    return decode(this.settings, this, message, options)
  }

  deliver(message: Message.Message): Effect.Effect<void, DeliverError> {
    const deliver = Effect.suspend(() => {
      const decoded = decodeMessage(this.settings, message, this.settings.app.createEvent)
      if (isDecodeError(decoded)) return routeDecodeError(this, decoded, message)
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

  onKeyDecodeError(error: DecodeError, message: Message.Message): Effect.Effect<void, DeliverError> {
    return this.onDecodeError(error, message)
  }

  onValueDecodeError(error: DecodeError, message: Message.Message): Effect.Effect<void, DeliverError> {
    return this.onDecodeError(error, message)
  }

  /**
   * Applies the channel's decode-error policy: `fail` logs, throws the error
   * to this channel's readers and fails; `skip` logs and counts;
   * `deadLetter` forwards the raw message and counts.
   */
  onDecodeError(error: DecodeError, message: Message.Message): Effect.Effect<void, DeliverError> {
    return applyDecodeErrorPolicy(
      {
        label: this.label,
        policy: this.settings.onDecodeError,
        counts: this.root.stats.decodeErrors,
        createEvent: this.settings.app.createEvent,
        failReaders: (failure) => close(this, CauseM.fail(failure))
      },
      error,
      message
    )
  }

  get(options?: { readonly timeout?: Duration.Input | undefined }): Effect.Effect<
    Event.Event<K, V>,
    E | DecodeError | ChannelClosedError | CauseM.TimeoutError
  > {
    const take = reader.get(this) as Effect.Effect<Event.Event<K, V>, E | DecodeError | ChannelClosedError>
    return options?.timeout === undefined ? take : Effect.timeout(take, options.timeout)
  }

  get empty(): Effect.Effect<boolean> {
    return Effect.sync(() => reader.isEmpty(this))
  }

  // ---------------------------------------------------------------------------
  // closing

  throw(error: E | DecodeError): Effect.Effect<void> {
    return Effect.sync(() => close(this, CauseM.fail(error)))
  }

  get end(): Effect.Effect<void> {
    return Effect.sync(() => close(this, CauseM.fail(CauseM.Done())))
  }

  // ---------------------------------------------------------------------------
  // inspection

  pipe() {
    return pipeArguments(this, arguments)
  }

  toJSON() {
    return inspect.toJSON("Channel", this, { maxsize: this.maxsize })
  }

  toString(): string {
    return inspect.toString(this, { maxsize: this.maxsize }, { activePartitions: true })
  }

  [NodeInspectSymbol]() {
    return this.toJSON()
  }
}
