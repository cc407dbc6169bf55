/**
 * Faust's `faust.channels.Channel` on Effect: send typed values into a
 * channel, iterate them as a `Stream`. Every subscriber has its own bounded
 * queue, so a slow subscriber holds back the sender (honest backpressure)
 * and never loses messages; interrupting a subscriber releases any sender
 * waiting on it.
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HashSet from "effect/HashSet"
import type { Inspectable } from "effect/Inspectable"
import * as Layer from "effect/Layer"
import type { Pipeable } from "effect/Pipeable"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import { App } from "./App.ts"
import * as Codec from "./Codec.ts"
import {
  type ChannelClosedError,
  type CodecError,
  type DecodeError,
  InvalidChannelOptionsError,
  type NotATopicError,
  type TransportError,
  type UnsupportedOperationError
} from "./Errors.ts"
import type { Event } from "./Event.ts"
import type * as FutureMessage from "./FutureMessage.ts"
import * as internal from "./internal/channel.ts"
import { resolveSettings } from "./internal/channelSettings.ts"
import type { HeaderValue, Message, OpenHeaders, TopicPartition } from "./Message.ts"
import * as MessageSchema from "./MessageSchema.ts"
import type { RecordMetadata } from "./RecordMetadata.ts"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: "~effect-faust/Channel" = internal.TypeId

/**
 * What a channel does with a message it cannot decode (in `deliver`):
 *
 * - `"fail"` (Faust's default): log it with the message, then `throw` the
 *   error to the channel's readers; `deliver` fails with it.
 * - `"skip"`: log it, count it, continue.
 * - `{ deadLetter: channel }`: put the raw message (key and value as
 *   received, with `x-decode-error*` headers) on another channel, count it,
 *   continue.
 *
 * @since 0.1.0
 * @category models
 */
export type DecodeErrorPolicy = "fail" | "skip" | { readonly deadLetter: DeadLetterTarget }

/**
 * Where a dead-letter policy forwards undecodable messages: any channel (or
 * topic) of any key and value types.
 *
 * @since 0.1.0
 * @category models
 */
export type DeadLetterTarget = Pick<Channel<any, any, any>, typeof TypeId | "label" | "put">

/**
 * What `send` does while the channel has no subscriber:
 *
 * - `"buffer"` (default): keep the message in the channel's own queue
 *   (bounded by `maxsize`, so the sender waits when it is full); `get` and
 *   the first subscriber to start receive it.
 * - `"drop"`: discard it silently (Faust's behaviour).
 * - `"fail"`: fail `send` with `NoSubscribersError`.
 *
 * @since 0.1.0
 * @category models
 */
export type NoSubscribersPolicy = "buffer" | "drop" | "fail"

/**
 * How many undecodable messages each policy handled, over the channel and
 * all its clones.
 *
 * @since 0.1.0
 * @category models
 */
export interface DecodeErrorCounts {
  readonly failed: number
  readonly skipped: number
  readonly deadLettered: number
}

/**
 * Options of {@link Channel.send} (Faust's `send` keywords, camelCase).
 *
 * @since 0.1.0
 * @category models
 */
export interface SendOptions<K, V> {
  readonly key?: K | null | undefined
  readonly value: V
  readonly partition?: number | undefined
  /** Milliseconds since the epoch; defaults to the `Clock`'s time. */
  readonly timestamp?: number | undefined
  readonly headers?: OpenHeaders | undefined
  readonly schema?: MessageSchema.MessageSchema<any, any> | undefined
  readonly keySerializer?: Codec.Serializer | undefined
  readonly valueSerializer?: Codec.Serializer | undefined
  /** Runs after the message is published, with its completed future. */
  readonly callback?: FutureMessage.Callback<K, V> | undefined
  readonly force?: boolean | undefined
}

/**
 * Options of {@link Channel.asFutureMessage}.
 *
 * @since 0.1.0
 * @category models
 */
export interface AsFutureMessageOptions<K, V> extends Omit<SendOptions<K, V>, "force"> {
  readonly eagerPartitioning?: boolean | undefined
}

/**
 * Options of {@link Channel.clone}.
 *
 * @since 0.1.0
 * @category models
 */
