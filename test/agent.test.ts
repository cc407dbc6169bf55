import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Layer, Metric, Option, Random, Schedule, Schema, Stream } from "effect"
import { Agent, AgentError, AskTimeoutError, Channel, InvalidChannelOptionsError } from "effect-faust"
import { TestClock } from "effect/testing"
import { AppTest, quiet, waitUntil } from "./helpers.ts"

const numbers = Channel.make({ key: Schema.String, value: Schema.Number, maxsize: 64 })

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

const sendAll = (channel: Channel.Channel<string, number>, values: ReadonlyArray<number>, keys = 4) =>
  Effect.forEach(values, (value) => channel.send({ key: `k${value % keys}`, value }), { discard: true })

const expectInvalid = (option: string, make: Effect.Effect<unknown, InvalidChannelOptionsError>) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(make)
    assert.isTrue(Exit.isFailure(exit))
    const error = Cause.squash((exit as Exit.Failure<unknown, InvalidChannelOptionsError>).cause)
    assert.instanceOf(error, InvalidChannelOptionsError)
    assert.strictEqual((error as InvalidChannelOptionsError).option, option)
  })

describe("Agent.forEach", () => {
  for (const ordering of ["partition", "key", "none"] as const) {
    it.effect(`handles each event exactly once across 4 instances (ordering ${ordering})`, () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const seen: Array<number> = []
        const agent = yield* Agent.forEach("once", channel, (value) => Effect.sync(() => seen.push(value)), {
          concurrency: 4,
          ordering
        })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* sendAll(channel, range(200))
        yield* waitUntil(() => seen.length >= 200)
        yield* channel.end
        yield* Fiber.join(fiber)
        assert.deepStrictEqual([...seen].sort((a, b) => a - b), range(200))
        assert.strictEqual(agent.stats.handled, 200)
        assert.strictEqual(agent.stats.inFlight, 0)
      }).pipe(Effect.provide(AppTest)))
  }

  it.live("keeps per-key order at concurrency 16 with random handler delays", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const byKey = new Map<string, Array<number>>()
      let active = 0
      let maxActive = 0
      const agent = yield* Agent.forEach("ordered", channel, (value, event) =>
        Effect.gen(function*() {
          active++
          maxActive = Math.max(maxActive, active)
          yield* Effect.sleep(yield* Random.nextIntBetween(0, 3))
          active--
          const list = byKey.get(event.key!) ?? []
          list.push(value)
          byKey.set(event.key!, list)
        }), { concurrency: 16 })
      const fiber = yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, range(400), 32)
      yield* channel.end
      yield* Fiber.join(fiber)
      assert.strictEqual(byKey.size, 32)
      for (const [key, values] of byKey) {
        const k = Number(key.slice(1))
        assert.deepStrictEqual(values, range(400).filter((v) => v % 32 === k))
      }
      assert.isAbove(maxActive, 1, "instances ran side by side")
    }).pipe(Effect.provide(AppTest)))

  it.effect("closes batches by size and by time, the window starting at the first event", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const batches: Array<ReadonlyArray<number>> = []
      const agent = yield* Agent.forEach("batches", channel, (values) => Effect.sync(() => batches.push(values)), {
        batch: { size: 3, within: "1 second" }
      })
      yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, range(7))
      yield* waitUntil(() => batches.length >= 2)
      assert.deepStrictEqual(batches, [[0, 1, 2], [3, 4, 5]])
      yield* TestClock.adjust("999 millis")
      assert.strictEqual(batches.length, 2, "the window is still open")
      yield* TestClock.adjust("1 millis")
      yield* waitUntil(() => batches.length >= 3)
      assert.deepStrictEqual(batches[2], [6])
    }).pipe(Effect.provide(AppTest)))

  it.effect("handles the partial batch when the agent stops", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const batches: Array<ReadonlyArray<number>> = []
      const agent = yield* Agent.forEach("partial", channel, (values) => Effect.sync(() => batches.push(values)), {
        batch: { size: 10, within: "1 hour" }
      })
      const fiber = yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, [1, 2])
      yield* waitUntil(() => agent.stats.inFlight === 2)
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(batches, [[1, 2]])
      assert.strictEqual(agent.stats.handled, 2)
    }).pipe(Effect.provide(AppTest)))

  it.effect("lets in-flight events finish when stopped, and reads no more", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const done: Array<number> = []
      const agent = yield* Agent.forEach(
        "graceful",
        channel,
        (value) => Effect.andThen(Effect.sleep("1 second"), Effect.sync(() => done.push(value))),
        { concurrency: 2, ordering: "none" }
      )
      const fiber = yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, [1, 2])
      yield* waitUntil(() => agent.stats.inFlight === 2)
      const stopping = yield* Effect.forkChild(Fiber.interrupt(fiber))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(stopping)
      assert.deepStrictEqual([...done].sort(), [1, 2])
    }).pipe(Effect.provide(AppTest)))

  it.effect("retries per onError.retry and counts the retries", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      let attempts = 0
      const agent = yield* Agent.forEach("retry", channel, () =>
        Effect.suspend(() =>
          ++attempts < 3 ? Effect.fail("flaky") : Effect.void
        ), {
        onError: { retry: Schedule.recurs(5) }
      })
      yield* Effect.forkChild(agent.run)
      yield* channel.send({ value: 1 })
      yield* waitUntil(() =>
        agent.stats.handled === 1
      )
      assert.strictEqual(attempts, 3)
      assert.strictEqual(agent.stats.retries, 2)
      assert.strictEqual(agent.stats.failed, 0)
    }).pipe(Effect.provide(AppTest)))

  it.effect("skips a failing event after its retries and goes on", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const handled: Array<number> = []
      let attempts = 0
      const agent = yield* Agent.forEach("skip", channel, (value) =>
        Effect.suspend(() => {
          if (value === 2) {
            attempts++
            return Effect.fail(new Error("bad"))
          }
          handled.push(value)
          return Effect.void
        }), { onError: { retry: Schedule.recurs(2), then: "skip" } })
      yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, [1, 2, 3])
      yield* waitUntil(() => handled.length === 2)
      assert.deepStrictEqual(handled, [1, 3])
      assert.strictEqual(attempts, 3)
      assert.strictEqual(agent.stats.skipped, 1)
      assert.strictEqual(agent.stats.failed, 1)
    }).pipe(Effect.provide([AppTest, quiet])))

  it.effect("dead-letters a failing event with the original key, value, headers and the error headers", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const dead = yield* Channel.make({ maxsize: 8 })
      const letters = yield* Effect.forkChild(Stream.runCollect(Stream.take(dead.events(), 1)))
      yield* waitUntil(() => dead.subscriberCount === 1)
      const agent = yield* Agent.forEach(
        "dlq",
        channel,
        (value) => value === 7 ? Effect.fail(new Error("seven is bad")) : Effect.void,
        { onError: { retry: Schedule.recurs(1), then: { deadLetter: dead } } }
      )
      yield* Effect.forkChild(agent.run)
      yield* channel.send({ key: "k", value: 7, headers: { trace: "abc" } })
      const [letter] = yield* Fiber.join(letters)
      assert.strictEqual(letter.key, "k")
      assert.strictEqual(letter.value, 7)
      const headers = Object.fromEntries(letter.headers)
      assert.strictEqual(headers.trace, "abc")
      assert.strictEqual(headers["x-error"], "Error")
      assert.strictEqual(headers["x-error-message"], "seven is bad")
      assert.strictEqual(headers["x-agent"], "dlq")
      assert.strictEqual(headers["x-attempts"], "2")
      assert.strictEqual(headers["x-source-channel"], channel.label)
      assert.isDefined(headers["x-source-topic"])
      assert.isDefined(headers["x-source-partition"])
      assert.isDefined(headers["x-source-offset"])
      yield* waitUntil(() => agent.stats.deadLettered === 1)
    }).pipe(Effect.provide([AppTest, quiet])))

  it.effect("fails with a typed AgentError naming the agent, the channel and the attempts when it cannot go on", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const agent = yield* Agent.forEach("fails", channel, () => Effect.fail("boom"), {
        onError: { retry: Schedule.recurs(1) }
      })
      const fiber = yield* Effect.forkChild(agent.run)
      yield* channel.send({ value: 1 })
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      const error = Cause.squash((exit as Exit.Failure<void, unknown>).cause)
      assert.instanceOf(error, AgentError)
      const agentError = error as AgentError
      assert.strictEqual(agentError.agent, "fails")
      assert.strictEqual(agentError.channel, channel.label)
      assert.strictEqual(agentError.attempts, 2)
      assert.strictEqual(agentError.cause, "boom")
      assert.include(agentError.message, "fails")
    }).pipe(Effect.provide([AppTest, quiet])))

  it.effect("a handler that throws is a failed event, not a defect", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const agent = yield* Agent.forEach("throws", channel, () =>
        Effect.sync(() => {
          throw new Error("thrown")
        }), { onError: { then: "skip" } })
      yield* Effect.forkChild(agent.run)
      yield* channel.send({ value: 1 })
      yield* waitUntil(() => agent.stats.skipped === 1)
    }).pipe(Effect.provide([AppTest, quiet])))

  it.effect("restarts per its schedule and handles the failed event again first (in memory nothing is lost)", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const handled: Array<number> = []
      let failures = 0
      const agent = yield* Agent.forEach("restarts", channel, (value) =>
        Effect.suspend(() => {
          if (value === 2 && failures++ === 0) return Effect.fail("once")
          handled.push(value)
          return Effect.void
        }), { restart: Schedule.recurs(3) })
      yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, [1, 2, 3])
      yield* waitUntil(() => handled.length === 3)
      assert.deepStrictEqual(handled, [1, 2, 3])
      assert.strictEqual(agent.stats.restarts, 1)
    }).pipe(Effect.provide([AppTest, quiet])))

  it.effect("gives up once the restart schedule does, with the restarts counted in the error", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const agent = yield* Agent.forEach("gives-up", channel, () => Effect.fail("always"), {
        restart: Schedule.recurs(2)
      })
      const fiber = yield* Effect.forkChild(agent.run)
      yield* channel.send({ value: 1 })
      const exit = yield* Fiber.await(fiber)
      const error = Cause.squash((exit as Exit.Failure<void, unknown>).cause) as AgentError
      assert.instanceOf(error, AgentError)
      assert.strictEqual(error.restarts, 2)
      assert.strictEqual(agent.stats.restarts, 2)
    }).pipe(Effect.provide([AppTest, quiet])))

  it.effect("fails with AgentError when its source fails", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make<{ value: typeof Schema.Number; error: typeof Schema.String }>({
        value: Schema.Number,
        error: Schema.String
      })
      const agent = yield* Agent.forEach("source-fails", channel, () => Effect.void)
      const fiber = yield* Effect.forkChild(agent.run)
      yield* waitUntil(() => channel.subscriberCount === 1)
      yield* channel.throw("broken")
      const exit = yield* Fiber.await(fiber)
      const error = Cause.squash((exit as Exit.Failure<void, unknown>).cause) as AgentError
      assert.instanceOf(error, AgentError)
      assert.strictEqual(error.attempts, 0)
      assert.strictEqual(error.cause, "broken")
    }).pipe(Effect.provide([AppTest, quiet])))

  it.effect("sends each result to every sink: a channel and a function", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const doubled = yield* Channel.make({ value: Schema.Number, maxsize: 8 })
      const results = yield* Effect.forkChild(Stream.runCollect(Stream.take(doubled.stream(), 3)))
      yield* waitUntil(() => doubled.subscriberCount === 1)
      const seen: Array<number> = []
      const agent = yield* Agent.forEach("sinks", channel, (value) => Effect.succeed(value * 2), {
        sinks: [doubled, (value: number) => Effect.sync(() => seen.push(value))]
      })
      yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, [1, 2, 3])
      assert.deepStrictEqual(yield* Fiber.join(results), [2, 4, 6])
      yield* waitUntil(() => seen.length === 3)
      assert.deepStrictEqual(seen, [2, 4, 6])
    }).pipe(Effect.provide(AppTest)))

  it.effect("a failing sink fails the event like its handler", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const agent = yield* Agent.forEach("sink-fails", channel, (value) => Effect.succeed(value), {
        sinks: [() => Effect.fail("sink down")],
        onError: { then: "skip" }
      })
      yield* Effect.forkChild(agent.run)
      yield* channel.send({ value: 1 })
      yield* waitUntil(() => agent.stats.skipped === 1)
      assert.strictEqual(agent.stats.handled, 0)
    }).pipe(Effect.provide([AppTest, quiet])))
})

