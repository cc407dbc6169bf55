/**
 * A hostile review of the agents' promises (README "Agents", "Metrics and
 * tracing"), tested from the outside, in memory. Each test quotes or
 * paraphrases the promise it checks.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Layer, Logger, Metric, Schedule, Schema, Stream } from "effect"
import { Agent, AgentError, App, AskTimeoutError, Channel, InvalidChannelOptionsError } from "effect-faust"
import { TestClock } from "effect/testing"
import { AppTest, quiet, waitUntil } from "./helpers.ts"

const numbers = Channel.make({ key: Schema.String, value: Schema.Number, maxsize: 64 })

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i)

const sendAll = (channel: Channel.Channel<string, number>, values: ReadonlyArray<number>, keys = 4) =>
  Effect.forEach(values, (value) => channel.send({ key: `k${value % keys}`, value }), { discard: true })

const failureOf = (exit: Exit.Exit<unknown, unknown>): unknown => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  return Cause.squash((exit as Exit.Failure<unknown, unknown>).cause)
}

/** A logger that keeps every line (message and cause) for the test to read. */
const captureLogs = () => {
  const lines: Array<string> = []
  const text = (u: unknown): string => {
    try {
      return typeof u === "string" ? u : Array.isArray(u) ? u.map(text).join(" ") : String(u)
    } catch {
      return "<unprintable>"
    }
  }
  const logger = Logger.make((options) => {
    lines.push(`${String(options.logLevel)} ${text(options.message)} ${Cause.pretty(options.cause)}`)
  })
  return { lines, layer: Logger.layer([logger]) }
}

/** The value of an agent series in effect's Metric registry. */
const readMetric = (id: string, attributes: Record<string, string>) =>
  Effect.map(Metric.snapshot, (snapshots) => {
    const found = snapshots.find((snapshot) =>
      snapshot.id === id &&
      Object.entries(attributes).every(([key, value]) => snapshot.attributes?.[key] === value)
    )
    if (found === undefined) return undefined
    const state = found.state as unknown as Record<string, unknown>
    return "count" in state ? Number(state.count) : "value" in state ? Number(state.value) : -1
  })

const Isolated = Layer.succeed(Metric.MetricRegistry, new Map())

/** Like `waitUntil`, but gives up (failing the test with `what`) instead of spinning forever. */
const waitFor = (condition: () => boolean, what: () => string, turns = 100_000): Effect.Effect<void> =>
  Effect.suspend(function loop(left: number = turns): Effect.Effect<void> {
    if (condition()) return Effect.void
    if (left === 0) return Effect.die(new Error(`gave up waiting: ${what()}`))
    return Effect.andThen(Effect.yieldNow, () => loop(left - 1))
  })

/** Lets forked fibers reach their next suspension (a sleep registers with the TestClock). */
const settle = Effect.forEach(range(200), () => Effect.yieldNow, { discard: true })

const statsOf = (agent: { readonly stats: Agent.Stats }) => JSON.stringify({ ...agent.stats, processing: undefined })

