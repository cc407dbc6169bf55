import { type Message as KafkaMessage, type MessagesStream } from "@platformatic/kafka"
import * as Effect from "effect/Effect"
import { isUtf8 } from "node:buffer"
import type * as Event from "../../Event.ts"
import * as Message from "../../Message.ts"

/** Shared by every message without headers (headers are read-only). */
const noHeaders: Message.Headers = []

/** A received record's headers, names as text (see `rawHeaders` for those that are not). */
export const headersOf = (m: KafkaMessage): Message.Headers => {
  const headerEntries = m.headerEntries
  return headerEntries.length === 0 ? noHeaders : headerEntries.map(([name, value]) => [
    name.toString("utf8"),
    value === undefined || value === null ? new Uint8Array(0) : value
  ])
}

/**
 * The client's record as a Message. Key, value and header bytes are the
 * client's own `Buffer`s (a `Uint8Array`, equal by `Equal.equals` to one
 * holding the same bytes): no copy, and no view made per record.
 */
export const toMessage = (
  m: KafkaMessage,
  tp: Message.TopicPartition,
  headers: Message.Headers = headersOf(m)
): Message.Message => {
  const message = Message.makeReceived(
    tp,
    Number(m.offset),
    Number(m.timestamp),
    headers,
    m.key ?? null,
    m.value ?? null,
    generationOf(m)
  )
  const headerEntries = m.headerEntries
  if (headerEntries.length > 0 && headerEntries.some(([name, value]) => value == null || !isUtf8(name))) {
    rawHeaders.set(
      message,
      headerEntries.map(([name, value]) => [name, value ?? null])
    )
  }
  return message
}

/**
 * The header bytes of received messages whose headers do not survive as
 * text (a name that is not UTF-8, a null value), for dead letters.
 */
export const rawHeaders = new WeakMap<Message.Message, ReadonlyArray<readonly [Uint8Array, Uint8Array | null]>>()

export const utf8Bytes = (text: string): Uint8Array => Buffer.from(text, "utf8")

/** Dead letters to send with exact header bytes (see `rawHeaders`). */
export const deadLetterHeaders = new WeakMap<
  Event.Event<any, any>,
  ReadonlyArray<readonly [Uint8Array, Uint8Array | null]>
>()

/**
 * The exact header bytes to produce an event with: those registered for a
 * dead letter, or, for an event whose headers begin with the very header
 * pairs of the message it was received as (an agent's dead letter, a
 * received event put again), that message's original bytes followed by the
 * rest. `undefined` when the headers survive as text.
 */
export const exactHeaders = (
  event: Event.Event<any, any>
): ReadonlyArray<readonly [Uint8Array, Uint8Array | null]> | undefined => {
  const registered = deadLetterHeaders.get(event)
  if (registered !== undefined) return registered
  const message = event.message
  const original = rawHeaders.get(message)
  if (original === undefined) return undefined
  const received = message.headers
  const headers = event.headers
  if (headers.length < received.length) return undefined
  for (let i = 0; i < received.length; i++) if (headers[i] !== received[i]) return undefined
  const rest = headers.slice(received.length).map(([name, value]) =>
    [utf8Bytes(name), typeof value === "string" ? utf8Bytes(value) : value] as const
  )
  return [...original, ...rest]
}

export const generationOf = (m: KafkaMessage): number | undefined => {
  const consumer = m.metadata.consumer as { readonly generationId?: number } | undefined
  return consumer?.generationId
}

/** At most this many messages are read from a client stream at once. */
const READ_BATCH = 1024

/**
 * Reads a client stream in batches: `next` is what the stream has buffered
 * (waiting for some), `undefined` once it ended, or fails with its error (a
 * stream closed before its end fails, as its async iterator would). `done`
 * stops reading: a stream left while a batch was being handled is destroyed
 * (as the async iterator's `return` does); one left while waiting is left
 * for its `close`.
 */
export const readerOf = (stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>): {
  readonly next: Effect.Effect<ReadonlyArray<KafkaMessage> | undefined, unknown>
  readonly done: () => void
} => {
  let error: unknown = undefined
  let errored = false
  let ended = false
  let closed = false
  let waiting = false
  let wake: (() => void) | undefined
  const notify = () => {
    const resume = wake
    wake = undefined
    resume?.()
  }
  const onError = (cause: unknown) => {
    if (!errored) {
      errored = true
      error = cause
    }
    notify()
  }
  const onEnd = () => {
    ended = true
    notify()
  }
  const onClose = () => {
    closed = true
    notify()
  }
  stream.on("readable", notify)
  stream.on("error", onError)
  stream.on("end", onEnd)
  stream.on("close", onClose)
  const next = Effect.callback<ReadonlyArray<KafkaMessage> | undefined, unknown>((resume) => {
    const attempt = (): boolean => {
      if (errored) {
        resume(Effect.fail(error))
        return true
      }
      const batch: Array<KafkaMessage> = []
      let message: KafkaMessage | null
      while (batch.length < READ_BATCH && (message = stream.read()) !== null) batch.push(message)
      if (batch.length > 0) {
        resume(Effect.succeed(batch))
        return true
      }
      if (ended) {
        resume(Effect.succeed(undefined))
        return true
      }
      if (closed || stream.destroyed) {
        resume(Effect.fail(Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" })))
        return true
      }
      return false
    }
    waiting = true
    if (attempt()) {
      waiting = false
      return
    }
    const retry = () => {
      if (attempt()) waiting = false
      else wake = retry
    }
    wake = retry
    return Effect.sync(() => {
      wake = undefined
    })
  })
  const done = () => {
    wake = undefined
    stream.off("readable", notify)
    stream.off("end", onEnd)
    stream.off("close", onClose)
    // The error listener stays: an error emitted later must not go unheard.
    if (!waiting && !stream.destroyed) stream.destroy()
  }
  return { next, done }
}
