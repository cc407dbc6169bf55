/**
 * Faust's `Event`: a decoded key and value together with the headers and the
 * {@link Message} they came from. Streams of a channel emit events.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import { dual } from "effect/Function"
import * as Hash from "effect/Hash"
import { NodeInspectSymbol } from "effect/Inspectable"
import * as Option from "effect/Option"
import type * as Tracer from "effect/Tracer"
import * as internalTrace from "./internal/traceContext.ts"
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
  /** An event serializes as its four parts, whatever the class (and however its message is built). */
  toJSON(): unknown {
    return { key: this.key, value: this.value, headers: this.headers, message: this.message }
  }
  [NodeInspectSymbol](): unknown {
    return this.toJSON()
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

/**
 * The producer's span an event carries: the remote span named by its W3C
 * `traceparent` header (`00-<trace id>-<span id>-<flags>`), which a Kafka
 * `send` / `sendSoon` / `sendAll` (and an in-memory `send`) writes when it
 * runs inside a span and a tracer is installed.
 *
 * **When to use**
 *
 * To continue the producer's trace by hand, for example as the `parent` of a
 * span, or as a link (`Effect.withSpan(name, { links: [{ span, attributes: {} }] })`)
 * when one span handles many events. For the common case, see {@link withSpan}.
 *
 * **Details**
 *
 * `Option.none()` when the event has no `traceparent` header or its value is
 * not a valid one (wrong length, version `ff`, all-zero ids, uppercase or
 * non-hex digits, non-ASCII bytes): a hostile header is ignored, never
 * thrown. Only the header is read: it costs a scan of the header names.
 *
 * **Example**
 *
 * ```ts
 * import { Effect, Option } from "effect"
 * import { Event, Message } from "effect-faust"
 *
 * const message = Message.make({ topic: "t", partition: 0, offset: 0, timestamp: 0, timestampType: 0, key: null, value: 1 })
 * const event = Event.make({
 *   key: null,
 *   value: 1,
 *   headers: [["traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]],
 *   message
 * })
 * const remote = Event.traceContext(event) // Option.some(ExternalSpan)
 *
 * const handled = Effect.log("handled").pipe(
 *   Effect.withSpan("handle", Option.match(remote, { onNone: () => ({}), onSome: (parent) => ({ parent }) }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category tracing
 */
export const traceContext = (event: Event<unknown, unknown>): Option.Option<Tracer.ExternalSpan> =>
  Option.fromUndefinedOr(internalTrace.fromHeaders(event.headers))

/**
 * Options of {@link withSpan}: effect's span options but the parent, which is
 * the event's producer span when it carries one.
 *
 * @since 0.1.0
 * @category tracing
 */
export type WithSpanOptions = Omit<Tracer.SpanOptions, "parent">

/**
 * Runs an effect that handles an event inside a span (kind `consumer`) that
 * continues the producer's trace: its parent is the span the event's
 * `traceparent` names (see {@link traceContext}), so the handling appears
 * under the send in the same trace. Without a valid `traceparent` the span's
 * parent is the current span, as with `Effect.withSpan`.
 *
 * **When to use**
 *
 * When consuming a topic without an agent (`topic.events()`): agents already
 * run each event's handler in such a span (`agent <name>`).
 *
 * **Details**
 *
 * The span has the attributes `topic`, `partition` and `offset` of the
 * event's message, then those of `options.attributes`.
 *
 * **Example**
 *
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { Event } from "effect-faust"
 * import { Topic } from "effect-faust/kafka"
 *
 * const program = Effect.gen(function*() {
 *   const orders = yield* Topic.make({ topics: ["orders"], value: Schema.Number })
 *   yield* orders.events().pipe(
 *     Stream.runForEach((event) =>
 *       Effect.log("order", event.value).pipe(Event.withSpan(event, "handle order"))
 *     )
 *   )
 * })
 * ```
 *
 * @since 0.1.0
 * @category tracing
 */
export const withSpan: {
  (
    event: Event<unknown, unknown>,
    name: string,
    options?: WithSpanOptions | undefined
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    event: Event<unknown, unknown>,
    name: string,
    options?: WithSpanOptions | undefined
  ): Effect.Effect<A, E, R>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    event: Event<unknown, unknown>,
    name: string,
    options?: WithSpanOptions | undefined
  ): Effect.Effect<A, E, R> => {
    const message = event.message
    const parent = internalTrace.fromHeaders(event.headers)
    const attributes = {
      topic: message.topic,
      partition: message.partition,
      offset: message.offset,
      ...options?.attributes
    }
    return Effect.withSpan(
      self,
      name,
      parent === undefined
        ? { kind: "consumer", ...options, attributes }
        : { kind: "consumer", ...options, attributes, parent }
    )
  }
)
