/**
 * Hostile tests of the README's in-memory Channel promises, written from the
 * README and the public API only. Test names say which promise they attack.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Option, Queue, Schema, Stream } from "effect"
import {
  Channel,
  ChannelClosedError,
  Codec,
  CodecError,
  Event,
  InvalidChannelOptionsError,
  KeyDecodeError,
  Message,
  NoSubscribersError,
  ValueDecodeError
} from "effect-faust"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { AppTest, bytes, failureOf, quiet, rawMessage, waitUntil } from "./helpers.ts"

/** Lets every runnable fiber take a few steps. */
const settle = Effect.forEach(Array.from({ length: 50 }), () => Effect.yieldNow, { discard: true })

/** Yields until `condition` holds or `max` yields have passed; returns whether it holds (the failure signal of "left blocked"). */
const yieldUntil = (condition: () => boolean, max = 5_000): Effect.Effect<boolean> =>
  Effect.suspend(function loop(n = 0): Effect.Effect<boolean> {
    if (condition()) return Effect.succeed(true)
    if (n >= max) return Effect.succeed(false)
    return Effect.andThen(Effect.yieldNow, () => loop(n + 1))
  })

const isDone = (fiber: Fiber.Fiber<unknown, unknown>) => () => fiber.pollUnsafe() !== undefined

/** Drains an iterator clone without waiting. */
const drain = <K, V, E>(clone: Channel.Channel<K, V, E>) =>
  Effect.gen(function*() {
    const out: Array<V> = []
    while (!(yield* clone.empty)) out.push((yield* clone.get()).value)
    return out
  })

describe("fan-out interrupted with several subscribers (nothing half-sent)", () => {
  for (const op of ["send", "put", "publishMessage"] as const) {
    it.effect(`nothing half-sent: an interrupted ${op} with one full, one empty and one half-full subscriber reaches no one`, () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ value: Schema.Number, maxsize: 2 })
        const empty = yield* channel.clone({ isIterator: true })
        const half = yield* channel.clone({ isIterator: true })
        const full = yield* channel.clone({ isIterator: true })
        yield* channel.sendAll([0, 1])
        yield* empty.get()
        yield* empty.get()
        yield* half.get()
        // empty: [], half: [1], full: [0, 1]
        const publish = op === "send"
          ? channel.send({ value: 9 })
          : op === "put"
          ? channel.put(Event.make({
            key: null,
            value: 9,
            headers: [],
            message: Message.make({
              topic: "t",
              partition: 0,
              offset: 0,
              timestamp: 0,
              timestampType: 0,
              key: null,
              value: 9
            })
          }))
          : Effect.flatMap(channel.asFutureMessage({ value: 9 }), (future) => channel.publishMessage(future))
        const blocked = yield* Effect.forkChild(publish)
        yield* settle
        assert.isUndefined(blocked.pollUnsafe(), "waits on the full subscriber")
        assert.isTrue(yield* empty.empty, "nothing offered to the empty one while another is full")
        yield* Fiber.interrupt(blocked)
        assert.deepStrictEqual(yield* drain(empty), [])
        assert.deepStrictEqual(yield* drain(half), [1])
        assert.deepStrictEqual(yield* drain(full), [0, 1])
        yield* channel.send({ value: 10 })
        assert.deepStrictEqual(yield* drain(empty), [10])
        assert.deepStrictEqual(yield* drain(half), [10])
        assert.deepStrictEqual(yield* drain(full), [10])
      }).pipe(Effect.provide(AppTest)))
  }

  it.effect("nothing half-sent: an interrupted sendAll leaves three unevenly filled subscribers with the same prefix", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 3 })
      const a = yield* channel.clone({ isIterator: true })
      const b = yield* channel.clone({ isIterator: true })
      const c = yield* channel.clone({ isIterator: true })
      yield* channel.sendAll([-2, -1])
      yield* a.get()
      yield* a.get()
      yield* b.get()
      // a: [] (room 3), b: [-1] (room 2), c: [-2, -1] (room 1)
      const sending = yield* Effect.forkChild(channel.sendAll([1, 2, 3, 4, 5, 6, 7]))
      yield* settle
      // take one from c to let another prefix through, then interrupt
      assert.strictEqual((yield* c.get()).value, -2)
      yield* settle
      assert.isUndefined(sending.pollUnsafe())
      yield* Fiber.interrupt(sending)
      const ra = yield* drain(a)
      const rb = (yield* drain(b)).slice(1)
      const rc = (yield* drain(c)).slice(1)
      assert.deepStrictEqual(rb, ra)
      assert.deepStrictEqual(rc, ra)
      assert.deepStrictEqual(ra, ra.length === 0 ? [] : [1, 2, 3, 4, 5, 6, 7].slice(0, ra.length), "a prefix")
    }).pipe(Effect.provide(AppTest)))

  it.live(
    "nothing half-sent (property): send/sendAll interrupted after a random number of steps, with random reads, keeps all subscribers equal",
    () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 1, max: 3 }),
            fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 2, maxLength: 4 }),
            fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 20 })), { maxLength: 6 }),
            fc.integer({ min: 0, max: 30 }),
            fc.boolean(),
            (maxsize, prefill, reads, stopAfter, batch) =>
              Effect.runPromise(
                Effect.gen(function*() {
                  const channel = yield* Channel.make({ value: Schema.Number, maxsize })
                  const subs = yield* Effect.forEach(prefill, () => channel.clone({ isIterator: true }))
                  const received: Array<Array<number>> = subs.map(() => [])
                  // prefill subscriber i with min(prefill[i], maxsize) old messages: send maxsize, then read the surplus
                  yield* channel.sendAll(Array.from({ length: maxsize }, (_, i) => -1 - i))
                  for (let i = 0; i < subs.length; i++) {
                    for (let k = 0; k < maxsize - Math.min(prefill[i], maxsize); k++) yield* subs[i].get()
                  }
                  const values = Array.from({ length: 8 }, (_, i) => i)
                  const sender = yield* Effect.forkChild(
                    batch
                      ? channel.sendAll(values)
                      : Effect.forEach(values, (value) => channel.send({ value }), { discard: true }),
                    { startImmediately: true }
                  )
                  for (const [who, steps] of reads) {
                    for (let s = 0; s < steps; s++) yield* Effect.yieldNow
                    const sub = subs[who % subs.length]
                    if (!(yield* sub.empty)) {
                      const v = (yield* sub.get()).value
                      if (v >= 0) received[who % subs.length].push(v)
                    }
                  }
                  for (let s = 0; s < stopAfter; s++) yield* Effect.yieldNow
                  yield* Fiber.interrupt(sender)
                  for (let i = 0; i < subs.length; i++) {
                    for (const v of yield* drain(subs[i])) if (v >= 0) received[i].push(v)
                  }
                  for (const r of received) {
                    if (batch) assert.deepStrictEqual(r, received[0], "same prefix everywhere")
                    else assert.oneOf(received[0].length - r.length, [0], "same sends everywhere")
                    assert.deepStrictEqual(r, values.slice(0, r.length))
                  }
                }).pipe(Effect.provide(AppTest))
              )
          ),
          { numRuns: 300 }
        )
      ),
    60_000
  )
})

