/**
 * How a topic turns a key or value into record bytes: its Schema's encoding,
 * then its codec (or the serializer a send names). The reverse of decoding.
 */
import * as Result from "effect/Result"
import * as Codec from "../../Codec.ts"
import { CodecError } from "../../Errors.ts"
import type { Settings as ChannelSettings } from "../../internal/channel.ts"
import { encoderOf, Refused } from "../../internal/plainSchema.ts"

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
    encoded = encoderOf(schema)(input)
    if (encoded instanceof Refused) {
      return new CodecError({ codec: "schema", operation: "dumps", cause: encoded.error })
    }
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
