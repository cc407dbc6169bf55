/**
 * Hostile tests of futures in memory: `sendSoon`, `asFutureMessage`,
 * `publishMessage` and `FutureMessage` on a plain `Channel`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Equal, Exit, Fiber, Schema } from "effect"
import {
  App,
  Channel,
  ChannelClosedError,
  FutureMessage,
  Message,
  NoSubscribersError,
  NotATopicError,
  PublishInterruptedError,
  RecordMetadata,
  UnsupportedOperationError
} from "effect-faust"
import { TestClock } from "effect/testing"
import { assertSameMetadata, failureOf, handWritten } from "./helpers.ts"

const AppLive = App.layer({ id: "hostile-futures" })

/** What the README says an in-memory publication completes its future with. */
const assertAnon = (metadata: RecordMetadata.RecordMetadata, timestamp: number, label: string) => {
  assert.strictEqual(metadata.topic, "<anon>", `${label}: topic`)
  assert.strictEqual(metadata.partition, -1, `${label}: partition`)
  assert.strictEqual(metadata.offset, -1, `${label}: offset`)
  assert.strictEqual(metadata.timestamp, timestamp, `${label}: timestamp`)
  assert.strictEqual(metadata.timestampType, 1, `${label}: timestampType`)
  assert.isTrue(Equal.equals(metadata.topicPartition, Message.TopicPartition.make("<anon>", -1)), `${label}: tp`)
}