describe("waiting sends keep their order", () => {
  it.effect("sends that wait keep their order: a send started just after room appears queues behind the waiting one (subscriber)", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
      const sub = yield* channel.clone({ isIterator: true })
      yield* channel.send({ value: 0 })
      const first = yield* Effect.forkChild(channel.send({ value: 1 }))
      yield* settle
      assert.isUndefined(first.pollUnsafe())
      assert.strictEqual((yield* sub.get()).value, 0)
      // no yield between the take and the new send
      const second = yield* Effect.forkChild(channel.send({ value: 2 }), { startImmediately: true })
      const got = [(yield* sub.get()).value, (yield* sub.get()).value]
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      assert.deepStrictEqual(got, [1, 2])
    }).pipe(Effect.provide(AppTest)))

  it.effect("sends that wait keep their order: a send started just after room appears queues behind the waiting one (buffer)", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
      yield* channel.send({ value: 0 })
      const first = yield* Effect.forkChild(channel.send({ value: 1 }))
      yield* settle
      assert.isUndefined(first.pollUnsafe())
      assert.strictEqual((yield* channel.get()).value, 0)
      const second = yield* Effect.forkChild(channel.send({ value: 2 }), { startImmediately: true })
      const got = [(yield* channel.get()).value, (yield* channel.get()).value]
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      assert.deepStrictEqual(got, [1, 2])
    }).pipe(Effect.provide(AppTest)))

  it.effect("sends that wait keep their order: a send waiting on the full buffer comes before a send made after the first subscriber started", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
      yield* channel.send({ value: 0 })
      const waiting = yield* Effect.forkChild(channel.send({ value: 1 }))
      yield* settle
      const reader = yield* channel.stream().pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
      yield* waitUntil(() => channel.subscriberCount === 1)
      const later = yield* Effect.forkChild(channel.send({ value: 2 }), { startImmediately: true })
      assert.deepStrictEqual(yield* Fiber.join(reader), [0, 1, 2])
      yield* Fiber.join(waiting)
      yield* Fiber.join(later)
    }).pipe(Effect.provide(AppTest)))

  it.live("many concurrent senders: each sender's messages arrive in its order at every subscriber, no sender left blocked", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Struct({ s: Schema.Number, i: Schema.Number }), maxsize: 2 })
      const readers = yield* Effect.forEach(
        [0, 1, 2],
        () => channel.stream().pipe(Stream.take(20 * 30), Stream.runCollect, Effect.forkChild)
      )
      yield* waitUntil(() => channel.subscriberCount === 3)
      const senders = yield* Effect.forEach(Array.from({ length: 20 }, (_, s) => s), (s) =>
        Effect.forkChild(
          s % 2 === 0
            ? Effect.forEach(Array.from({ length: 30 }, (_, i) => i), (i) => channel.send({ value: { s, i } }), {
              discard: true
            })
            : channel.sendAll(Array.from({ length: 30 }, (_, i) => ({ s, i })))
        ))
      yield* Effect.forEach(senders, Fiber.join).pipe(
        Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.die("a sender is left blocked") })
      )
      for (const r of readers) {
        const got = yield* Fiber.join(r)
        for (let s = 0; s < 20; s++) {
          assert.deepStrictEqual(got.filter((v) => v.s === s).map((v) => v.i), Array.from({ length: 30 }, (_, i) => i))
        }
      }
    }).pipe(Effect.provide(AppTest)))
})

describe("a sender waiting on a subscriber is released by any take", () => {
  const takes = {
    "Queue.poll": <A, E>(q: Queue.Queue<A, E>) => Effect.asVoid(Queue.poll(q)),
    "Queue.takeAll": <A, E>(q: Queue.Queue<A, E>) => Effect.asVoid(Queue.takeAll(q)),
    "Queue.takeN": <A, E>(q: Queue.Queue<A, E>) => Effect.asVoid(Queue.takeN(q, 1)),
    "Queue.take": <A, E>(q: Queue.Queue<A, E>) => Effect.asVoid(Queue.take(q))
  } as const
  for (const [name, take] of Object.entries(takes)) {
    it.effect(`released by any take: ${name} on clone.queue releases a waiting sender`, () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
        const sub = yield* channel.clone({ isIterator: true })
        yield* channel.send({ value: 1 })
        const waiting = yield* Effect.forkChild(channel.send({ value: 2 }))
        yield* settle
        assert.isUndefined(waiting.pollUnsafe())
        yield* Effect.orDie(take(sub.queue))
        assert.isTrue(yield* yieldUntil(isDone(waiting)), "the sender is released")
        assert.strictEqual((yield* sub.get()).value, 2)
      }).pipe(Effect.provide(AppTest)))
  }

  it.effect("released by any take: Queue.take on a cloneUsingQueue queue releases a waiting sender", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 4 })
      const q = yield* Queue.bounded<any, any>(1)
      const sub = yield* channel.cloneUsingQueue(q)
      yield* channel.send({ value: 1 })
      const waiting = yield* Effect.forkChild(channel.send({ value: 2 }))
      yield* settle
      assert.isUndefined(waiting.pollUnsafe())
      assert.strictEqual((yield* Queue.take(q)).value, 1)
      assert.isTrue(yield* yieldUntil(isDone(waiting)), "the sender is released")
      assert.strictEqual((yield* sub.get()).value, 2)
    }).pipe(Effect.provide(AppTest)))
})