export interface CloneOptions {
  /** An iterator clone is registered as a subscriber of the root. */
  readonly isIterator?: boolean | undefined
  readonly maxsize?: number | undefined
  readonly activePartitions?: Iterable<TopicPartition> | undefined
  readonly onDecodeError?: DecodeErrorPolicy | undefined
}

/**
 * A channel whose events have keys `K` and values `V`, and whose readers may
 * see errors `E` (given to `throw`) besides decode errors.
 *
 * @since 0.1.0
 * @category models
 */
export interface Channel<K, V, E = never> extends Pipeable, Inspectable {
  readonly [TypeId]: typeof TypeId
  /** A human-readable name used in errors and logs. */
  readonly label: string
  readonly schema: MessageSchema.MessageSchema<K, V>
  readonly keyType: Schema.Codec<K, any> | undefined
  readonly valueType: Schema.Codec<V, any> | undefined
  readonly maxsize: number
  readonly isIterator: boolean
  readonly activePartitions: HashSet.HashSet<TopicPartition> | undefined
  /** The queue backing this instance (the root's doubles as its no-subscriber buffer). */
  readonly queue: Queue.Queue<Event<K, V>, E | DecodeError | Cause.Done>
  /** Subscribers of the root right now. */
  readonly subscriberCount: number
  readonly decodeErrorCounts: DecodeErrorCounts

