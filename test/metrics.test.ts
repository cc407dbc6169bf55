import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric, Result, Schema } from "effect"
import { Channel, Event } from "effect-faust"
import { AppTest, bytes, quiet, rawMessage } from "./helpers.ts"

/** The current value of a channel series, by metric id and attributes. */
const read = (id: string, attributes: Record<string, string>) =>
  Effect.map(Metric.snapshot, (snapshots) => {
    const found = snapshots.find((snapshot) =>
      snapshot.id === id &&
      Object.entries(attributes).every(([key, value]) => snapshot.attributes?.[key] === value)
    )
    if (found === undefined) return undefined
    return "count" in found.state
      ? Number(found.state.count)
      : "value" in found.state
      ? Number(found.state.value)
      : undefined
  })

const Isolated = Layer.succeed(Metric.MetricRegistry, new Map())

describe("metrics", () => {
  it.effect("registerMetrics exposes sent, dropped, delivered, decode errors by policy, subscribers and queue depths", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ label: "m", value: Schema.Number, onDecodeError: "skip" })
      yield* channel.registerMetrics
      const at = { channel: "m" }
      yield* channel.send({ value: 1 })
      yield* channel.send({ value: 2 })
      assert.strictEqual(yield* read("effect_faust_sent_total", at), 2)
      assert.strictEqual(yield* read("effect_faust_queue_depth", { ...at, queue: "buffer" }), 2)
      const subscriber = yield* channel.clone({ isIterator: true })
      assert.strictEqual(yield* read("effect_faust_subscribers", at), 1)
      yield* channel.sendAll([3, 4, 5])
      assert.strictEqual(yield* read("effect_faust_sent_total", at), 5)
      assert.strictEqual(yield* read("effect_faust_queue_depth", { ...at, queue: "subscriber-0" }), 3)
      // the first subscriber reads the buffered events first, then its own queue
      assert.strictEqual((yield* subscriber.get()).value, 1)
      assert.strictEqual(yield* read("effect_faust_queue_depth", { ...at, queue: "buffer" }), 1)
      yield* subscriber.get()
      yield* subscriber.get()
      assert.strictEqual(yield* read("effect_faust_queue_depth", { ...at, queue: "subscriber-0" }), 2)
      yield* channel.deliver(rawMessage(bytes("6")))
      yield* channel.deliver(rawMessage(bytes("not json")))
      assert.strictEqual(yield* read("effect_faust_delivered_total", at), 1)
      assert.strictEqual(yield* read("effect_faust_decode_errors_total", { ...at, policy: "skipped" }), 1)
      assert.strictEqual(yield* read("effect_faust_decode_errors_total", { ...at, policy: "failed" }), 0)
      yield* subscriber.onStopIteration
      assert.strictEqual(yield* read("effect_faust_queue_depth", { ...at, queue: "subscriber-0" }), undefined)
      assert.strictEqual(yield* read("effect_faust_subscribers", at), 0)
      const dropping = yield* Channel.make({ label: "d", whenNoSubscribers: "drop" })
      yield* dropping.registerMetrics
      yield* dropping.send({ value: 1 })
      assert.strictEqual(yield* read("effect_faust_dropped_total", { channel: "d" }), 1)
      const failing = yield* Channel.make({ label: "f", whenNoSubscribers: "fail" })
      yield* failing.registerMetrics
      yield* Effect.flip(failing.send({ value: 1 }))
      assert.strictEqual(yield* read("effect_faust_sent_total", { channel: "f" }), 0, "a refused send is not counted")
    }).pipe(Effect.provide([AppTest, quiet, Isolated])))

  it.effect("the series go away when the scope closes; Channel.Service layers register them", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ label: "scoped" })
      yield* Effect.scoped(Effect.gen(function*() {
        yield* channel.registerMetrics
        assert.strictEqual(yield* read("effect_faust_sent_total", { channel: "scoped" }), 0)
      }))
      assert.strictEqual(yield* read("effect_faust_sent_total", { channel: "scoped" }), undefined)

      class Orders extends Channel.Service<Orders>()("metrics/Orders", { value: Schema.Number }) {}
      yield* Effect.gen(function*() {
        const orders = yield* Orders
        yield* orders.send({ value: 1 })
        assert.strictEqual(yield* read("effect_faust_sent_total", { channel: "metrics/Orders" }), 1)
      }).pipe(Effect.provide(Orders.layer))
    }).pipe(Effect.provide([AppTest, Isolated])))
})

describe("spans", () => {
  const currentSpanName = Effect.map(
    Effect.result(Effect.currentSpan),
    (result) => Result.isSuccess(result) ? result.success.name : undefined
  )

  it.effect("with spans: true, send and deliver run inside Channel.send / Channel.deliver spans", () =>
    Effect.gen(function*() {
      const seen: Array<string | undefined> = []
      const spy = {
        [Channel.TypeId]: Channel.TypeId,
        label: "spy",
        put: (_event: Event.Event<any, any>) => Effect.map(currentSpanName, (name) => void seen.push(name))
      }
      const traced = yield* Channel.make({ value: Schema.Number, spans: true, onDecodeError: { deadLetter: spy } })
      yield* traced.send({ value: 1, callback: () => Effect.map(currentSpanName, (name) => void seen.push(name)) })
      yield* traced.deliver(rawMessage(bytes("oops")))
      assert.deepStrictEqual(seen, ["Channel.send", "Channel.deliver"])

      const untraced = yield* Channel.make({ value: Schema.Number, onDecodeError: { deadLetter: spy } })
      yield* untraced.deliver(rawMessage(bytes("oops")))
      assert.strictEqual(seen[2], undefined)
    }).pipe(Effect.provide([AppTest, quiet])))
})
