/**
 * A declare waits until a new topic's partitions have leaders
 * (`internal/leaders.ts`): the polling on its own with a TestClock, no broker.
 * `topic.test.ts` / `kafka.test.ts` declare topics on the broker and send to
 * them at once.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { awaitLeaders, type PartitionLeaders } from "../../src/kafka/internal/leaders.ts"

/** Answers from a script, one per call (the last one repeated), counting the calls. */
const scripted = (answers: ReadonlyArray<PartitionLeaders | Error>) => {
  let calls = 0
  const partitionsOf = (_topic: string): Promise<PartitionLeaders> => {
    const answer = answers[Math.min(calls++, answers.length - 1)]
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer)
  }
  return { partitionsOf, calls: () => calls }
}

const led = (...leaders: Array<number>) => leaders.map((leader) => ({ leader }))

describe("awaitLeaders", () => {
  it.effect("true at once when every partition has a leader", () =>
    Effect.gen(function*() {
      const metadata = scripted([led(1, 2, 3)])
      assert.isTrue(yield* awaitLeaders(metadata.partitionsOf, "t", 5_000))
      assert.strictEqual(metadata.calls(), 1)
    }))

  it.effect("asks again every interval until the last partition has one; a failed answer counts as not yet", () =>
    Effect.gen(function*() {
      const metadata = scripted([undefined, led(1, -1, 1), new Error("broker busy"), led(1, 1, 1)])
      const fiber = yield* Effect.forkChild(awaitLeaders(metadata.partitionsOf, "t", 5_000))
      yield* TestClock.adjust("250 millis")
      assert.isUndefined(fiber.pollUnsafe(), "still waiting after 3 answers")
      yield* TestClock.adjust("100 millis")
      assert.isTrue(yield* Fiber.join(fiber))
      assert.strictEqual(metadata.calls(), 4)
    }))

  it.effect("false after `within` when a partition never gets a leader (the caller goes on)", () =>
    Effect.gen(function*() {
      const metadata = scripted([led(1, -1)])
      const fiber = yield* Effect.forkChild(awaitLeaders(metadata.partitionsOf, "t", 1_000))
      yield* TestClock.adjust("999 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      assert.isFalse(yield* Fiber.join(fiber))
    }))

  it.effect("a topic the metadata shows with no partitions is not ready", () =>
    Effect.gen(function*() {
      const metadata = scripted([[], led(0)])
      const fiber = yield* Effect.forkChild(awaitLeaders(metadata.partitionsOf, "t", 1_000))
      yield* TestClock.adjust("100 millis")
      assert.isTrue(yield* Fiber.join(fiber))
    }))
})