describe("hostile: graceful shutdown", () => {
  it.effect(
    "README: 'the agent stops reading, lets what it has read finish within shutdownTimeout' — stopped with 5 events queued behind a slow handler: what it read finishes, and nothing is lost (the rest reach the next agent)",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const done: Array<number> = []
        const agent = yield* Agent.forEach(
          "drain-on-stop",
          channel,
          (value) => Effect.andThen(Effect.sleep("100 millis"), Effect.sync(() => done.push(value))),
          { shutdownTimeout: "10 seconds" }
        )
        const fiber = yield* Effect.forkChild(agent.run)
        yield* sendAll(channel, range(5), 1)
        yield* waitFor(() => agent.stats.inFlight >= 1, () => statsOf(agent))
        const read = agent.stats.inFlight
        const stopping = yield* Effect.forkChild(Fiber.interrupt(fiber))
        for (let i = 0; i < 10; i++) yield* TestClock.adjust("100 millis")
        yield* Fiber.join(stopping)
        assert.isAtLeast(agent.stats.handled, read, "every event the agent had read finished")
        assert.strictEqual(agent.stats.inFlight, 0)
        const next = yield* Agent.forEach("drain-next", channel, (value) => Effect.sync(() => done.push(value)))
        yield* Effect.forkChild(next.run)
        yield* waitFor(() => done.length >= 5, () => JSON.stringify(done))
        assert.deepStrictEqual(done, range(5), "nothing lost, nothing twice, in order")
      }).pipe(Effect.provide([AppTest, quiet]))
  )

  it.effect(
    "README: 'What does not finish in time is left unacknowledged (... logged)' — shutdownTimeout 0 stops at once, handled not counted, and a log says so",
    () => {
      const logs = captureLogs()
      return Effect.gen(function*() {
        const channel = yield* numbers
        const agent = yield* Agent.forEach("zero-timeout", channel, () => Effect.sleep("1 hour"), {
          shutdownTimeout: 0
        })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* channel.send({ value: 1 })
        yield* waitUntil(() => agent.stats.inFlight === 1)
        const exit = yield* Fiber.interrupt(fiber).pipe(Effect.timeoutOption("1 millis"), Effect.forkChild)
        yield* TestClock.adjust("1 millis")
        const result = yield* Fiber.join(exit)
        assert.strictEqual(result._tag, "Some", "the stop did not wait for the handler")
        assert.strictEqual(agent.stats.handled, 0)
        assert.isTrue(logs.lines.length > 0, "the unfinished event was logged")
      }).pipe(Effect.provide([AppTest, logs.layer]))
    }
  )

  it.effect(
    "README: shutdownTimeout bounds the stop — a handler that never ends does not hold the stop beyond shutdownTimeout, and it is logged",
    () => {
      const logs = captureLogs()
      return Effect.gen(function*() {
        const channel = yield* numbers
        const agent = yield* Agent.forEach("never-ends", channel, () => Effect.never, {
          shutdownTimeout: "2 seconds",
          concurrency: 3,
          ordering: "none"
        })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* sendAll(channel, range(3))
        yield* waitUntil(() => agent.stats.inFlight === 3)
        const stopping = yield* Effect.forkChild(Fiber.interrupt(fiber))
        yield* TestClock.adjust("1999 millis")
        assert.isUndefined(stopping.pollUnsafe(), "still within the shutdown timeout")
        yield* TestClock.adjust("1 millis")
        yield* Fiber.join(stopping)
        assert.strictEqual(agent.stats.handled, 0)
        assert.isTrue(
          logs.lines.some((line) => /shutdown timeout/.test(line)),
          `the unfinished events are logged: ${JSON.stringify(logs.lines)}`
        )
      }).pipe(Effect.provide([AppTest, logs.layer]))
    }
  )

  it.effect(
    "README: interrupted mid-retry, an event whose retry finishes within shutdownTimeout is handled",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        let attempts = 0
        const agent = yield* Agent.forEach(
          "stop-mid-retry",
          channel,
          () => Effect.suspend(() => ++attempts < 2 ? Effect.fail("flaky") : Effect.void),
          { onError: { retry: Schedule.spaced("1 second") }, shutdownTimeout: "5 seconds" }
        )
        const fiber = yield* Effect.forkChild(agent.run)
        yield* channel.send({ value: 1 })
        yield* waitUntil(() => attempts === 1)
        const stopping = yield* Effect.forkChild(Fiber.interrupt(fiber))
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(stopping)
        assert.strictEqual(attempts, 2)
        assert.strictEqual(agent.stats.handled, 1)
        assert.strictEqual(agent.stats.retries, 1)
        assert.strictEqual(agent.stats.inFlight, 0)
      }).pipe(Effect.provide([AppTest, quiet]))
  )

  it.effect(
    "README: 'the partial batch is handled when the agent stops' — also while another batch is mid-handler",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const batches: Array<ReadonlyArray<number>> = []
        const agent = yield* Agent.forEach(
          "stop-mid-batch",
          channel,
          (values) => Effect.andThen(Effect.sleep("1 second"), Effect.sync(() => batches.push(values))),
          { batch: { size: 3, within: "1 hour" }, shutdownTimeout: "1 minute" }
        )
        const fiber = yield* Effect.forkChild(agent.run)
        yield* sendAll(channel, range(5))
        yield* waitUntil(() => agent.stats.inFlight === 5)
        const stopping = yield* Effect.forkChild(Fiber.interrupt(fiber))
        yield* TestClock.adjust("1 second")
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(stopping)
        assert.deepStrictEqual(batches, [[0, 1, 2], [3, 4]])
        assert.strictEqual(agent.stats.handled, 5)
      }).pipe(Effect.provide([AppTest, quiet]))
  )

  it.effect(
    "README: graceful stop — a dead-letter write blocked on a full target does not hold the stop beyond shutdownTimeout, and the event is not counted dead-lettered",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const dead = yield* Channel.make({ maxsize: 1 })
        yield* dead.send({ value: "filler" }) // the no-subscriber buffer is now full
        const agent = yield* Agent.forEach("dlq-full", channel, () => Effect.fail("bad"), {
          onError: { then: { deadLetter: dead } },
          shutdownTimeout: "1 second"
        })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* channel.send({ value: 1 })
        yield* waitUntil(() => agent.stats.failed === 1)
        const stopping = yield* Effect.forkChild(Fiber.interrupt(fiber))
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(stopping)
        assert.strictEqual(agent.stats.deadLettered, 0, "the write never completed")
        assert.strictEqual(agent.stats.skipped, 0)
        assert.strictEqual(agent.stats.handled, 0)
      }).pipe(Effect.provide([AppTest, quiet]))
  )

  it.effect(
    "README: graceful stop — a sink that blocks (full channel) does not hold the stop beyond shutdownTimeout; the event is not counted handled",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const out = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
        yield* out.send({ value: -1 })
        const agent = yield* Agent.forEach("sink-blocks", channel, (value) => Effect.succeed(value), {
          sinks: [out],
          shutdownTimeout: "1 second"
        })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* channel.send({ value: 1 })
        yield* waitUntil(() => agent.stats.inFlight === 1)
        const stopping = yield* Effect.forkChild(Fiber.interrupt(fiber))
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(stopping)
        assert.strictEqual(agent.stats.handled, 0)
      }).pipe(Effect.provide([AppTest, quiet]))
  )
})

