/**
 * The README's in-memory promises, tried where they are easiest to break: the
 * buffer kept while nobody subscribes, interruption in the middle of a
 * fan-out, closing a channel that still holds messages, hostile causes and
 * deep input.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Schema, Stream } from "effect"
import {
  AgentError,
  AskTimeoutError,
  Channel,
  ChannelClosedError,
  Codec,
  CodecError,
  InvalidChannelOptionsError,
  KeyDecodeError,
  PublishInterruptedError,
  ValueDecodeError
} from "effect-faust"
import * as fc from "fast-check"
import { AppTest, bytes, quiet, rawMessage, waitUntil } from "./helpers.ts"

/** Lets every runnable fiber take a few steps. */
const settle = Effect.forEach(Array.from({ length: 50 }), () => Effect.yieldNow, { discard: true })

describe("the no-subscriber buffer", () => {
  it.effect("a first subscriber that leaves hands the buffer and its waiting senders to the next subscriber", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
      yield* channel.send({ value: 0 })
      const waiting = yield* Effect.forEach([1, 2], (value) => Effect.forkChild(channel.send({ value })))
      yield* settle
      assert.isTrue(waiting.every((fiber) => fiber.pollUnsafe() === undefined), "both senders wait on the full buffer")
      const readByA: Array<number> = []
      const gate = yield* Deferred.make<void>()
      const a = yield* channel.stream().pipe(
        Stream.runForEach((value) => Effect.andThen(Effect.sync(() => readByA.push(value)), Deferred.await(gate))),
        Effect.forkChild
      )
      yield* waitUntil(() => readByA.length === 1)
      const b = yield* channel.stream().pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
      yield* waitUntil(() => channel.subscriberCount === 2)
      yield* settle
      yield* Fiber.interrupt(a)
      yield* channel.send({ value: 3 })
      assert.deepStrictEqual(readByA, [0])
      assert.deepStrictEqual(yield* Fiber.join(b), [1, 2, 3])
      yield* Fiber.joinAll(waiting)
    }).pipe(Effect.provide(AppTest)))

  it.effect("a reader that gets the buffer while its stream waits on an empty queue reads it at once", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* Effect.forEach([1, 2, 3], (value) => channel.send({ value }))
      const gate = yield* Deferred.make<void>()
      const first = yield* channel.stream().pipe(Stream.runForEach(() => Deferred.await(gate)), Effect.forkChild)
      yield* settle
      const second = yield* channel.stream().pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
      yield* waitUntil(() => channel.subscriberCount === 2)
      yield* settle
      yield* Fiber.interrupt(first)
      // No new send: the buffer alone must wake the second reader.
      assert.deepStrictEqual(yield* Fiber.join(second), [2, 3])
    }).pipe(Effect.provide(AppTest)))

  it.effect("a first subscriber that stops early leaves the rest of the buffer to the next one", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* Effect.forEach([1, 2, 3], (value) => channel.send({ value }))
      assert.deepStrictEqual(yield* channel.stream().pipe(Stream.take(1), Stream.runCollect), [1])
      assert.deepStrictEqual(yield* channel.stream().pipe(Stream.take(2), Stream.runCollect), [2, 3])
      assert.isTrue(yield* channel.empty)
    }).pipe(Effect.provide(AppTest)))

  it.effect("a get reader that gets the buffer while waiting reads it before the newer event that woke it", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* Effect.forEach([1, 2], (value) => channel.send({ value }))
      const first = yield* channel.clone({ isIterator: true })
      const second = yield* channel.clone({ isIterator: true })
      const waiting = yield* Effect.forkChild(second.get())
      yield* settle
      yield* first.onStopIteration
      assert.strictEqual((yield* Fiber.join(waiting)).value, 1, "woken by the buffer, read in order")
      yield* channel.send({ value: 3 })
      assert.deepStrictEqual([(yield* second.get()).value, (yield* second.get()).value], [2, 3])
    }).pipe(Effect.provide(AppTest)))

  it.effect("end before the first subscriber: the stream reads what was buffered, then ends", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* Effect.forEach([1, 2, 3], (value) => channel.send({ value }))
      yield* channel.end
      assert.deepStrictEqual(yield* channel.stream().pipe(Stream.runCollect), [1, 2, 3])
      assert.deepStrictEqual(yield* channel.stream().pipe(Stream.runCollect), [])
    }).pipe(Effect.provide(AppTest)))

  it.effect("throw before the first subscriber: the stream reads what was buffered, then fails", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, error: Schema.String })
      yield* Effect.forEach([1, 2, 3], (value) => channel.send({ value }))
      yield* channel.throw("boom")
      const seen: Array<number> = []
      const exit = yield* channel.stream().pipe(
        Stream.runForEach((value) => Effect.sync(() => seen.push(value))),
        Effect.exit
      )
      assert.deepStrictEqual(seen, [1, 2, 3])
      assert.deepStrictEqual(exit, Exit.fail("boom"))
    }).pipe(Effect.provide(AppTest)))

  it.effect("a sender waiting on the full buffer when the channel ends fails with ChannelClosedError (end)", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
      yield* channel.send({ value: 1 })
      const waiting = yield* Effect.forkChild(channel.send({ value: 2 }))
      const waitingAll = yield* Effect.forkChild(channel.sendAll([3, 4]))
      yield* settle
      yield* channel.end
      const exit = yield* Fiber.await(waiting)
      assert.isTrue(Exit.isFailure(exit))
      const error = Cause.squash((exit as Exit.Failure<unknown, unknown>).cause) as ChannelClosedError
      assert.instanceOf(error, ChannelClosedError)
      assert.strictEqual(error.closedBy, "end")
      assert.include(error.message, "end() was called")
      assert.isTrue(Exit.isFailure(yield* Fiber.await(waitingAll)))
      assert.deepStrictEqual(yield* channel.stream().pipe(Stream.runCollect), [1])
    }).pipe(Effect.provide(AppTest)))

  it.effect("ChannelClosedError says whether throw or end closed the channel", () =>
    Effect.gen(function*() {
      const ended = yield* Channel.make({ value: Schema.Number })
      yield* ended.end
      const afterEnd = yield* Effect.flip(ended.send({ value: 1 }))
      assert.strictEqual((afterEnd as ChannelClosedError).closedBy, "end")
      assert.include(afterEnd.message, "end() was called")
      const thrown = yield* Channel.make({ value: Schema.Number, error: Schema.String })
      yield* thrown.throw("x")
      const afterThrow = yield* Effect.flip(thrown.sendAll([1]))
      assert.strictEqual((afterThrow as ChannelClosedError).closedBy, "throw")
      assert.include(afterThrow.message, "throw() was called")
    }).pipe(Effect.provide(AppTest)))
})