  /** A new instance with its own queue and the same root; an iterator clone subscribes to the root. */
  clone(options?: CloneOptions): Effect.Effect<Channel<K, V, E>, InvalidChannelOptionsError>
  /** An iterator clone reading from the given queue. */
  cloneUsingQueue(queue: Queue.Queue<Event<K, V>, E | DecodeError | Cause.Done>): Effect.Effect<Channel<K, V, E>>
  /** Values of the events sent from the moment the stream starts; subscribes while it runs. */
  stream(): Stream.Stream<V, E | DecodeError | TransportError>
  /** Events (key, value, headers, message) sent from the moment the stream starts. */
  events(): Stream.Stream<Event<K, V>, E | DecodeError | TransportError>
  /** `[key, value]` pairs sent from the moment the stream starts. */
  items(): Stream.Stream<readonly [K | null, V], E | DecodeError | TransportError>
  /** Fails with `NotATopicError` for in-memory channels. */
  getTopicName(): Effect.Effect<string, NotATopicError>
  /** Puts an event to every subscriber; waits while any subscriber's queue is full. */
  send(options: SendOptions<K, V>): Effect.Effect<RecordMetadata, FutureMessage.PublishError>
  /** Sends values in order with one timestamp and no keys; the batch form of `send`. */
  sendAll(values: Iterable<V>): Effect.Effect<void, FutureMessage.PublishError>
  /** Topic only: in memory it fails with `UnsupportedOperationError`. */
  sendSoon(
    options: SendOptions<K, V>
  ): Effect.Effect<FutureMessage.FutureMessage<K, V>, UnsupportedOperationError | TransportError>
  /** A future for a message to be published with `publishMessage`. */
  asFutureMessage(
    options: AsFutureMessageOptions<K, V>
  ): Effect.Effect<FutureMessage.FutureMessage<K, V>, NotATopicError | TransportError>
  /** Normalizes headers (pairs or a record) to a fresh list of pairs. */
  prepareHeaders(headers?: OpenHeaders | undefined): Array<[string, HeaderValue]>
  /** Publishes a future's message, completes the future, then runs its callback. */
  publishMessage(
    future: FutureMessage.FutureMessage<K, V>,
    options?: { readonly wait?: boolean | undefined }
  ): Effect.Effect<RecordMetadata, FutureMessage.PublishError>
  /** Declares the channel at most once, however many fibers ask at the same time. */
  readonly maybeDeclare: Effect.Effect<void, TransportError>
  /** Creates the channel where it lives; nothing to do in memory. */
  readonly declare: Effect.Effect<void, TransportError>
  /** Encodes a key for sending: identity in memory (the Topic serializes). */
  prepareKey(
    key: unknown,
    options?: { readonly keySerializer?: Codec.Serializer | undefined; readonly headers?: OpenHeaders | undefined }
  ): Effect.Effect<readonly [unknown, OpenHeaders | undefined], CodecError>
  /** Encodes a value for sending: identity in memory (the Topic serializes). */
  prepareValue(
    value: unknown,
    options?: { readonly valueSerializer?: Codec.Serializer | undefined; readonly headers?: OpenHeaders | undefined }
  ): Effect.Effect<readonly [unknown, OpenHeaders | undefined], CodecError>
  /**
   * Decodes a raw message (codec, then Schema). Fails with a typed decode
   * error; unless `propagate` is set, the decode-error policy runs first.
   */
  decode(
    message: Message,
    options?: { readonly propagate?: boolean | undefined }
  ): Effect.Effect<Event<K, V>, DecodeError>
  /** Decodes a message and offers it to this instance's queue; decode errors go through the policy. */
  deliver(message: Message): Effect.Effect<void, DecodeError | FutureMessage.PublishError>
  /** The next event of this instance's queue; `TimeoutError` after `timeout`. */
  get(options?: { readonly timeout?: Duration.Input | undefined }): Effect.Effect<
    Event<K, V>,
    E | DecodeError | ChannelClosedError | Cause.TimeoutError | TransportError
  >
  onKeyDecodeError(error: DecodeError, message: Message): Effect.Effect<void, DecodeError | FutureMessage.PublishError>
  onValueDecodeError(
    error: DecodeError,
    message: Message
  ): Effect.Effect<void, DecodeError | FutureMessage.PublishError>
  onDecodeError(error: DecodeError, message: Message): Effect.Effect<void, DecodeError | FutureMessage.PublishError>
  /** Removes this iterator clone from its root's subscribers and releases senders waiting on it. */
  readonly onStopIteration: Effect.Effect<void>
  /** In memory: this same channel. */
  derive(options?: Record<string, unknown>): Effect.Effect<Channel<K, V, E>, InvalidChannelOptionsError>
  /**
   * Fails this instance's queue with `error` (readers first drain what was
   * buffered); on a root, also every current subscriber, and later sends
   * fail with `ChannelClosedError`.
   */
  throw(error: E | DecodeError): Effect.Effect<void>
  /** Like `throw`, but readers end normally after draining (not in Faust). */
  readonly end: Effect.Effect<void>
  /** Faust's `put`: offers a ready event to every subscriber. */
  put(event: Event<K, V>): Effect.Effect<void, FutureMessage.PublishError>
  /** Whether this instance has nothing buffered. */
  readonly empty: Effect.Effect<boolean>
  /**
   * Registers the channel's metrics with the current metric registry until
   * the scope closes: `effect_faust_sent_total`, `_dropped_total`,
   * `_delivered_total`, `_decode_errors_total` (by policy),
   * `effect_faust_subscribers` and `effect_faust_queue_depth` (the buffer and
   * each subscriber), all with a `channel` attribute. Values are read when a
   * snapshot is taken; the hot paths only bump counters.
   */
  readonly registerMetrics: Effect.Effect<void, never, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isChannel = (u: unknown): u is Channel<unknown, unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u

/**
 * Options of {@link make}. `key` and `value` override the schema's types, as
 * in Faust; `error` is a Schema of the errors `throw` accepts.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<
  KS extends MessageSchema.Any | undefined = MessageSchema.Any | undefined,
  VS extends MessageSchema.Any | undefined = MessageSchema.Any | undefined,
  ES extends Schema.Top | undefined = Schema.Top | undefined,
  S extends MessageSchema.MessageSchema<any, any> | undefined = MessageSchema.MessageSchema<any, any> | undefined
> {
  readonly label?: string | undefined
  readonly schema?: S
  readonly key?: KS
  readonly value?: VS
  readonly error?: ES
  readonly keySerializer?: Codec.Serializer | undefined
  readonly valueSerializer?: Codec.Serializer | undefined
  readonly allowEmpty?: boolean | undefined
  readonly maxsize?: number | undefined
  readonly activePartitions?: Iterable<TopicPartition> | undefined
  readonly onDecodeError?: DecodeErrorPolicy | undefined
  readonly whenNoSubscribers?: NoSubscribersPolicy | undefined
  /** Wrap every `send` and `deliver` in a tracing span (off by default: a span per message costs). */
  readonly spans?: boolean | undefined
}

