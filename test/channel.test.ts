import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Effect, Equal, Exit, Fiber, HashSet, Layer, Queue, Schema, Stream } from "effect"
import {
  App,
  Channel,
  ChannelClosedError,
  Codec,
  CodecError,
  Event,
  InvalidChannelOptionsError,
  KeyDecodeError,
  Message,
  MessageSchema,
  NoSubscribersError,
  NotATopicError,
  UnsupportedOperationError,
  ValueDecodeError
} from "effect-faust"
import { TestClock } from "effect/testing"
import { AppTest, bytes, quiet, rawMessage, waitUntil } from "./helpers.ts"

const Order = Schema.Struct({ id: Schema.String, qty: Schema.Number })

/** Starts a subscriber collecting `n` values and waits until it is subscribed. */
const collect = <A, E>(stream: Stream.Stream<A, E>, n: number, channel: { readonly subscriberCount: number }) =>
  Effect.gen(function*() {
    const before = channel.subscriberCount
    const fiber = yield* stream.pipe(Stream.take(n), Stream.runCollect, Effect.forkChild)
    yield* waitUntil(() => channel.subscriberCount > before || fiber.pollUnsafe() !== undefined)
    return fiber
  })

describe("Channel.make", () => {
  it.effect("takes maxsize and serializers from the app and exposes Faust's attributes", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ key: Schema.String, value: Order })
      assert.strictEqual(channel.maxsize, 16)
      assert.strictEqual(channel.keyType, Schema.String)
      assert.strictEqual(channel.valueType, Order)
      assert.strictEqual(channel.schema.keySerializer, "raw")
      assert.strictEqual(channel.schema.valueSerializer, "json")
      assert.isFalse(channel.isIterator)
      assert.strictEqual(channel.activePartitions, undefined)
      assert.strictEqual(channel.subscriberCount, 0)
      assert.strictEqual(channel.label, "Channel<anon>")
      assert.isTrue(Channel.isChannel(channel))
      assert.isTrue(Queue.isQueue(channel.queue))
      assert.isTrue(yield* channel.empty)
    }).pipe(Effect.provide(AppTest)))

  it.effect("key and value options override the schema's types, as in Faust", () =>
    Effect.gen(function*() {
      const schema = MessageSchema.make({ key: Schema.Number, value: Schema.Number, valueSerializer: "json|binary" })
      const channel = yield* Channel.make({ schema, value: Order })
      assert.strictEqual(channel.keyType, Schema.Number)
      assert.strictEqual(channel.valueType, Order)
      assert.strictEqual(channel.schema.valueSerializer, "json|binary")
    }).pipe(Effect.provide(AppTest)))

  it.effect("invalid options fail with InvalidChannelOptionsError saying which and why", () =>
    Effect.gen(function*() {
      const cases: Array<[Channel.Options, string]> = [
        [{ maxsize: 0 }, "maxsize"],
        [{ maxsize: 1.5 }, "maxsize"],
        [{ maxsize: "10" as unknown as number }, "maxsize"],
        [{ keySerializer: "nope" }, "keySerializer"],
        [{ valueSerializer: "json|nope" }, "valueSerializer"],
        [{ onDecodeError: "explode" as unknown as "fail" }, "onDecodeError"],
        [{ onDecodeError: { deadLetter: {} } as unknown as "fail" }, "onDecodeError"],
        [{ whenNoSubscribers: "wait" as unknown as "buffer" }, "whenNoSubscribers"],
        [{ value: "string" as unknown as typeof Schema.String }, "value"]
      ]
      for (const [options, option] of cases) {
        const error = yield* Effect.flip(Channel.make(options))
        assert.instanceOf(error, InvalidChannelOptionsError)
        assert.strictEqual(error.option, option)
        assert.isTrue(error.reason.length > 0)
        assert.include(error.message, option)
      }
    }).pipe(Effect.provide(AppTest)))

  it.effect("a custom codec registered with Codecs.layer can be named as a serializer", () =>
    Effect.gen(function*() {
      const upper = Codec.make({
        name: "upper",
        dumps: (value) => bytes(String(value).toUpperCase()),
        loads: (data) => new TextDecoder().decode(data).toUpperCase()
      })
      const channel = yield* Channel.make({ valueSerializer: "upper", value: Schema.String }).pipe(
        Effect.provide(Codec.Codecs.layer({ upper }))
      )
      const event = yield* channel.decode(rawMessage(bytes("shout")))
      assert.strictEqual(event.value, "SHOUT")
    }).pipe(Effect.provide(AppTest)))

  it.effect("toString and toJSON show the label and active partitions", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({
        label: "orders",
        activePartitions: [Message.TopicPartition.make("orders", 0), Message.TopicPartition.make("orders", 3)]
      })
      assert.isTrue(HashSet.has(channel.activePartitions!, Message.TopicPartition.make("orders", 3)))
      assert.include(String(channel), "orders")
      assert.include(String(channel), "orders:3")
      const json = channel.toJSON() as { label: string; activePartitions: Array<string> }
      assert.strictEqual(json.label, "orders")
      assert.deepStrictEqual(json.activePartitions.sort(), ["orders:0", "orders:3"])
    }).pipe(Effect.provide(AppTest)))
})