describe("hostile: failure policies", () => {
  it.effect(
    "README: 'dead-lettered (... acknowledged only once that write is)' and 'A failure is never silent' — a dead-letter target that was ended fails the agent with AgentError",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const dead = yield* Channel.make({ maxsize: 8 })
        yield* dead.end
        const agent = yield* Agent.forEach("dlq-closed", channel, () => Effect.fail("bad"), {
          onError: { then: { deadLetter: dead } }
        })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* channel.send({ value: 1 })
        const exit = yield* Fiber.await(fiber)
        const error = failureOf(exit)
        assert.instanceOf(error, AgentError)
        assert.strictEqual(agent.stats.deadLettered, 0)
        assert.strictEqual(agent.stats.skipped, 0)
        assert.strictEqual(agent.stats.handled, 0)
      }).pipe(Effect.provide([AppTest, quiet]))
  )

  it.effect(
    "README: 'once that gives up, agent.run fails with AgentError' — a restart schedule that gives up at once (recurs(0)) fails with 0 restarts",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const agent = yield* Agent.forEach("gives-up-at-once", channel, () => Effect.fail("always"), {
          restart: Schedule.recurs(0)
        })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* channel.send({ value: 1 })
        const error = failureOf(yield* Fiber.await(fiber)) as AgentError
        assert.instanceOf(error, AgentError)
        assert.strictEqual(error.restarts, 0)
        assert.strictEqual(error.attempts, 1)
        assert.strictEqual(agent.stats.restarts, 0)
      }).pipe(Effect.provide([AppTest, quiet]))
  )

  it.effect(
    "README: 'A handler that throws is a failed event, not a defect' — a handler function that throws before returning an effect",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const seen: Array<number> = []
        const agent = yield* Agent.forEach("throws-sync", channel, (value): Effect.Effect<void> => {
          if (value === 1) throw new Error("thrown outside an effect")
          return Effect.sync(() => {
            seen.push(value)
          })
        }, { onError: { then: "skip" }, shutdownTimeout: 0 })
        yield* Effect.forkChild(agent.run)
        yield* sendAll(channel, [1, 2])
        yield* waitFor(() => seen.length === 1, () => `the agent is stuck: ${statsOf(agent)}`)
        assert.strictEqual(agent.stats.skipped, 1)
        assert.strictEqual(agent.stats.handled, 1)
      }).pipe(Effect.provide([AppTest, quiet]))
  )

  it.effect(
    "README: 'A handler that throws is a failed event, not a defect' — throwing undefined, null and a string inside Effect.sync",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const thrown: Array<unknown> = [undefined, null, "a string"]
        const agent = yield* Agent.forEach("throws-odd", channel, (value) =>
          Effect.sync(() => {
            if (value < 3) throw thrown[value]
          }), { onError: { then: "skip" } })
        yield* Effect.forkChild(agent.run)
        yield* sendAll(channel, [0, 1, 2, 3])
        yield* waitUntil(() => agent.stats.skipped + agent.stats.handled === 4)
        assert.strictEqual(agent.stats.skipped, 3)
        assert.strictEqual(agent.stats.handled, 1)
      }).pipe(Effect.provide([AppTest, quiet]))
  )

  it.effect(
    "README: 'A failure is never silent ... agent.run fails with AgentError' — a handler that dies (Effect.die) still ends in a typed AgentError, not a raw defect",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const agent = yield* Agent.forEach("dies", channel, () => Effect.die(new Error("defect")))
        const fiber = yield* Effect.forkChild(agent.run)
        yield* channel.send({ value: 1 })
        const error = failureOf(yield* Fiber.await(fiber))
        assert.instanceOf(error, AgentError)
      }).pipe(Effect.provide([AppTest, quiet]))
  )

  it.effect(
    "README: 'in memory the agent hands the events it had read and not finished to its next run first, so nothing is lost' — with 4 instances busy when one fails",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const handled = new Map<number, number>()
        let failed = false
        const agent = yield* Agent.forEach("restart-busy", channel, (value) =>
          Effect.gen(function*() {
            yield* Effect.sleep(`${value % 7} millis`)
            if (value === 13 && !failed) {
              failed = true
              return yield* Effect.fail("once")
            }
            handled.set(value, (handled.get(value) ?? 0) + 1)
          }), { concurrency: 4, ordering: "none", restart: Schedule.recurs(1) })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* sendAll(channel, range(40))
        for (let i = 0; i < 200 && handled.size < 40; i++) yield* TestClock.adjust("1 millis")
        yield* channel.end
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(fiber)
        assert.deepStrictEqual([...handled.keys()].sort((a, b) => a - b), range(40), "nothing lost")
        assert.strictEqual(agent.stats.restarts, 1)
        assert.strictEqual(agent.stats.inFlight, 0)
      }).pipe(Effect.provide([AppTest, quiet]))
  )

  it.effect(
    "README: 'nothing is lost' on restart — events the agent had read when its source failed are handled by the next run before it fails for good",
    () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make<{ value: typeof Schema.Number; error: typeof Schema.String }>({
          value: Schema.Number,
          error: Schema.String
        })
        const done: Array<number> = []
        const agent = yield* Agent.forEach(
          "source-throws-in-flight",
          channel,
          (value) => Effect.andThen(Effect.sleep("100 millis"), Effect.sync(() => done.push(value))),
          { restart: Schedule.recurs(2) }
        )
        const fiber = yield* Effect.forkChild(agent.run)
        yield* waitUntil(() => channel.subscriberCount === 1)
        yield* Effect.forEach(range(3), (value) => channel.send({ value }), { discard: true })
        yield* waitUntil(() => agent.stats.inFlight === 3)
        yield* channel.throw("broken")
        for (let i = 0; i < 10; i++) yield* TestClock.adjust("100 millis")
        const error = failureOf(yield* Fiber.await(fiber)) as AgentError
        assert.instanceOf(error, AgentError)
        assert.deepStrictEqual(done, range(3), "the events read before the source failed were handled")
      }).pipe(Effect.provide([AppTest, quiet]))
  )

  it.effect(
    "README: 'Runs the agent until its source ends' and closing discards nothing — end while 10 events wait behind a slow handler: all 10 handled before run returns",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const done: Array<number> = []
        const agent = yield* Agent.forEach(
          "ends-in-flight",
          channel,
          (value) => Effect.andThen(Effect.sleep("10 millis"), Effect.sync(() => done.push(value)))
        )
        const fiber = yield* Effect.forkChild(agent.run)
        yield* sendAll(channel, range(10))
        yield* channel.end
        for (let i = 0; i < 20; i++) yield* TestClock.adjust("10 millis")
        yield* Fiber.join(fiber)
        assert.deepStrictEqual(done, range(10))
        assert.strictEqual(agent.stats.inFlight, 0)
      }).pipe(Effect.provide([AppTest, quiet]))
  )
})

describe("hostile: hostile errors", () => {
  const circular: Record<string, unknown> = { name: "Circular" }
  circular.self = circular
  const nullProto = Object.assign(Object.create(null), { a: 1 })
  const throwingGetter = Object.defineProperty({}, "message", {
    get() {
      throw new Error("getter")
    },
    enumerable: true
  })
  const throwingToString = {
    toString() {
      throw new Error("toString")
    }
  }
  const { proxy: revoked, revoke } = Proxy.revocable({}, {})
  revoke()
  const causes: Array<[string, unknown]> = [
    ["null prototype", nullProto],
    ["circular", circular],
    ["throwing getter", throwingGetter],
    ["throwing toString", throwingToString],
    ["bigint", 10n],
    ["revoked proxy", revoked],
    ["undefined", undefined]
  ]

  for (const [name, cause] of causes) {
    it(`README: 'Every error's message, toString(), stack and JSON.stringify work whatever its cause holds' — AgentError with a ${name} cause`, () => {
      const error = new AgentError({ agent: "a", channel: "c", attempts: 1, restarts: 0, cause })
      assert.isString(error.message)
      assert.isString(error.toString())
      assert.isString(String(error.stack))
      assert.isString(JSON.stringify(error))
      assert.isString(JSON.stringify(error.toJSON()))
    })
  }

  it.effect(
    "README: dead-letter headers 'x-error', 'x-error-message' for hostile handler errors; every event dead-lettered, none lost",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const dead = yield* Channel.make({ maxsize: 16 })
        const letters = yield* Effect.forkChild(Stream.runCollect(Stream.take(dead.events(), causes.length)))
        yield* waitUntil(() => dead.subscriberCount === 1)
        const agent = yield* Agent.forEach("hostile-dlq", channel, (value) => Effect.fail(causes[value][1]), {
          onError: { then: { deadLetter: dead } }
        })
        yield* Effect.forkChild(agent.run)
        yield* sendAll(channel, range(causes.length), 1)
        const got = yield* Fiber.join(letters)
        assert.strictEqual(got.length, causes.length)
        for (const letter of got) {
          const headers = new Map(letter.headers.map(([k, v]) => [k, v]))
          for (const name of ["x-error", "x-error-message", "x-agent", "x-attempts"]) {
            const value = headers.get(name)
            assert.isTrue(typeof value === "string" || value instanceof Uint8Array, `${name}: ${String(typeof value)}`)
          }
        }
        yield* waitUntil(() => agent.stats.deadLettered === causes.length)
      }).pipe(Effect.provide([AppTest, quiet]))
  )

  it.effect(
    "README: run 'fails with AgentError' — a real agent failing with a circular, null-prototype cause: the error and its log are printable",
    () => {
      const logs = captureLogs()
      return Effect.gen(function*() {
        const channel = yield* numbers
        const agent = yield* Agent.forEach("hostile-fail", channel, () => Effect.fail(nullProto))
        const fiber = yield* Effect.forkChild(agent.run)
        yield* channel.send({ value: 1 })
        const error = failureOf(yield* Fiber.await(fiber)) as AgentError
        assert.instanceOf(error, AgentError)
        assert.include(error.message, "hostile-fail")
        assert.isString(JSON.stringify(error))
        assert.isTrue(logs.lines.some((line) => line.includes("hostile-fail")), "logged")
      }).pipe(Effect.provide([AppTest, logs.layer]))
    }
  )
})

