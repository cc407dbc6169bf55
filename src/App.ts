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
import * as Schema from "effect/Schema"
import type * as Codec from "./Codec.ts"
import type { InvalidChannelOptionsError } from "./Errors.ts"
import * as Event from "./Event.ts"
import * as optionsSchema from "./internal/optionsSchema.ts"
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
 * The app's options as one Schema: the id, `streamBufferMaxsize` (default
 * 4096) and the two serializers (defaults `"raw"` and `"json"`, resolved
 * against the codec registry in context).
 */
const OptionsSchema = Schema.Struct({
  id: optionsSchema.rule(
    (u): u is string => typeof u === "string" && u.length > 0,
    "the app id must be a non-empty string"
  ),
  streamBufferMaxsize: optionsSchema.integerOfAtLeast(1).pipe(
    Schema.withDecodingDefault(Effect.succeed(defaults.streamBufferMaxsize))
  ),
  keySerializer: optionsSchema.Serializer.pipe(
    Schema.withDecodingDefault(Effect.succeed(defaults.keySerializer))
  ),
  valueSerializer: optionsSchema.Serializer.pipe(
    Schema.withDecodingDefault(Effect.succeed(defaults.valueSerializer))
  )
})

const decodeOptions = optionsSchema.decode(OptionsSchema)

/**
 * Validates the options and builds the app service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(
  options: { readonly id: string } & Partial<AppConfig>
): Effect.fn.Return<App["Service"], InvalidChannelOptionsError> {
  const { id, keySerializer, streamBufferMaxsize, valueSerializer } = yield* decodeOptions(options)
  return App.of({
    id,
    config: {
      streamBufferMaxsize,
      keySerializer: keySerializer.serializer,
      valueSerializer: valueSerializer.serializer
    },
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
