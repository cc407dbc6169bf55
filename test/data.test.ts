import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Equal, Exit, Schema } from "effect"
import {
  App,
  ChannelClosedError,
  Event,
  FutureMessage,
  InvalidChannelOptionsError,
  Message,
  MessageSchema,
  RecordMetadata
} from "effect-faust"

const sample = (offset: number) =>
  Message.make({
    topic: "orders",
    partition: 2,
    offset,
    timestamp: 1_700_000_000_000,
    timestampType: 0,
    headers: [["trace", "abc"]],
    key: new Uint8Array([1, 2]),
    value: new Uint8Array([3, 4, 5])
  })

describe("Message", () => {
  it("derives tp and serialized sizes, and compares structurally", () => {
    const message = sample(7)
    assert.isTrue(Equal.equals(message.tp, Message.TopicPartition.make("orders", 2)))
    assert.strictEqual(message.serializedKeySize, 2)
    assert.strictEqual(message.serializedValueSize, 3)
    assert.strictEqual(message.generationId, undefined)
    assert.isTrue(Equal.equals(sample(7), sample(7)))
    assert.isFalse(Equal.equals(sample(7), sample(8)))
  })

  it("TopicPartition compares structurally", () => {
    assert.isTrue(Equal.equals(Message.TopicPartition.make("t", 1), Message.TopicPartition.make("t", 1)))
    assert.isFalse(Equal.equals(Message.TopicPartition.make("t", 1), Message.TopicPartition.make("t", 2)))
  })

  it("headersToList accepts pairs or a record and returns a fresh list", () => {
    const pairs: Message.Headers = [["a", "1"], ["a", "2"]]
    const list = Message.headersToList(pairs)
    assert.deepStrictEqual(list, [["a", "1"], ["a", "2"]])
    assert.notStrictEqual(list, pairs)
    assert.deepStrictEqual(Message.headersToList({ x: "1", y: new Uint8Array([1]) }), [["x", "1"], [
      "y",
      new Uint8Array([1])
    ]])
    assert.deepStrictEqual(Message.headersToList(undefined), [])
  })
})

describe("Event and RecordMetadata", () => {
  it("Event.make keeps its fields and compares structurally", () => {
    const message = sample(1)
    const event = Event.make({ key: "k", value: 1, headers: message.headers, message })
    assert.strictEqual(event.key, "k")
    assert.strictEqual(event.message, message)
    assert.isTrue(Equal.equals(event, Event.make({ key: "k", value: 1, headers: message.headers, message })))
  })

  it("RecordMetadata.make derives topicPartition", () => {
    const metadata = RecordMetadata.make({ topic: "t", partition: 3, offset: 9, timestamp: 5, timestampType: 0 })
    assert.isTrue(Equal.equals(metadata.topicPartition, Message.TopicPartition.make("t", 3)))
    assert.strictEqual(metadata.offset, 9)
  })
})

describe("FutureMessage", () => {
  it.effect("resolves once with the metadata and reports isDone", () =>
    Effect.gen(function*() {
      const pending = FutureMessage.PendingMessage.make({ channel: { label: "c" }, value: 1, key: "k" })
      assert.strictEqual(pending.partition, undefined)
      const future = yield* FutureMessage.make(pending)
      assert.isTrue(FutureMessage.isFutureMessage(future))
      assert.isFalse(future.isDone)
      const metadata = RecordMetadata.make({
        topic: "<anon>",
        partition: -1,
        offset: -1,
        timestamp: 0,
        timestampType: 1
      })
      assert.isTrue(yield* future.succeed(metadata))
      assert.isFalse(yield* future.succeed(metadata))
      assert.isTrue(future.isDone)
      assert.strictEqual(yield* future.await, metadata)
    }))

  it.effect("fail completes the future with the error", () =>
    Effect.gen(function*() {
      const future = yield* FutureMessage.make(FutureMessage.PendingMessage.make({ channel: { label: "c" }, value: 1 }))
      yield* future.fail(new ChannelClosedError({ channel: "c" }))
      const exit = yield* Effect.exit(future.await)
      assert.isTrue(Exit.isFailure(exit))
    }))
})

describe("MessageSchema", () => {
  it("make keeps the schemas and serializers as given and defaults allowEmpty to false", () => {
    const schema = MessageSchema.make({ key: Schema.String, value: Schema.Number, valueSerializer: "json|binary" })
    assert.strictEqual(schema.key, Schema.String)
    assert.strictEqual(schema.value, Schema.Number)
    assert.strictEqual(schema.keySerializer, undefined)
    assert.strictEqual(schema.valueSerializer, "json|binary")
    assert.isFalse(schema.allowEmpty)
    assert.isTrue(MessageSchema.make({ allowEmpty: true }).allowEmpty)
  })
})

describe("App", () => {
  const readApp = Effect.gen(function*() {
    return yield* App.App
  })

  it.effect("layer applies Faust's defaults", () =>
    Effect.gen(function*() {
      const app = yield* Effect.provide(readApp, App.layer({ id: "defaults" }))
      assert.strictEqual(app.id, "defaults")
      assert.deepStrictEqual(app.config, { streamBufferMaxsize: 4096, keySerializer: "raw", valueSerializer: "json" })
    }))

  it.effect("layer rejects a bad buffer size, an unknown serializer and an empty id", () =>
    Effect.gen(function*() {
      const size = yield* Effect.flip(Effect.provide(readApp, App.layer({ id: "x", streamBufferMaxsize: 0 })))
      assert.instanceOf(size, InvalidChannelOptionsError)
      assert.strictEqual(size.option, "streamBufferMaxsize")
      const serializer = yield* Effect.flip(Effect.provide(readApp, App.layer({ id: "x", valueSerializer: "yaml" })))
      assert.strictEqual(serializer.option, "valueSerializer")
      assert.match(serializer.reason, /unknown serializer "yaml"/)
      const id = yield* Effect.flip(Effect.provide(readApp, App.layer({ id: "" })))
      assert.strictEqual(id.option, "id")
    }))

  it.effect("layerConfig reads the settings from Config", () =>
    Effect.gen(function*() {
      const app = yield* Effect.provide(readApp, App.layerConfig("from-env")).pipe(
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord({
          STREAM_BUFFER_MAXSIZE: "128",
          VALUE_SERIALIZER: "json|binary"
        })))
      )
      assert.strictEqual(app.id, "from-env")
      assert.strictEqual(app.config.streamBufferMaxsize, 128)
      assert.strictEqual(app.config.keySerializer, "raw")
      assert.strictEqual(app.config.valueSerializer, "json|binary")
    }))

  it.effect("createEvent builds an Event", () =>
    Effect.gen(function*() {
      const app = yield* Effect.provide(readApp, App.layer({ id: "events" }))
      const message = sample(3)
      const event = app.createEvent("k", 42, message.headers, message)
      assert.strictEqual(event.value, 42)
      assert.strictEqual(event.message, message)
    }))
})