describe("send, get and stream", () => {
  it.effect("send then get works with nobody subscribed (whenNoSubscribers: buffer)", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ key: Schema.String, value: Order })
      const metadata = yield* channel.send({ key: "o-1", value: { id: "o-1", qty: 2 }, headers: { trace: "t1" } })
      assert.strictEqual(metadata.topic, "<anon>")
      assert.strictEqual(metadata.partition, -1)
      assert.strictEqual(metadata.offset, -1)
      assert.strictEqual(metadata.timestampType, 1)
      assert.isFalse(yield* channel.empty)
      const event = yield* channel.get()
      assert.strictEqual(event.key, "o-1")
      assert.deepStrictEqual(event.value, { id: "o-1", qty: 2 })
      assert.deepStrictEqual(event.headers, [["trace", "t1"]])
      assert.strictEqual(event.message.value, event.value)
    }).pipe(Effect.provide(AppTest)))

  it.effect("timestamps come from the Clock (TestClock here), and a sent event equals the same Event.make", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* TestClock.adjust("5 seconds")
      const metadata = yield* channel.send({ value: 1, headers: { h: "v" } })
      assert.strictEqual(metadata.timestamp, 5000)
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* channel.send({ value: 2 })).timestamp, 6000)
      const event = yield* channel.get()
      assert.strictEqual(event.message.timestamp, 5000)
      assert.strictEqual(event.message.topic, "<anon>")
      assert.deepStrictEqual(event.message.headers, [["h", "v"]])
      assert.isTrue(Event.isEvent(event))
      const rebuilt = Event.make({ key: null, value: 1, headers: [["h", "v"]], message: event.message })
      assert.isTrue(Equal.equals(event, rebuilt))
      assert.isTrue(Equal.equals(rebuilt, event))
      assert.isFalse(Equal.equals(event, yield* channel.get()))
    }).pipe(Effect.provide(AppTest)))

  it.live("with the live Clock, timestamps are the wall-clock time of the send", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make()
      const before = Date.now()
      const metadata = yield* channel.send({ value: 1 })
      yield* Effect.sleep("5 millis")
      const later = yield* channel.send({ value: 2 })
      assert.isAtLeast(metadata.timestamp, before)
      assert.isAtMost(metadata.timestamp, Date.now())
      assert.isAbove(later.timestamp, metadata.timestamp)
    }).pipe(Effect.provide(AppTest)))

  it.effect("an app with its own createEvent gets it called for sent events", () =>
    Effect.gen(function*() {
      const base = yield* App.make({ id: "custom" })
      const custom = Layer.succeed(App.App, {
        ...base,
        createEvent: (key, value, headers, message) =>
          App.defaultCreateEvent(key, { wrapped: value } as typeof value, headers, message)
      })
      const channel = yield* Effect.provide(Channel.make(), custom)
      yield* channel.send({ value: 1 })
      assert.deepStrictEqual((yield* channel.get()).value, { wrapped: 1 })
      yield* channel.sendAll([2, 3])
      assert.deepStrictEqual((yield* channel.get()).value, { wrapped: 2 })
      assert.deepStrictEqual((yield* channel.get()).value, { wrapped: 3 })
    }))

  it.effect("messages buffered with nobody subscribed go to the first subscriber, in order, before later ones", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* channel.send({ value: 1 })
      yield* channel.send({ value: 2 })
      const first = yield* collect(channel.stream(), 4, channel)
      const second = yield* collect(channel.stream(), 2, channel)
      yield* channel.send({ value: 3 })
      yield* channel.send({ value: 4 })
      assert.deepStrictEqual(yield* Fiber.join(first), [1, 2, 3, 4])
      assert.deepStrictEqual(yield* Fiber.join(second), [3, 4])
    }).pipe(Effect.provide(AppTest)))

  it.effect("a sender waiting on a full buffer is handed to the first subscriber", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 2 })
      const sender = yield* Effect.forkChild(Effect.forEach([1, 2, 3, 4, 5], (value) => channel.send({ value })))
      yield* waitUntil(() => Queue.isFullUnsafe(channel.queue))
      const subscriber = yield* collect(channel.stream(), 5, channel)
      assert.deepStrictEqual(yield* Fiber.join(subscriber), [1, 2, 3, 4, 5])
      yield* Fiber.join(sender)
    }).pipe(Effect.provide(AppTest)))

  it.effect("whenNoSubscribers: drop discards, fail fails with NoSubscribersError", () =>
    Effect.gen(function*() {
      const dropping = yield* Channel.make({ whenNoSubscribers: "drop" })
      yield* dropping.send({ value: 1 })
      assert.isTrue(yield* dropping.empty)
      const failing = yield* Channel.make({ label: "strict", whenNoSubscribers: "fail" })
      const error = yield* Effect.flip(failing.send({ value: 1 }))
      assert.instanceOf(error, NoSubscribersError)
      assert.strictEqual(error.channel, "strict")
      const subscriber = yield* collect(failing.stream(), 1, failing)
      yield* failing.send({ value: 2 })
      assert.deepStrictEqual(yield* Fiber.join(subscriber), [2])
    }).pipe(Effect.provide(AppTest)))

  it.live("get fails with TimeoutError after its timeout", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make()
      const error = yield* Effect.flip(channel.get({ timeout: "20 millis" }))
      assert.isTrue(Cause.isTimeoutError(error))
    }).pipe(Effect.provide(AppTest)))

  it.effect("every subscriber receives every message, in order; events and items carry keys and headers", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ key: Schema.String, value: Schema.Number, maxsize: 4 })
      const values = yield* collect(channel.stream(), 20, channel)
      const events = yield* collect(channel.events(), 20, channel)
      const items = yield* collect(channel.items(), 20, channel)
      assert.strictEqual(channel.subscriberCount, 3)
      for (let i = 0; i < 20; i++) yield* channel.send({ key: `k${i}`, value: i, headers: [["n", String(i)]] })
      const expected = Array.from({ length: 20 }, (_, i) => i)
      assert.deepStrictEqual(yield* Fiber.join(values), expected)
      const received = yield* Fiber.join(events)
      assert.deepStrictEqual(received.map((e) => e.value), expected)
      assert.deepStrictEqual(received[5].headers, [["n", "5"]])
      assert.deepStrictEqual(yield* Fiber.join(items), expected.map((i) => [`k${i}`, i] as const))
      yield* waitUntil(() => channel.subscriberCount === 0)
    }).pipe(Effect.provide(AppTest)))

  it.effect("sendAll sends in order to every subscriber, waiting on full queues", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 3 })
      const a = yield* collect(channel.stream(), 10, channel)
      const b = yield* collect(channel.stream(), 10, channel)
      yield* channel.sendAll(Array.from({ length: 10 }, (_, i) => i))
      const expected = Array.from({ length: 10 }, (_, i) => i)
      assert.deepStrictEqual(yield* Fiber.join(a), expected)
      assert.deepStrictEqual(yield* Fiber.join(b), expected)
      const buffered = yield* Channel.make({ value: Schema.Number, maxsize: 3 })
      yield* buffered.sendAll([7, 8])
      const first = yield* buffered.get()
      assert.strictEqual(first.value, 7)
      assert.strictEqual(first.key, null)
      assert.strictEqual(first.message.partition, -1)
      // any iterable, not only arrays
      yield* buffered.sendAll(new Set([9]))
      assert.strictEqual((yield* buffered.get()).value, 8)
      assert.strictEqual((yield* buffered.get()).value, 9)
    }).pipe(Effect.provide(AppTest)))

  it.effect("put offers a ready event to subscribers", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const subscriber = yield* collect(channel.events(), 1, channel)
      const message = rawMessage(5)
      yield* channel.put(Event.make({ key: null, value: 5, headers: [], message }))
      const [event] = yield* Fiber.join(subscriber)
      assert.strictEqual(event.message, message)
    }).pipe(Effect.provide(AppTest)))
})

