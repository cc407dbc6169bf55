/**
 * Quickstart: a typed channel, a subscriber stream, send, and get.
 *
 * Run: npx tsx examples/quickstart.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Fiber, Schema, Stream } from "effect"
import { App, Channel } from "effect-faust"

const Order = Schema.Struct({ id: Schema.String, qty: Schema.Number })

const program = Effect.gen(function*() {
  const orders = yield* Channel.make({ label: "orders", key: Schema.String, value: Order })

  // Nobody subscribes yet: the default policy keeps the message for get().
  yield* orders.send({ key: "o-0", value: { id: "o-0", qty: 1 } })
  const first = yield* orders.get({ timeout: "1 second" })
  yield* Console.log(`get() -> key=${first.key} value=${JSON.stringify(first.value)}`)

  // A subscriber: the stream subscribes when it starts.
  const subscriber = yield* orders.stream().pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
  yield* Effect.yieldNow
  for (let i = 1; i <= 3; i++) {
    const metadata = yield* orders.send({ key: `o-${i}`, value: { id: `o-${i}`, qty: i * 10 } })
    yield* Console.log(
      `sent o-${i} -> topic=${metadata.topic} partition=${metadata.partition} offset=${metadata.offset}`
    )
  }
  const received = yield* Fiber.join(subscriber)
  yield* Console.log(`stream() received: ${received.map((order) => `${order.id}:${order.qty}`).join(", ")}`)
  yield* Console.log(`subscribers after the stream ended: ${orders.subscriberCount}`)
})

program.pipe(Effect.provide(App.layer({ id: "quickstart" })), NodeRuntime.runMain)