describe("Agent ask / map / join", () => {
  it.effect("ask gets what the handler returned for its event, matched under concurrency", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const agent = yield* Agent.forEach("square", channel, (value) => Effect.succeed(value * value), {
        concurrency: 4,
        ordering: "none"
      })
      yield* Effect.forkChild(agent.run)
      const replies = yield* Effect.forEach(range(20), (value) => agent.ask({ value, timeout: "1 second" }), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(replies, range(20).map((v) => v * v))
      assert.deepStrictEqual(yield* agent.join([3, 4], { timeout: "1 second" }), [9, 16])
      const mapped = yield* Stream.runCollect(agent.map([5, 6], { timeout: "1 second" }))
      assert.deepStrictEqual([...mapped].sort((a, b) => a - b), [25, 36])
    }).pipe(Effect.provide(AppTest)))

  it.effect("ask times out with AskTimeoutError; the late reply is dropped, counted and harmless", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const agent = yield* Agent.forEach(
        "slow",
        channel,
        (value) => Effect.as(Effect.sleep("2 seconds"), value)
      )
      yield* Effect.forkChild(agent.run)
      const asking = yield* Effect.forkChild(Effect.exit(agent.ask({ value: 1, timeout: "1 second" })))
      yield* waitUntil(() => agent.stats.inFlight === 1)
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.join(asking)
      assert.isTrue(Exit.isFailure(exit))
      assert.instanceOf(Cause.squash((exit as Exit.Failure<number, unknown>).cause), AskTimeoutError)
      yield* TestClock.adjust("1 second")
      yield* waitUntil(() => agent.stats.handled === 1)
      assert.strictEqual(agent.stats.repliesDropped, 1)
      const second = yield* Effect.forkChild(agent.ask({ value: 2, timeout: "5 seconds" }))
      yield* waitUntil(() => agent.stats.inFlight === 1)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(yield* Fiber.join(second), 2)
    }).pipe(Effect.provide(AppTest)))

  it.effect("send and cast go to the agent's source", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const seen: Array<number> = []
      const agent = yield* Agent.forEach("sends", channel, (value) => Effect.sync(() => seen.push(value)))
      yield* Effect.forkChild(agent.run)
      yield* agent.send({ value: 1 })
      yield* agent.cast({ value: 2 })
      yield* waitUntil(() => seen.length === 2)
      assert.deepStrictEqual(seen, [1, 2])
    }).pipe(Effect.provide(AppTest)))
})