describe("clones and subscribers", () => {
  it.effect("clone() has its own queue and the same root; an iterator clone subscribes until onStopIteration", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const plain = yield* channel.clone()
      assert.notStrictEqual(plain.queue, channel.queue)
      assert.isFalse(plain.isIterator)
      assert.strictEqual(channel.subscriberCount, 0)
      const iterator = yield* channel.clone({ isIterator: true, maxsize: 2 })
      assert.isTrue(iterator.isIterator)
      assert.strictEqual(iterator.maxsize, 2)
      assert.strictEqual(channel.subscriberCount, 1)
      yield* plain.send({ value: 9 })
      assert.strictEqual((yield* iterator.get()).value, 9)
      yield* iterator.onStopIteration
      assert.strictEqual(channel.subscriberCount, 0)
      yield* iterator.onStopIteration
      assert.strictEqual(channel.subscriberCount, 0)
    }).pipe(Effect.provide(AppTest)))

  it.effect("clone validates its overrides and takes new active partitions", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make()
      const error = yield* Effect.flip(channel.clone({ maxsize: 0 }))
      assert.instanceOf(error, InvalidChannelOptionsError)
      assert.strictEqual(error.option, "maxsize")
      const clone = yield* channel.clone({ activePartitions: [Message.TopicPartition.make("t", 1)] })
      assert.isTrue(HashSet.has(clone.activePartitions!, Message.TopicPartition.make("t", 1)))
      assert.strictEqual(channel.activePartitions, undefined)
    }).pipe(Effect.provide(AppTest)))

  it.effect("cloneUsingQueue subscribes a clone reading the given queue", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const queue = yield* Queue.bounded<Event.Event<unknown, number>, any>(4)
      const clone = yield* channel.cloneUsingQueue(queue)
      assert.strictEqual(clone.queue, queue)
      assert.isTrue(clone.isIterator)
      yield* channel.send({ value: 3 })
      assert.strictEqual((yield* Queue.take(queue)).value, 3)
      yield* clone.onStopIteration
      assert.strictEqual(channel.subscriberCount, 0)
    }).pipe(Effect.provide(AppTest)))

  it.effect("derive returns the same channel in memory", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make()
      assert.strictEqual(yield* channel.derive({ suffix: "-x" }), channel)
    }).pipe(Effect.provide(AppTest)))
})

