import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { Event, Message } from "effect-faust"
import { EventQueue } from "../src/internal/agent/eventQueue.ts"

const eventOf = (n: number) =>
  Event.make({
    key: null,
    value: n,
    headers: [],
    message: Message.make({ topic: "t", partition: 0, offset: n, timestamp: 0, timestampType: 0, key: null, value: n })
  })

const makeQueue = Effect.withFiber((fiber) => Effect.succeed(new EventQueue(fiber.currentDispatcher)))

describe("an agent instance's EventQueue", () => {
  it.effect("hands events out in order, across the compaction of its array", () =>
    Effect.gen(function*() {
      const queue = yield* makeQueue
      const seen: Array<number> = []
      for (let i = 0; i < 5000; i++) {
        queue.offer(eventOf(i))
        if (i % 3 === 0) seen.push(queue.poll()!.value as number)
      }
      for (let event = queue.poll(); event !== undefined; event = queue.poll()) seen.push(event.value as number)
      assert.deepStrictEqual(seen, Array.from({ length: 5000 }, (_, i) => i))
      assert.strictEqual(queue.size, 0)
    }))

  it.effect("take waits for an event; end wakes every waiter with undefined once empty", () =>
    Effect.gen(function*() {
      const queue = yield* makeQueue
      const first = yield* Effect.forkChild(queue.take)
      const second = yield* Effect.forkChild(queue.take)
      yield* Effect.yieldNow
      queue.offer(eventOf(1))
      const got = yield* Fiber.join(first)
      assert.strictEqual(got?.value, 1)
      queue.offer(eventOf(2))
      queue.end()
      assert.strictEqual((yield* Fiber.join(second))?.value, 2)
      assert.isUndefined(yield* queue.take)
      queue.offer(eventOf(3))
      assert.strictEqual(queue.size, 0, "an ended queue takes nothing more")
    }))

  it.effect("a waiter interrupted before its wake runs takes nothing: the event stays for the next take", () =>
    Effect.gen(function*() {
      const queue = yield* makeQueue
      const waiter = yield* Effect.forkChild(queue.take)
      yield* Effect.yieldNow
      queue.offer(eventOf(7))
      assert.strictEqual(queue.size, 1, "the offer does not run the waiter")
      yield* Fiber.interrupt(waiter)
      assert.strictEqual((yield* queue.take)?.value, 7)
    }))

  it.effect("offers made in one step are woken as a run: a taker finds them all", () =>
    Effect.gen(function*() {
      const queue = yield* makeQueue
      const waiter = yield* Effect.forkChild(queue.take)
      yield* Effect.yieldNow
      for (let i = 0; i < 3; i++) queue.offer(eventOf(i))
      assert.strictEqual((yield* Fiber.join(waiter))?.value, 0)
      assert.strictEqual(queue.size, 2)
    }))

  it.effect("drain takes everything it holds", () =>
    Effect.gen(function*() {
      const queue = yield* makeQueue
      for (let i = 0; i < 3; i++) queue.offer(eventOf(i))
      queue.poll()
      assert.deepStrictEqual(queue.drain().map((event) => event.value), [1, 2])
      assert.isUndefined(queue.poll())
    }))
})