describe("the no-subscriber buffer, handed between readers", () => {
  for (const kind of ["stream", "events", "items"] as const) {
    it.effect(`one message at a time: a ${kind}() reader that takes 1 leaves the rest of the buffer`, () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ value: Schema.Number })
        yield* channel.sendAll([1, 2, 3, 4])
        const s = kind === "stream"
          ? channel.stream()
          : kind === "events"
          ? Stream.map(channel.events(), (e) => e.value)
          : Stream.map(channel.items(), ([, v]) => v)
        assert.deepStrictEqual(yield* s.pipe(Stream.take(1), Stream.runCollect), [1])
        assert.deepStrictEqual(yield* channel.stream().pipe(Stream.take(3), Stream.runCollect), [2, 3, 4])
      }).pipe(Effect.provide(AppTest)))
  }

  it.effect("one message at a time: a reader whose handler fails on the first message leaves the rest of the buffer", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* channel.sendAll([1, 2, 3])
      const exit = yield* channel.stream().pipe(Stream.runForEach(() => Effect.fail("handler failed")), Effect.exit)
      assert.deepStrictEqual(exit, Exit.fail("handler failed"))
      assert.strictEqual(channel.subscriberCount, 0)
      assert.deepStrictEqual(yield* channel.stream().pipe(Stream.take(2), Stream.runCollect), [2, 3])
    }).pipe(Effect.provide(AppTest)))

  it.effect("one message at a time: a reader whose handler dies on the first message leaves the rest of the buffer", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* channel.sendAll([1, 2, 3])
      const exit = yield* channel.stream().pipe(Stream.runForEach(() => Effect.die("boom")), Effect.exit)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(channel.subscriberCount, 0)
      assert.deepStrictEqual(yield* channel.stream().pipe(Stream.take(2), Stream.runCollect), [2, 3])
    }).pipe(Effect.provide(AppTest)))

  it.effect("the buffer waits for the next one: sends made after the first reader left queue behind the old buffered ones", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* channel.sendAll([1, 2, 3])
      assert.deepStrictEqual(yield* channel.stream().pipe(Stream.take(1), Stream.runCollect), [1])
      yield* channel.send({ value: 4 })
      assert.deepStrictEqual(yield* channel.stream().pipe(Stream.take(3), Stream.runCollect), [2, 3, 4])
    }).pipe(Effect.provide(AppTest)))

  it.effect("an iterator clone is a subscriber: the first one reads the buffer with get(), before what was sent after it", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* channel.sendAll([1, 2])
      const clone = yield* channel.clone({ isIterator: true })
      yield* channel.send({ value: 3 })
      assert.deepStrictEqual(yield* drain(clone), [1, 2, 3])
    }).pipe(Effect.provide(AppTest)))

  it.effect("a cloneUsingQueue subscriber that starts first reads the buffer with get(), before what was sent after it", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* channel.sendAll([1, 2])
      const q = yield* Queue.bounded<any, any>(4)
      const clone = yield* channel.cloneUsingQueue(q)
      yield* channel.send({ value: 3 })
      assert.deepStrictEqual([(yield* clone.get()).value, (yield* clone.get()).value, (yield* clone.get()).value], [
        1,
        2,
        3
      ])
    }).pipe(Effect.provide(AppTest)))

  it.effect("handed over to the one that has read nothing yet: first reader (get) leaves, of two others the unread one takes the buffer", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* channel.sendAll([1, 2, 3])
      const first = yield* channel.clone({ isIterator: true })
      const readSome = yield* channel.clone({ isIterator: true })
      const readNothing = yield* channel.clone({ isIterator: true })
      yield* channel.send({ value: 4 })
      assert.strictEqual((yield* first.get()).value, 1)
      assert.strictEqual((yield* readSome.get()).value, 4)
      yield* first.onStopIteration
      assert.deepStrictEqual(yield* drain(readNothing), [2, 3, 4])
      assert.deepStrictEqual(yield* drain(readSome), [])
    }).pipe(Effect.provide(AppTest)))

  it.effect("each buffered message goes to exactly one reader: a reader interrupted while its get() waits on the buffer's handover loses nothing", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* channel.sendAll([1, 2])
      const first = yield* channel.clone({ isIterator: true })
      const second = yield* channel.clone({ isIterator: true })
      const waiting = yield* Effect.forkChild(second.get())
      yield* settle
      yield* first.onStopIteration
      yield* Fiber.interrupt(waiting)
      const exit = yield* Fiber.await(waiting)
      const got = Exit.isSuccess(exit) ? [exit.value.value] : []
      got.push(...(yield* drain(second)))
      assert.deepStrictEqual(got, [1, 2])
    }).pipe(Effect.provide(AppTest)))

  it.live(
    "each buffered message goes to exactly one reader (property): root get() with a timeout or interrupted after random steps loses nothing",
    () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.array(fc.tuple(fc.integer({ min: 0, max: 6 }), fc.boolean()), { maxLength: 8 }),
            (steps) =>
              Effect.runPromise(
                Effect.gen(function*() {
                  const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
                  const got: Array<number> = []
                  const senders: Array<Fiber.Fiber<unknown, unknown>> = []
                  let next = 0
                  for (const [wait, withSend] of steps) {
                    if (withSend) {
                      senders.push(yield* Effect.forkChild(channel.send({ value: next++ }), { startImmediately: true }))
                    }
                    const getter = yield* Effect.forkChild(channel.get(), { startImmediately: true })
                    for (let i = 0; i < wait; i++) yield* Effect.yieldNow
                    yield* Fiber.interrupt(getter)
                    const exit = yield* Fiber.await(getter)
                    if (Exit.isSuccess(exit)) got.push(exit.value.value)
                  }
                  // everyone sent must now be readable exactly once
                  while (got.length < next) {
                    const e = yield* channel.get({ timeout: "1 second" }).pipe(Effect.option)
                    if (Option.isNone(e)) break
                    got.push(e.value.value)
                  }
                  assert.deepStrictEqual(got, Array.from({ length: next }, (_, i) => i))
                  yield* Effect.forEach(senders, Fiber.join)
                }).pipe(Effect.provide(AppTest))
              )
          ),
          { numRuns: 300 }
        )
      ),
    60_000
  )

  it.effect("get({ timeout }) racing a send: a get that timed out took nothing (TestClock)", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const clone = yield* channel.clone({ isIterator: true })
      const getter = yield* Effect.forkChild(clone.get({ timeout: "1 second" }), { startImmediately: true })
      const sender = yield* Effect.forkChild(channel.send({ value: 1 }))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(sender)
      const exit = yield* Fiber.await(getter)
      const got = Exit.isSuccess(exit) ? [exit.value.value] : []
      got.push(...(yield* drain(clone)))
      assert.deepStrictEqual(got, [1])
    }).pipe(Effect.provide(AppTest)))
})