describe("hostile: names", () => {
  it.effect("README: 'a second agent with a running agent's name in the same app fails at startup' — and does not evict the first", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const seen: Array<number> = []
      const first = yield* Agent.forEach("twin", channel, (value) => Effect.sync(() => seen.push(value)))
      yield* Effect.forkChild(first.run)
      yield* waitUntil(() => channel.subscriberCount === 1)
      const second = yield* Agent.forEach("twin", channel, () => Effect.void)
      const exit2 = yield* Effect.exit(second.run)
      assert.instanceOf(failureOf(exit2), InvalidChannelOptionsError)
      // the failed second start must not have freed the name
      const exit3 = yield* Effect.exit(second.run)
      assert.instanceOf(failureOf(exit3), InvalidChannelOptionsError)
      // the same agent value run twice is also the same name
      const exit4 = yield* Effect.exit(first.run)
      assert.instanceOf(failureOf(exit4), InvalidChannelOptionsError)
      yield* channel.send({ value: 1 })
      yield* waitUntil(() => seen.length === 1)
      assert.strictEqual(channel.subscriberCount, 1)
    }).pipe(Effect.provide(AppTest)))

  it.effect("README: the name rule is per app ('in the same app') — two agents with one name in two apps both run", () =>
    Effect.gen(function*() {
      const runIn = (id: string) =>
        Effect.gen(function*() {
          const channel = yield* numbers
          const seen: Array<number> = []
          const agent = yield* Agent.forEach("shared-name", channel, (value) => Effect.sync(() => seen.push(value)))
          const fiber = yield* Effect.forkChild(agent.run)
          yield* channel.send({ value: 1 })
          yield* waitUntil(() => seen.length === 1)
          return fiber
        }).pipe(Effect.provide(App.layer({ id })))
      const a = yield* runIn("app-a")
      const b = yield* runIn("app-b")
      assert.isUndefined(a.pollUnsafe(), "the first still runs")
      assert.isUndefined(b.pollUnsafe(), "the second runs")
    }))

  it.effect("README: the name belongs to a *running* agent — freed after it stops (interrupted, failed for good, source ended)", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const make = () => Agent.forEach("reused", channel, (value) => value < 0 ? Effect.fail("neg") : Effect.void)
      // interrupted
      const a = yield* make()
      const fa = yield* Effect.forkChild(a.run)
      yield* waitUntil(() => channel.subscriberCount === 1)
      yield* Fiber.interrupt(fa)
      // failed for good
      const b = yield* make()
      const fb = yield* Effect.forkChild(b.run)
      yield* waitUntil(() => channel.subscriberCount === 1)
      yield* channel.send({ value: -1 })
      assert.instanceOf(failureOf(yield* Fiber.await(fb)), AgentError)
      // interrupted while waiting for a restart
      const c = yield* Agent.forEach("reused", channel, () => Effect.fail("neg"), {
        restart: Schedule.spaced("1 hour")
      })
      const fc = yield* Effect.forkChild(c.run)
      yield* waitUntil(() => channel.subscriberCount === 1)
      yield* channel.send({ value: -2 })
      yield* waitUntil(() => c.stats.failed === 1)
      yield* Effect.yieldNow
      yield* Fiber.interrupt(fc)
      // the name is free again
      const d = yield* make()
      const fd = yield* Effect.forkChild(d.run)
      yield* waitUntil(() => channel.subscriberCount === 1)
      yield* channel.send({ value: 5 })
      yield* waitUntil(() => d.stats.handled === 1)
      yield* Fiber.interrupt(fd)
    }).pipe(Effect.provide([AppTest, quiet])))
})

