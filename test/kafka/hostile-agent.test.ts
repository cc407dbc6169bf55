/**
 * A hostile review of the agents' promises on a real broker (README
 * "Agents"): fresh topic names per test.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Schema } from "effect"
import { Agent, AgentError } from "effect-faust"
import { Kafka, Topic } from "effect-faust/kafka"
import { quiet } from "../helpers.ts"
import { brokerAvailable, committedOffset, eventually, kafkaLayer, unique } from "./setup.ts"

const utf8 = new TextEncoder()

const statsOf = (agent: { readonly stats: Agent.Stats }) => JSON.stringify({ ...agent.stats, processing: undefined })

describe.skipIf(!brokerAvailable)("hostile agents on Kafka", () => {
  it.live(
    "README: 'ordering: \"partition\" (default): events of one partition in order, partitions in parallel' — 8 partitions, concurrency 8: every record once, in offset order per partition",
    () =>
      Effect.gen(function*() {
        const name = unique("hostile-order")
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number, partitions: 8 })
        yield* Effect.forEach(
          Array.from({ length: 400 }, (_, i) => i),
          (i) => topic.sendSoon({ key: `k${i % 37}`, value: i }),
          { discard: true }
        )
        yield* topic.maybeDeclare
        const byPartition = new Map<number, Array<number>>()
        const values = new Set<number>()
        const agent = yield* Agent.forEach("ordered", topic, (value, event) =>
          Effect.gen(function*() {
            yield* Effect.sleep(value % 3)
            const partition = event.message.partition
            const list = byPartition.get(partition) ?? []
            list.push(event.message.offset)
            byPartition.set(partition, list)
            values.add(value)
          }), { concurrency: 8 })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* eventually(() => values.size === 400, 60_000)
        for (const [, offsets] of byPartition) {
          assert.deepStrictEqual(offsets, [...offsets].sort((a, b) => a - b), "in offset order")
          assert.strictEqual(new Set(offsets).size, offsets.length, "each once")
        }
        assert.strictEqual(agent.stats.handled, 400)
        yield* Fiber.interrupt(fiber)
        assert.strictEqual(agent.stats.inFlight, 0)
      }).pipe(Effect.provide([kafkaLayer(), quiet])),
    90_000
  )

  it.live(
    "README: a failing event under the default 'fail' is 'left unacknowledged while the agent fails' — the commit never passes it",
    () =>
      Effect.gen(function*() {
        const name = unique("hostile-fail")
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 1 })
        yield* topic.sendAll(Array.from({ length: 10 }, (_, i) => i))
        const agent = yield* Agent.forEach("fails-at-5", topic, (value) =>
          value === 5 ? Effect.fail("five") : Effect.void)
        const exit = yield* Effect.exit(agent.run)
        assert.isTrue(Exit.isFailure(exit))
        assert.instanceOf(Cause.squash((exit as Exit.Failure<void, unknown>).cause), AgentError)
        assert.strictEqual(agent.stats.handled, 5)
        const committed = yield* committedOffset(topic)
        assert.isAtMost(committed, 5, "the commit did not pass the failed event (offset 5)")
        assert.isAtLeast(committed, 0)
      }).pipe(Effect.provide([kafkaLayer(), quiet])),
    90_000
  )

  it.live(
    "README: a reply nobody waits for 'is dropped and counted, never an agent failure' — a record from another client whose x-correlation-id header value is null does not wedge the agent",
    () =>
      Effect.gen(function*() {
        const name = unique("hostile-null-header")
        const topic = yield* Topic.make({ topics: [name], value: Schema.String, partitions: 1 })
        yield* topic.maybeDeclare
        const kafka = yield* Kafka.Kafka
        yield* kafka.produce([
          {
            topic: name,
            partition: 0,
            key: null,
            value: utf8.encode(JSON.stringify("first")),
            headers: [],
            rawHeaders: [[utf8.encode("x-correlation-id"), null], [utf8.encode("x-reply-to"), null]],
            timestamp: Date.now()
          },
          {
            topic: name,
            partition: 0,
            key: null,
            value: utf8.encode(JSON.stringify("second")),
            headers: [],
            timestamp: Date.now()
          }
        ])
        const seen: Array<string> = []
        const agent = yield* Agent.forEach("null-header", topic, (value) => Effect.sync(() => seen.push(value)), {
          shutdownTimeout: "1 second"
        })
        const fiber = yield* Effect.forkChild(agent.run)
        const waited = yield* Effect.exit(
          eventually(() => agent.stats.handled === 2 && agent.stats.inFlight === 0, 20_000)
        )
        const stats = statsOf(agent)
        yield* Fiber.interrupt(fiber)
        assert.isTrue(Exit.isSuccess(waited), `the agent is wedged: seen ${JSON.stringify(seen)}, ${stats}`)
        assert.deepStrictEqual(seen, ["first", "second"])
        assert.strictEqual(agent.stats.failed, 0)
      }).pipe(Effect.provide([kafkaLayer(), quiet])),
    90_000
  )
})
