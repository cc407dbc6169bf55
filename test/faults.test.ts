import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema, Stream } from "effect"
import { Channel } from "effect-faust"
import * as fc from "fast-check"
import { AppTest, waitUntil } from "./helpers.ts"

/** Lets every runnable fiber take a few steps. */
const settle = Effect.forEach(Array.from({ length: 50 }), () => Effect.yieldNow, { discard: true })

describe("interruption", () => {
  it.effect("a subscriber interrupted while the sender waits on its full queue releases the sender and is gone", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 2 })
      const stuck = yield* channel.stream().pipe(Stream.runForEach(() => Effect.never), Effect.forkChild)
      const healthy = yield* channel.stream().pipe(Stream.take(10), Stream.runCollect, Effect.forkChild)
      yield* waitUntil(() => channel.subscriberCount === 2)
      const sender = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 10 }, (_, i) => i), (value) => channel.send({ value }))
      )
      yield* settle
      assert.isUndefined(sender.pollUnsafe(), "the sender waits for the stuck subscriber")
      yield* Fiber.interrupt(stuck)
      assert.strictEqual(channel.subscriberCount, 1)
      yield* Fiber.join(sender)
      assert.deepStrictEqual(yield* Fiber.join(healthy), Array.from({ length: 10 }, (_, i) => i))
      yield* waitUntil(() => channel.subscriberCount === 0)
    }).pipe(Effect.provide(AppTest)))

  it.effect("an interrupted sender leaves no one blocked and its message is not half-delivered to later senders' order", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
      const subscriber = yield* channel.clone({ isIterator: true })
      yield* channel.send({ value: 1 })
      const blocked = yield* Effect.forkChild(channel.send({ value: 2 }))
      yield* settle
      assert.isUndefined(blocked.pollUnsafe())
      yield* Fiber.interrupt(blocked)
      assert.strictEqual((yield* subscriber.get()).value, 1)
      yield* channel.send({ value: 3 })
      assert.strictEqual((yield* subscriber.get()).value, 3)
      assert.isTrue(yield* subscriber.empty)
    }).pipe(Effect.provide(AppTest)))

  it.effect("10^4 subscribe/unsubscribe cycles leave subscriberCount at 0", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, whenNoSubscribers: "drop" })
      for (let i = 0; i < 10_000; i++) {
        switch (i % 3) {
          case 0: {
            const clone = yield* channel.clone({ isIterator: true })
            yield* clone.onStopIteration
            break
          }
          case 1: {
            const fiber = yield* channel.stream().pipe(Stream.runDrain, Effect.forkChild({ startImmediately: true }))
            yield* Fiber.interrupt(fiber)
            break
          }
          default: {
            const fiber = yield* channel.stream().pipe(
              Stream.take(1),
              Stream.runCollect,
              Effect.forkChild({ startImmediately: true })
            )
            yield* channel.send({ value: i })
            assert.deepStrictEqual(yield* Fiber.join(fiber), [i])
          }
        }
      }
      assert.strictEqual(channel.subscriberCount, 0)
    }).pipe(Effect.provide(AppTest)), 60_000)
})

type Op = "send" | "subscribe"

/**
 * Runs a sequence of sends and subscriber starts, then ends the channel and
 * returns what each subscriber received with the number of sends before it.
 */
const runOps = (
  ops: ReadonlyArray<Op>,
  options: { readonly maxsize: number; readonly whenNoSubscribers?: Channel.NoSubscribersPolicy }
) =>
  Effect.gen(function*() {
    const channel = yield* Channel.make({
      value: Schema.Number,
      maxsize: options.maxsize,
      whenNoSubscribers: options.whenNoSubscribers
    })
    const subscribers: Array<{ readonly sentBefore: number; readonly fiber: Fiber.Fiber<Array<number>, unknown> }> = []
    let sent = 0
    for (const op of ops) {
      if (op === "send") {
        yield* channel.send({ value: sent++ })
      } else {
        const fiber = yield* channel.stream().pipe(Stream.runCollect, Effect.forkChild({ startImmediately: true }))
        subscribers.push({ sentBefore: sent, fiber })
      }
    }
    yield* channel.end
    const received = yield* Effect.forEach(subscribers, ({ fiber, sentBefore }) =>
      Effect.map(Fiber.join(fiber), (values) => ({ sentBefore, values })))
    return { sent, received }
  }).pipe(Effect.provide(AppTest))

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i)

const ops = fc.array(fc.constantFrom<Op>("send", "send", "subscribe"), { maxLength: 60 })

describe("delivery property (fast-check)", () => {
  it.live("each subscriber receives every message sent after it subscribed, in order, exactly once", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(ops, fc.integer({ min: 1, max: 4 }), (sequence, maxsize) =>
          Effect.runPromise(
            Effect.map(runOps(sequence, { maxsize, whenNoSubscribers: "drop" }), ({ sent, received }) => {
              for (const { sentBefore, values } of received) {
                assert.deepStrictEqual(values, range(sentBefore, sent))
              }
            })
          )),
        { numRuns: 200 }
      )
    ))

  it.live("with whenNoSubscribers: buffer, the first subscriber also gets what was sent before it", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(ops, (sequence) =>
          Effect.runPromise(
            Effect.map(runOps(sequence, { maxsize: 64 }), ({ sent, received }) => {
              received.forEach(({ sentBefore, values }, index) => {
                assert.deepStrictEqual(values, range(index === 0 ? 0 : sentBefore, sent))
              })
            })
          )),
        { numRuns: 200 }
      )
    ))
})