describe("nothing half-sent", () => {
  it.effect("an interrupted send reaches no subscriber when one of them is full", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
      const a = yield* channel.clone({ isIterator: true })
      const b = yield* channel.clone({ isIterator: true })
      yield* channel.send({ value: 0 })
      assert.strictEqual((yield* a.get()).value, 0)
      const blocked = yield* Effect.forkChild(channel.send({ value: 1 }))
      yield* settle
      assert.isUndefined(blocked.pollUnsafe(), "b is full")
      assert.isTrue(yield* a.empty, "nothing offered to a while b is full")
      yield* Fiber.interrupt(blocked)
      assert.isTrue(yield* a.empty)
      assert.strictEqual((yield* b.get()).value, 0)
      assert.isTrue(yield* b.empty)
      yield* channel.send({ value: 2 })
      assert.strictEqual((yield* a.get()).value, 2)
      assert.strictEqual((yield* b.get()).value, 2)
    }).pipe(Effect.provide(AppTest)))

  it.effect("an interrupted sendAll leaves every subscriber with the same prefix", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 2 })
      const readByA: Array<number> = []
      const a = yield* channel.stream().pipe(
        Stream.runForEach((value) => Effect.sync(() => readByA.push(value))),
        Effect.forkChild
      )
      const b = yield* channel.clone({ isIterator: true })
      yield* waitUntil(() => channel.subscriberCount === 2)
      const sending = yield* Effect.forkChild(channel.sendAll([1, 2, 3, 4, 5, 6]))
      yield* settle
      assert.isUndefined(sending.pollUnsafe(), "b is full after two")
      yield* Fiber.interrupt(sending)
      const readByB = [(yield* b.get()).value, (yield* b.get()).value]
      assert.isTrue(yield* b.empty)
      yield* settle
      assert.deepStrictEqual(readByA, readByB)
      assert.deepStrictEqual(readByA, [1, 2])
      yield* Fiber.interrupt(a)
    }).pipe(Effect.provide(AppTest)))

  it.effect("a sendAll waiting on a slow subscriber goes in prefixes to everyone, in order", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 3 })
      const fast = yield* channel.stream().pipe(Stream.take(10), Stream.runCollect, Effect.forkChild)
      const slow = yield* channel.clone({ isIterator: true })
      yield* waitUntil(() => channel.subscriberCount === 2)
      const values = Array.from({ length: 10 }, (_, i) => i)
      const sending = yield* Effect.forkChild(channel.sendAll(values))
      const readBySlow: Array<number> = []
      for (let i = 0; i < 10; i++) readBySlow.push((yield* slow.get()).value)
      yield* Fiber.join(sending)
      assert.deepStrictEqual(readBySlow, values)
      assert.deepStrictEqual(yield* Fiber.join(fast), values)
    }).pipe(Effect.provide(AppTest)))

  it.effect("a waiting sender is released by a reader taking straight from the subscriber's queue", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
      const subscriber = yield* channel.clone({ isIterator: true })
      yield* channel.send({ value: 1 })
      const waiting = yield* Effect.forkChild(channel.send({ value: 2 }))
      yield* settle
      assert.isUndefined(waiting.pollUnsafe())
      const { Queue } = yield* Effect.promise(() => import("effect"))
      assert.strictEqual((yield* Queue.take(subscriber.queue)).value, 1)
      yield* Fiber.join(waiting)
      assert.strictEqual((yield* subscriber.get()).value, 2)
    }).pipe(Effect.provide(AppTest)))

  it.effect("a send waiting on the only subscriber's full queue falls back to the buffer when it leaves", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
      const subscriber = yield* channel.clone({ isIterator: true })
      yield* channel.send({ value: 1 })
      const waiting = yield* Effect.forkChild(channel.send({ value: 2 }))
      yield* settle
      yield* subscriber.onStopIteration
      yield* Fiber.join(waiting)
      assert.deepStrictEqual(yield* channel.stream().pipe(Stream.take(1), Stream.runCollect), [2])
    }).pipe(Effect.provide(AppTest)))

  it.effect("an interrupted publishMessage fails its future with PublishInterruptedError", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 1 })
      const subscriber = yield* channel.clone({ isIterator: true })
      yield* channel.send({ value: 1 })
      let callbacks = 0
      const future = yield* channel.asFutureMessage({ value: 2, callback: () => Effect.sync(() => callbacks++) })
      const publishing = yield* Effect.forkChild(channel.publishMessage(future))
      yield* settle
      assert.isFalse(future.isDone)
      yield* Fiber.interrupt(publishing)
      assert.isTrue(future.isDone)
      const error = yield* Effect.flip(future.await)
      assert.instanceOf(error, PublishInterruptedError)
      assert.include(error.message, "interrupted before the message was sent")
      assert.strictEqual(callbacks, 0)
      assert.strictEqual((yield* subscriber.get()).value, 1)
      assert.isTrue(yield* subscriber.empty, "the interrupted message reached no one")
    }).pipe(Effect.provide(AppTest)))
})