describe("closing with messages everywhere", () => {
  for (const close of ["end", "throw"] as const) {
    it.effect(`closing (${close}) discards nothing: buffer held by a stuck first reader, a second subscriber with queued messages, senders waiting`, () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ value: Schema.Number, error: Schema.String, maxsize: 2 })
        yield* channel.sendAll([1, 2]) // buffer: [1, 2]
        const readByFirst: Array<number> = []
        const first = yield* channel.stream().pipe(
          Stream.runForEach((v) => Effect.andThen(Effect.sync(() => readByFirst.push(v)), Effect.never)),
          Effect.forkChild
        )
        yield* waitUntil(() => readByFirst.length === 1)
        const second = yield* channel.clone({ isIterator: true })
        yield* channel.sendAll([3, 4]) // first: [3, 4] in queue, second: [3, 4]
        const waiting = yield* Effect.forkChild(channel.send({ value: 5 }))
        yield* settle
        assert.isUndefined(waiting.pollUnsafe())
        yield* close === "end" ? channel.end : channel.throw("closed")
        const sendExit = yield* Fiber.await(waiting)
        const err = failureOf(sendExit)
        assert.instanceOf(err, ChannelClosedError)
        assert.strictEqual((err as ChannelClosedError).closedBy, close)
        yield* Fiber.interrupt(first)
        // the buffer's leftover [2] goes to the remaining subscriber, which has read nothing yet
        const got: Array<number> = []
        let last: Exit.Exit<unknown, unknown> = Exit.void
        for (let i = 0; i < 10; i++) {
          const exit = yield* Effect.exit(second.get({ timeout: "1 second" }))
          if (Exit.isFailure(exit)) {
            last = exit
            break
          }
          got.push(exit.value.value)
        }
        assert.deepStrictEqual(got, [2, 3, 4])
        const final = failureOf(last)
        if (close === "throw") assert.strictEqual(final, "closed")
        else assert.instanceOf(final, ChannelClosedError)
      }).pipe(Effect.provide(AppTest)))

    it.effect(`closing (${close}) with no subscriber left: the buffer goes to the next stream that starts after the close`, () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ value: Schema.Number, error: Schema.String, maxsize: 3 })
        yield* channel.sendAll([1, 2, 3])
        const readByFirst: Array<number> = []
        const first = yield* channel.stream().pipe(
          Stream.runForEach((v) => Effect.andThen(Effect.sync(() => readByFirst.push(v)), Effect.never)),
          Effect.forkChild
        )
        yield* waitUntil(() => readByFirst.length === 1)
        yield* close === "end" ? channel.end : channel.throw("closed")
        yield* Fiber.interrupt(first)
        const seen: Array<number> = []
        const exit = yield* channel.stream().pipe(
          Stream.runForEach((v) => Effect.sync(() => seen.push(v))),
          Effect.exit
        )
        assert.deepStrictEqual(seen, [2, 3])
        assert.deepStrictEqual(exit, close === "end" ? Exit.void : Exit.fail("closed"))
      }).pipe(Effect.provide(AppTest)))
  }

  for (
    const [name, schema, error] of [
      ["undefined", Schema.Undefined, undefined],
      ["null", Schema.Null, null],
      ["false", Schema.Boolean, false],
      ["0", Schema.Number, 0],
      ["empty string", Schema.String, ""]
    ] as const
  ) {
    it.effect(`throw is terminal even with a falsy error (${name}): readers fail with it, sends fail closedBy "throw"`, () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ value: Schema.Number, error: schema as Schema.Top })
        const reader = yield* channel.stream().pipe(Stream.runCollect, Effect.forkChild)
        yield* waitUntil(() => channel.subscriberCount === 1)
        yield* channel.send({ value: 1 })
        yield* channel.throw(error as never)
        const exit = yield* Fiber.await(reader)
        assert.deepStrictEqual(exit, Exit.fail(error) as Exit.Exit<any, any>)
        const sendError = yield* Effect.flip(channel.send({ value: 2 }))
        assert.instanceOf(sendError, ChannelClosedError)
        assert.strictEqual((sendError as ChannelClosedError).closedBy, "throw")
      }).pipe(Effect.provide(AppTest)))
  }

  it.effect("throw reaches get(): an iterator clone drains what it had, then get fails with the thrown error", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, error: Schema.String })
      const clone = yield* channel.clone({ isIterator: true })
      yield* channel.sendAll([1, 2])
      yield* channel.throw("boom")
      assert.strictEqual((yield* clone.get()).value, 1)
      assert.strictEqual((yield* clone.get()).value, 2)
      assert.strictEqual(yield* Effect.flip(clone.get()), "boom")
    }).pipe(Effect.provide(AppTest)))

  it.effect("later subscribers fail at once after throw: a stream started after throw (nothing buffered) fails with the error", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, error: Schema.String })
      yield* channel.throw("boom")
      const exit = yield* channel.stream().pipe(Stream.runCollect, Effect.exit)
      assert.deepStrictEqual(exit, Exit.fail("boom") as Exit.Exit<any, any>)
      const clone = yield* channel.clone({ isIterator: true })
      const got = yield* Effect.exit(clone.get())
      assert.isTrue(Exit.isFailure(got), "get on a clone made after throw fails instead of waiting")
    }).pipe(Effect.provide(AppTest)))

  it.effect("no sender left waiting after end: a clone created after end does not trap a later sendAll", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
      yield* channel.end
      yield* channel.clone({ isIterator: true })
      const exit = yield* Effect.exit(channel.sendAll([1, 2, 3]))
      assert.instanceOf(failureOf(exit), ChannelClosedError)
    }).pipe(Effect.provide(AppTest)))

  it.effect("sends waiting on a subscriber's full queue when throw comes fail with ChannelClosedError and were not sent", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, error: Schema.String, maxsize: 2 })
      const a = yield* channel.clone({ isIterator: true })
      const b = yield* channel.clone({ isIterator: true })
      yield* channel.sendAll([1, 2])
      yield* a.get()
      yield* a.get()
      const waiting = yield* Effect.forkChild(channel.sendAll([3, 4]))
      const publishing = yield* Effect.forkChild(
        Effect.flatMap(
          channel.asFutureMessage({ value: 5 }),
          (f) => Effect.as(Effect.exit(channel.publishMessage(f)), f)
        )
      )
      yield* settle
      yield* channel.throw("boom")
      assert.instanceOf(failureOf(yield* Fiber.await(waiting)), ChannelClosedError)
      const future = yield* Fiber.join(publishing)
      assert.isTrue(future.isDone)
      assert.instanceOf(yield* Effect.flip(future.await), ChannelClosedError)
      assert.strictEqual(yield* Effect.flip(a.get()), "boom", "a got nothing of the waiting sends")
      assert.strictEqual((yield* b.get()).value, 1)
      assert.strictEqual((yield* b.get()).value, 2)
      assert.strictEqual(yield* Effect.flip(b.get()), "boom")
    }).pipe(Effect.provide(AppTest)))

  for (const close of ["end", "throw"] as const) {
    for (const maxsize of [1, 2, 3]) {
      it.effect(`closing: no reader left waiting after the close — a stream subscriber whose queue is full (maxsize ${maxsize}) with a sender waiting on it ends after draining (${close})`, () =>
        Effect.gen(function*() {
          const channel = yield* Channel.make({ value: Schema.Number, error: Schema.String, maxsize })
          const gate = yield* Deferred.make<void>()
          const seen: Array<number> = []
          const reader = yield* channel.stream().pipe(
            Stream.runForEach((v) => Effect.andThen(Effect.sync(() => seen.push(v)), Deferred.await(gate))),
            Effect.forkChild
          )
          yield* waitUntil(() => channel.subscriberCount === 1)
          yield* channel.send({ value: 0 }) // taken by the reader, which then blocks in its handler
          yield* waitUntil(() => seen.length === 1)
          yield* channel.sendAll(Array.from({ length: maxsize }, (_, i) => i + 1)) // its queue is now full
          const waiting = yield* Effect.forkChild(channel.send({ value: 99 }))
          yield* settle
          assert.isUndefined(waiting.pollUnsafe(), "the sender waits on the full queue")
          yield* close === "end" ? channel.end : channel.throw("boom")
          assert.instanceOf(failureOf(yield* Fiber.await(waiting)), ChannelClosedError)
          yield* Deferred.succeed(gate, void 0)
          assert.isTrue(yield* yieldUntil(isDone(reader)), "the reader finishes after draining its queue")
          assert.deepStrictEqual(seen, Array.from({ length: maxsize + 1 }, (_, i) => i))
          assert.deepStrictEqual(
            yield* Fiber.await(reader),
            close === "end" ? Exit.void : Exit.fail("boom") as Exit.Exit<any, any>
          )
        }).pipe(Effect.provide(AppTest)))
    }

    it.effect(`closing: no reader left waiting after the close — an iterator clone's get() fails after draining a full queue a sender waited on (maxsize 1, ${close})`, () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ value: Schema.Number, error: Schema.String, maxsize: 1 })
        const clone = yield* channel.clone({ isIterator: true })
        yield* channel.send({ value: 1 })
        const waiting = yield* Effect.forkChild(channel.send({ value: 2 }))
        yield* settle
        yield* close === "end" ? channel.end : channel.throw("boom")
        assert.instanceOf(failureOf(yield* Fiber.await(waiting)), ChannelClosedError)
        assert.strictEqual((yield* clone.get()).value, 1)
        const last = yield* Effect.forkChild(clone.get())
        assert.isTrue(yield* yieldUntil(isDone(last)), "get after draining fails instead of waiting for ever")
        const error = failureOf(yield* Fiber.await(last))
        if (close === "throw") assert.strictEqual(error, "boom")
        else assert.instanceOf(error, ChannelClosedError)
      }).pipe(Effect.provide(AppTest)))

    it.effect(`closing: no reader left waiting after the close — the root's get() fails after draining a full buffer a sender waited on (maxsize 1, ${close})`, () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ value: Schema.Number, error: Schema.String, maxsize: 1 })
        yield* channel.send({ value: 1 })
        const waiting = yield* Effect.forkChild(channel.send({ value: 2 }))
        yield* settle
        yield* close === "end" ? channel.end : channel.throw("boom")
        assert.instanceOf(failureOf(yield* Fiber.await(waiting)), ChannelClosedError)
        assert.strictEqual((yield* channel.get()).value, 1)
        const last = yield* Effect.forkChild(channel.get())
        assert.isTrue(yield* yieldUntil(isDone(last)), "get after draining fails instead of waiting for ever")
        assert.isTrue(Exit.isFailure(yield* Fiber.await(last)))
      }).pipe(Effect.provide(AppTest)))
  }
})