describe("hostile: ask / map / join", () => {
  it.effect(
    "README: 'a reply nobody waits for any more is dropped and counted, never an agent failure' — ask with timeout 0",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const agent = yield* Agent.forEach("ask-zero", channel, (value) => Effect.succeed(value + 1))
        const fiber = yield* Effect.forkChild(agent.run)
        const exit = yield* Effect.exit(agent.ask({ value: 1, timeout: 0 }))
        assert.instanceOf(failureOf(exit), AskTimeoutError)
        yield* waitUntil(() => agent.stats.handled === 1)
        assert.strictEqual(agent.stats.repliesDropped, 1)
        assert.strictEqual(yield* agent.ask({ value: 2, timeout: "1 second" }), 3)
        assert.isUndefined(fiber.pollUnsafe())
      }).pipe(Effect.provide(AppTest))
  )

  it.effect(
    "README: 'a reply nobody waits for any more is dropped and counted' — the asker interrupted mid-ask",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const latch = yield* Deferred.make<void>()
        const agent = yield* Agent.forEach(
          "ask-interrupted",
          channel,
          (value) => Effect.as(Deferred.await(latch), value)
        )
        const fiber = yield* Effect.forkChild(agent.run)
        const asking = yield* Effect.forkChild(agent.ask({ value: 1, timeout: "1 hour" }))
        yield* waitUntil(() => agent.stats.inFlight === 1)
        yield* Fiber.interrupt(asking)
        yield* Deferred.succeed(latch, undefined)
        yield* waitUntil(() => agent.stats.handled === 1)
        assert.strictEqual(agent.stats.repliesDropped, 1)
        assert.isUndefined(fiber.pollUnsafe(), "the agent runs on")
      }).pipe(Effect.provide(AppTest))
  )

  it.effect(
    "README: ask/reply 'travels in the record's headers' — forged x-correlation-id / x-reply-to on a plain send are dropped and counted, never an agent failure",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const agent = yield* Agent.forEach("forged", channel, (value) => Effect.succeed(value), { shutdownTimeout: 0 })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* channel.send({ value: 1, headers: { "x-correlation-id": "nope", "x-reply-to": "nowhere" } })
        yield* channel.send({ value: 2, headers: [["x-reply-to", new Uint8Array([0xff, 0xfe])]] })
        yield* channel.send({ value: 3, headers: [["x-correlation-id", "a"], ["x-correlation-id", ""]] })
        yield* waitFor(() => agent.stats.handled === 3, () => statsOf(agent))
        assert.isUndefined(fiber.pollUnsafe(), "the agent runs on")
        assert.strictEqual(agent.stats.failed, 0)
        assert.strictEqual(yield* agent.ask({ value: 4, timeout: "1 second" }), 4)
      }).pipe(Effect.provide(AppTest))
  )

  it.effect(
    "README: a reply 'is dropped and counted ... never an agent failure' — a record whose x-correlation-id or x-reply-to header value is null (as a Kafka record from another client may carry) does not wedge the agent",
    () =>
      Effect.gen(function*() {
        for (const header of ["x-correlation-id", "x-reply-to"]) {
          const channel = yield* numbers
          const agent = yield* Agent.forEach(`null-${header}`, channel, (value) => Effect.succeed(value), {
            shutdownTimeout: 0
          })
          yield* Effect.forkChild(agent.run)
          // null is not a HeaderValue in the types, but Kafka headers may hold null values
          yield* channel.send({ value: 1, headers: [[header, null as unknown as string]] })
          yield* channel.send({ value: 2 })
          yield* waitFor(() => agent.stats.handled === 2 && agent.stats.inFlight === 0, () =>
            `${header}: ${statsOf(agent)}`)
        }
      }).pipe(Effect.provide(AppTest))
  )

  it.effect("join of an empty list is [] at once; map with concurrency 1 replies in order", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const agent = yield* Agent.forEach("joins", channel, (value) => Effect.succeed(value * 2), {
        concurrency: 4,
        ordering: "none"
      })
      yield* Effect.forkChild(agent.run)
      assert.deepStrictEqual(yield* agent.join([], { timeout: "1 second" }), [])
      assert.deepStrictEqual(
        [...yield* Stream.runCollect(agent.map([], { timeout: "1 second" }))],
        []
      )
      const mapped = yield* Stream.runCollect(agent.map(range(10), { timeout: "1 second", concurrency: 1 }))
      assert.deepStrictEqual([...mapped], range(10).map((v) => v * 2))
      assert.deepStrictEqual(
        yield* agent.join(range(10), { timeout: "1 second", concurrency: 1 }),
        range(10).map((v) => v * 2)
      )
    }).pipe(Effect.provide(AppTest)))

  it.effect(
    "README: 'a negative window or timeout ... fail with InvalidChannelOptionsError' / ask's own contract — a negative ask timeout is a typed failure, never a hang or defect",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const agent = yield* Agent.forEach("ask-negative", channel, (value) => Effect.succeed(value))
        yield* Effect.forkChild(agent.run)
        const exit = yield* Effect.exit(agent.ask({ value: 1, timeout: -5 }))
        const error = failureOf(exit)
        assert.isTrue(
          error instanceof AskTimeoutError || error instanceof InvalidChannelOptionsError,
          `typed: ${String(error)}`
        )
      }).pipe(Effect.provide(AppTest))
  )

  it.effect(
    "join/map with concurrency 0 (bad input): a typed failure or a result, never a hang",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const agent = yield* Agent.forEach("join-zero", channel, (value) => Effect.succeed(value))
        yield* Effect.forkChild(agent.run)
        const joined = yield* agent.join([1, 2], { timeout: "1 second", concurrency: 0 }).pipe(
          Effect.exit,
          Effect.timeoutOption("5 seconds"),
          Effect.forkChild
        )
        yield* TestClock.adjust("5 seconds")
        const result = yield* Fiber.join(joined)
        assert.strictEqual(result._tag, "Some", "join with concurrency 0 returned")
      }).pipe(Effect.provide(AppTest))
  )

  it.effect("README: 'ask ... what its handler returned' — asking a batch agent replies per event with the batch result", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const agent = yield* Agent.forEach(
        "batch-ask",
        channel,
        (values) => Effect.succeed(values.length),
        { batch: { size: 2, within: "1 second" } }
      )
      yield* Effect.forkChild(agent.run)
      const replies = yield* Effect.forkChild(
        Effect.all([agent.ask({ value: 1, timeout: "10 seconds" }), agent.ask({ value: 2, timeout: "10 seconds" })], {
          concurrency: "unbounded"
        })
      )
      yield* TestClock.adjust("1 second")
      const [a, b] = yield* Fiber.join(replies)
      assert.isTrue(a >= 1 && b >= 1, "both askers got a reply")
    }).pipe(Effect.provide(AppTest)))
})

describe("hostile: topology", () => {
  it.effect("README: 'sinks: [channel, topic, agent, ...]: each gets what the handler returns' — an agent as a sink", () =>
    Effect.gen(function*() {
      const first = yield* numbers
      const second = yield* numbers
      const seen: Array<number> = []
      const downstream = yield* Agent.forEach("downstream", second, (value) => Effect.sync(() => seen.push(value)))
      const upstream = yield* Agent.forEach("upstream", first, (value) => Effect.succeed(value * 10), {
        sinks: [downstream]
      })
      yield* Effect.forkChild(downstream.run)
      yield* Effect.forkChild(upstream.run)
      yield* sendAll(first, range(5))
      yield* waitUntil(() => seen.length === 5)
      assert.deepStrictEqual(seen, range(5).map((v) => v * 10))
      assert.strictEqual(upstream.stats.handled, 5)
    }).pipe(Effect.provide(AppTest)))

  it.effect("two agents feeding each other in a cycle (ping-pong, counting down) finish with every event handled once", () =>
    Effect.gen(function*() {
      const pingChannel = yield* numbers
      const pongChannel = yield* numbers
      const log: Array<string> = []
      const pong = yield* Agent.forEach(
        "pong",
        pongChannel,
        (value) => Effect.sync(() => (log.push(`pong ${value}`), value > 0 ? value - 1 : undefined)),
        { sinks: [pingChannel as unknown as Agent.Sink<number | undefined>] }
      )
      const ping = yield* Agent.forEach(
        "ping",
        pingChannel,
        (value) => Effect.sync(() => (log.push(`ping ${value}`), value > 0 ? value - 1 : undefined)),
        { sinks: [pong as unknown as Agent.Sink<number | undefined>] }
      )
      yield* Effect.forkChild(ping.run)
      yield* Effect.forkChild(pong.run)
      yield* pingChannel.send({ value: 20 })
      yield* waitUntil(() => log.length === 21)
      assert.strictEqual(ping.stats.handled + pong.stats.handled, 21)
      assert.strictEqual(log.at(-1), "ping 0")
    }).pipe(Effect.provide(AppTest)))

  it.effect("an agent that sinks into its own source (value-1 until 0) handles the whole chain", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const seen: Array<number> = []
      const agent = yield* Agent.forEach(
        "self-loop",
        channel,
        (value) => Effect.sync(() => (seen.push(value), value > 0 ? value - 1 : undefined)),
        { sinks: [channel as unknown as Agent.Sink<number | undefined>] }
      )
      yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, [50, 50, 50])
      yield* waitUntil(() => seen.length === 153)
      assert.strictEqual(agent.stats.handled, 153)
    }).pipe(Effect.provide(AppTest)))
})