describe("raw bytes become text for every string-encoded Schema", () => {
  const Color = { Red: "red", Blue: "blue" } as const
  const cases: ReadonlyArray<readonly [string, Schema.Top, string]> = [
    ["Literal", Schema.Literal("red"), "red"],
    ["Literals", Schema.Literals(["red", "blue"]), "blue"],
    ["Enum", Schema.Enum(Color), "red"],
    ["TemplateLiteral", Schema.TemplateLiteral(["user-", Schema.String]), "user-7"],
    ["Union of a literal and String", Schema.Union([Schema.Literal("a"), Schema.String]), "zz"],
    ["NullOr(String)", Schema.NullOr(Schema.String), "k"],
    ["a branded String", Schema.String.pipe(Schema.brand("Id")), "id-1"],
    ["a String through suspend", Schema.suspend((): Schema.Codec<string> => Schema.String), "s"]
  ]
  for (const [name, key, text] of cases) {
    it.effect(`${name} keys decode from raw bytes`, () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ key: key as Schema.Codec<unknown>, value: Schema.Number })
        const event = yield* channel.decode(rawMessage(bytes("1"), bytes(text)), { propagate: true })
        assert.strictEqual(event.key, text)
      }).pipe(Effect.provide(AppTest)))
  }

  it.effect("a Schema whose encoded side is not text still gets the bytes", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ key: Schema.Union([Schema.String, Schema.Number]), value: Schema.Number })
      const error = yield* Effect.flip(channel.decode(rawMessage(bytes("1"), bytes("k")), { propagate: true }))
      assert.instanceOf(error, KeyDecodeError)
    }).pipe(Effect.provide(AppTest)))
})