describe("subscribers that leave, fail or die while a sender waits on them", () => {
  it.effect("the last subscriber leaving releases the sender to the policy: buffer — the waiting message goes to the next reader", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
      const gate = yield* Deferred.make<void>()
      const seen: Array<number> = []
      const reader = yield* channel.stream().pipe(
        Stream.runForEach((v) => Effect.andThen(Effect.sync(() => seen.push(v)), Deferred.await(gate))),
        Effect.forkChild
      )
      yield* waitUntil(() => channel.subscriberCount === 1)
      yield* channel.send({ value: 1 })
      yield* waitUntil(() => seen.length === 1)
      yield* channel.send({ value: 2 })
      const waiting = yield* Effect.forkChild(channel.send({ value: 3 }))
      yield* settle
      assert.isUndefined(waiting.pollUnsafe())
      yield* Fiber.interrupt(reader)
      yield* Fiber.join(waiting)
      assert.deepStrictEqual(yield* channel.stream().pipe(Stream.take(1), Stream.runCollect), [3])
    }).pipe(Effect.provide(AppTest)))

  for (const how of ["fails", "dies"] as const) {
    it.effect(`a subscriber whose handler ${how} while a sender waits on it is removed and releases the sender; its message goes to the buffer`, () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
        const gate = yield* Deferred.make<void>()
        const seen: Array<number> = []
        const reader = yield* channel.stream().pipe(
          Stream.runForEach((v) =>
            Effect.andThen(
              Effect.andThen(Effect.sync(() => seen.push(v)), Deferred.await(gate)),
              how === "fails" ? Effect.fail("handler failed") : Effect.die("handler died")
            )
          ),
          Effect.forkChild
        )
        yield* waitUntil(() => channel.subscriberCount === 1)
        yield* channel.send({ value: 1 })
        yield* waitUntil(() => seen.length === 1)
        yield* channel.send({ value: 2 })
        const waiting = yield* Effect.forkChild(channel.send({ value: 3 }))
        yield* settle
        assert.isUndefined(waiting.pollUnsafe())
        yield* Deferred.succeed(gate, void 0)
        assert.isTrue(Exit.isFailure(yield* Fiber.await(reader)))
        assert.isTrue(yield* yieldUntil(isDone(waiting)), "the sender is released")
        assert.isTrue(Exit.isSuccess(yield* Fiber.await(waiting)))
        assert.strictEqual(channel.subscriberCount, 0)
        assert.deepStrictEqual(yield* channel.stream().pipe(Stream.take(1), Stream.runCollect), [3])
      }).pipe(Effect.provide(AppTest)))
  }

  it.effect("whenNoSubscribers: fail — a send waiting on the last subscriber fails with NoSubscribersError when it leaves", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1, whenNoSubscribers: "fail" })
      const sub = yield* channel.clone({ isIterator: true })
      yield* channel.send({ value: 1 })
      const waiting = yield* Effect.forkChild(channel.send({ value: 2 }))
      const waitingAll = yield* Effect.forkChild(channel.sendAll([3, 4]))
      yield* settle
      yield* sub.onStopIteration
      assert.isTrue(yield* yieldUntil(() => isDone(waiting)() && isDone(waitingAll)()), "released")
      assert.instanceOf(failureOf(yield* Fiber.await(waiting)), NoSubscribersError)
      assert.instanceOf(failureOf(yield* Fiber.await(waitingAll)), NoSubscribersError)
      assert.isTrue(yield* channel.empty, "nothing was buffered")
    }).pipe(Effect.provide(AppTest)))

  it.effect("whenNoSubscribers: drop — a send waiting on the last subscriber completes (dropped) when it leaves; nothing reaches a later reader", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1, whenNoSubscribers: "drop" })
      const sub = yield* channel.clone({ isIterator: true })
      yield* channel.send({ value: 1 })
      const waiting = yield* Effect.forkChild(channel.sendAll([2, 3]))
      yield* settle
      yield* sub.onStopIteration
      assert.isTrue(yield* yieldUntil(isDone(waiting)), "released")
      assert.isTrue(Exit.isSuccess(yield* Fiber.await(waiting)))
      assert.isTrue(yield* channel.empty)
      const late = yield* channel.clone({ isIterator: true })
      yield* channel.send({ value: 4 })
      assert.deepStrictEqual(yield* drain(late), [4])
    }).pipe(Effect.provide(AppTest)))

  it.effect("publishMessage with whenNoSubscribers: fail and nobody subscribed fails its future (never hangs)", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, whenNoSubscribers: "fail" })
      let callbacks = 0
      const future = yield* channel.asFutureMessage({ value: 1, callback: () => void callbacks++ })
      const exit = yield* Effect.exit(channel.publishMessage(future))
      assert.instanceOf(failureOf(exit), NoSubscribersError)
      assert.isTrue(future.isDone)
      assert.instanceOf(yield* Effect.flip(future.await), NoSubscribersError)
      assert.strictEqual(callbacks, 0)
    }).pipe(Effect.provide(AppTest)))

  it.effect("put with nobody subscribed is not silently lost under whenNoSubscribers: buffer", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* channel.put(Event.make({
        key: null,
        value: 7,
        headers: [],
        message: Message.make({
          topic: "t",
          partition: 0,
          offset: 0,
          timestamp: 0,
          timestampType: 0,
          key: null,
          value: 7
        })
      }))
      assert.strictEqual((yield* channel.get()).value, 7)
    }).pipe(Effect.provide(AppTest)))

  it.effect("subscriberCount returns to 0 after failing, dying, interrupted and completed readers of stream/events/items", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, whenNoSubscribers: "drop" })
      const streams = [
        channel.stream(),
        Stream.map(channel.events(), (e) => e.value),
        Stream.map(channel.items(), ([, v]) => v)
      ]
      for (const s of streams) {
        const failing = yield* s.pipe(Stream.runForEach(() => Effect.fail("x")), Effect.forkChild)
        const dying = yield* s.pipe(Stream.runForEach(() => Effect.die("x")), Effect.forkChild)
        const taking = yield* s.pipe(Stream.take(1), Stream.runDrain, Effect.forkChild)
        const stuck = yield* s.pipe(Stream.runForEach(() => Effect.never), Effect.forkChild)
        yield* waitUntil(() => channel.subscriberCount === 4)
        yield* channel.send({ value: 1 })
        yield* Fiber.await(failing)
        yield* Fiber.await(dying)
        yield* Fiber.await(taking)
        yield* Fiber.interrupt(stuck)
        assert.strictEqual(channel.subscriberCount, 0)
      }
    }).pipe(Effect.provide(AppTest)))
})