describe("topic-only members", () => {
  it.effect("getTopicName, sendSoon and eager partitioning fail with typed errors in memory", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ label: "mem" })
      const name = yield* Effect.flip(channel.getTopicName())
      assert.instanceOf(name, NotATopicError)
      assert.strictEqual(name.channel, "mem")
      const soon = yield* Effect.flip(channel.sendSoon({ value: 1 }))
      assert.instanceOf(soon, UnsupportedOperationError)
      const eager = yield* Effect.flip(channel.asFutureMessage({ value: 1, eagerPartitioning: true }))
      assert.instanceOf(eager, NotATopicError)
    }).pipe(Effect.provide(AppTest)))

  it.effect("declare and maybeDeclare complete, maybeDeclare concurrently from many fibers", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make()
      yield* channel.declare
      yield* Effect.all(Array.from({ length: 20 }, () => channel.maybeDeclare), { concurrency: "unbounded" })
      yield* channel.maybeDeclare
    }).pipe(Effect.provide(AppTest)))

  it.effect("prepareHeaders, prepareKey and prepareValue", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make()
      assert.deepStrictEqual(channel.prepareHeaders({ a: "1" }), [["a", "1"]])
      assert.deepStrictEqual(channel.prepareHeaders([["a", "1"], ["a", "2"]]), [["a", "1"], ["a", "2"]])
      assert.deepStrictEqual(channel.prepareHeaders(), [])
      const value = { x: 1 }
      const [preparedKey, keyHeaders] = yield* channel.prepareKey("k", { headers: { h: "v" } })
      assert.strictEqual(preparedKey, "k")
      assert.deepStrictEqual(keyHeaders, { h: "v" })
      const [preparedValue] = yield* channel.prepareValue(value)
      assert.strictEqual(preparedValue, value)
    }).pipe(Effect.provide(AppTest)))
})