describe("hostile: scale and batches", () => {
  it.live(
    "README: concurrency 1000, ordering by key: each event once, per-key order, at most 1000 handlers at a time, inFlight ≤ max(256, 2×1000×1) + one read (maxsize 4096) and back to 0",
    () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ key: Schema.String, value: Schema.Number, maxsize: 4096 })
        const byKey = new Map<string, Array<number>>()
        let active = 0
        let maxActive = 0
        let maxInFlight = 0
        const agent = yield* Agent.forEach("wide", channel, (value, event) =>
          Effect.gen(function*() {
            active++
            maxActive = Math.max(maxActive, active)
            maxInFlight = Math.max(maxInFlight, agent.stats.inFlight)
            yield* Effect.sleep(value % 3)
            active--
            const list = byKey.get(event.key!) ?? []
            list.push(value)
            byKey.set(event.key!, list)
          }), { concurrency: 1000, ordering: "key" })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* sendAll(channel, range(5000), 1500)
        yield* channel.end
        yield* Fiber.join(fiber)
        let total = 0
        for (const [key, values] of byKey) {
          const k = Number(key.slice(1))
          assert.deepStrictEqual(values, range(5000).filter((v) => v % 1500 === k))
          total += values.length
        }
        assert.strictEqual(total, 5000)
        assert.isAtMost(maxActive, 1000)
        assert.isAtMost(maxInFlight, 2000 + 4096)
        assert.strictEqual(agent.stats.handled, 5000)
        assert.strictEqual(agent.stats.inFlight, 0)
      }).pipe(Effect.provide(AppTest))
  )

  it.effect(
    "README: 'it holds at most max(256, 2 × concurrency × batch size) plus what one read returns (up to maxsize)' — concurrency 1000, every handler blocked: at most 2000 + 4096 in flight",
    () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ key: Schema.String, value: Schema.Number, maxsize: 4096 })
        const latch = yield* Deferred.make<void>()
        const agent = yield* Agent.forEach("bounded-wide", channel, () => Deferred.await(latch), {
          concurrency: 1000,
          ordering: "key"
        })
        yield* Effect.forkChild(agent.run)
        const sender = yield* Effect.forkChild(sendAll(channel, range(8000), 1500))
        let peak = 0
        for (let i = 0; i < 20_000; i++) {
          yield* Effect.yieldNow
          peak = Math.max(peak, agent.stats.inFlight)
        }
        yield* Deferred.succeed(latch, undefined)
        yield* Fiber.join(sender)
        yield* waitFor(() => agent.stats.handled === 8000, () => statsOf(agent))
        assert.isAtMost(peak, 2000 + 4096, `peak in flight ${peak}`)
      }).pipe(Effect.provide(AppTest))
  )

  it.effect(
    "README: 'an agent holds at most max(256, 2 × concurrency × batch size) events read and not finished; a slow agent slows its source down'",
    () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ value: Schema.Number, maxsize: 4 })
        const latch = yield* Deferred.make<void>()
        const agent = yield* Agent.forEach("bounded", channel, () => Deferred.await(latch))
        yield* Effect.forkChild(agent.run)
        const sender = yield* Effect.forkChild(
          Effect.forEach(range(1000), (value) => channel.send({ value }), { discard: true })
        )
        yield* waitFor(() => agent.stats.inFlight >= 1, () => statsOf(agent))
        for (let i = 0; i < 5000; i++) yield* Effect.yieldNow
        assert.isAtMost(agent.stats.inFlight, 256)
        assert.isUndefined(sender.pollUnsafe(), "the sender is held back")
        yield* Deferred.succeed(latch, undefined)
        yield* Fiber.join(sender)
        yield* waitFor(() => agent.stats.handled === 1000, () => statsOf(agent))
        assert.strictEqual(agent.stats.inFlight, 0)
      }).pipe(Effect.provide(AppTest))
  )

  it.effect(
    "README: the bound with batches: max(256, 2 × concurrency × batch size) = 800 for concurrency 2, size 200",
    () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ key: Schema.String, value: Schema.Number, maxsize: 16 })
        const latch = yield* Deferred.make<void>()
        const batches: Array<number> = []
        const agent = yield* Agent.forEach(
          "bounded-batches",
          channel,
          (values) => Effect.andThen(Deferred.await(latch), Effect.sync(() => batches.push(values.length))),
          { concurrency: 2, batch: { size: 200, within: "1 hour" } }
        )
        yield* Effect.forkChild(agent.run)
        const sender = yield* Effect.forkChild(sendAll(channel, range(3000), 2))
        let peak = 0
        for (let i = 0; i < 10_000; i++) {
          yield* Effect.yieldNow
          peak = Math.max(peak, agent.stats.inFlight)
        }
        assert.isAtLeast(peak, 1)
        assert.isAtMost(peak, 800)
        assert.isUndefined(sender.pollUnsafe(), "the sender is held back")
        yield* Deferred.succeed(latch, undefined)
        yield* Fiber.join(sender)
        yield* channel.end // flushes the partial batches
        yield* waitFor(() => agent.stats.handled === 3000, () => statsOf(agent))
        assert.strictEqual(batches.reduce((a, b) => a + b, 0), 3000)
        assert.isTrue(batches.every((n) => n >= 1 && n <= 200))
      }).pipe(Effect.provide(AppTest))
  )

  it.effect("README: 'Batches close at size events' — batch size 1: every batch is one event", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const batches: Array<ReadonlyArray<number>> = []
      const agent = yield* Agent.forEach("size-one", channel, (values) => Effect.sync(() => batches.push(values)), {
        batch: { size: 1, within: "1 hour" }
      })
      yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, range(5))
      yield* waitUntil(() => batches.length === 5)
      assert.deepStrictEqual(batches, range(5).map((v) => [v]))
    }).pipe(Effect.provide(AppTest)))

  it.effect("README: batches close at 'within after their first event' — within 0 never waits on the clock, never empty, every event once", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const batches: Array<ReadonlyArray<number>> = []
      const agent = yield* Agent.forEach("within-zero", channel, (values) => Effect.sync(() => batches.push(values)), {
        batch: { size: 10, within: 0 }
      })
      yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, range(25))
      yield* waitUntil(() => batches.flat().length === 25)
      assert.deepStrictEqual(batches.flat(), range(25))
      assert.isTrue(batches.every((b) => b.length >= 1 && b.length <= 10))
    }).pipe(Effect.provide(AppTest)))

  it.effect(
    "stats consistency: handled + skipped + deadLettered = events; failed = skipped + deadLettered; inFlight back to 0 (single events and batches)",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const dead = yield* Channel.make({ maxsize: 256 })
        const single = yield* Agent.forEach(
          "stats-single",
          channel,
          (value) => value % 5 === 0 ? Effect.fail("five") : value % 7 === 0 ? Effect.fail("seven") : Effect.void,
          {
            concurrency: 4,
            onError: { retry: Schedule.recurs(1), then: { deadLetter: dead } }
          }
        )
        const fiber = yield* Effect.forkChild(single.run)
        yield* sendAll(channel, range(100))
        yield* channel.end
        yield* Fiber.join(fiber)
        const s = single.stats
        assert.strictEqual(s.handled + s.skipped + s.deadLettered, 100)
        assert.strictEqual(s.failed, s.skipped + s.deadLettered)
        assert.strictEqual(s.retries, s.failed)
        assert.strictEqual(s.inFlight, 0)

        const channel2 = yield* numbers
        const batched = yield* Agent.forEach(
          "stats-batched",
          channel2,
          (values) => values.includes(13) ? Effect.fail("13") : Effect.void,
          { batch: { size: 4, within: "1 hour" }, onError: { then: "skip" } }
        )
        const fiber2 = yield* Effect.forkChild(batched.run)
        yield* sendAll(channel2, range(20))
        yield* channel2.end
        yield* Fiber.join(fiber2)
        const b = batched.stats
        assert.strictEqual(b.handled + b.skipped + b.deadLettered, 20, JSON.stringify(b))
        assert.strictEqual(b.inFlight, 0)
      }).pipe(Effect.provide([AppTest, quiet]))
  )
})

