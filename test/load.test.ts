import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema, Stream } from "effect"
import { Channel } from "effect-faust"
import { AppTest, waitUntil } from "./helpers.ts"

/** What one subscriber incarnation saw: the first value, the last, and whether any gap or repeat occurred. */
interface Seen {
  first: number | undefined
  last: number | undefined
  count: number
  broken: boolean
}

const watch = (seen: Seen) => (values: ReadonlyArray<number>) =>
  Effect.sync(() => {
    for (const value of values) {
      if (seen.last !== undefined && value !== seen.last + 1) seen.broken = true
      if (seen.first === undefined) seen.first = value
      seen.last = value
      seen.count++
    }
  })

const newSeen = (): Seen => ({ first: undefined, last: undefined, count: 0, broken: false })

describe("load (in memory)", () => {
  it.live(
    "10^6 messages to 16 subscribers, 12 of them interrupted and restarted at random: nothing lost, repeated or reordered",
    () =>
      Effect.gen(function*() {
        const total = 1_000_000
        const batch = 1_000
        const channel = yield* Channel.make({ value: Schema.Number, maxsize: 256, whenNoSubscribers: "drop" })
        const start = (seen: Seen) =>
          channel.stream().pipe(Stream.runForEachArray(watch(seen)), Effect.forkChild({ startImmediately: true }))

        const stable = Array.from({ length: 4 }, newSeen)
        const stableFibers = yield* Effect.forEach(stable, start)
        const chaotic: Array<{ seen: Seen; fiber: Fiber.Fiber<void, unknown> }> = []
        const retired: Array<Seen> = []
        for (let i = 0; i < 12; i++) {
          const seen = newSeen()
          chaotic.push({ seen, fiber: yield* start(seen) })
        }
        assert.strictEqual(channel.subscriberCount, 16)

        let sent = 0
        const sender = yield* Effect.forkChild(Effect.gen(function*() {
          while (sent < total) {
            yield* channel.sendAll(Array.from({ length: batch }, (_, i) => sent + i))
            sent += batch
          }
        }))
        let restarts = 0
        while (sender.pollUnsafe() === undefined) {
          const slot = chaotic[Math.floor(Math.random() * chaotic.length)]
          yield* Fiber.interrupt(slot.fiber)
          retired.push(slot.seen)
          slot.seen = newSeen()
          slot.fiber = yield* start(slot.seen)
          restarts++
          yield* Effect.sleep(`${Math.floor(Math.random() * 4)} millis`)
        }
        yield* Fiber.join(sender)
        yield* channel.end
        yield* Effect.forEach(stableFibers, Fiber.join)
        yield* Effect.forEach(chaotic, ({ fiber }) => Fiber.join(fiber))
        yield* waitUntil(() => channel.subscriberCount === 0)

        for (const seen of stable) {
          assert.deepStrictEqual(seen, { first: 0, last: total - 1, count: total, broken: false })
        }
        for (const seen of [...retired, ...chaotic.map(({ seen }) => seen)]) {
          assert.isFalse(seen.broken, "an interrupted subscriber saw a gap, a repeat or a reordering")
          if (seen.count > 0) assert.strictEqual(seen.last! - seen.first! + 1, seen.count)
        }
        assert.isAbove(restarts, 10, "the chaos loop restarted subscribers while messages flowed")
      }).pipe(Effect.provide(AppTest)),
    120_000
  )
})