/**
 * The channel type {@link make} builds from its options.
 *
 * @since 0.1.0
 * @category type-level
 */
export type FromOptions<O> = Channel<
  O extends { readonly key: Schema.Codec<infer K, any, any, any> } ? K
    : O extends { readonly schema: MessageSchema.MessageSchema<infer K, any> } ? K
    : unknown,
  O extends { readonly value: Schema.Codec<infer V, any, any, any> } ? V
    : O extends { readonly schema: MessageSchema.MessageSchema<any, infer V> } ? V
    : unknown,
  O extends { readonly error: Schema.Schema<infer E> } ? E : never
>

/**
 * Creates a root channel. `maxsize` defaults to the app's
 * `streamBufferMaxsize`, serializers to the app's; invalid options fail with
 * `InvalidChannelOptionsError` naming the option and the reason.
 *
 * **Example**
 *
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { App, Channel } from "effect-faust"
 *
 * const program = Effect.gen(function*() {
 *   const orders = yield* Channel.make({ key: Schema.String, value: Schema.Struct({ qty: Schema.Number }) })
 *   yield* orders.send({ key: "o-1", value: { qty: 2 } })
 *   const event = yield* orders.get()
 *   return event.value.qty // 2
 * }).pipe(Effect.provide(App.layer({ id: "shop" })))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <const O extends Options = {}>(
  options?: O
): Effect.Effect<FromOptions<O>, InvalidChannelOptionsError, App> =>
  Effect.gen(function*() {
    const app = yield* App
    const registry = yield* Codec.Codecs
    const settings = yield* resolveSettings(app, registry, options ?? {})
    const queue = yield* Queue.bounded<Event<any, any>, any>(settings.maxsize)
    const channel: Channel<unknown, unknown, unknown> = new internal.ChannelImpl<unknown, unknown, unknown>(
      settings,
      queue,
      false,
      undefined
    )
    return channel as unknown as FromOptions<O>
  })

/**
 * What {@link Service} returns: a `Context` key class for the channel, with
 * the options it is made from and a layer that makes it.
 *
 * @since 0.1.0
 * @category services
 */
export interface ServiceClass<Self, Id extends string, O extends Options>
  extends Context.ServiceClass<Self, Id, FromOptions<O>>
{
  /** The options the channel is made from (a Topic layer reuses them). */
  readonly options: O
  /** Makes the channel and registers its metrics for the layer's lifetime. */
  readonly layer: Layer.Layer<Self, never, App>
}

/**
 * Defines a channel as a service: a `Context` key whose value is the channel,
 * with a `layer` that makes it and registers its metrics for the layer's
 * lifetime (invalid static options are a defect).
 *
 * **Example**
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { App, Channel } from "effect-faust"
 *
 * class Orders extends Channel.Service<Orders>()("app/Orders", {
 *   key: Schema.String,
 *   value: Schema.Struct({ qty: Schema.Number }),
 *   maxsize: 100
 * }) {}
 *
 * const program = Effect.gen(function*() {
 *   const orders = yield* Orders
 *   yield* orders.send({ key: "o-1", value: { qty: 1 } })
 * }).pipe(Effect.provide(Orders.layer), Effect.provide(App.layer({ id: "shop" })))
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export const Service =
  <Self>() => <const Id extends string, const O extends Options>(id: Id, options: O): ServiceClass<Self, Id, O> => {
    const Key = Context.Service<Self, FromOptions<O>>()(id)
    return class extends Key {
      /** The options the channel is made from (a Topic layer reuses them). */
      static readonly options: O = options
      static readonly layer: Layer.Layer<Self, never, App> = Layer.effect(
        Key,
        make({ label: id, ...options }).pipe(
          Effect.tap((channel) => channel.registerMetrics),
          Effect.orDie
        ) as Effect.Effect<any, never, App>
      )
    }
  }