describe("clone validates like Channel.make", () => {
  it.effect("an invalid onDecodeError fails with the same InvalidChannelOptionsError", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const fromClone = yield* Effect.flip(channel.clone({ onDecodeError: "bogus" as never }))
      const fromMake = yield* Effect.flip(Channel.make({ value: Schema.Number, onDecodeError: "bogus" as never }))
      assert.instanceOf(fromClone, InvalidChannelOptionsError)
      assert.strictEqual(fromClone.option, "onDecodeError")
      assert.strictEqual(fromClone.reason, (fromMake as InvalidChannelOptionsError).reason)
      const notAChannel = yield* Effect.flip(channel.clone({ onDecodeError: { deadLetter: {} as never } }))
      assert.strictEqual(notAChannel.option, "onDecodeError")
      const valid = yield* channel.clone({ onDecodeError: "skip" })
      yield* valid.deliver(rawMessage(bytes("not json")))
      assert.strictEqual(valid.decodeErrorCounts.skipped, 1)
    }).pipe(Effect.provide(AppTest), Effect.provide(quiet)))
})

/** Causes that break naive error formatting. */
const hostileCauses = (): ReadonlyArray<readonly [string, unknown]> => {
  const circular: Record<string, unknown> = { name: "loop" }
  circular.self = circular
  const revoked = Proxy.revocable({}, {})
  revoked.revoke()
  return [
    ["a null-prototype object", Object.create(null)],
    ["an object whose toString throws", {
      toString: () => {
        throw new Error("no")
      }
    }],
    ["a circular object", circular],
    ["a bigint", 10n],
    ["a revoked proxy", revoked.proxy],
    ["a symbol", Symbol("s")],
    [
      "an Error whose message getter throws",
      Object.defineProperty(new Error(), "message", {
        get: () => {
          throw new Error("no")
        }
      })
    ]
  ]
}

describe("errors never throw while describing their cause", () => {
  for (const [name, cause] of hostileCauses()) {
    it(`message, toString, stack and JSON.stringify work with ${name}`, () => {
      const errors = [
        new ValueDecodeError({ channel: "c", received: rawMessage(bytes("x")), cause }),
        new KeyDecodeError({ channel: "c", received: { circular: cause }, cause }),
        new CodecError({ codec: "json", operation: "loads", cause }),
        new InvalidChannelOptionsError({ option: "maxsize", value: cause, reason: "bad" }),
        new AgentError({ agent: "a", channel: "c", attempts: 1, restarts: 0, cause }),
        new AskTimeoutError({ agent: "a", correlationId: "id", timeoutMillis: 1 })
      ]
      for (const error of errors) {
        assert.isString(error.message)
        assert.isString(error.toString())
        assert.isString(error.stack ?? "")
        const json = JSON.parse(JSON.stringify(error))
        assert.strictEqual(json._tag, error._tag)
        assert.strictEqual(json.message, error.message)
      }
    })
  }

  it("JSON keeps the fields of an ordinary error", () => {
    const error = new InvalidChannelOptionsError({
      option: "maxsize",
      value: 0,
      reason: "must be an integer of at least 1"
    })
    assert.deepStrictEqual(JSON.parse(JSON.stringify(error)), {
      _tag: "InvalidChannelOptionsError",
      message: error.message,
      option: "maxsize",
      value: 0,
      reason: "must be an integer of at least 1"
    })
  })

  for (const policy of ["fail", "skip"] as const) {
    it.effect(`a codec that throws hostile objects gives a typed error under ${policy}`, () =>
      Effect.gen(function*() {
        for (const [, thrown] of hostileCauses()) {
          const codec = Codec.make({
            name: "hostile",
            dumps: () => new Uint8Array(),
            loads: () => {
              throw thrown
            }
          })
          const channel = yield* Channel.make({ value: Schema.Unknown, valueSerializer: codec, onDecodeError: policy })
          const exit = yield* Effect.exit(channel.deliver(rawMessage(bytes("x"))))
          if (policy === "skip") {
            assert.isTrue(Exit.isSuccess(exit))
            assert.strictEqual(channel.decodeErrorCounts.skipped, 1)
          } else {
            assert.isTrue(Exit.isFailure(exit) && Cause.hasFails(exit.cause), "a typed failure, not a defect")
            const error = Cause.squash((exit as Exit.Failure<unknown, unknown>).cause) as ValueDecodeError
            assert.instanceOf(error, ValueDecodeError)
            assert.isString(error.message)
          }
        }
      }).pipe(Effect.provide(AppTest), Effect.provide(quiet)))
  }
})