describe("Agent options and lifecycle", () => {
  it.effect("refuses invalid options, naming the option", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const handler = () => Effect.void
      yield* expectInvalid("concurrency", Agent.forEach("a", channel, handler, { concurrency: 0 }))
      yield* expectInvalid("concurrency", Agent.forEach("a", channel, handler, { concurrency: 1.5 }))
      yield* expectInvalid("ordering", Agent.forEach("a", channel, handler, { ordering: "random" as never }))
      yield* expectInvalid("batch.size", Agent.forEach("a", channel, handler, { batch: { size: 0, within: 1 } }))
      yield* expectInvalid(
        "batch.within",
        Agent.forEach("a", channel, handler, { batch: { size: 1, within: -1 } })
      )
      yield* expectInvalid("shutdownTimeout", Agent.forEach("a", channel, handler, { shutdownTimeout: -5 }))
      yield* expectInvalid("onError.then", Agent.forEach("a", channel, handler, { onError: { then: "drop" as never } }))
      yield* expectInvalid("sinks", Agent.forEach("a", channel, handler, { sinks: [42 as never] }))
    }).pipe(Effect.provide(AppTest)))

  it.effect("two agents with one name in one app: the second fails at startup", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const first = yield* Agent.forEach("twin", channel, () => Effect.void)
      const second = yield* Agent.forEach("twin", channel, () => Effect.void)
      yield* Effect.forkChild(first.run)
      yield* waitUntil(() => channel.subscriberCount === 1)
      const exit = yield* Effect.exit(second.run)
      assert.isTrue(Exit.isFailure(exit))
      const error = Cause.squash((exit as Exit.Failure<void, unknown>).cause) as InvalidChannelOptionsError
      assert.instanceOf(error, InvalidChannelOptionsError)
      assert.strictEqual(error.option, "name")
    }).pipe(Effect.provide(AppTest)))

  it.effect("Agent.layer runs the agent while the layer lives and stops it with the scope", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const seen: Array<number> = []
      const agent = yield* Agent.forEach("layered", channel, (value) => Effect.sync(() => seen.push(value)))
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Layer.build(Agent.layer(agent))
        yield* waitUntil(() => channel.subscriberCount === 1)
        yield* channel.send({ value: 1 })
        yield* waitUntil(() => seen.length === 1)
      }))
      assert.strictEqual(channel.subscriberCount, 0, "the agent left the channel with its scope")
      assert.isTrue(Option.isNone(Option.fromNullishOr(undefined)))
    }).pipe(Effect.provide(AppTest)))
})

