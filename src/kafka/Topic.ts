/**
 * Faust's `Topic`: a {@link Channel.Channel} backed by Apache Kafka, with the
 * same interface and types, so that a program moves from memory to a broker
 * by swapping a Layer. `send` produces and returns the broker's
 * `RecordMetadata`; `sendSoon` batches; `stream()` and `events()` consume
 * through a consumer group, acknowledging an event when the stream pulls the
 * next one (or by {@link ack}; {@link noack} for concurrent handlers) and
 * committing, per partition, only up to the highest offset below which every
 * event was acknowledged, after the send buffer has been answered.
 *
 * @since 0.1.0
 */
import type * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import type * as Schema from "effect/Schema"
import type * as Stream from "effect/Stream"
import { App } from "../App.ts"
import * as Channel from "../Channel.ts"
import * as Codec from "../Codec.ts"
import type { DecodeError, InvalidChannelOptionsError, TransportError } from "../Errors.ts"
import type { Event } from "../Event.ts"
import { resolveSettings as resolveChannelSettings } from "../internal/channelSettings.ts"
import type * as MessageSchema from "../MessageSchema.ts"
import * as acknowledgement from "./internal/acknowledgement.ts"
import { resolveSettings } from "./internal/settings.ts"
import * as internal from "./internal/topic.ts"
import { Kafka } from "./Kafka.ts"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: "~effect-faust/Topic" = internal.TypeId

/**
 * A channel backed by one or more Kafka topics (or the topics a pattern
 * matches). Besides the {@link Channel.Channel} members it carries Faust's
 * topic attributes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Topic<K, V, E = never> extends Channel.Channel<K, V, E> {
  readonly [TypeId]: typeof TypeId
  /** The topic names; empty for a pattern. */
  readonly topics: ReadonlyArray<string>
  readonly pattern: RegExp | undefined
  /** The consumer group its streams join. */
  readonly groupId: string
  readonly partitions: number | undefined
  readonly replicas: number | undefined
  readonly retention: Duration.Duration | undefined
  readonly compacting: boolean | undefined
  readonly deleting: boolean | undefined
  /** The topic config `declare` creates it with (retention and cleanup policy included). */
  readonly config: Readonly<Record<string, string>>
  /** Whether sends wait for the broker's acknowledgement. */
  readonly acks: boolean
  readonly internal: boolean
  clone(options?: Channel.CloneOptions): Effect.Effect<Topic<K, V, E>, InvalidChannelOptionsError>
  /** A new topic with these overrides; `prefix` and `suffix` are added to each name. */
  derive(options?: DeriveOptions): Effect.Effect<Topic<K, V, E>, InvalidChannelOptionsError>
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isTopic = (u: unknown): u is Topic<unknown, unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u

/**
 * Options of {@link make}: those of `Channel.make` (types, serializers,
 * `maxsize`, `onDecodeError`, …) plus Faust's topic options. Give either
 * `topics` or `pattern`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<
  KS extends MessageSchema.Any | undefined = MessageSchema.Any | undefined,
  VS extends MessageSchema.Any | undefined = MessageSchema.Any | undefined,
  ES extends Schema.Top | undefined = Schema.Top | undefined,
  S extends MessageSchema.MessageSchema<any, any> | undefined = MessageSchema.MessageSchema<any, any> | undefined
> extends Omit<Channel.Options<KS, VS, ES, S>, "activePartitions" | "whenNoSubscribers"> {
  readonly topics?: ReadonlyArray<string> | undefined
  /** Subscribes to every existing topic whose name matches (when a stream starts); cannot be sent to. */
  readonly pattern?: RegExp | string | undefined
  /** The consumer group (default: the Kafka `groupId`, a dot, and the topic names or pattern). */
  readonly groupId?: string | undefined
  /** Partitions `declare` creates (default: the Kafka `topicPartitions`). */
  readonly partitions?: number | undefined
  /** Replicas `declare` creates (default: the Kafka `topicReplicationFactor`). */
  readonly replicas?: number | undefined
  /** `retention.ms` of the declared topic. */
  readonly retention?: Duration.Input | undefined
  /** Adds `compact` to the declared topic's `cleanup.policy`. */
  readonly compacting?: boolean | undefined
  /** Adds `delete` to the declared topic's `cleanup.policy`. */
  readonly deleting?: boolean | undefined
  /** More topic config for `declare` (`"min.insync.replicas"`, …). */
  readonly config?: Readonly<Record<string, string | number | boolean>> | undefined
  /** `false`: send without waiting for the broker (offsets are then `-1`). Default `true`. */
  readonly acks?: boolean | undefined
  /** Owned by this app: `declare` also checks an existing topic has the declared `partitions`. */
  readonly internal?: boolean | undefined
}

