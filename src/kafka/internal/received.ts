import { isUtf8 } from "node:buffer"
import type * as Event from "../../Event.ts"
import * as Message from "../../Message.ts"

/**
 * A record the consumer fetched (see `fetcher.ts`): the client's parsed key,
 * value and header bytes as they are, with where the record is.
 */
export class Received {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  /** The batch's first timestamp; with `timestampDelta`, the record's (added only when read). */
  readonly batchTimestamp: bigint
  readonly timestampDelta: bigint
  /** The leader epoch of the record's batch, committed with its offset (KIP-320). */
  readonly leaderEpoch: number
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headerEntries: ReadonlyArray<readonly [Buffer | null, Buffer | null]>
  /** The group generation whose fetcher read it. */
  readonly generation: number
  constructor(
    topic: string,
    partition: number,
    offset: bigint,
    batchTimestamp: bigint,
    timestampDelta: bigint,
    leaderEpoch: number,
    key: Buffer | null,
    value: Buffer | null,
    headerEntries: ReadonlyArray<readonly [Buffer | null, Buffer | null]>,
    generation: number
  ) {
    this.topic = topic
    this.partition = partition
    this.offset = offset
    this.batchTimestamp = batchTimestamp
    this.timestampDelta = timestampDelta
    this.leaderEpoch = leaderEpoch
    this.key = key
    this.value = value
    this.headerEntries = headerEntries
    this.generation = generation
  }
  get timestamp(): bigint {
    return this.batchTimestamp + this.timestampDelta
  }
}

const noBytes = new Uint8Array(0)

/** Shared by every message without headers (headers are read-only). */
const noHeaders: Message.Headers = []

/** A received record's headers, names as text (see `rawHeaders` for those that are not). */
export const headersOf = (m: Received): Message.Headers => {
  const headerEntries = m.headerEntries
  return headerEntries.length === 0 ? noHeaders : headerEntries.map(([name, value]) => [
    name === null ? "" : name.toString("utf8"),
    value === null ? noBytes : value
  ])
}

/**
 * The client's record as a Message. Key, value and header bytes are the
 * client's own `Buffer`s (a `Uint8Array`, equal by `Equal.equals` to one
 * holding the same bytes): no copy, and no view made per record.
 */
export const toMessage = (
  m: Received,
  tp: Message.TopicPartition,
  headers: Message.Headers = headersOf(m)
): Message.Message => {
  const message = Message.makeReceived(
    tp,
    Number(m.offset),
    Number(m.timestamp),
    headers,
    m.key,
    m.value,
    m.generation
  )
  const headerEntries = m.headerEntries
  if (
    headerEntries.length > 0 && headerEntries.some(([name, value]) => value === null || name === null || !isUtf8(name))
  ) {
    rawHeaders.set(message, headerEntries.map(([name, value]) => [name ?? noBytes, value]))
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
