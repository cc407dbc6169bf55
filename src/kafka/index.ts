/**
 * `effect-faust/kafka`: Topics on Apache Kafka. Kept apart from the core
 * import (`effect-faust`), which loads no Kafka code.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { App } from "../App.ts"
import type { InvalidChannelOptionsError } from "../Errors.ts"
import * as Kafka from "./Kafka.ts"
import * as Topic from "./Topic.ts"

/** @since 0.1.0 */
export * as Kafka from "./Kafka.ts"
/** @since 0.1.0 */
export * as Topic from "./Topic.ts"
/** @since 0.2.0 */
export * as Replies from "./Replies.ts"
/** @since 0.1.0 */
export { KafkaError } from "./Kafka.ts"

const mergeAll = (layers: ReadonlyArray<Layer.Layer<any, any, any>>) =>
  Layer.mergeAll(...(layers as [Layer.Layer<any, any, any>, ...Array<Layer.Layer<any, any, any>>]))

type Provided<Services extends ReadonlyArray<Topic.ChannelService<any>>> = Layer.Success<Services[number]["layer"]>

/**
 * Provides channel services (declared with `Channel.Service`) on the
 * transport the environment picks: Kafka topics when
 * `KAFKA_BOOTSTRAP_SERVERS` is set (with {@link Kafka.layerConfig} and
 * {@link Topic.layer}), else each service's in-memory layer. The program
 * using the services does not change.
 *
 * `topics` are topic options for every service (e.g. `{ partitions: 1 }`
 * where order across all messages matters); `topicName` names each
 * service's topic; `kafka` overrides what the config read.
 *
 * **Example**
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { App, Channel } from "effect-faust"
 * import { layerChannels } from "effect-faust/kafka"
 *
 * class Orders extends Channel.Service<Orders>()("shop/Orders", { value: Schema.Number }) {}
 *
 * const program = Effect.gen(function*() {
 *   const orders = yield* Orders
 *   yield* orders.send({ value: 1 })
 * })
 *
 * program.pipe(
 *   Effect.provide(layerChannels([Orders], { topics: { partitions: 1 } })),
 *   Effect.provide(App.layer({ id: "shop" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerChannels = <const Services extends ReadonlyArray<Topic.ChannelService<any>>>(
  services: Services,
  options?: {
    readonly topics?: Omit<Topic.Options, "schema" | "key" | "value" | "error" | "topics" | "pattern"> | undefined
    /** The topic of each service, by service id (default {@link Topic.topicNameFor}). */
    readonly topicName?: ((id: string) => string) | undefined
    readonly kafka?: Partial<Kafka.Options> | undefined
  }
): Layer.Layer<Provided<Services>, InvalidChannelOptionsError | Config.ConfigError, App> =>
  Layer.unwrap(
    Effect.map(Config.option(Config.String("KAFKA_BOOTSTRAP_SERVERS")), (servers) =>
      Option.isNone(servers)
        ? mergeAll(services.map((service) => service.layer))
        : mergeAll(services.map((service) =>
          Topic.layer(service, {
            topics: [(options?.topicName ?? Topic.topicNameFor)(service.key)],
            ...options?.topics
          })
        )).pipe(
          Layer.provide(Kafka.layerConfig(options?.kafka))
        ))
  ) as Layer.Layer<Provided<Services>, InvalidChannelOptionsError | Config.ConfigError, App>