describe("deep input with a recursive Schema", () => {
  type Tree = ReadonlyArray<Tree>
  const Tree: Schema.Codec<Tree> = Schema.Array(Schema.suspend((): Schema.Codec<Tree> => Tree))
  const deep = (depth: number) => "[".repeat(depth) + "]".repeat(depth)

  it.effect("a stack overflow while decoding is a ValueDecodeError and the policy runs", () =>
    Effect.gen(function*() {
      const failing = yield* Channel.make({ value: Tree })
      const error = yield* Effect.flip(failing.deliver(rawMessage(bytes(deep(30_000)))))
      assert.instanceOf(error, ValueDecodeError)
      assert.strictEqual(failing.decodeErrorCounts.failed, 1)
      const skipping = yield* Channel.make({ value: Tree, onDecodeError: "skip" })
      yield* skipping.deliver(rawMessage(bytes(deep(30_000))))
      assert.strictEqual(skipping.decodeErrorCounts.skipped, 1)
      yield* skipping.deliver(rawMessage(bytes(deep(3))))
      assert.deepStrictEqual((yield* skipping.get()).value, [[[]]])
    }).pipe(Effect.provide(AppTest), Effect.provide(quiet)))
})

type MixedOp =
  | { readonly _tag: "send" }
  | { readonly _tag: "sendAll" }
  | { readonly _tag: "interruptSender" }
  | { readonly _tag: "reader" }
  | { readonly _tag: "earlyReader"; readonly take: number }
  | { readonly _tag: "stuckReader" }
  | { readonly _tag: "interruptReader" }

const opArbitrary: fc.Arbitrary<MixedOp> = fc.oneof(
  { arbitrary: fc.constant({ _tag: "send" } as const), weight: 4 },
  { arbitrary: fc.constant({ _tag: "sendAll" } as const), weight: 2 },
  { arbitrary: fc.constant({ _tag: "interruptSender" } as const), weight: 2 },
  { arbitrary: fc.constant({ _tag: "reader" } as const), weight: 1 },
  { arbitrary: fc.integer({ min: 1, max: 3 }).map((take) => ({ _tag: "earlyReader", take }) as const), weight: 1 },
  { arbitrary: fc.constant({ _tag: "stuckReader" } as const), weight: 1 },
  { arbitrary: fc.constant({ _tag: "interruptReader" } as const), weight: 1 }
)

interface Reader {
  readonly kind: "full" | "early" | "stuck"
  readonly subscribedAt: number
  readonly received: Array<number>
  readonly fiber: Fiber.Fiber<unknown, unknown>
  interrupted: boolean
}

interface Sent {
  readonly values: ReadonlyArray<number>
  readonly at: number
  readonly toBuffer: boolean
  readonly fiber: Fiber.Fiber<unknown, unknown>
}

/**
 * Runs a random mix of sends, sendAlls, interrupted senders and readers that
 * read everything, stop early, get stuck or are interrupted; closes the
 * channel; reads what is left. Returns what happened for the checks.
 */