/** Things a codec or a getter can throw, or a cause can hold. */
const hostileThings = (): ReadonlyArray<readonly [string, () => unknown]> => {
  const revoked = Proxy.revocable({}, {})
  revoked.revoke()
  const trapAll = new Proxy({}, {
    get: () => {
      throw new Error("get trap")
    },
    getPrototypeOf: () => {
      throw new Error("getPrototypeOf trap")
    },
    ownKeys: () => {
      throw new Error("ownKeys trap")
    },
    has: () => {
      throw new Error("has trap")
    },
    getOwnPropertyDescriptor: () => {
      throw new Error("gopd trap")
    }
  })
  const circular: Array<unknown> = []
  circular.push(circular)
  return [
    ["undefined", () => undefined],
    ["null", () => null],
    ["a symbol", () => Symbol("hostile")],
    ["a revoked proxy", () => revoked.proxy],
    ["a proxy whose every trap throws", () => trapAll],
    ["an object with a throwing toPrimitive", () => ({
      [Symbol.toPrimitive]: () => {
        throw new Error("no")
      }
    })],
    ["an object with a throwing toStringTag getter", () =>
      Object.defineProperty({}, Symbol.toStringTag, {
        get: () => {
          throw new Error("no")
        }
      })],
    ["an object with a throwing toJSON", () => ({
      toJSON: () => {
        throw new Error("no")
      }
    })],
    ["a circular array", () => circular],
    ["an Error whose name and message getters throw", () =>
      Object.defineProperties(new Error(), {
        name: {
          get: () => {
            throw new Error("no")
          }
        },
        message: {
          get: () => {
            throw new Error("no")
          }
        }
      })],
    ["an Error whose stack getter throws", () =>
      Object.defineProperty(new Error("s"), "stack", {
        get: () => {
          throw new Error("no")
        }
      })],
    ["a 100,000-deep object", () => {
      let o: Record<string, unknown> = {}
      for (let i = 0; i < 100_000; i++) o = { o }
      return o
    }]
  ]
}

describe("decode never throws past the policy", () => {
  for (const [name, make] of hostileThings()) {
    for (const policy of ["fail", "skip", "deadLetter"] as const) {
      it.effect(`decode never throws past the policy: a codec throwing ${name} under ${policy} gives a typed ValueDecodeError`, () =>
        Effect.gen(function*() {
          const dlq = yield* Channel.make({ label: "dlq" })
          const codec = Codec.make({
            name: "hostile",
            dumps: () => new Uint8Array(),
            loads: () => {
              throw make()
            }
          })
          const channel = yield* Channel.make({
            value: Schema.Unknown,
            valueSerializer: codec,
            onDecodeError: policy === "deadLetter" ? { deadLetter: dlq } : policy
          })
          const exit = yield* Effect.exit(channel.deliver(rawMessage(bytes("x"))))
          if (policy === "fail") {
            assert.isTrue(
              Exit.isFailure(exit) && Cause.hasFails(exit.cause) && !Cause.hasDies(exit.cause),
              "typed failure, not a defect"
            )
            const error = failureOf(exit) as ValueDecodeError
            assert.instanceOf(error, ValueDecodeError)
            assert.isString(error.message)
            assert.isString(String(error))
            assert.isString(JSON.stringify(error))
          } else {
            assert.isTrue(Exit.isSuccess(exit), "the policy continues")
            if (policy === "skip") assert.strictEqual(channel.decodeErrorCounts.skipped, 1)
            else {
              assert.strictEqual(channel.decodeErrorCounts.deadLettered, 1)
              const dead = yield* dlq.get()
              const headers = Object.fromEntries(dead.headers as ReadonlyArray<readonly [string, unknown]>)
              assert.property(headers, "x-decode-error")
              assert.property(headers, "x-decode-error-message")
            }
          }
        }).pipe(Effect.provide(AppTest), Effect.provide(quiet)))
    }

    it.effect(`decode never throws past the policy: a Schema reading ${name} from a throwing getter gives a ValueDecodeError`, () =>
      Effect.gen(function*() {
        const codec = Codec.make({
          name: "getter",
          dumps: () => new Uint8Array(),
          loads: () =>
            Object.defineProperty({}, "a", {
              enumerable: true,
              get: () => {
                throw make()
              }
            })
        })
        const channel = yield* Channel.make({ value: Schema.Struct({ a: Schema.Number }), valueSerializer: codec })
        const exit = yield* Effect.exit(channel.deliver(rawMessage(bytes("x"))))
        assert.isTrue(Exit.isFailure(exit) && !Cause.hasDies(exit.cause), "not a defect")
        assert.instanceOf(failureOf(exit), ValueDecodeError)
      }).pipe(Effect.provide(AppTest), Effect.provide(quiet)))

    it(`errors' message, toString, stack and JSON.stringify never throw with ${name} as cause, received and value`, () => {
      const thing = make()
      const errors = [
        new ValueDecodeError({ channel: "c", received: thing, cause: thing }),
        new KeyDecodeError({ channel: "c", received: thing, cause: thing }),
        new CodecError({ codec: "json", operation: "loads", cause: thing }),
        new InvalidChannelOptionsError({ option: "maxsize", value: thing, reason: "bad" })
      ]
      for (const error of errors) {
        assert.isString(error.message)
        assert.isString(error.toString())
        assert.isString(String(error.stack ?? ""))
        const json = JSON.parse(JSON.stringify(error))
        assert.strictEqual(json._tag, error._tag)
      }
    })
  }

  it.effect("decode never throws past the policy: a codec returning a proxy whose every trap throws, into a Struct Schema", () =>
    Effect.gen(function*() {
      const [, trapAll] = hostileThings().find(([n]) => n === "a proxy whose every trap throws")!
      const codec = Codec.make({ name: "proxy", dumps: () => new Uint8Array(), loads: () => trapAll() })
      const channel = yield* Channel.make({
        value: Schema.Struct({ a: Schema.Number }),
        valueSerializer: codec,
        onDecodeError: "skip"
      })
      const exit = yield* Effect.exit(channel.deliver(rawMessage(bytes("x"))))
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(channel.decodeErrorCounts.skipped, 1)
    }).pipe(Effect.provide(AppTest), Effect.provide(quiet)))

  it.effect("invalid UTF-8 bytes for a String key are a KeyDecodeError, not a defect", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ key: Schema.String, value: Schema.Number })
      const exit = yield* Effect.exit(
        channel.decode(rawMessage(bytes("1"), new Uint8Array([0xff, 0xfe, 0xc0])), { propagate: true })
      )
      assert.isTrue(Exit.isFailure(exit) && !Cause.hasDies(exit.cause))
      assert.instanceOf(failureOf(exit), KeyDecodeError)
    }).pipe(Effect.provide(AppTest)))

  it.effect("a key codec that throws is a KeyDecodeError (not a ValueDecodeError, not a defect)", () =>
    Effect.gen(function*() {
      const codec = Codec.make({
        name: "k",
        dumps: () => new Uint8Array(),
        loads: () => {
          throw Symbol("k")
        }
      })
      const channel = yield* Channel.make({ key: Schema.Unknown, value: Schema.Number, keySerializer: codec })
      const exit = yield* Effect.exit(channel.decode(rawMessage(bytes("1"), bytes("k")), { propagate: true }))
      assert.isTrue(Exit.isFailure(exit) && !Cause.hasDies(exit.cause))
      assert.instanceOf(failureOf(exit), KeyDecodeError)
    }).pipe(Effect.provide(AppTest)))

  it.effect("deep input: a 200,000-deep key for a recursive key Schema is a KeyDecodeError under every policy", () =>
    Effect.gen(function*() {
      type Tree = ReadonlyArray<Tree>
      const Tree: Schema.Codec<Tree> = Schema.Array(Schema.suspend((): Schema.Codec<Tree> => Tree))
      const deep = bytes("[".repeat(200_000) + "]".repeat(200_000))
      const failing = yield* Channel.make({ key: Tree, value: Schema.Number, keySerializer: "json" })
      assert.instanceOf(yield* Effect.flip(failing.deliver(rawMessage(bytes("1"), deep))), KeyDecodeError)
      const dlq = yield* Channel.make({ label: "dlq" })
      const dead = yield* Channel.make({
        key: Tree,
        value: Schema.Number,
        keySerializer: "json",
        onDecodeError: { deadLetter: dlq }
      })
      yield* dead.deliver(rawMessage(bytes("1"), deep))
      assert.strictEqual(dead.decodeErrorCounts.deadLettered, 1)
      const event = yield* dlq.get()
      assert.strictEqual(event.key, event.message.key, "the raw key as received")
    }).pipe(Effect.provide(AppTest), Effect.provide(quiet)))

  it.effect("deep input: a 200,000-deep JSON value for a recursive Schema.Struct is a ValueDecodeError", () =>
    Effect.gen(function*() {
      interface Node {
        readonly next: Node | null
      }
      const Node: Schema.Codec<Node> = Schema.Struct({
        next: Schema.NullOr(Schema.suspend((): Schema.Codec<Node> => Node))
      })
      const deep = bytes("{\"next\":".repeat(200_000) + "null" + "}".repeat(200_000))
      const channel = yield* Channel.make({ value: Node, onDecodeError: "skip" })
      const exit = yield* Effect.exit(channel.deliver(rawMessage(deep)))
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(channel.decodeErrorCounts.skipped, 1)
    }).pipe(Effect.provide(AppTest), Effect.provide(quiet)))

  for (const close of ["end", "throw"] as const) {
    it.effect(`deadLetter to a closed channel (${close}): deliver fails typed (no defect, no hang) and nothing reaches the readers`, () =>
      Effect.gen(function*() {
        const dlq = yield* Channel.make({ label: "dlq", error: Schema.String })
        yield* close === "end" ? dlq.end : dlq.throw("dlq closed")
        const channel = yield* Channel.make({ value: Schema.Number, onDecodeError: { deadLetter: dlq } })
        const reader = yield* channel.clone({ isIterator: true })
        const fiber = yield* Effect.forkChild(Effect.exit(channel.deliver(rawMessage(bytes("not json")))))
        assert.isTrue(yield* yieldUntil(isDone(fiber)), "deliver does not hang")
        const exit = yield* Fiber.join(fiber)
        assert.isTrue(Exit.isFailure(exit) && !Cause.hasDies(exit.cause), "a typed failure")
        assert.instanceOf(failureOf(exit), ChannelClosedError)
        assert.isTrue(yield* reader.empty)
      }).pipe(Effect.provide(AppTest), Effect.provide(quiet)))
  }

  it.effect("deadLetter to a full dead-letter channel waits (backpressure) and is released by its reader, nothing lost", () =>
    Effect.gen(function*() {
      const dlq = yield* Channel.make({ label: "dlq", maxsize: 1 })
      const channel = yield* Channel.make({ value: Schema.Number, onDecodeError: { deadLetter: dlq } })
      yield* channel.deliver(rawMessage(bytes("bad-1"), null, 1))
      const second = yield* Effect.forkChild(channel.deliver(rawMessage(bytes("bad-2"), null, 2)))
      yield* settle
      assert.isUndefined(second.pollUnsafe())
      const offsets = [(yield* dlq.get()).message.offset]
      yield* Fiber.join(second)
      offsets.push((yield* dlq.get()).message.offset)
      assert.deepStrictEqual(offsets, [1, 2])
      assert.strictEqual(channel.decodeErrorCounts.deadLettered, 2)
    }).pipe(Effect.provide(AppTest), Effect.provide(quiet)))

  it.effect("onDecodeError fail: readers get what was buffered first, then the typed error", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const reader = yield* channel.clone({ isIterator: true })
      yield* channel.sendAll([1, 2])
      const error = yield* Effect.flip(channel.deliver(rawMessage(bytes("not json"))))
      assert.instanceOf(error, ValueDecodeError)
      assert.deepStrictEqual([(yield* reader.get()).value, (yield* reader.get()).value], [1, 2])
      assert.instanceOf(yield* Effect.flip(reader.get()), ValueDecodeError)
    }).pipe(Effect.provide(AppTest), Effect.provide(quiet)))
})

