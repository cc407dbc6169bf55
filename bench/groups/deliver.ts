/**
 * Scenario 4: `deliver` of JSON-encoded messages (bytes, as a Topic receives
 * them) decoded by a 5-field `Schema.Struct` and queued for a reader,
 * against a plain loop of `JSON.parse` + `Schema.decodeUnknownSync` of the
 * same bytes.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { Channel, type Event, Message, runWithApp } from "../lib/app.ts"
import { consume } from "../lib/consumer.ts"
import { type Case, now, type Pair } from "../lib/harness.ts"

export const Order = Schema.Struct({
  id: Schema.String,
  sku: Schema.String,
  qty: Schema.Number,
  price: Schema.Number,
  express: Schema.Boolean
})
type Order = typeof Order.Type

const POOL = 1024
const encoder = new TextEncoder()

/** 1024 distinct messages, cycled: JSON bytes of an order, as a Kafka record carries them. */
export const messages: ReadonlyArray<Message.Message> = Array.from({ length: POOL }, (_, i) =>
  Message.make({
    topic: "orders",
    partition: 0,
    offset: i,
    timestamp: 1_700_000_000_000 + i,
    timestampType: 0,
    key: null,
    value: encoder.encode(JSON.stringify({
      id: `order-${i}`,
      sku: `sku-${(i * 7919) % 1000}`,
      qty: (i % 10) + 1,
      price: Math.round((i * 31) % 10_000) / 100,
      express: i % 3 === 0
    }))
  }))

export const channelDeliver: Case = {
  label: "Channel.deliver (json + Struct) → reader",
  run: (n) =>
    runWithApp(Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Order })
      const done = Deferred.makeUnsafe<void>()
      const consumer = consume(
        Stream.fromQueue(channel.queue),
        n,
        false,
        done,
        (e: Event.Event<unknown, Order>) => e.value.qty
      )
      const fiber = yield* Effect.forkChild(consumer.effect)
      const start = now()
      for (let i = 0; i < n; i++) yield* channel.deliver(messages[i & (POOL - 1)])
      yield* Deferred.await(done)
      const elapsedMs = now() - start
      yield* Fiber.interrupt(fiber)
      return { elapsedMs }
    }))
}

export const plainLoop: Case = {
  label: "loop: JSON.parse + decodeUnknownSync",
  run: async (n) => {
    const decode = Schema.decodeUnknownSync(Order)
    const utf8 = new TextDecoder("utf-8", { fatal: true })
    let sum = 0
    const start = now()
    for (let i = 0; i < n; i++) {
      const order = decode(JSON.parse(utf8.decode(messages[i & (POOL - 1)].value as Uint8Array)))
      sum += order.qty
    }
    const elapsedMs = now() - start
    if (sum < 0) throw new Error("unreachable")
    return { elapsedMs }
  }
}

export const deliver = (n: number): Array<Pair> => [{
  id: "s4-deliver",
  scenario: 4,
  title: "deliver: JSON bytes → 5-field Struct",
  n,
  candidate: channelDeliver,
  baseline: plainLoop,
  latency: false,
  target: { ratio: 0.7, text: "≥ 0.7× plain loop" }
}]