/**
 * Options of {@link Topic.derive}: any topic option but the types, plus a
 * `prefix` and a `suffix` for the names.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeriveOptions extends Omit<Options, "schema" | "key" | "value" | "error"> {
  readonly prefix?: string | undefined
  readonly suffix?: string | undefined
}

/**
 * The topic type {@link make} builds from its options.
 *
 * @since 0.1.0
 * @category type-level
 */
export type FromOptions<O> = Channel.FromOptions<O> extends Channel.Channel<infer K, infer V, infer E> ? Topic<K, V, E>
  : never

const makeWith = (
  options: Options,
  context: Omit<internal.TopicContext, "make">
): Effect.Effect<internal.TopicImpl<any, any, any>, InvalidChannelOptionsError> =>
  Effect.gen(function*() {
    const settings = resolveSettings(options, context.kafka)
    if (Result.isFailure(settings)) return yield* settings.failure
    const {
      acks: _acks,
      compacting: _compacting,
      config: _config,
      deleting: _deleting,
      groupId: _groupId,
      internal: _internal,
      partitions: _partitions,
      pattern: _pattern,
      replicas: _replicas,
      retention: _retention,
      topics: _topics,
      ...channelOptions
    } = options
    const { pattern, topics } = settings.success
    const channelSettings = yield* resolveChannelSettings(context.app, context.registry, {
      ...channelOptions,
      label: options.label ?? `Topic: ${pattern === undefined ? topics.join(", ") : String(pattern)}`
    })
    const full: internal.TopicContext = { ...context, make: (next) => makeWith(next, context) }
    return yield* internal.TopicImpl.make(channelSettings, settings.success, full)
  })

/**
 * Creates a topic. Nothing reaches the broker yet: the topic is declared on
 * first use (see `Kafka` `topicAllowDeclare`), and a consumer joins its group
 * when the first stream starts and leaves when the last one ends. Invalid
 * options fail with `InvalidChannelOptionsError`.
 *
 * **Example**
 *
 * ```ts
 * import { Effect, Layer, Schema, Stream } from "effect"
 * import { App } from "effect-faust"
 * import { Kafka, Topic } from "effect-faust/kafka"
 *
 * const program = Effect.gen(function*() {
 *   const orders = yield* Topic.make({
 *     topics: ["orders"],
 *     key: Schema.String,
 *     value: Schema.Struct({ qty: Schema.Number }),
 *     partitions: 3
 *   })
 *   const metadata = yield* orders.send({ key: "o-1", value: { qty: 2 } })
 *   const first = yield* orders.stream().pipe(Stream.take(1), Stream.runCollect)
 *   return [metadata.offset, first] as const
 * }).pipe(
 *   Effect.provide(Kafka.layer({ bootstrapServers: "127.0.0.1:9092" }).pipe(Layer.provideMerge(App.layer({ id: "shop" }))))
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <const O extends Options>(
  options: O
): Effect.Effect<FromOptions<O>, InvalidChannelOptionsError, App | Kafka> =>
  Effect.gen(function*() {
    const app = yield* App
    const kafka = yield* Kafka
    const registry = yield* Codec.Codecs
    return (yield* makeWith(options, { app, kafka, registry })) as unknown as FromOptions<O>
  })

/**
 * Acknowledges an event a topic's stream emitted, before the stream pulls
 * the next one (Faust's `event.ack()`). Returns `true` when the
 * acknowledgement counts towards the next commit; `false` if the event was
 * already acknowledged, does not come from a topic, or belongs to a
 * partition this member no longer owns (a rebalance revoked it: its new
 * owner reads the event again).
 *
 * **Example**
 *
 * ```ts
 * import { Effect, Stream } from "effect"
 * import type { Channel } from "effect-faust"
 * import { Topic } from "effect-faust/kafka"
 *
 * declare const orders: Channel.Channel<string, number>
 *
 * const handled = orders.events().pipe(
 *   Stream.mapEffect((event) => Effect.andThen(Effect.log(event.value), Topic.ack(event)))
 * )
 * ```
 *
 * @since 0.1.0
 * @category acknowledgement
 */