describe("option validation", () => {
  const badMaxsizes: ReadonlyArray<unknown> = [
    0,
    -1,
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    "3",
    -0.5,
    Number.NEGATIVE_INFINITY,
    1e-7
  ]
  for (const maxsize of badMaxsizes) {
    it.effect(`invalid options fail with InvalidChannelOptionsError: maxsize ${String(maxsize)} (make and clone)`, () =>
      Effect.gen(function*() {
        const fromMake = yield* Effect.exit(Channel.make({ value: Schema.Number, maxsize: maxsize as number }))
        assert.instanceOf(failureOf(fromMake), InvalidChannelOptionsError)
        assert.strictEqual((failureOf(fromMake) as InvalidChannelOptionsError).option, "maxsize")
        const channel = yield* Channel.make({ value: Schema.Number })
        const fromClone = yield* Effect.exit(channel.clone({ maxsize: maxsize as number }))
        assert.instanceOf(failureOf(fromClone), InvalidChannelOptionsError)
      }).pipe(Effect.provide(AppTest)))
  }

  const badOthers: ReadonlyArray<readonly [string, Record<string, unknown>]> = [
    ["whenNoSubscribers", { whenNoSubscribers: "BUFFER" }],
    ["onDecodeError", { onDecodeError: "Skip" }],
    ["onDecodeError", { onDecodeError: { deadLetter: null } }],
    ["onDecodeError", { onDecodeError: { deadLetter: "dlq" } }],
    ["key", { key: { ast: {} } }],
    ["value", { value: 42 }],
    ["error", { error: "boom" }],
    ["keySerializer", { keySerializer: "nope" }],
    ["valueSerializer", { valueSerializer: "json|nope" }],
    ["valueSerializer", { valueSerializer: { name: "fake" } }]
  ]
  for (const [option, options] of badOthers) {
    it.effect(`invalid options fail with InvalidChannelOptionsError naming the option: ${JSON.stringify(options)}`, () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(Channel.make(options as Channel.Options))
        assert.isTrue(Exit.isFailure(exit) && !Cause.hasDies(exit.cause), "a typed failure, not a defect")
        const error = failureOf(exit) as InvalidChannelOptionsError
        assert.instanceOf(error, InvalidChannelOptionsError)
        assert.strictEqual(error.option, option)
        assert.isString(JSON.stringify(error))
      }).pipe(Effect.provide(AppTest)))
  }

  it.effect("clone's overrides are validated: onDecodeError deadLetter to a non-channel, activePartitions not iterable", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const a = yield* Effect.exit(channel.clone({ onDecodeError: { deadLetter: { label: "x" } as never } }))
      assert.instanceOf(failureOf(a), InvalidChannelOptionsError)
      const b = yield* Effect.exit(channel.clone({ onDecodeError: 42 as never }))
      assert.instanceOf(failureOf(b), InvalidChannelOptionsError)
    }).pipe(Effect.provide(AppTest)))
})

