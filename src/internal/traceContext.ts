/**
 * W3C trace context (`traceparent`) for records: written by a producer when a
 * span is active and a tracer is installed, read back as an
 * `ExternalSpan` by the consumer side.
 *
 * `traceparent: 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`
 * (https://www.w3.org/TR/trace-context/#traceparent-header). Parsing never
 * throws: a header that is not exactly that is ignored.
 */
import * as Context from "effect/Context"
import type * as Fiber from "effect/Fiber"
import * as Tracer from "effect/Tracer"
import type * as Message from "../Message.ts"

/** The header name, as the W3C and OpenTelemetry's Kafka instrumentations spell it. */
export const TRACEPARENT = "traceparent"

/** A version-00 `traceparent` is exactly this long. */
const LENGTH = 55

/** Later versions may append fields; a header longer than this is not one. */
const MAX_LENGTH = 512

/** 0–15 for a lowercase hex digit's char code, -1 otherwise. */
const hexValue = (code: number): number =>
  code >= 48 && code <= 57 ? code - 48 : code >= 97 && code <= 102 ? code - 87 : -1

/** Whether `text` holds only lowercase hex digits and at least one is not zero. */
const isHexId = (text: string, length: number): boolean => {
  if (text.length !== length) return false
  let nonZero = false
  for (let i = 0; i < length; i++) {
    const digit = hexValue(text.charCodeAt(i))
    if (digit < 0) return false
    if (digit !== 0) nonZero = true
  }
  return nonZero
}

/**
 * The `traceparent` of a span, or `undefined` when its ids are not W3C ids
 * (a custom tracer may make others).
 */
export const format = (span: Tracer.AnySpan): string | undefined => {
  const { spanId, traceId } = span
  if (!isHexId(traceId, 32) || !isHexId(spanId, 16)) return undefined
  return `00-${traceId}-${spanId}-${span.sampled ? "01" : "00"}`
}

/** The text of a header value when it is short ASCII, else `undefined` (bytes are not decoded as UTF-8). */
const asciiOf = (value: unknown): string | undefined => {
  if (typeof value === "string") return value.length > MAX_LENGTH ? undefined : value
  if (!(value instanceof Uint8Array) || value.length > MAX_LENGTH) return undefined
  let text = ""
  for (let i = 0; i < value.length; i++) {
    const byte = value[i]
    if (byte > 0x7e || byte < 0x20) return undefined
    text += String.fromCharCode(byte)
  }
  return text
}

/**
 * The remote span a `traceparent` value names, or `undefined` for anything
 * else. Accepts a string or the header's bytes; never throws. Follows the
 * W3C rules: version `ff` and all-zero ids are invalid; a version above
 * `00` may carry more fields after a `-`, which are ignored.
 */
export const parse = (value: unknown): Tracer.ExternalSpan | undefined => {
  let text: string | undefined
  try {
    text = asciiOf(value)
  } catch {
    return undefined
  }
  if (text === undefined || text.length < LENGTH) return undefined
  const v0 = hexValue(text.charCodeAt(0))
  const v1 = hexValue(text.charCodeAt(1))
  if (v0 < 0 || v1 < 0 || (v0 === 15 && v1 === 15)) return undefined
  if (v0 === 0 && v1 === 0 ? text.length !== LENGTH : text.length > LENGTH && text.charCodeAt(LENGTH) !== 45) {
    return undefined
  }
  if (text.charCodeAt(2) !== 45 || text.charCodeAt(35) !== 45 || text.charCodeAt(52) !== 45) return undefined
  const traceId = text.slice(3, 35)
  const spanId = text.slice(36, 52)
  if (!isHexId(traceId, 32) || !isHexId(spanId, 16)) return undefined
  const f0 = hexValue(text.charCodeAt(53))
  const f1 = hexValue(text.charCodeAt(54))
  if (f0 < 0 || f1 < 0) return undefined
  return Tracer.externalSpan({ traceId, spanId, sampled: (f1 & 1) === 1 })
}

/** The value of the first `traceparent` header, or `undefined`. Cheap: one pass over the names. */
export const headerOf = (headers: Message.Headers): Message.HeaderValue | undefined => {
  for (let i = 0; i < headers.length; i++) {
    const header = headers[i]
    if (header[0] === TRACEPARENT) return header[1]
  }
  return undefined
}

/** Whether headers a user gave (a list or a record) already name a `traceparent`. */
export const hasHeader = (headers: Message.OpenHeaders | undefined): boolean => {
  if (headers === undefined) return false
  if (Array.isArray(headers)) return headerOf(headers as Message.Headers) !== undefined
  return Object.prototype.hasOwnProperty.call(headers, TRACEPARENT)
}

/** The remote span of received headers, or `undefined`. */
export const fromHeaders = (headers: Message.Headers): Tracer.ExternalSpan | undefined => {
  if (headers.length === 0) return undefined
  const value = headerOf(headers)
  return value === undefined ? undefined : parse(value)
}

/**
 * Whether the fiber's spans go somewhere: a tracer other than effect's
 * native one is installed and tracing is enabled. Effect's docs suggest the
 * comparison with `nativeTracer` to skip work only a backend could observe.
 */
export const tracing = (fiber: Fiber.Fiber<unknown, unknown>): boolean => {
  const cache = fiber.cache
  return cache.tracer !== undefined && cache.tracer !== Tracer.nativeTracer && cache.tracerEnabled
}

/**
 * The `traceparent` to write for the fiber's current span, or `undefined`:
 * no tracer installed (see {@link tracing}), no span, or a span that asked
 * not to be propagated (`Tracer.DisablePropagation`). Reads the fiber's
 * cache only: no effect, no allocation when there is nothing to write.
 */
export const current = (fiber: Fiber.Fiber<unknown, unknown>): string | undefined => {
  const span = fiber.cache.span
  if (span === undefined || !tracing(fiber)) return undefined
  if (Context.get(span.annotations, Tracer.DisablePropagation)) return undefined
  return format(span)
}
