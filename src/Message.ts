/**
 * The data a channel carries before decoding: Faust's `Message` (a record as
 * it arrived, key and value still raw) and `TopicPartition`.
 *
 * @since 0.1.0
 */

/**
 * A header value: bytes as Kafka carries them, or a string for convenience.
 *
 * @since 0.1.0
 * @category models
 */
export type HeaderValue = Uint8Array | string

/**
 * Headers as a list of `[name, value]` pairs (names may repeat, as in Kafka).
 *
 * @since 0.1.0
 * @category models
 */
export type Headers = ReadonlyArray<readonly [string, HeaderValue]>

/**
 * Headers as a user may give them: a list of pairs or a record.
 *
 * @since 0.1.0
 * @category models
 */
export type OpenHeaders = Headers | Readonly<Record<string, HeaderValue>>

/**
 * A topic and partition pair (Faust's `TP`). Compared structurally.
 *
 * @since 0.1.0
 * @category models
 */
export interface TopicPartition {
  readonly topic: string
  readonly partition: number
}

// Plain classes: effect's `Equal.equals` compares them structurally, and they
// cost one allocation each on the hot paths.
class TopicPartitionImpl implements TopicPartition {
  readonly topic: string
  readonly partition: number
  constructor(topic: string, partition: number) {
    this.topic = topic
    this.partition = partition
  }
}

// Consecutive messages nearly always share a partition: reuse the last pair.
let lastTopicPartition = new TopicPartitionImpl("<anon>", -1)

/**
 * Faust's `TP(topic, partition)`.
 *
 * **Example**
 *
 * ```ts
 * import { Equal } from "effect"
 * import { Message } from "effect-faust"
 *
 * Equal.equals(Message.TopicPartition.make("orders", 0), Message.TopicPartition.make("orders", 0)) // true
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const TopicPartition = {
  make: (topic: string, partition: number): TopicPartition => {
    if (lastTopicPartition.topic !== topic || lastTopicPartition.partition !== partition) {
      lastTopicPartition = new TopicPartitionImpl(topic, partition)
    }
    return lastTopicPartition
  }
}

/**
 * A message as received, before its key and value are decoded. `key` and
 * `value` hold bytes (or values a codec already produced, for in-memory
 * channels). Immutable and compared structurally.
 *
 * @since 0.1.0
 * @category models
 */
export interface Message {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly timestamp: number
  /** 0 = create time, 1 = log-append time (Kafka's numbering). */
  readonly timestampType: number
  readonly headers: Headers
  readonly key: unknown
  readonly value: unknown
  readonly tp: TopicPartition
  readonly serializedKeySize: number
  readonly serializedValueSize: number
  readonly generationId: number | undefined
}

class MessageImpl implements Message {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly timestamp: number
  readonly timestampType: number
  readonly headers: Headers
  readonly key: unknown
  readonly value: unknown
  readonly tp: TopicPartition
  readonly serializedKeySize: number
  readonly serializedValueSize: number
  readonly generationId: number | undefined
  constructor(
    topic: string,
    partition: number,
    offset: number,
    timestamp: number,
    timestampType: number,
    headers: Headers,
    key: unknown,
    value: unknown,
    tp: TopicPartition,
    generationId: number | undefined
  ) {
    this.topic = topic
    this.partition = partition
    this.offset = offset
    this.timestamp = timestamp
    this.timestampType = timestampType
    this.headers = headers
    this.key = key
    this.value = value
    this.tp = tp
    this.serializedKeySize = byteSize(key)
    this.serializedValueSize = byteSize(value)
    this.generationId = generationId
  }
}

/**
 * The fields a user supplies to build a {@link Message}.
 *
 * @since 0.1.0
 * @category models
 */
export interface MessageInput {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly timestamp: number
  readonly timestampType: number
  readonly headers?: Headers | undefined
  readonly key: unknown
  readonly value: unknown
  readonly generationId?: number | undefined
}

const byteSize = (u: unknown): number => u instanceof Uint8Array ? u.byteLength : typeof u === "string" ? u.length : 0

const noHeaders: Headers = []

/**
 * Builds a {@link Message}; `tp` and the serialized sizes are derived.
 *
 * **Example**
 *
 * ```ts
 * import { Message } from "effect-faust"
 *
 * const message = Message.make({
 *   topic: "orders", partition: 0, offset: 42, timestamp: Date.now(), timestampType: 0,
 *   key: new TextEncoder().encode("k1"), value: new TextEncoder().encode("{\"n\":1}")
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (input: MessageInput): Message =>
  new MessageImpl(
    input.topic,
    input.partition,
    input.offset,
    input.timestamp,
    input.timestampType,
    input.headers ?? noHeaders,
    input.key,
    input.value,
    TopicPartition.make(input.topic, input.partition),
    input.generationId
  )

/**
 * A message read from a transport, its `tp` given (one per partition, shared
 * by its messages), without building an input record first. @internal
 */
export const makeReceived = (
  tp: TopicPartition,
  offset: number,
  timestamp: number,
  headers: Headers,
  key: unknown,
  value: unknown,
  generationId: number | undefined
): Message => new MessageImpl(tp.topic, tp.partition, offset, timestamp, 0, headers, key, value, tp, generationId)

/**
 * Normalizes open headers (pairs or a record) to a fresh list of pairs.
 *
 * @since 0.1.0
 * @category utils
 */
export const headersToList = (headers: OpenHeaders | undefined): Array<[string, HeaderValue]> => {
  if (headers === undefined) return []
  if (Array.isArray(headers)) return (headers as Headers).map(([k, v]) => [k, v])
  return Object.entries(headers as Readonly<Record<string, HeaderValue>>)
}