describe("FutureMessage publishing", () => {
  it.effect("asFutureMessage + publishMessage delivers, completes the future, then runs the callback", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const calls: Array<boolean> = []
      const future = yield* channel.asFutureMessage({
        value: 7,
        key: "k",
        timestamp: 1234,
        headers: { h: "1" },
        callback: (fut) => Effect.sync(() => calls.push(fut.isDone))
      })
      assert.isFalse(future.isDone)
      assert.deepStrictEqual(future.message.headers, [["h", "1"]])
      const metadata = yield* channel.publishMessage(future, { wait: true })
      assert.deepStrictEqual(calls, [true])
      assert.strictEqual(metadata.timestamp, 1234)
      assert.strictEqual(metadata.topic, "<anon>")
      assert.strictEqual(yield* future.await, metadata)
      const event = yield* channel.get()
      assert.strictEqual(event.value, 7)
      assert.strictEqual(event.key, "k")
    }).pipe(Effect.provide(AppTest)))

  it.effect("send with a callback runs it once the message is published", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      let seen: number | undefined
      yield* channel.send({ value: 4, callback: (fut) => void (seen = fut.message.value) })
      assert.strictEqual(seen, 4)
      assert.strictEqual((yield* channel.get()).value, 4)
    }).pipe(Effect.provide(AppTest)))

  it.effect("a failed publication fails the future and the send", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ whenNoSubscribers: "fail" })
      const future = yield* channel.asFutureMessage({ value: 1 })
      const error = yield* Effect.flip(channel.publishMessage(future))
      assert.instanceOf(error, NoSubscribersError)
      assert.isTrue(future.isDone)
      assert.isTrue(Exit.isFailure(yield* Effect.exit(future.await)))
    }).pipe(Effect.provide(AppTest)))
})