export const ack = (event: Event<any, any>): Effect.Effect<boolean> => Effect.sync(() => acknowledgement.ack(event))

/**
 * A topic's events that only {@link ack} acknowledges (Faust's
 * `stream.noack()`): pulling the next event, or the stream ending, does not.
 * Use it when events are handled concurrently or out of order, e.g. with
 * `Stream.mapEffect(..., { concurrency })`, which pulls ahead of the events
 * it is still handling: acknowledge each event when its handling is done,
 * and the commits never pass an event that is not (offsets are committed up
 * to the highest one below which every event was acknowledged). An event
 * never acknowledged (its handler failed, or the stream stopped first) is
 * read again by the next consumer. On an in-memory channel, it is
 * `channel.events()`.
 *
 * **Example**
 *
 * ```ts
 * import { Effect, Stream } from "effect"
 * import type { Channel } from "effect-faust"
 * import { Topic } from "effect-faust/kafka"
 *
 * declare const orders: Channel.Channel<string, number>
 * declare const handle: (qty: number) => Effect.Effect<void>
 *
 * const handled = Topic.noack(orders).pipe(
 *   Stream.mapEffect((event) => Effect.andThen(handle(event.value), Topic.ack(event)), { concurrency: 8 })
 * )
 * ```
 *
 * @since 0.1.0
 * @category acknowledgement
 */
export const noack = <K, V, E>(
  channel: Channel.Channel<K, V, E>
): Stream.Stream<Event<K, V>, E | DecodeError | TransportError> =>
  channel instanceof internal.TopicImpl
    ? (channel as internal.TopicImpl<K, V, E>).eventsWith("manually")
    : channel.events()

/**
 * A channel service class, as `Channel.Service` declares it: its key, the
 * options it is made from, and its in-memory layer.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChannelService<Self> {
  readonly key: string
  readonly options: Channel.Options
  readonly layer: Layer.Layer<Self, never, App>
}

/**
 * The Kafka topic name for a service id: characters Kafka does not allow
 * become dots (`"word-count/Lines"` → `"word-count.Lines"`).
 *
 * @since 0.1.0
 * @category layers
 */
export const topicNameFor = (id: string): string => id.replace(/[^a-zA-Z0-9._-]/g, ".")

/**
 * Provides a channel service (declared with `Channel.Service`) with a topic
 * made from the service's own options, named after its id (see
 * {@link topicNameFor}) unless `overrides` say otherwise. Like the service's
 * own layer, it registers the channel's metrics while it lives.
 *
 * **Example**
 *
 * ```ts
 * import { Layer, Schema } from "effect"
 * import { App, Channel } from "effect-faust"
 * import { Kafka, Topic } from "effect-faust/kafka"
 *
 * class Orders extends Channel.Service<Orders>()("shop/Orders", { value: Schema.Number }) {}
 *
 * // In memory: Orders.layer. On Kafka, topic "shop.Orders":
 * const OrdersLive = Topic.layer(Orders, { partitions: 1 }).pipe(
 *   Layer.provide(Kafka.layerConfig()),
 *   Layer.provide(App.layer({ id: "shop" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <Self>(
  service: ChannelService<Self>,
  overrides?: Omit<Options, "schema" | "key" | "value" | "error">
): Layer.Layer<Self, InvalidChannelOptionsError, App | Kafka> =>
  Layer.effect(
    service as unknown as Context.Key<Self, unknown>,
    make({ topics: [topicNameFor(service.key)], label: service.key, ...service.options, ...overrides }).pipe(
      Effect.tap((topic) => topic.registerMetrics)
    ) as Effect.Effect<any, InvalidChannelOptionsError, App | Kafka>
  )