describe("hostile: metrics", () => {
  it.effect(
    "README: 'Agents register theirs while they run (attribute agent)' … 'agent.stats reads the same counters' — and they go when it stops",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const latch = yield* Deferred.make<void>()
        const agent = yield* Agent.forEach(
          "metered",
          channel,
          (value) => value === 3 ? Effect.fail("three") : value === 4 ? Deferred.await(latch) : Effect.void,
          { onError: { retry: Schedule.recurs(2), then: "skip" } }
        )
        const fiber = yield* Effect.forkChild(agent.run)
        yield* sendAll(channel, range(5), 1)
        yield* waitUntil(() => agent.stats.inFlight === 1 && agent.stats.handled === 3)
        const at = { agent: "metered" }
        assert.strictEqual(yield* readMetric("effect_faust_agent_events_total", at), 3)
        assert.strictEqual(yield* readMetric("effect_faust_agent_failures_total", at), 1)
        assert.strictEqual(yield* readMetric("effect_faust_agent_retries_total", at), 2)
        assert.strictEqual(yield* readMetric("effect_faust_agent_skipped_total", at), 1)
        assert.strictEqual(yield* readMetric("effect_faust_agent_dead_lettered_total", at), 0)
        assert.strictEqual(yield* readMetric("effect_faust_agent_restarts_total", at), 0)
        assert.strictEqual(yield* readMetric("effect_faust_agent_replies_dropped_total", at), 0)
        assert.strictEqual(yield* readMetric("effect_faust_agent_in_flight", at), 1)
        assert.isDefined(yield* readMetric("effect_faust_agent_processing_seconds", at))
        yield* Deferred.succeed(latch, undefined)
        yield* waitUntil(() => agent.stats.handled === 4)
        assert.strictEqual(yield* readMetric("effect_faust_agent_events_total", at), 4)
        assert.strictEqual(yield* readMetric("effect_faust_agent_in_flight", at), 0)
        yield* Fiber.interrupt(fiber)
        assert.isUndefined(yield* readMetric("effect_faust_agent_events_total", at), "gone once stopped")
      }).pipe(Effect.provide([AppTest, quiet, Isolated]))
  )

  it.effect(
    "README: processing_seconds is 'from taking an event or batch to acknowledging it, retries and sinks included'",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        let attempts = 0
        let sinkStarted = false
        const agent = yield* Agent.forEach(
          "timed",
          channel,
          (value) =>
            Effect.andThen(
              Effect.sleep("2 seconds"),
              Effect.suspend(() => ++attempts < 2 ? Effect.fail("again") : Effect.succeed(value))
            ),
          {
            onError: { retry: Schedule.spaced("1 second") },
            sinks: [() => Effect.andThen(Effect.sync(() => (sinkStarted = true)), Effect.sleep("3 seconds"))],
            shutdownTimeout: 0
          }
        )
        yield* Effect.forkChild(agent.run)
        yield* channel.send({ value: 1 })
        yield* waitUntil(() => agent.stats.inFlight === 1)
        yield* settle
        yield* TestClock.adjust("2 seconds") // first attempt fails
        yield* waitFor(() => attempts === 1, () => statsOf(agent))
        yield* settle
        yield* TestClock.adjust("1 second") // retry delay
        yield* settle
        yield* TestClock.adjust("2 seconds") // second attempt succeeds
        yield* waitFor(() => sinkStarted, () => `${attempts} ${statsOf(agent)}`)
        yield* settle
        yield* TestClock.adjust("3 seconds") // the sink
        yield* waitFor(() => agent.stats.handled === 1, () => statsOf(agent))
        const snapshots = yield* Metric.snapshot
        const histogram = snapshots.find((s) =>
          s.id === "effect_faust_agent_processing_seconds" && s.attributes?.agent === "timed"
        )
        assert.isDefined(histogram)
        const state = histogram!.state as { count: number; sum: number }
        assert.strictEqual(Number(state.count), 1)
        assert.approximately(Number(state.sum), 8, 0.01)
      }).pipe(Effect.provide([AppTest, Isolated]))
  )
})