describe("hostile: futures in memory", () => {
  it.effect("sendSoon fails with UnsupportedOperationError; asFutureMessage with eagerPartitioning fails with NotATopicError", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ key: Schema.String, value: Schema.Number })
      const soon = yield* Effect.exit(channel.sendSoon({ key: "a", value: 1 }))
      assert.instanceOf(failureOf(soon), UnsupportedOperationError, String(soon))
      const eager = yield* Effect.exit(channel.asFutureMessage({ key: "a", value: 1, eagerPartitioning: true }))
      assert.instanceOf(failureOf(eager), NotATopicError, String(eager))
    }).pipe(Effect.provide(AppLive)))

  it.effect("publishMessage completes the future with <anon>/-1/-1, the Clock's timestamp and type 1; awaited later (clock moved) it is the same", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ key: Schema.String, value: Schema.Number })
      yield* TestClock.adjust("5 seconds")
      const future = yield* channel.asFutureMessage({ key: "a", value: 1 })
      const given = yield* channel.asFutureMessage({ key: "b", value: 2, timestamp: 1_234 })
      assert.isFalse(future.isDone)
      const returned = yield* channel.publishMessage(future)
      const returnedGiven = yield* channel.publishMessage(given)
      assert.isTrue(future.isDone)
      assertAnon(returned, 5_000, "returned")
      assertAnon(returnedGiven, 1_234, "given timestamp")
      yield* TestClock.adjust("1 hour")
      const first = yield* future.await
      const second = yield* future.await
      assertAnon(first, 5_000, "awaited an hour later")
      assertSameMetadata(first, returned, "returned vs awaited")
      assertSameMetadata(first, second, "awaited twice")
      assertSameMetadata(yield* given.await, returnedGiven, "given")
      // the messages were delivered (buffered: nobody subscribed)
      assert.strictEqual((yield* channel.get()).value, 1)
      assert.strictEqual((yield* channel.get()).value, 2)
    }).pipe(Effect.provide(AppLive)))

  it.effect("FutureMessage.make: completes once; succeed / fail return false the second time; await gives the first outcome", () =>
    Effect.gen(function*() {
      const pending = FutureMessage.PendingMessage.make<string, number>({ channel: { label: "demo" }, value: 1 })
      const metadata = RecordMetadata.make({ topic: "t", partition: 0, offset: 3, timestamp: 4, timestampType: 0 })
      const a = yield* FutureMessage.make(pending)
      const waiting = yield* Effect.forkChild(a.await)
      assert.isFalse(a.isDone)
      assert.isTrue(yield* a.succeed(metadata))
      assert.isTrue(a.isDone)
      assert.isFalse(yield* a.succeed(RecordMetadata.make({ ...metadata, offset: 99 })))
      assert.isFalse(yield* a.fail(new PublishInterruptedError({ channel: "demo" })))
      assertSameMetadata(yield* Fiber.join(waiting), metadata, "awaiter from before")
      assertSameMetadata(yield* a.await, metadata, "after")

      const b = yield* FutureMessage.make(pending)
      const error = new PublishInterruptedError({ channel: "first" })
      assert.isTrue(yield* b.fail(error))
      assert.isFalse(yield* b.fail(new PublishInterruptedError({ channel: "second" })))
      assert.isFalse(yield* b.succeed(metadata))
      assert.strictEqual(failureOf(yield* Effect.exit(b.await)), error)
      assert.isTrue(b.isDone)
    }).pipe(Effect.provide(AppLive)))

  it.effect("a future the user resolved before publishMessage keeps the user's outcome; the message is still delivered", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const fake = RecordMetadata.make({ topic: "fake", partition: 9, offset: 9, timestamp: 9, timestampType: 0 })
      const ok = yield* channel.asFutureMessage({ value: 1 })
      assert.isTrue(yield* ok.succeed(fake))
      yield* channel.publishMessage(ok)
      assertSameMetadata(yield* ok.await, fake, "succeeded first")
      const failed = yield* channel.asFutureMessage({ value: 2 })
      const error = new PublishInterruptedError({ channel: "user" })
      assert.isTrue(yield* failed.fail(error))
      yield* Effect.exit(channel.publishMessage(failed))
      assert.strictEqual(failureOf(yield* Effect.exit(failed.await)), error, "failed first")
      assert.strictEqual((yield* channel.get()).value, 1)
      assert.strictEqual((yield* channel.get()).value, 2)
    }).pipe(Effect.provide(AppLive)))

  it.effect("many awaiters before publishMessage, one interrupted: the others get the same metadata", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const future = yield* channel.asFutureMessage({ value: 1, timestamp: 42 })
      const fibers = yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.forkChild(future.await))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(fibers[0])
      yield* Fiber.interrupt(fibers[7])
      const returned = yield* channel.publishMessage(future)
      const results = yield* Effect.forEach(fibers.filter((_, i) => i !== 0 && i !== 7), Fiber.join)
      for (const m of results) assertSameMetadata(m, returned, "awaiter")
      assertAnon(returned, 42, "returned")
      // the only awaiter of another future interrupted, then awaited after the publication
      const other = yield* channel.asFutureMessage({ value: 2, timestamp: 43 })
      const sole = yield* Effect.forkChild(other.await)
      yield* Effect.yieldNow
      yield* Fiber.interrupt(sole)
      yield* channel.publishMessage(other)
      assertAnon(yield* other.await, 43, "after the sole awaiter was interrupted")
    }).pipe(Effect.provide(AppLive)))

  it.effect("callback: runs once after the future completes and sees it done; a throwing or failing callback breaks no other future", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const calls: Array<number> = []
      const seen: Array<readonly [number, boolean, RecordMetadata.RecordMetadata | undefined]> = []
      const futures = []
      for (let i = 0; i < 12; i++) {
        futures.push(
          yield* channel.asFutureMessage({
            value: i,
            timestamp: 100 + i,
            callback: (future) => {
              calls.push(i)
              if (i % 4 === 1) throw new Error(`callback ${i} throws`)
              return Effect.gen(function*() {
                const metadata = yield* Effect.option(future.await)
                seen.push([i, future.isDone, metadata._tag === "Some" ? metadata.value : undefined])
                if (i % 4 === 2) return yield* Effect.die(new Error(`callback ${i} dies`))
                if (i % 4 === 3) return yield* (Effect.fail("callback fails") as unknown as Effect.Effect<void>)
              })
            }
          })
        )
      }
      for (const future of futures) yield* Effect.exit(channel.publishMessage(future))
      assert.deepStrictEqual(calls, futures.map((_, i) => i), "each callback once, in order")
      for (let i = 0; i < futures.length; i++) {
        assert.isTrue(futures[i].isDone, `#${i} done`)
        const exit = yield* Effect.exit(futures[i].await)
        assert.isTrue(Exit.isSuccess(exit), `#${i}: ${String(exit)}`)
        if (Exit.isSuccess(exit)) assertAnon(exit.value, 100 + i, `#${i}`)
      }
      for (const [i, done, metadata] of seen) {
        assert.isTrue(done, `#${i} done in its callback`)
        assert.isDefined(metadata, `#${i} metadata in its callback`)
        assertAnon(metadata!, 100 + i, `#${i} in its callback`)
      }
      for (let i = 0; i < futures.length; i++) assert.strictEqual((yield* channel.get()).value, i)
    }).pipe(Effect.provide(AppLive)))

  it.effect("publishMessage with a hand-written FutureMessage: completed once with the metadata, callback run", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ key: Schema.String, value: Schema.Number })
      const template = yield* channel.asFutureMessage({ value: 0 })
      const ran: Array<boolean> = []
      const { calls, future } = yield* handWritten(
        template,
        FutureMessage.PendingMessage.make<string, number>({
          channel: { label: "hand" },
          key: "k",
          value: 7,
          timestamp: 77,
          callback: (f) => {
            ran.push(f.isDone)
          }
        })
      )
      assert.isTrue(FutureMessage.isFutureMessage(future))
      const returned = yield* channel.publishMessage(future)
      assertAnon(returned, 77, "returned")
      assertSameMetadata(yield* future.await, returned, "awaited")
      assert.deepStrictEqual(calls, { succeed: 1, fail: 0 })
      assert.deepStrictEqual(ran, [true])
      const event = yield* channel.get()
      assert.strictEqual(event.key, "k")
      assert.strictEqual(event.value, 7)
    }).pipe(Effect.provide(AppLive)))

  it.effect("a closed channel (end): publishMessage fails with ChannelClosedError and so does its future", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* channel.end
      const future = yield* channel.asFutureMessage({ value: 1 })
      const exit = yield* Effect.exit(channel.publishMessage(future))
      const error = failureOf(exit)
      assert.instanceOf(error, ChannelClosedError, String(exit))
      assert.strictEqual((error as ChannelClosedError).closedBy, "end")
      assert.isTrue(future.isDone)
      assert.instanceOf(failureOf(yield* Effect.exit(future.await)), ChannelClosedError)
      // a hand-written future too
      const { future: hand } = yield* handWritten(
        future,
        FutureMessage.PendingMessage.make<unknown, number>({ channel: { label: "hand" }, value: 2 })
      )
      yield* Effect.exit(channel.publishMessage(hand))
      assert.isTrue(hand.isDone, "hand-written future completed")
      assert.instanceOf(failureOf(yield* Effect.exit(hand.await)), ChannelClosedError)
    }).pipe(Effect.provide(AppLive)))

  it.effect("whenNoSubscribers: \"fail\": publishMessage fails with NoSubscribersError and so does its future", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, whenNoSubscribers: "fail" })
      const future = yield* channel.asFutureMessage({ value: 1 })
      const exit = yield* Effect.exit(channel.publishMessage(future))
      assert.instanceOf(failureOf(exit), NoSubscribersError, String(exit))
      assert.isTrue(future.isDone)
      assert.instanceOf(failureOf(yield* Effect.exit(future.await)), NoSubscribersError)
    }).pipe(Effect.provide(AppLive)))

  it.effect("an interrupted publishMessage fails its future (library-made or hand-written) with PublishInterruptedError; the callback does not run, the message reached no one", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
      const reader = yield* channel.clone({ isIterator: true })
      yield* channel.send({ value: 0 }) // the subscriber's queue is now full
      const callbacks = { n: 0 }
      const future = yield* channel.asFutureMessage({
        value: 1,
        callback: () => {
          callbacks.n++
        }
      })
      const publishing = yield* Effect.forkChild(channel.publishMessage(future))
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      assert.isFalse(future.isDone, "waiting for room")
      yield* Fiber.interrupt(publishing)
      assert.isTrue(future.isDone)
      assert.instanceOf(failureOf(yield* Effect.exit(future.await)), PublishInterruptedError)

      const { future: hand } = yield* handWritten(
        future,
        FutureMessage.PendingMessage.make<unknown, number>({
          channel: { label: "hand" },
          value: 2,
          callback: () => {
            callbacks.n++
          }
        })
      )
      const publishingHand = yield* Effect.forkChild(channel.publishMessage(hand))
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      yield* Fiber.interrupt(publishingHand)
      assert.isTrue(hand.isDone, "hand-written future completed")
      assert.instanceOf(failureOf(yield* Effect.exit(hand.await)), PublishInterruptedError)

      assert.strictEqual(callbacks.n, 0)
      assert.strictEqual((yield* reader.get()).value, 0)
      assert.isTrue(yield* reader.empty, "the interrupted messages reached no one")
    }).pipe(Effect.provide(AppLive)))

  it.effect("an interrupted publishMessage of a future the user already resolved keeps the user's outcome", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
      const reader = yield* channel.clone({ isIterator: true })
      yield* channel.send({ value: 0 })
      const fake = RecordMetadata.make({ topic: "fake", partition: 1, offset: 1, timestamp: 1, timestampType: 0 })
      const future = yield* channel.asFutureMessage({ value: 1 })
      assert.isTrue(yield* future.succeed(fake))
      const publishing = yield* Effect.forkChild(channel.publishMessage(future))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(publishing)
      assertSameMetadata(yield* future.await, fake, "first outcome")
      assert.strictEqual((yield* reader.get()).value, 0)
    }).pipe(Effect.provide(AppLive)))
})