describe("the buffer shared between a subscriber and the root's get()", () => {
  it.effect("each buffered message goes to exactly one reader: root get() and the subscriber holding the buffer interleaved", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* channel.sendAll([1, 2, 3, 4])
      const sub = yield* channel.clone({ isIterator: true })
      const got: Array<number> = []
      got.push((yield* channel.get()).value)
      got.push((yield* sub.get()).value)
      got.push((yield* channel.get()).value)
      got.push(...(yield* drain(sub)))
      assert.deepStrictEqual([...got].sort(), [1, 2, 3, 4])
    }).pipe(Effect.provide(AppTest)))

  it.effect("handover to a subscriber that already read: the buffer's older messages come after what it read, none lost or doubled", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* channel.sendAll([1, 2, 3])
      const readByFirst: Array<number> = []
      const first = yield* channel.stream().pipe(
        Stream.runForEach((v) => Effect.andThen(Effect.sync(() => readByFirst.push(v)), Effect.never)),
        Effect.forkChild
      )
      yield* waitUntil(() => readByFirst.length === 1)
      const second = yield* channel.stream().pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
      yield* waitUntil(() => channel.subscriberCount === 2)
      yield* channel.send({ value: 4 })
      yield* settle
      yield* Fiber.interrupt(first)
      const got = yield* Fiber.join(second)
      assert.deepStrictEqual(readByFirst, [1])
      assert.deepStrictEqual([...got].sort(), [2, 3, 4])
      assert.deepStrictEqual(got.filter((v) => v !== 4), [2, 3], "buffer in order")
    }).pipe(Effect.provide(AppTest)))

  it.effect("senders waiting for room in the buffer are released as the first subscriber reads it, in order, behind the buffer", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 2 })
      yield* channel.sendAll([1, 2])
      const waiting = yield* Effect.forEach(
        [3, 4, 5],
        (value) => Effect.forkChild(channel.send({ value }), { startImmediately: true })
      )
      yield* settle
      assert.isTrue(waiting.every((f) => f.pollUnsafe() === undefined))
      const sub = yield* channel.clone({ isIterator: true })
      const got: Array<number> = []
      for (let i = 0; i < 5; i++) got.push((yield* sub.get()).value)
      yield* Effect.forEach(waiting, Fiber.join)
      assert.deepStrictEqual(got, [1, 2, 3, 4, 5])
    }).pipe(Effect.provide(AppTest)))

  it.effect("a first reader that stops early while senders wait for buffer room: the senders are not left blocked with nobody subscribed", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
      yield* channel.send({ value: 1 })
      const waiting = yield* Effect.forkChild(channel.send({ value: 2 }), { startImmediately: true })
      yield* settle
      assert.deepStrictEqual(yield* channel.stream().pipe(Stream.take(1), Stream.runCollect), [1])
      assert.isTrue(yield* yieldUntil(isDone(waiting)), "the waiting sender got the room the reader made")
      assert.strictEqual((yield* channel.get()).value, 2)
    }).pipe(Effect.provide(AppTest)))
})

describe("a stream subscriber whose handler is slow (not stuck) while a sender waits on it", () => {
  /** A stream subscriber that takes 0, then waits in its handler until the gate opens, with its queue full behind it. */
  const slowReader = (maxsize: number) =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, error: Schema.String, maxsize })
      const gate = yield* Deferred.make<void>()
      const seen: Array<number> = []
      const reader = yield* channel.stream().pipe(
        Stream.runForEach((v) => Effect.andThen(Effect.sync(() => seen.push(v)), Deferred.await(gate))),
        Effect.forkChild
      )
      yield* waitUntil(() => channel.subscriberCount === 1)
      yield* channel.send({ value: 0 })
      yield* waitUntil(() => seen.length === 1)
      yield* channel.sendAll(Array.from({ length: maxsize }, (_, i) => i + 1))
      return { channel, gate, seen, reader }
    })

  for (const maxsize of [1, 3]) {
    it.effect(`a sender waiting on a slow stream subscriber is released when the stream reads on (maxsize ${maxsize})`, () =>
      Effect.gen(function*() {
        const { channel, gate, seen } = yield* slowReader(maxsize)
        const waiting = yield* Effect.forkChild(channel.send({ value: 99 }))
        yield* settle
        assert.isUndefined(waiting.pollUnsafe(), "waits, never drops")
        yield* Deferred.succeed(gate, void 0)
        assert.isTrue(yield* yieldUntil(isDone(waiting)), "released by the stream's takes")
        assert.isTrue(yield* yieldUntil(() => seen.length === maxsize + 2))
        assert.deepStrictEqual(seen, [...Array.from({ length: maxsize + 1 }, (_, i) => i), 99])
      }).pipe(Effect.provide(AppTest)))

    it.effect(`an interrupted sender leaves no one blocked: after a send waiting on a slow stream subscriber is interrupted, the next send completes (maxsize ${maxsize})`, () =>
      Effect.gen(function*() {
        const { channel, gate, seen } = yield* slowReader(maxsize)
        const waiting = yield* Effect.forkChild(channel.send({ value: 99 }))
        yield* settle
        assert.isUndefined(waiting.pollUnsafe())
        yield* Fiber.interrupt(waiting)
        yield* Deferred.succeed(gate, void 0)
        assert.isTrue(yield* yieldUntil(() => seen.length === maxsize + 1), "the stream reads what it had")
        const next = yield* Effect.forkChild(channel.send({ value: 100 }))
        assert.isTrue(yield* yieldUntil(isDone(next)), "the next send completes: the subscriber's queue is empty")
        assert.isTrue(yield* yieldUntil(() => seen.length === maxsize + 2))
        assert.deepStrictEqual(
          seen,
          [...Array.from({ length: maxsize + 1 }, (_, i) => i), 100],
          "the interrupted message reached no one"
        )
      }).pipe(Effect.provide(AppTest)))

    it.effect(`an interrupted sender leaves no one blocked: end after a send waiting on a slow stream subscriber was interrupted still ends the stream (maxsize ${maxsize})`, () =>
      Effect.gen(function*() {
        const { channel, gate, seen, reader } = yield* slowReader(maxsize)
        const waiting = yield* Effect.forkChild(channel.send({ value: 99 }))
        yield* settle
        yield* Fiber.interrupt(waiting)
        yield* channel.end
        yield* Deferred.succeed(gate, void 0)
        assert.isTrue(yield* yieldUntil(isDone(reader)), "the stream ends after draining")
        assert.deepStrictEqual(seen, Array.from({ length: maxsize + 1 }, (_, i) => i))
      }).pipe(Effect.provide(AppTest)))
  }
})
