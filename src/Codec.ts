/**
 * Codecs turn values into bytes and back (Faust's `faust.serializers.codecs`).
 * Built-ins: `raw`, `json`, `binary` (base64); codecs compose with `|`
 * (`"json|binary"` is JSON, then base64). The {@link Codecs} registry maps
 * serializer names to codecs; it holds the built-ins unless a layer adds more.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import { Buffer } from "node:buffer"
import { CodecError, InvalidChannelOptionsError } from "./Errors.ts"

const TypeId = "~effect-faust/Codec" as const

/**
 * A named pair of functions between values and bytes. `dumps` and `loads` may
 * throw; use {@link dumps} and {@link loads} to get a typed {@link CodecError}.
 *
 * The bytes the built-in codecs return may be a view into Node's shared
 * buffer pool: read them through `byteOffset` / `byteLength`, as any
 * `Uint8Array`, and copy them before transferring or detaching their buffer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Codec {
  readonly [TypeId]: typeof TypeId
  readonly name: string
  readonly dumps: (value: unknown) => Uint8Array
  readonly loads: (bytes: Uint8Array) => unknown
}

/**
 * A serializer as options accept it: a registered name (`"json"`,
 * `"json|binary"`) or a {@link Codec} value.
 *
 * @since 0.1.0
 * @category models
 */
export type Serializer = string | Codec

/**
 * @since 0.1.0
 * @category guards
 */
export const isCodec = (u: unknown): u is Codec => typeof u === "object" && u !== null && TypeId in u

/**
 * Builds a codec from its name and functions.
 *
 * **Example**
 *
 * ```ts
 * import { Codec } from "effect-faust"
 *
 * const upper = Codec.make({
 *   name: "upper",
 *   dumps: (value) => new TextEncoder().encode(String(value).toUpperCase()),
 *   loads: (bytes) => new TextDecoder().decode(bytes)
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly name: string
  readonly dumps: (value: unknown) => Uint8Array
  readonly loads: (bytes: Uint8Array) => unknown
}): Codec => ({ [TypeId]: TypeId, name: options.name, dumps: options.dumps, loads: options.loads })

const utf8Decoder = new TextDecoder("utf-8", { fatal: true })

/**
 * UTF-8 bytes of a string. `Buffer.from` takes small strings from Node's
 * buffer pool, ~6× faster than `TextEncoder.encode` (which allocates a new
 * ArrayBuffer each time). The `Buffer` itself is handed out: it is a
 * `Uint8Array`, and the Kafka client takes it without another wrapper.
 */
const encodeUtf8 = (text: string): Uint8Array => Buffer.from(text, "utf8")

/**
 * Bytes pass through unchanged; strings are encoded as UTF-8 on `dumps`.
 *
 * @since 0.1.0
 * @category codecs
 */
export const raw: Codec = make({
  name: "raw",
  dumps: (value) => {
    if (value instanceof Uint8Array) return value
    if (typeof value === "string") return encodeUtf8(value)
    throw new TypeError(`raw codec needs bytes or a string, got ${typeof value}`)
  },
  loads: (bytes) => bytes
})

/**
 * Refuses a number JSON cannot hold, which `JSON.stringify` would write as
 * `null` (a record its readers could not decode back).
 */
const finiteOnly = (key: string, value: unknown): unknown => {
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new TypeError(
      `json codec cannot encode ${value}${key === "" ? "" : ` (at key "${key}")`}: JSON has no such number`
    )
  }
  return value
}

/**
 * JSON text in UTF-8. `dumps` refuses `NaN` and `±Infinity` (JSON has no
 * such numbers); `loads` rejects invalid UTF-8 and invalid JSON.
 *
 * @since 0.1.0
 * @category codecs
 */
