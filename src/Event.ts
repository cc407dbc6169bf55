/**
 * Faust's `Event`: a decoded key and value together with the headers and the
 * {@link Message} they came from. Streams of a channel emit events.
 *
 * @since 0.1.0
 */
import * as Equal from "effect/Equal"
import * as Hash from "effect/Hash"
import type { Headers, Message } from "./Message.ts"

const TypeId = "~effect-faust/Event" as const

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

/**
 * What every event class shares: equality on key, value, headers and message,
 * whatever the class (an event built by `make` equals the same event from a
 * send, whose message is built lazily).
 *
 * @internal
 */
export abstract class EventBase<K, V> implements Event<K, V>, Equal.Equal {
  get [TypeId](): typeof TypeId {
    return TypeId
  }
  abstract readonly key: K | null
  abstract readonly value: V
  abstract readonly headers: Headers
  abstract readonly message: Message;
  [Equal.symbol](that: unknown): boolean {
    return isEvent(that) &&
      Equal.equals(this.key, that.key) &&
      Equal.equals(this.value, that.value) &&
      Equal.equals(this.headers, that.headers) &&
      Equal.equals(this.message, that.message)
  }
  [Hash.symbol](): number {
    return Hash.combine(Hash.hash(this.key))(Hash.hash(this.value))
  }
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isEvent = (u: unknown): u is Event<unknown, unknown> => typeof u === "object" && u !== null && TypeId in u

class EventImpl<K, V> extends EventBase<K, V> {
  readonly key: K | null
  readonly value: V
  readonly headers: Headers
  readonly message: Message
  constructor(key: K | null, value: V, headers: Headers, message: Message) {
    super()
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