describe("Agent.make (a process stream)", () => {
  it.effect("emits to the sinks and replies to the asker of the event read last", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const out: Array<number> = []
      const agent = yield* Agent.make("tenfold", channel, (values) => Stream.map(values, (v) => v * 10), {
        sinks: [(value: number) => Effect.sync(() => out.push(value))]
      })
      yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, [1, 2])
      assert.strictEqual(yield* agent.ask({ value: 3, timeout: "1 second" }), 30)
      yield* waitUntil(() => out.length === 3)
      assert.deepStrictEqual(out, [10, 20, 30])
    }).pipe(Effect.provide(AppTest)))

  it.effect("acknowledges an event when the process reads the next one", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const latch = yield* Deferred.make<void>()
      const agent = yield* Agent.make(
        "held",
        channel,
        (values) => Stream.mapEffect(values, (v) => v === 2 ? Effect.as(Deferred.await(latch), v) : Effect.succeed(v))
      )
      const fiber = yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, range(5))
      yield* waitUntil(() => agent.stats.handled === 2)
      yield* Effect.yieldNow
      assert.strictEqual(agent.stats.handled, 2, "event 2 is still in the process")
      yield* Deferred.succeed(latch, undefined)
      yield* channel.end
      yield* Fiber.join(fiber)
      assert.strictEqual(agent.stats.handled, 5)
      assert.strictEqual(agent.stats.inFlight, 0)
    }).pipe(Effect.provide(AppTest)))

  it.effect("batch mode: the process reads arrays of values", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const sums: Array<number> = []
      const agent = yield* Agent.make(
        "sums",
        channel,
        (batches) => Stream.map(batches, (values) => values.reduce((a, b) => a + b, 0)),
        { batch: { size: 2, within: "1 hour" }, sinks: [(sum: number) => Effect.sync(() => sums.push(sum))] }
      )
      const fiber = yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, [1, 2, 3, 4, 5])
      yield* waitUntil(() => sums.length === 2)
      yield* channel.end
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(sums, [3, 7, 5])
    }).pipe(Effect.provide(AppTest)))

  it.effect("a failing process skips the event it was on and goes on with a fresh process", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const out: Array<number> = []
      const agent = yield* Agent.make(
        "fragile",
        channel,
        (values) => Stream.mapEffect(values, (v) => v === 2 ? Effect.fail("two") : Effect.succeed(v)),
        { onError: { then: "skip" }, sinks: [(value: number) => Effect.sync(() => out.push(value))] }
      )
      yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, [1, 2, 3])
      yield* waitUntil(() => out.length === 2)
      assert.deepStrictEqual(out, [1, 3])
      assert.strictEqual(agent.stats.skipped, 1)
    }).pipe(Effect.provide([AppTest, quiet])))

  it.effect("a process that ends without reading its input fails the agent instead of stalling", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const agent = yield* Agent.make("lazy", channel, () => Stream.empty)
      const exit = yield* Effect.exit(agent.run)
      assert.isTrue(Exit.isFailure(exit))
      assert.instanceOf(Cause.squash((exit as Exit.Failure<void, unknown>).cause), AgentError)
    }).pipe(Effect.provide([AppTest, quiet])))
})