describe("decode and deliver", () => {
  it.effect("decode runs the codec then the Schema; string keys get UTF-8 text from raw bytes", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ key: Schema.String, value: Order })
      const event = yield* channel.decode(rawMessage(bytes("{\"id\":\"a\",\"qty\":1}"), bytes("key-1")))
      assert.strictEqual(event.key, "key-1")
      assert.deepStrictEqual(event.value, { id: "a", qty: 1 })
      const noKey = yield* channel.decode(rawMessage(bytes("{\"id\":\"b\",\"qty\":2}")))
      assert.strictEqual(noKey.key, null)
      const already = yield* channel.decode(rawMessage({ id: "c", qty: 3 }, "k"))
      assert.deepStrictEqual(already.value, { id: "c", qty: 3 })
    }).pipe(Effect.provide(AppTest)))

  it.effect("json|binary values decode through both codecs", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Order, valueSerializer: "json|binary" })
      const payload = Codec.compose(Codec.json, Codec.binary).dumps({ id: "z", qty: 9 })
      const event = yield* channel.decode(rawMessage(payload))
      assert.deepStrictEqual(event.value, { id: "z", qty: 9 })
    }).pipe(Effect.provide(AppTest)))

  it.effect("bad input fails typed, carrying the original message and the cause", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ label: "orders", key: Schema.FiniteFromString, value: Order })
      const garbage = rawMessage(new Uint8Array([0xff, 0x00, 0x13]))
      const garbageError = yield* Effect.flip(channel.decode(garbage, { propagate: true }))
      assert.instanceOf(garbageError, ValueDecodeError)
      assert.strictEqual(garbageError.received, garbage)
      assert.strictEqual(garbageError.channel, "orders")
      assert.instanceOf(garbageError.cause, CodecError)

      const wrongJson = yield* Effect.flip(channel.decode(rawMessage(bytes("{\"id\": ")), { propagate: true }))
      assert.instanceOf(wrongJson.cause, CodecError)

      const wrongShape = yield* Effect.flip(channel.decode(rawMessage(bytes("{\"id\":1}")), { propagate: true }))
      assert.instanceOf(wrongShape, ValueDecodeError)
      assert.isTrue(Schema.isSchemaError(wrongShape.cause))

      const badKey = yield* Effect.flip(
        channel.decode(rawMessage(bytes("{\"id\":\"a\",\"qty\":1}"), bytes("not-a-number")), { propagate: true })
      )
      assert.instanceOf(badKey, KeyDecodeError)
      assert.include(badKey.message, "orders")
    }).pipe(Effect.provide(AppTest)))

  it.effect("empty values fail unless allowEmpty, which decodes them to null", () =>
    Effect.gen(function*() {
      const strict = yield* Channel.make({ value: Order })
      for (const empty of [new Uint8Array(0), null]) {
        const error = yield* Effect.flip(strict.decode(rawMessage(empty), { propagate: true }))
        assert.instanceOf(error, ValueDecodeError)
        assert.include(error.message, "empty")
      }
      const lenient = yield* Channel.make({ value: Order, allowEmpty: true })
      const event = yield* lenient.decode(rawMessage(new Uint8Array(0)))
      assert.strictEqual(event.value, null)
      const viaSchema = yield* Channel.make({ schema: MessageSchema.make({ value: Order, allowEmpty: true }) })
      assert.strictEqual((yield* viaSchema.decode(rawMessage(null))).value, null)
    }).pipe(Effect.provide(AppTest)))

  it.effect("decode without propagate runs the policy first; with propagate it does not", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Order, onDecodeError: "skip" })
      yield* Effect.flip(channel.decode(rawMessage(bytes("x")), { propagate: true }))
      assert.strictEqual(channel.decodeErrorCounts.skipped, 0)
      yield* Effect.flip(channel.decode(rawMessage(bytes("x"))))
      assert.strictEqual(channel.decodeErrorCounts.skipped, 1)
    }).pipe(Effect.provide([AppTest, quiet])))

  it.effect("deliver offers the decoded event to this instance's queue", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Order })
      yield* channel.deliver(rawMessage(bytes("{\"id\":\"d\",\"qty\":4}")))
      assert.deepStrictEqual((yield* channel.get()).value, { id: "d", qty: 4 })
    }).pipe(Effect.provide(AppTest)))

  it.effect("onDecodeError fail (Faust's default): deliver fails and readers drain, then fail with the error", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Order })
      const subscriber = yield* channel.clone({ isIterator: true })
      yield* channel.send({ value: { id: "ok", qty: 1 } })
      const error = yield* Effect.flip(channel.deliver(rawMessage(bytes("garbage"))))
      assert.instanceOf(error, ValueDecodeError)
      assert.strictEqual(channel.decodeErrorCounts.failed, 1)
      assert.deepStrictEqual((yield* subscriber.get()).value, { id: "ok", qty: 1 })
      const thrown = yield* Effect.flip(subscriber.get())
      assert.strictEqual(thrown, error)
    }).pipe(Effect.provide([AppTest, quiet])))

  it.effect("onDecodeError skip logs, counts and continues", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Order, onDecodeError: "skip" })
      yield* channel.deliver(rawMessage(bytes("garbage")))
      yield* channel.deliver(rawMessage(bytes("{\"id\":\"after\",\"qty\":1}")))
      assert.strictEqual(channel.decodeErrorCounts.skipped, 1)
      assert.strictEqual((yield* channel.get()).value.id, "after")
    }).pipe(Effect.provide([AppTest, quiet])))

  it.effect("onDecodeError deadLetter forwards the raw message with error headers and continues", () =>
    Effect.gen(function*() {
      const deadLetters = yield* Channel.make({ label: "dlq" })
      const channel = yield* Channel.make({
        label: "orders",
        key: Schema.String,
        value: Order,
        onDecodeError: { deadLetter: deadLetters }
      })
      const bad = rawMessage(bytes("{oops"), bytes("k1"))
      yield* channel.deliver(bad)
      assert.strictEqual(channel.decodeErrorCounts.deadLettered, 1)
      const forwarded = yield* deadLetters.get()
      assert.strictEqual(forwarded.message, bad)
      assert.deepStrictEqual(forwarded.value, bytes("{oops"))
      const headers = Object.fromEntries(forwarded.headers)
      assert.strictEqual(headers["x-decode-error"], "ValueDecodeError")
      assert.strictEqual(headers["x-source-channel"], "orders")
      yield* channel.deliver(rawMessage(bytes("{\"id\":\"fine\",\"qty\":1}")))
      assert.strictEqual((yield* channel.get()).value.id, "fine")
    }).pipe(Effect.provide([AppTest, quiet])))

  it.effect("onKeyDecodeError and onValueDecodeError apply the policy", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ onDecodeError: "skip" })
      const message = rawMessage(bytes("x"))
      const error = new KeyDecodeError({ channel: "c", received: message, cause: "bad" })
      yield* channel.onKeyDecodeError(error, message)
      yield* channel.onValueDecodeError(
        new ValueDecodeError({ channel: "c", received: message, cause: "bad" }),
        message
      )
      yield* channel.onDecodeError(error, message)
      assert.strictEqual(channel.decodeErrorCounts.skipped, 3)
    }).pipe(Effect.provide([AppTest, quiet])))
})

