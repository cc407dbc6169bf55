/**
 * How a topic turns a key or value into record bytes: its Schema's encoding,
 * then its codec (or the serializer a send names). The reverse of decoding.
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Codec from "../../Codec.ts"
import { CodecError } from "../../Errors.ts"
import type { Settings as ChannelSettings } from "../../internal/channel.ts"

/** The Schema encoder of each key or value schema, made once. */
const encoders = new WeakMap<object, (input: unknown) => Result.Result<unknown, Schema.SchemaError>>()

const encoderOf = (schema: unknown): (input: unknown) => Result.Result<unknown, Schema.SchemaError> => {
  let encoder = encoders.get(schema as object)
  if (encoder === undefined) {
    encoder = Schema.encodeUnknownResult(schema as Schema.Codec<unknown, unknown>) as (
      input: unknown
    ) => Result.Result<unknown, Schema.SchemaError>
    encoders.set(schema as object, encoder)
  }
  return encoder
}

/** Schema, then codec, without an effect: the bytes, or the error. `null` stays `null` (no key, or a tombstone). */
export const encodeUnsafe = (
  settings: ChannelSettings<any, any>,
  registry: Codec.Registry,
  kind: "key" | "value",
  input: unknown,
  serializer: Codec.Serializer | undefined
): Uint8Array | null | CodecError => {
  if (input === null || input === undefined) return null
  const schema = kind === "key" ? settings.schema.key : settings.schema.value
  let encoded: unknown = input
  if (schema !== undefined) {
    const result = encoderOf(schema)(input)
    if (Result.isFailure(result)) {
      return new CodecError({ codec: "schema", operation: "dumps", cause: result.failure })
    }
    encoded = result.success
  }
  let codec = kind === "key" ? settings.keyCodec : settings.valueCodec
  if (serializer !== undefined) {
    const resolved = Codec.resolve(registry, serializer)
    if (Result.isFailure(resolved)) {
      return new CodecError({ codec: String(serializer), operation: "dumps", cause: resolved.failure })
    }
    codec = resolved.success
  }
  try {
    return codec.dumps(encoded)
  } catch (cause) {
    return new CodecError({ codec: codec.name, operation: "dumps", cause })
  }
}