export const json: Codec = make({
  name: "json",
  dumps: (value) => {
    const text = JSON.stringify(value)
    if (text === undefined) throw new TypeError(`json codec cannot encode ${typeof value}`)
    // Only text with a null may hide a number JSON cannot hold: checked again, value by value.
    if (text.includes("null")) JSON.stringify(value, finiteOnly)
    return encodeUtf8(text)
  },
  loads: (bytes) => JSON.parse(utf8Decoder.decode(bytes))
})

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * Base64 of the bytes it is given (Faust's `binary`), usually composed after
 * another codec: `"json|binary"`. `loads` rejects anything that is not
 * canonical base64.
 *
 * @since 0.1.0
 * @category codecs
 */
export const binary: Codec = make({
  name: "binary",
  dumps: (value) => encodeUtf8(Buffer.from(raw.dumps(value)).toString("base64")),
  loads: (bytes) => {
    const text = utf8Decoder.decode(bytes)
    if (!base64Pattern.test(text)) throw new TypeError("binary codec: payload is not base64")
    return new Uint8Array(Buffer.from(text, "base64"))
  }
})

/**
 * `compose(first, second)` dumps with `first` then `second`, and loads in the
 * reverse order; its name is `"first|second"`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const compose = (first: Codec, second: Codec): Codec =>
  make({
    name: `${first.name}|${second.name}`,
    dumps: (value) => second.dumps(first.dumps(value)),
    loads: (bytes) => {
      const inner = second.loads(bytes)
      if (!(inner instanceof Uint8Array)) {
        throw new TypeError(`codec "${second.name}" did not produce bytes for "${first.name}"`)
      }
      return first.loads(inner)
    }
  })

/**
 * Encodes with a codec, failing with a typed {@link CodecError}.
 *
 * @since 0.1.0
 * @category encoding
 */
export const dumps = (codec: Codec, value: unknown): Effect.Effect<Uint8Array, CodecError> =>
  Effect.try({
    try: () => codec.dumps(value),
    catch: (cause) => new CodecError({ codec: codec.name, operation: "dumps", cause })
  })

/**
 * Decodes with a codec, failing with a typed {@link CodecError}.
 *
 * @since 0.1.0
 * @category decoding
 */
export const loads = (codec: Codec, bytes: Uint8Array): Effect.Effect<unknown, CodecError> =>
  Effect.try({
    try: () => codec.loads(bytes),
    catch: (cause) => new CodecError({ codec: codec.name, operation: "loads", cause })
  })

/**
 * The registry of codecs by name.
 *
 * @since 0.1.0
 * @category models
 */
export type Registry = ReadonlyMap<string, Codec>

/**
 * The built-in codecs: `raw`, `json`, `binary`.
 *
 * @since 0.1.0
 * @category codecs
 */
export const builtins: Registry = new Map([
  ["raw", raw],
  ["json", json],
  ["binary", binary]
])

/**
 * The codec registry service. It is a reference whose default is
 * {@link builtins}, so channels work without providing it.
 *
 * @since 0.1.0
 * @category services
 */
export const Codecs: Context.Reference<Registry> & {
  /**
   * Provides the built-ins plus the given codecs (a name may override a
   * built-in). Names must be non-empty and must not contain `|`.
   */
  readonly layer: (codecs: Readonly<Record<string, Codec>>) => Layer.Layer<never, InvalidChannelOptionsError>
} = Object.assign(Context.Reference<Registry>("effect-faust/Codecs", { defaultValue: () => builtins }), {
  layer: (codecs: Readonly<Record<string, Codec>>) =>
    Layer.effectContext(Effect.gen(function*() {
      const registry = new Map(builtins)
      for (const [name, codec] of Object.entries(codecs)) {
        if (name.length === 0 || name.includes("|")) {
          return yield* new InvalidChannelOptionsError({
            option: "codecs",
            value: name,
            reason: `codec name "${name}" must be non-empty and must not contain "|"`
          })
        }
        if (!isCodec(codec)) {
          return yield* new InvalidChannelOptionsError({
            option: "codecs",
            value: name,
            reason: `"${name}" is not a Codec (build one with Codec.make)`
          })
        }
        registry.set(name, codec)
      }
      return Context.make(Codecs, registry as Registry)
    }))
})

/**
 * Resolves a serializer against a registry: a {@link Codec} is returned as
 * is; a name is looked up, `"a|b"` composing the codecs it names. Fails with
 * the reason when a name is unknown.
 *
 * @since 0.1.0
 * @category resolving
 */
export const resolve = (registry: Registry, serializer: Serializer): Result.Result<Codec, string> => {
  if (isCodec(serializer)) return Result.succeed(serializer)
  if (typeof serializer !== "string") return Result.fail(`a serializer is a name or a Codec, got ${typeof serializer}`)
  let codec: Codec | undefined
  for (const part of serializer.split("|")) {
    const found = registry.get(part.trim())
    if (found === undefined) {
      return Result.fail(`unknown serializer "${part.trim()}" (known: ${[...registry.keys()].join(", ")})`)
    }
    codec = codec === undefined ? found : compose(codec, found)
  }
  return codec === undefined ? Result.fail("empty serializer name") : Result.succeed(codec)
}