const runMixed = (ops: ReadonlyArray<MixedOp>, maxsize: number, close: "end" | "throw") =>
  Effect.gen(function*() {
    const channel = yield* Channel.make({ value: Schema.Number, error: Schema.String, maxsize })
    const readers: Array<Reader> = []
    const sends: Array<Sent> = []
    let next = 0
    const startReader = (kind: Reader["kind"], at: number, take?: number) =>
      Effect.gen(function*() {
        const received: Array<number> = []
        const record = (value: number) => Effect.sync(() => received.push(value))
        const before = channel.subscriberCount
        const stream = take === undefined ? channel.stream() : channel.stream().pipe(Stream.take(take))
        const fiber = yield* stream.pipe(
          Stream.runForEach(kind === "stuck" ? (value) => Effect.andThen(record(value), Effect.never) : record),
          Effect.forkChild({ startImmediately: true })
        )
        yield* waitUntil(() => channel.subscriberCount > before || fiber.pollUnsafe() !== undefined)
        readers.push({ kind, subscribedAt: at, received, fiber, interrupted: false })
      })
    for (let at = 0; at < ops.length; at++) {
      const op = ops[at]
      switch (op._tag) {
        case "send":
        case "sendAll": {
          const values = op._tag === "send" ? [next] : [next, next + 1, next + 2]
          next += values.length
          const toBuffer = channel.subscriberCount === 0
          const send = op._tag === "send" ? channel.send({ value: values[0] }) : channel.sendAll(values)
          const fiber = yield* Effect.forkChild(send, { startImmediately: true })
          sends.push({ values, at, toBuffer, fiber })
          break
        }
        case "interruptSender": {
          const running = sends.find((sent) => sent.fiber.pollUnsafe() === undefined)
          if (running !== undefined) yield* Fiber.interrupt(running.fiber)
          break
        }
        case "reader":
          yield* startReader("full", at)
          break
        case "earlyReader":
          yield* startReader("early", at, op.take)
          break
        case "stuckReader":
          yield* startReader("stuck", at)
          break
        case "interruptReader": {
          const alive = readers.find((reader) => !reader.interrupted && reader.fiber.pollUnsafe() === undefined)
          if (alive !== undefined) {
            alive.interrupted = true
            yield* Fiber.interrupt(alive.fiber)
          }
          break
        }
      }
      yield* settle
    }
    yield* close === "end" ? channel.end : channel.throw("closed")
    for (const reader of readers) {
      if (reader.kind === "stuck" && !reader.interrupted) {
        reader.interrupted = true
        yield* Fiber.interrupt(reader.fiber)
      }
    }
    // Whatever is still in the buffer goes to the next reader, closed or not.
    const leftover: Array<number> = []
    yield* channel.stream().pipe(Stream.runForEach((value) => Effect.sync(() => leftover.push(value))), Effect.ignore)
    // Nothing may be left waiting: every sender and reader finishes once the channel is closed.
    const outcomes = yield* Effect.forEach(sends, (sent) => Fiber.await(sent.fiber)).pipe(
      Effect.timeoutOrElse({
        duration: "2 seconds",
        orElse: () => Effect.die("a sender is still blocked after the channel closed")
      })
    )
    yield* Effect.forEach(readers, (reader) => Fiber.await(reader.fiber)).pipe(
      Effect.timeoutOrElse({
        duration: "2 seconds",
        orElse: () => Effect.die("a reader is still blocked after the channel closed")
      })
    )
    return { readers, sends, outcomes, leftover }
  }).pipe(Effect.provide(AppTest))

describe("buffering, early stops, interrupted senders and closing, mixed (fast-check)", () => {
  it.live(
    "nothing buffered is lost or read twice, nothing is half-sent, order holds, nobody is left blocked",
    () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.array(opArbitrary, { maxLength: 30 }),
            fc.integer({ min: 1, max: 3 }),
            fc.constantFrom("end" as const, "throw" as const),
            (ops, maxsize, close) =>
              Effect.runPromise(Effect.map(runMixed(ops, maxsize, close), ({ leftover, outcomes, readers, sends }) => {
                const everyone = [...readers.map((reader) => reader.received), leftover]
                const buffered = new Set(sends.filter((sent) => sent.toBuffer).flatMap((sent) => sent.values))
                for (const received of everyone) {
                  // In order: the buffer's messages among themselves, the others among themselves (a
                  // reader that takes the buffer over reads it after what it had already read).
                  for (const fromBuffer of [true, false]) {
                    const values = received.filter((value) => buffered.has(value) === fromBuffer)
                    for (let i = 1; i < values.length; i++) {
                      assert.isBelow(values[i - 1], values[i], "each reader sees messages once, in order")
                    }
                  }
                }
                sends.forEach((sent, index) => {
                  const completed = Exit.isSuccess(outcomes[index])
                  for (const value of sent.values) {
                    const copies = everyone.filter((received) => received.includes(value)).length
                    if (sent.toBuffer) {
                      assert.isAtMost(copies, 1, `buffered ${value} is read once`)
                      if (completed) assert.strictEqual(copies, 1, `buffered ${value} is not lost`)
                      continue
                    }
                    // Readers that read everything, were there before the send and to the end.
                    const witnesses = readers.filter((reader) =>
                      reader.kind === "full" && !reader.interrupted && reader.subscribedAt < sent.at
                    )
                    const got = witnesses.filter((reader) => reader.received.includes(value)).length
                    if (completed) assert.strictEqual(got, witnesses.length, `${value} reached every subscriber`)
                    else assert.oneOf(got, [0, witnesses.length], `${value} reached every subscriber or none`)
                  }
                })
              }))
          ),
          { numRuns: 300 }
        )
      ),
    120_000
  )
})
