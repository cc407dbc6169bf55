/**
 * The application a channel belongs to: its id and the defaults channels take
 * from it (Faust's `app.conf`). Provide it with {@link layer} or
 * {@link layerConfig}; that alone is enough to make and use channels (the
 * default codecs need no layer).
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Codec from "./Codec.ts"
import { InvalidChannelOptionsError } from "./Errors.ts"
import * as Event from "./Event.ts"
import type { Headers, Message } from "./Message.ts"

/**
 * App settings channels read.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppConfig {
  /** Default `maxsize` of channel queues (Faust's `stream_buffer_maxsize`, 4096). */
  readonly streamBufferMaxsize: number
  /** Default key serializer (Faust's default, `"raw"`). */
  readonly keySerializer: Codec.Serializer
  /** Default value serializer (Faust's default, `"json"`). */
  readonly valueSerializer: Codec.Serializer
}

/**
 * The defaults Faust uses.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: AppConfig = {
  streamBufferMaxsize: 4096,
  keySerializer: "raw",
  valueSerializer: "json"
}

/**
 * The app service.
 *
 * @since 0.1.0
 * @category services
 */
export class App extends Context.Service<App, {
  readonly id: string
  readonly config: AppConfig
  /** Faust's `app.create_event(key, value, headers, message)`. */
  readonly createEvent: <K, V>(key: K | null, value: V, headers: Headers, message: Message) => Event.Event<K, V>
}>()("effect-faust/App") {}

/**
 * Faust's default `create_event`. Channels skip it (and build events more
 * cheaply) when the app uses it; an app service with its own `createEvent`
 * gets it called for every sent event.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultCreateEvent = <K, V>(
  key: K | null,
  value: V,
  headers: Headers,
  message: Message
): Event.Event<K, V> => Event.make({ key, value, headers, message })

/**
 * Validates the options and builds the app service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(
  options: { readonly id: string } & Partial<AppConfig>
): Effect.fn.Return<App["Service"], InvalidChannelOptionsError> {
  const config: AppConfig = {
    streamBufferMaxsize: options.streamBufferMaxsize ?? defaults.streamBufferMaxsize,
    keySerializer: options.keySerializer ?? defaults.keySerializer,
    valueSerializer: options.valueSerializer ?? defaults.valueSerializer
  }
  if (typeof options.id !== "string" || options.id.length === 0) {
    return yield* new InvalidChannelOptionsError({
      option: "id",
      value: options.id,
      reason: "the app id must be a non-empty string"
    })
  }
  if (!Number.isInteger(config.streamBufferMaxsize) || config.streamBufferMaxsize < 1) {
    return yield* new InvalidChannelOptionsError({
      option: "streamBufferMaxsize",
      value: config.streamBufferMaxsize,
      reason: "must be an integer of at least 1"
    })
  }
  const registry = yield* Codec.Codecs
  for (const option of ["keySerializer", "valueSerializer"] as const) {
    const resolved = Codec.resolve(registry, config[option])
    if (Result.isFailure(resolved)) {
      return yield* new InvalidChannelOptionsError({ option, value: config[option], reason: resolved.failure })
    }
  }
  return App.of({
    id: options.id,
    config,
    createEvent: defaultCreateEvent
  })
})

/**
 * Provides the app from explicit options; unset settings take Faust's
 * defaults.
 *
 * **Example**
 *
 * ```ts
 * import { App } from "effect-faust"
 *
 * const AppLive = App.layer({ id: "orders-app", streamBufferMaxsize: 1024 })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: { readonly id: string } & Partial<AppConfig>
): Layer.Layer<App, InvalidChannelOptionsError> => Layer.effect(App, make(options))

/**
 * The settings as effect `Config` reads them: `STREAM_BUFFER_MAXSIZE`,
 * `KEY_SERIALIZER`, `VALUE_SERIALIZER`, each optional.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<AppConfig> = Config.all({
  streamBufferMaxsize: Config.Int("STREAM_BUFFER_MAXSIZE").pipe(Config.withDefault(defaults.streamBufferMaxsize)),
  keySerializer: Config.String("KEY_SERIALIZER").pipe(Config.withDefault(defaults.keySerializer as string)),
  valueSerializer: Config.String("VALUE_SERIALIZER").pipe(Config.withDefault(defaults.valueSerializer as string))
})

/**
 * Provides the app with settings read from effect `Config` (the environment
 * by default); see {@link config}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (id: string): Layer.Layer<App, InvalidChannelOptionsError | Config.ConfigError> =>
  Layer.effect(App, Effect.flatMap(config, (settings) => make({ id, ...settings })))