describe("AgentError", () => {
  it("names the tag of a cause whose message is empty", () => {
    class Refused extends Schema.TaggedError<Refused>()("Refused", {}) {}
    const error = new AgentError({ agent: "a", channel: "orders", attempts: 2, restarts: 1, cause: new Refused() })
    assert.strictEqual(error.message, "agent a failed reading orders after 2 attempts and 1 restart: Refused")
  })
})

describe("Agent metrics", () => {
  it.effect("registers its series with the agent attribute while it runs: counters, status and wiring", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ label: "metered-source", value: Schema.Number })
      const out = yield* Channel.make({ label: "metered-sink", value: Schema.Number })
      const agent = yield* Agent.forEach("metered", channel, (value) => Effect.succeed(value), { sinks: [out] })
      assert.strictEqual(agent.stats.status, "idle")
      const fiber = yield* Effect.forkChild(agent.run)
      yield* channel.send({ value: 1 })
      yield* waitUntil(() => agent.stats.handled === 1)
      assert.strictEqual(agent.stats.status, "running")
      const series = (yield* Metric.snapshot).filter((metric) => metric.attributes?.agent === "metered")
      const byName = new Map(series.map((metric) => [metric.id, metric]))
      assert.deepInclude(byName.get("effect_faust_agent_events_total")!.state as { count: number }, { count: 1 })
      assert.deepInclude(byName.get("effect_faust_agent_running")!.state as { value: number }, { value: 1 })
      assert.deepInclude(byName.get("effect_faust_agent_info")!.attributes, {
        source: "metered-source",
        sinks: JSON.stringify(["metered-sink"])
      })
      assert.strictEqual(
        (byName.get("effect_faust_agent_processing_seconds")!.state as { count: number }).count,
        1
      )
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(agent.stats.status, "stopped")
      const after = (yield* Metric.snapshot).filter((metric) => metric.attributes?.agent === "metered")
      assert.deepStrictEqual(after, [], "unregistered when the agent stops")
    }).pipe(Effect.provide(AppTest)))
})