describe("throw and end", () => {
  class Boom extends Schema.TaggedError<Boom>()("Boom", { reason: Schema.String }) {}

  it.effect("throw on the root: each subscriber drains what it had, then fails; later sends fail", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ label: "c", value: Schema.Number, error: Boom })
      const received: Array<number> = []
      const a = yield* collect(
        channel.stream().pipe(Stream.tap((n) => Effect.sync(() => received.push(n)))),
        4,
        channel
      )
      const b = yield* channel.clone({ isIterator: true })
      yield* channel.send({ value: 1 })
      yield* channel.send({ value: 2 })
      yield* channel.throw(new Boom({ reason: "stop" }))
      const failure = yield* Effect.flip(Fiber.join(a))
      assert.deepStrictEqual(received, [1, 2])
      assert.instanceOf(failure, Boom)
      assert.strictEqual((yield* b.get()).value, 1)
      assert.strictEqual((yield* b.get()).value, 2)
      assert.instanceOf(yield* Effect.flip(b.get()), Boom)
      const closed = yield* Effect.flip(channel.send({ value: 3 }))
      assert.instanceOf(closed, ChannelClosedError)
      assert.strictEqual(closed.channel, "c")
      const late = yield* Effect.flip(Stream.runCollect(channel.stream()))
      assert.instanceOf(late, Boom)
    }).pipe(Effect.provide(AppTest)))

  it.effect("throw on a clone fails only that clone's queue", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number, error: Boom })
      const a = yield* channel.clone({ isIterator: true })
      const b = yield* channel.clone({ isIterator: true })
      yield* a.throw(new Boom({ reason: "only a" }))
      yield* channel.send({ value: 1 })
      assert.instanceOf(yield* Effect.flip(a.get()), Boom)
      assert.strictEqual((yield* b.get()).value, 1)
    }).pipe(Effect.provide(AppTest)))

  it.effect("end lets subscribers finish normally after draining; get then fails with ChannelClosedError", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const fiber = yield* channel.stream().pipe(Stream.runCollect, Effect.forkChild)
      yield* waitUntil(() => channel.subscriberCount === 1)
      yield* channel.sendAll([1, 2, 3])
      yield* channel.end
      assert.deepStrictEqual(yield* Fiber.join(fiber), [1, 2, 3])
      assert.instanceOf(yield* Effect.flip(channel.get()), ChannelClosedError)
      assert.instanceOf(yield* Effect.flip(channel.send({ value: 4 })), ChannelClosedError)
    }).pipe(Effect.provide(AppTest)))
})

describe("Channel.Service", () => {
  class Orders extends Channel.Service<Orders>()("app/Orders", { key: Schema.String, value: Order, maxsize: 100 }) {}

  const placeOrder = Effect.gen(function*() {
    const orders = yield* Orders
    return yield* orders.send({ key: "o-1", value: { id: "o-1", qty: 1 } })
  })

  it.effect("is a Context key whose layer makes the channel", () =>
    Effect.gen(function*() {
      const orders = yield* Orders
      assert.strictEqual(orders.label, "app/Orders")
      assert.strictEqual(orders.maxsize, 100)
      yield* placeOrder
      const event = yield* orders.get()
      assert.strictEqual(event.key, "o-1")
    }).pipe(Effect.provide(Orders.layer), Effect.provide(AppTest)))

  it.effect("a test swaps the layer for another channel", () =>
    Effect.gen(function*() {
      const testChannel = yield* Channel.make({ key: Schema.String, value: Order, label: "test-orders" })
      yield* placeOrder.pipe(Effect.provide(Layer.succeed(Orders, testChannel)))
      assert.strictEqual((yield* testChannel.get()).value.id, "o-1")
      assert.isTrue(Context.isKey(Orders))
    }).pipe(Effect.provide(AppTest)))
})
