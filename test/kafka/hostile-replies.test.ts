/**
 * Hostile review against the plaintext broker:
 *
 * - `Replies.layer`: a reply that cannot be JSON (bigint, cycle) or is larger
 *   than the broker allows must not fail the agent; the asker gets a typed
 *   error or its timeout, never a hang past it; two askers sharing one agent
 *   each get their own replies.
 * - SASL against a plaintext listener fails fast with a typed `KafkaError`
 *   that does not show the password; an OAUTHBEARER token Effect that fails
 *   or dies is a typed `KafkaError` too.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Redacted, Schema } from "effect"
import { Agent, AskTimeoutError } from "effect-faust"
import { Kafka, KafkaError, Replies, Topic } from "effect-faust/kafka"
import { inspect } from "node:util"
import { brokerAvailable, kafkaLayer, unique } from "./setup.ts"

const SECRET = "hunter2-TOPSECRET"

const requests = (name: string) => Topic.make({ topics: [name], value: Schema.String, partitions: 1 })

const cyclic = () => {
  const a: Record<string, unknown> = { name: "a" }
  a.self = a
  return a
}

/** The replier: what it returns depends on the request. */
const replier = (name: string) =>
  Effect.flatMap(requests(name), (topic) =>
    Agent.forEach("replier", topic, (request): Effect.Effect<unknown> => {
      if (request === "bigint") return Effect.succeed({ n: 1n })
      if (request === "cycle") return Effect.succeed(cyclic())
      if (request === "large") return Effect.succeed("x".repeat(2 * 1024 * 1024))
      if (request.startsWith("slow:")) return Effect.as(Effect.sleep("6 seconds"), request)
      return Effect.succeed(`re:${request}`)
    }))

const typedOrTimeout = (exit: Exit.Exit<unknown, unknown>, label: string) => {
  assert.isTrue(Exit.isFailure(exit), `${label}: the asker got a value: ${inspect(Exit.isSuccess(exit) && exit.value)}`)
  if (Exit.isFailure(exit)) {
    const failure = exit.cause.reasons.find(Cause.isFailReason)
    assert.isDefined(failure, `${label}: not a typed failure: ${Cause.pretty(exit.cause)}`)
  }
}

describe.skipIf(!brokerAvailable)("hostile: Replies.layer across processes", () => {
  it.live(
    "non-JSON and oversized replies: the agent keeps running, the asker gets a typed error or its timeout",
    () =>
      Effect.gen(function*() {
        const name = unique("hostile-replies")
        const agentSide = Replies.layer.pipe(Layer.provideMerge(kafkaLayer({ appId: unique("replier") })))
        const askerSide = Replies.layer.pipe(Layer.provideMerge(kafkaLayer({ appId: unique("asker") })))
        const running = yield* Effect.forkChild(
          Effect.flatMap(replier(name), (agent) => Effect.exit(agent.run)).pipe(Effect.provide(agentSide))
        )
        const results = yield* Effect.gen(function*() {
          const agent = yield* replier(name)
          const first = yield* agent.ask({ value: "hello", timeout: "60 seconds" })
          const out: Array<readonly [string, Exit.Exit<unknown, unknown>, number]> = []
          for (const request of ["bigint", "cycle", "large"]) {
            const start = Date.now()
            const exit = yield* Effect.exit(
              agent.ask({ value: request, timeout: "5 seconds" }).pipe(Effect.timeout("20 seconds"))
            )
            out.push([request, exit, Date.now() - start])
          }
          const after = yield* Effect.exit(agent.ask({ value: "still-there", timeout: "30 seconds" }))
          return { first, out, after }
        }).pipe(Effect.provide(askerSide))
        assert.strictEqual(results.first, "re:hello")
        for (const [request, exit, elapsed] of results.out) {
          typedOrTimeout(exit, request)
          assert.isBelow(elapsed, 15_000, `${request}: the ask outlived its timeout`)
        }
        // The agent did not fail: it still answers, and its fiber has not ended.
        assert.isTrue(
          Exit.isSuccess(results.after),
          `after: ${Exit.isFailure(results.after) && Cause.pretty(results.after.cause)}`
        )
        assert.strictEqual(Exit.isSuccess(results.after) && results.after.value, "re:still-there")
        assert.isUndefined(running.pollUnsafe(), `agent ended: ${inspect(running.pollUnsafe())}`)
        yield* Fiber.interrupt(running)
      }),
    120_000
  )

  it.live(
    "two askers (own apps, own reply topics) sharing one agent each get their own replies; a timed-out ask does not get another's",
    () =>
      Effect.gen(function*() {
        const name = unique("hostile-shared")
        const agentSide = Replies.layer.pipe(Layer.provideMerge(kafkaLayer({ appId: unique("replier") })))
        const running = yield* Effect.forkChild(
          Effect.flatMap(replier(name), (agent) => agent.run).pipe(Effect.provide(agentSide))
        )
        const asker = (who: string) =>
          Effect.gen(function*() {
            const agent = yield* replier(name)
            return yield* Effect.forEach(
              Array.from({ length: 15 }, (_, i) => `${who}-${i}`),
              (value) => agent.ask({ value, timeout: "60 seconds" }),
              { concurrency: "unbounded" }
            )
          }).pipe(Effect.provide(Replies.layer.pipe(Layer.provideMerge(kafkaLayer({ appId: unique(who) })))))
        const [a, b] = yield* Effect.all([asker("A"), asker("B")], { concurrency: 2 })
        assert.deepStrictEqual(a, Array.from({ length: 15 }, (_, i) => `re:A-${i}`))
        assert.deepStrictEqual(b, Array.from({ length: 15 }, (_, i) => `re:B-${i}`))

        // A slow reply after its ask timed out: the asker's next ask gets its own reply, not the stale one.
        const askerSide = Replies.layer.pipe(Layer.provideMerge(kafkaLayer({ appId: unique("C") })))
        const [late, next] = yield* Effect.gen(function*() {
          const agent = yield* replier(name)
          const late = yield* Effect.exit(agent.ask({ value: "slow:1", timeout: "1 second" }))
          const next = yield* agent.ask({ value: "after-slow", timeout: "60 seconds" })
          return [late, next] as const
        }).pipe(Effect.provide(askerSide))
        assert.isTrue(Exit.isFailure(late))
        if (Exit.isFailure(late)) assert.instanceOf(Cause.squash(late.cause), AskTimeoutError)
        assert.strictEqual(next, "re:after-slow")
        yield* Fiber.interrupt(running)
      }),
    180_000
  )
})

