/**
 * Agents on a real broker (`npm run kafka:up`): the agent acknowledges each
 * event once its handling, its sends and its sinks are done, so commits never
 * pass an unfinished event; fresh topic names per test.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Random, Schema } from "effect"
import { Agent } from "effect-faust"
import { Topic } from "effect-faust/kafka"
import { committedOffsets, observeCommits } from "./delivery.ts"
import { brokerAvailable, eventually, kafkaLayer, unique } from "./setup.ts"

const produce = (name: string, count: number, partitions: number) =>
  Effect.gen(function*() {
    const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number, partitions })
    yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => i),
      (i) => topic.sendSoon({ key: `k${i % 16}`, value: i }),
      { discard: true }
    )
    yield* topic.maybeDeclare
  }).pipe(Effect.provide(kafkaLayer()))

describe.skipIf(!brokerAvailable)("Agent on a Topic", () => {
  it.live(
    "concurrency 8 with random delays: every event once, commits only over finished prefixes",
    () =>
      Effect.gen(function*() {
        const name = unique("agent-concurrent")
        yield* produce(name, 400, 4)
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number })
        const finished = new Map<number, Set<number>>()
        const violations: Array<string> = []
        const seen: Array<number> = []
        const stop = observeCommits(topic.groupId, (partition, offset) => {
          const done = finished.get(partition) ?? new Set()
          for (let o = 0; o < offset; o++) {
            if (!done.has(o)) {
              violations.push(`partition ${partition} committed ${offset} before offset ${o} finished`)
              break
            }
          }
        })
        const agent = yield* Agent.forEach("agent-concurrent", topic, (value, event) =>
          Effect.gen(function*() {
            yield* Effect.sleep(yield* Random.nextIntBetween(0, 5))
            seen.push(value)
            const done = finished.get(event.message.partition) ?? new Set()
            done.add(event.message.offset)
            finished.set(event.message.partition, done)
          }), { concurrency: 8 })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* eventually(() => seen.length >= 400, 60_000)
        yield* Fiber.interrupt(fiber)
        stop()
        assert.deepStrictEqual(violations, [])
        assert.deepStrictEqual([...seen].sort((a, b) => a - b), Array.from({ length: 400 }, (_, i) => i))
        const committed = yield* committedOffsets(topic.groupId, name)
        assert.strictEqual([...committed.values()].reduce((a, b) => a + b, 0), 400, "everything handled is committed")
      }).pipe(Effect.provide(kafkaLayer())),
    120_000
  )
})
