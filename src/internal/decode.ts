/**
 * Decoding a raw message into an event, for channels and topics alike:
 * codec, then Schema, for the key and the value. Nothing escapes as a
 * defect: any throw becomes the typed decode error.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { App } from "../App.ts"
import type * as Codec from "../Codec.ts"
import { CodecError, type DecodeError, KeyDecodeError, ValueDecodeError } from "../Errors.ts"
import type * as Event from "../Event.ts"
import type * as Message from "../Message.ts"
import type { Settings } from "./channel.ts"
import { type Hook, routeDecodeError } from "./decodeErrorPolicy.ts"
import { Refused, type SchemaRunner } from "./plainSchema.ts"

const utf8 = new TextDecoder("utf-8", { fatal: true })

export const isDecodeError = (u: unknown): u is DecodeError =>
  u instanceof KeyDecodeError || u instanceof ValueDecodeError

/**
 * Why a received key or value did not decode, kept until the typed error is
 * built with its message (a topic builds the message only then).
 */
export class Undecodable {
  readonly side: "key" | "value"
  readonly cause: unknown
  constructor(side: "key" | "value", cause: unknown) {
    this.side = side
    this.cause = cause
  }
}

/** The typed error for a key or value that did not decode. */
export const decodeError = <K, V>(
  settings: Settings<K, V>,
  undecodable: Undecodable,
  message: Message.Message
): DecodeError =>
  undecodable.side === "key"
    ? new KeyDecodeError({ channel: settings.label, received: message, cause: undecodable.cause })
    : new ValueDecodeError({ channel: settings.label, received: message, cause: undecodable.cause })

/** Bytes through a codec (as text where the channel asks), then a schema: the value, or why not. */
const decodePart = (
  side: "key" | "value",
  raw: unknown,
  codec: Codec.Codec,
  bytesAsString: boolean,
  schema: SchemaRunner | undefined
): unknown => {
  let decoded = raw
  if (decoded instanceof Uint8Array) {
    try {
      decoded = codec.loads(decoded)
      if (bytesAsString && decoded instanceof Uint8Array) decoded = utf8.decode(decoded)
    } catch (cause) {
      return new Undecodable(side, new CodecError({ codec: codec.name, operation: "loads", cause }))
    }
  }
  if (schema !== undefined) {
    decoded = schema(decoded)
    if (decoded instanceof Refused) return new Undecodable(side, decoded.error)
  }
  return decoded
}

/** A received key (bytes, or already a value) through the key codec and schema; `null` when absent. */
export const decodeKey = <K, V>(settings: Settings<K, V>, raw: unknown): unknown =>
  raw === null || raw === undefined
    ? null
    : decodePart("key", raw, settings.keyCodec, settings.keyBytesAsString, settings.decodeKey)

/** A received value through the value codec and schema; an empty one is `null` where the channel allows it. */
export const decodeValue = <K, V>(settings: Settings<K, V>, raw: unknown): unknown => {
  if (raw === null || raw === undefined || (raw instanceof Uint8Array && raw.byteLength === 0)) {
    return settings.schema.allowEmpty ? null : new Undecodable(
      "value",
      new Error("the value is empty and the channel does not allow empty values (allowEmpty: false)")
    )
  }
  return decodePart("value", raw, settings.valueCodec, settings.valueBytesAsString, settings.decodeValue)
}

/**
 * Decodes a raw message with a channel's settings: the event (built by
 * `createEvent`) or the typed error.
 */
export const decodeMessage = <K, V>(
  settings: Settings<K, V>,
  message: Message.Message,
  createEvent: App["Service"]["createEvent"]
): Event.Event<K, V> | DecodeError => {
  const key = decodeKey(settings, message.key)
  if (key instanceof Undecodable) return decodeError(settings, key, message)
  const value = decodeValue(settings, message.value)
  if (value instanceof Undecodable) return decodeError(settings, value, message)
  return createEvent(key as K | null, value as V, message.headers, message)
}

/**
 * `decode` of a channel or topic: the event, or the typed error, which goes
 * to the instance's key or value decode-error hook first unless `propagate`
 * is set.
 */
export const decode = <K, V>(
  settings: Settings<K, V>,
  hooks: { readonly onKeyDecodeError: Hook; readonly onValueDecodeError: Hook },
  message: Message.Message,
  options: { readonly propagate?: boolean | undefined } | undefined
): Effect.Effect<Event.Event<K, V>, DecodeError> =>
  Effect.suspend(() => {
    const decoded = decodeMessage(settings, message, settings.app.createEvent)
    if (!isDecodeError(decoded)) return Exit.succeed(decoded)
    if (options?.propagate === true) return Exit.fail(decoded)
    return Effect.andThen(Effect.ignore(routeDecodeError(hooks, decoded, message)), Exit.fail(decoded))
  })