describe.skipIf(!brokerAvailable)("hostile: SASL against the plaintext listener", () => {
  const layerWith = (sasl: Kafka.SaslOptions) =>
    kafkaLayer({ appId: unique("sasl"), sasl, retries: 1, retryDelay: 100, connectTimeout: "2 seconds" })

  const attempt = (sasl: Kafka.SaslOptions) =>
    Effect.gen(function*() {
      const start = Date.now()
      const exit = yield* Effect.exit(
        Effect.flatMap(Effect.service(Kafka.Kafka), (kafka) => kafka.topicNames).pipe(
          Effect.provide(layerWith(sasl)),
          Effect.timeout("30 seconds")
        )
      )
      return { exit, elapsed: Date.now() - start }
    })

  it.live(
    "SCRAM against plaintext: a typed KafkaError within seconds, password in no rendering of it",
    () =>
      Effect.gen(function*() {
        const { elapsed, exit } = yield* attempt({ mechanism: "SCRAM-SHA-512", username: "alice", password: SECRET })
        assert.isTrue(Exit.isFailure(exit), "connected with SASL to a plaintext listener?")
        if (Exit.isFailure(exit)) {
          const error = exit.cause.reasons.find(Cause.isFailReason)?.error
          assert.instanceOf(error, KafkaError, Cause.pretty(exit.cause))
          for (
            const text of [
              Cause.pretty(exit.cause),
              String(error),
              JSON.stringify(error),
              inspect(error, { depth: 20 }),
              (error as KafkaError).message
            ]
          ) assert.notInclude(text, SECRET)
        }
        assert.isBelow(elapsed, 20_000)
      }),
    60_000
  )

  it.live(
    "OAUTHBEARER whose token Effect fails or dies: a typed KafkaError (not a defect, not a hang)",
    () =>
      Effect.gen(function*() {
        for (
          const token of [
            Effect.fail(new Error(`token service down ${SECRET}`)),
            Effect.die(new Error(`token bug ${SECRET}`)),
            Effect.never
          ] as ReadonlyArray<Effect.Effect<Redacted.Redacted<string>, unknown>>
        ) {
          const { elapsed, exit } = yield* attempt({ mechanism: "OAUTHBEARER", token })
          assert.isTrue(Exit.isFailure(exit))
          if (Exit.isFailure(exit)) {
            const error = exit.cause.reasons.find(Cause.isFailReason)?.error
            assert.instanceOf(error, KafkaError, Cause.pretty(exit.cause))
          }
          assert.isBelow(elapsed, 25_000)
        }
      }),
    120_000
  )
})