describe("hostile: Agent.layer", () => {
  it.effect(
    "README: 'under Agent.layer it also interrupts the program that built the layer'",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const agent = yield* Agent.forEach("layer-fails", channel, () => Effect.fail("boom"))
        const program = yield* Effect.forkChild(
          Effect.scoped(Effect.andThen(Layer.build(Agent.layer(agent)), Effect.never))
        )
        yield* waitUntil(() => channel.subscriberCount === 1)
        yield* channel.send({ value: 1 })
        const exit = yield* Fiber.await(program)
        assert.isTrue(Exit.isFailure(exit))
        assert.isTrue(Cause.hasInterruptsOnly((exit as Exit.Failure<never, never>).cause), "interrupted")
      }).pipe(Effect.provide([AppTest, quiet]))
  )

  it.effect(
    "README: 'a second agent with a running agent's name in the same app fails at startup' — under Agent.layer the program is interrupted too (not left running without it)",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers
        const first = yield* Agent.forEach("layer-twin", channel, () => Effect.void)
        yield* Effect.forkChild(first.run)
        yield* waitUntil(() => channel.subscriberCount === 1)
        const second = yield* Agent.forEach("layer-twin", channel, () => Effect.void)
        const program = yield* Effect.forkChild(
          Effect.scoped(Effect.andThen(Layer.build(Agent.layer(second)), Effect.never))
        )
        const exit = yield* Fiber.await(program)
        assert.isTrue(Exit.isFailure(exit))
      }).pipe(Effect.provide([AppTest, quiet]))
  )

  it.effect("Agent.layer of an effect failing with InvalidChannelOptionsError fails the layer with it", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const exit = yield* Effect.exit(
        Effect.scoped(Layer.build(Agent.layer(Agent.forEach("bad", channel, () => Effect.void, { concurrency: 0 }))))
      )
      assert.instanceOf(failureOf(exit), InvalidChannelOptionsError)
    }).pipe(Effect.provide(AppTest)))

  it.effect("README: Agent.layer 'stops gracefully when its scope closes' — an in-flight event finishes before the scope is closed", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const done: Array<number> = []
      const agent = yield* Agent.forEach(
        "layer-graceful",
        channel,
        (value) => Effect.andThen(Effect.sleep("1 second"), Effect.sync(() => done.push(value)))
      )
      const closing = yield* Effect.forkChild(Effect.scoped(Effect.gen(function*() {
        yield* Layer.build(Agent.layer(agent))
        yield* waitUntil(() => channel.subscriberCount === 1)
        yield* channel.send({ value: 1 })
        yield* waitUntil(() => agent.stats.inFlight === 1)
      })))
      yield* waitUntil(() => agent.stats.inFlight === 1)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      assert.deepStrictEqual(done, [1])
    }).pipe(Effect.provide(AppTest)))
})

describe("hostile: Agent.make processes", () => {
  it.effect("README: 'An event is acknowledged when the process reads the next one, or ends' — a filtering process: every event acknowledged, ask of a filtered event times out", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const out: Array<number> = []
      const agent = yield* Agent.make("evens", channel, (values) => Stream.filter(values, (v) => v % 2 === 0), {
        sinks: [(value: number) => Effect.sync(() => out.push(value))]
      })
      const fiber = yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, range(10))
      const asking = yield* Effect.forkChild(Effect.exit(agent.ask({ value: 11, timeout: "1 second" })))
      yield* TestClock.adjust("1 second")
      assert.instanceOf(failureOf(yield* Fiber.join(asking)), AskTimeoutError)
      yield* channel.end
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(out, [0, 2, 4, 6, 8])
      assert.strictEqual(agent.stats.handled, 11)
      assert.strictEqual(agent.stats.inFlight, 0)
    }).pipe(Effect.provide(AppTest)))

  it.effect("README: an Agent.make process that expands (several results per event): every result reaches the sinks, the asker gets a reply", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const out: Array<number> = []
      const agent = yield* Agent.make(
        "expand",
        channel,
        (values) => Stream.flatMap(values, (v) => Stream.make(v, v + 100, v + 200)),
        { sinks: [(value: number) => Effect.sync(() => out.push(value))] }
      )
      const fiber = yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, [1, 2])
      const reply = yield* agent.ask({ value: 3, timeout: "1 second" })
      assert.include([3, 103, 203], reply)
      yield* channel.end
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(out, [1, 101, 201, 2, 102, 202, 3, 103, 203])
      assert.strictEqual(agent.stats.handled, 3)
    }).pipe(Effect.provide(AppTest)))

  it.effect("README: 'An Agent.make process that ends without reading its input fails the agent rather than leaving it stalled' — one that ends after reading 2 events neither stalls nor acknowledges events it never saw", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const out: Array<number> = []
      const agent = yield* Agent.make("ends-early", channel, (values) => Stream.take(values, 2), {
        sinks: [(value: number) => Effect.sync(() => out.push(value))],
        shutdownTimeout: 0
      })
      const fiber = yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, range(5))
      yield* waitFor(
        () => out.length === 5 || fiber.pollUnsafe() !== undefined,
        () => `stalled: ${JSON.stringify(out)} ${statsOf(agent)}`
      )
      if (fiber.pollUnsafe() === undefined) {
        assert.deepStrictEqual(out, range(5), "every event went through a process")
        assert.strictEqual(agent.stats.handled, 5)
      } else {
        assert.instanceOf(failureOf(fiber.pollUnsafe()!), AgentError)
        assert.strictEqual(agent.stats.handled, out.length, "only events the process saw are acknowledged")
      }
    }).pipe(Effect.provide([AppTest, quiet])))

  it.effect("Agent.make with then: 'skip' — a process failing on every event goes on with a fresh process each time; all counted", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const agent = yield* Agent.make(
        "always-fails",
        channel,
        (values) => Stream.mapEffect(values, (v) => Effect.fail(`no ${v}`)),
        { onError: { then: "skip" } }
      )
      const fiber = yield* Effect.forkChild(agent.run)
      yield* sendAll(channel, range(10))
      yield* channel.end
      yield* Fiber.join(fiber)
      assert.strictEqual(agent.stats.skipped, 10)
      assert.strictEqual(agent.stats.handled, 0)
      assert.strictEqual(agent.stats.inFlight, 0)
    }).pipe(Effect.provide([AppTest, quiet])))
})
