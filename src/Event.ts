/**
 * Faust's `Event`: a decoded key and value together with the headers and the
 * {@link Message} they came from. Streams of a channel emit events.
 *
 * @since 0.1.0
 */
import type { Headers, Message } from "./Message.ts"

/**
 * A decoded event. Immutable and compared structurally.
 *
 * @since 0.1.0
 * @category models
 */
export interface Event<out K, out V> {
  readonly key: K | null
  readonly value: V
  readonly headers: Headers
  readonly message: Message
}

// A plain class: effect's `Equal.equals` compares it structurally.
class EventImpl<K, V> implements Event<K, V> {
  readonly key: K | null
  readonly value: V
  readonly headers: Headers
  readonly message: Message
  constructor(key: K | null, value: V, headers: Headers, message: Message) {
    this.key = key
    this.value = value
    this.headers = headers
    this.message = message
  }
}

/**
 * Builds an {@link Event}.
 *
 * **Example**
 *
 * ```ts
 * import { Event, Message } from "effect-faust"
 *
 * const message = Message.make({ topic: "t", partition: 0, offset: 0, timestamp: 0, timestampType: 0, key: null, value: 1 })
 * const event = Event.make({ key: null, value: 1, headers: [], message })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <K, V>(fields: Event<K, V>): Event<K, V> =>
  new EventImpl<K, V>(fields.key, fields.value, fields.headers, fields.message)
