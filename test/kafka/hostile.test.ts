/**
 * Topic against records written by other clients and against neighbours, on
 * a real broker: bad records under the default "fail" policy (first in the
 * topic, arriving while the stream is idle, several in a row).
 */
import { assert, describe, it } from "@effect/vitest"
import { Admin, Consumer } from "@platformatic/kafka"
import { Deferred, Effect, Exit, Fiber, HashSet, Layer, Schema, Scope, Stream } from "effect"
import { type Event, ValueDecodeError } from "effect-faust"
import { Kafka, KafkaError, Topic } from "effect-faust/kafka"
import { quiet } from "../helpers.ts"
import {
  bootstrapServers,
  brokerAvailable,
  committedOffset,
  eventually,
  kafkaLayer,
  produceRaw,
  unique
} from "./setup.ts"

const utf8 = new TextEncoder()

/** The log end offset of partition 0 of each topic: how many records it stored. */
const logEnds = (topics: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const admin = new Admin({ clientId: unique("admin"), bootstrapBrokers: [bootstrapServers] })
    try {
      const listed = await admin.listOffsets({
        topics: topics.map((name) => ({ name, partitions: [{ partitionIndex: 0, timestamp: -1n }] }))
      })
      return topics.map((name) => Number(listed.find((topic) => topic.name === name)!.partitions[0].offset))
    } finally {
      await admin.close()
    }
  })

/**
 * Reads the topic with a new stream after each failure, as a supervisor
 * restarting a reader would, until `done` holds: the values read and the
 * offsets of the decode errors the streams failed with, in order.
 */
const readWithRestarts = (topic: Topic.Topic<unknown, number>, last: number, restarts = 12) =>
  Effect.gen(function*() {
    const values: Array<number> = []
    const errors: Array<number> = []
    for (let attempt = 0; attempt < restarts && !values.includes(last); attempt++) {
      const exit = yield* topic.stream().pipe(
        Stream.takeUntil((value) => value === last),
        Stream.runForEach((value) => Effect.sync(() => values.push(value))),
        Effect.timeout("20 seconds"),
        Effect.exit
      )
      if (Exit.isFailure(exit)) {
        const error = yield* Effect.flip(exit)
        if (!(error instanceof ValueDecodeError)) return yield* Effect.die(error)
        errors.push(Number(error.received.offset))
      }
    }
    return { values, errors }
  })

describe.skipIf(!brokerAvailable)("Topic against bad records (onDecodeError: fail)", () => {
  it.live(
    "a bad record at offset 0 fails the first stream only: it is committed, the next stream starts after it",
    () =>
      Effect.gen(function*() {
        const topic = yield* Topic.make({ topics: [unique("poison-first")], value: Schema.Number })
        yield* topic.maybeDeclare
        yield* produceRaw(topic.topics[0], ["oops", "1", "2"])
        const first = yield* topic.stream().pipe(Stream.runDrain, Effect.timeout("20 seconds"), Effect.flip)
        assert.instanceOf(first, ValueDecodeError)
        assert.strictEqual(Number((first as ValueDecodeError).received.offset), 0)
        assert.isAtLeast(yield* committedOffset(topic), 1, "the bad record's offset is committed")
        assert.deepStrictEqual(
          yield* topic.stream().pipe(Stream.take(2), Stream.runCollect, Effect.timeout("20 seconds")),
          [1, 2]
        )
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    90_000
  )

  it.live(
    "a bad record arriving while the stream is idle fails it, is committed, and the next stream goes on after it",
    () =>
      Effect.gen(function*() {
        const topic = yield* Topic.make({ topics: [unique("poison-idle")], value: Schema.Number })
        yield* topic.maybeDeclare
        yield* produceRaw(topic.topics[0], ["0"])
        const seen: Array<number> = []
        const reading = yield* topic.stream().pipe(
          Stream.runForEach((value) => Effect.sync(() => seen.push(value))),
          Effect.timeout("30 seconds"),
          Effect.flip,
          Effect.forkChild
        )
        yield* eventually(() => seen.length === 1)
        yield* Effect.sleep("300 millis")
        yield* produceRaw(topic.topics[0], ["oops"])
        const error = yield* Fiber.join(reading)
        assert.instanceOf(error, ValueDecodeError)
        assert.strictEqual(Number((error as ValueDecodeError).received.offset), 1)
        assert.strictEqual(yield* committedOffset(topic), 2)
        yield* produceRaw(topic.topics[0], ["2"])
        assert.deepStrictEqual(
          yield* topic.stream().pipe(Stream.take(1), Stream.runCollect, Effect.timeout("20 seconds")),
          [2]
        )
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    90_000
  )

  it.live(
    "bad records in a row, in one fetched batch: each fails a stream of its own, none is skipped silently",
    () =>
      Effect.gen(function*() {
        const topic = yield* Topic.make({ topics: [unique("poison-row")], value: Schema.Number })
        yield* topic.maybeDeclare
        yield* produceRaw(topic.topics[0], ["0", "x", "x", "x", "x", "5", "6", "x", "8"])
        const { errors, values } = yield* readWithRestarts(topic, 8)
        assert.deepStrictEqual(errors, [1, 2, 3, 4, 7])
        assert.deepStrictEqual([...new Set(values)], [0, 5, 6, 8])
        assert.strictEqual(topic.decodeErrorCounts.failed, 5)
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    180_000
  )
})

describe.skipIf(!brokerAvailable)("Topic against neighbours and a closed layer", () => {
  it.live(
    "Topic.ack of an event whose generation a rebalance revoked returns false: that acknowledgement does not count",
    () =>
      Effect.gen(function*() {
        const name = unique("revoked-ack")
        const groupId = unique("group")
        const held = yield* Deferred.make<Event.Event<unknown, number>>()
        const topics: Array<Topic.Topic<unknown, number>> = []
        const first = yield* Effect.gen(function*() {
          const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 2 })
          topics[0] = topic
          yield* topic.sendAll([1, 2, 3, 4])
          yield* Topic.noack(topic).pipe(
            Stream.runForEach((event) => Effect.asVoid(Deferred.succeed(held, event)))
          )
        }).pipe(Effect.provide(kafkaLayer({ groupId })), Effect.forkChild)
        const event = yield* Deferred.await(held)
        const second = yield* Effect.gen(function*() {
          const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 2 })
          topics[1] = topic
          yield* topic.stream().pipe(Stream.runDrain)
        }).pipe(Effect.provide(kafkaLayer({ groupId })), Effect.forkChild)
        // Each member owns one of the two partitions: the first member's generation was revoked.
        yield* eventually(() =>
          topics.length === 2 &&
          topics.every((topic) => topic.activePartitions !== undefined && HashSet.size(topic.activePartitions) === 1)
        )
        assert.isFalse(yield* Topic.ack(event))
        yield* Fiber.interrupt(first)
        yield* Fiber.interrupt(second)
      }),
    60_000
  )

  it.live(
    "two topics read under one explicit groupId (one member each): both are read, every partition of each",
    () =>
      Effect.gen(function*() {
        const groupId = unique("shared-group")
        const first = yield* Topic.make({ topics: [unique("shared-a")], value: Schema.Number, partitions: 2, groupId })
        const second = yield* Topic.make({ topics: [unique("shared-b")], value: Schema.Number, partitions: 2, groupId })
        yield* first.sendAll(Array.from({ length: 10 }, (_, i) => i))
        yield* second.sendAll(Array.from({ length: 10 }, (_, i) => 100 + i))
        const [fromFirst, fromSecond] = yield* Effect.all([
          first.stream().pipe(Stream.take(10), Stream.runCollect, Effect.timeout("20 seconds")),
          second.stream().pipe(Stream.take(10), Stream.runCollect, Effect.timeout("20 seconds"))
        ], { concurrency: "unbounded" })
        assert.deepStrictEqual([...fromFirst].sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i))
        assert.deepStrictEqual([...fromSecond].sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => 100 + i))
      }).pipe(Effect.provide(kafkaLayer())),
    60_000
  )

  it.live(
    "partitions added while a stream reads are picked up; with autoOffsetReset latest, from their first record",
    () =>
      Effect.gen(function*() {
        const topic = yield* Topic.make({ topics: [unique("growing")], value: Schema.Number, partitions: 1 })
        yield* topic.maybeDeclare
        const seen: Array<number> = []
        const reading = yield* topic.stream().pipe(
          Stream.runForEach((value) => Effect.sync(() => seen.push(value))),
          Effect.forkChild
        )
        yield* eventually(() => topic.activePartitions !== undefined && HashSet.size(topic.activePartitions) === 1)
        yield* topic.send({ value: 0 })
        yield* eventually(() => seen.length === 1)
        yield* Effect.promise(async () => {
          const admin = new Admin({ clientId: unique("admin"), bootstrapBrokers: [bootstrapServers] })
          try {
            await admin.createPartitions({ topics: [{ name: topic.topics[0], count: 2 }] })
          } finally {
            await admin.close()
          }
        })
        // Written to the new partition by another client before this member can have noticed it.
        yield* Effect.gen(function*() {
          const kafka = yield* Kafka.Kafka
          yield* kafka.produce([{
            topic: topic.topics[0],
            partition: 1,
            key: null,
            value: utf8.encode("1"),
            headers: [],
            timestamp: Date.now()
          }])
        }).pipe(Effect.provide(kafkaLayer()))
        yield* eventually(() => seen.includes(1), 30_000)
        assert.strictEqual(HashSet.size(topic.activePartitions!), 2)
        yield* Fiber.interrupt(reading)
      }).pipe(Effect.provide(kafkaLayer({ autoOffsetReset: "latest" }))),
    60_000
  )

  it.live(
    "a dead letter keeps the original header bytes: names that are not UTF-8 and null values",
    () =>
      Effect.gen(function*() {
        const deadLetters = yield* Topic.make({ topics: [unique("dead-letters")], value: Schema.Unknown })
        const topic = yield* Topic.make({
          topics: [unique("dead-source")],
          value: Schema.Number,
          onDecodeError: { deadLetter: deadLetters }
        })
        yield* topic.maybeDeclare
        yield* deadLetters.maybeDeclare
        const kafka = yield* Kafka.Kafka
        const strangeName = new Uint8Array([0xff, 0xfe, 0x41])
        yield* kafka.produce([{
          topic: topic.topics[0],
          partition: 0,
          key: null,
          value: utf8.encode("not json"),
          headers: [],
          rawHeaders: [[strangeName, utf8.encode("v")], [utf8.encode("nothing"), null]],
          timestamp: Date.now()
        }])
        yield* topic.stream().pipe(Stream.take(1), Stream.runDrain, Effect.timeout("3 seconds"), Effect.ignore)
        yield* eventually(() => topic.decodeErrorCounts.deadLettered === 1)
        yield* kafka.flush
        const headers = yield* Effect.promise(async () => {
          const consumer = new Consumer({
            clientId: unique("raw"),
            groupId: unique("raw-group"),
            bootstrapBrokers: [bootstrapServers]
          })
          try {
            const stream = await consumer.consume({ topics: [deadLetters.topics[0]], mode: "earliest" })
            for await (const message of stream) {
              await stream.close()
              return message.headerEntries.map(([name, value]) =>
                [[...name], value == null ? null : Buffer.from(value).toString()] as const
              )
            }
            return []
          } finally {
            await consumer.close(true)
          }
        })
        assert.deepStrictEqual(headers.slice(0, 2), [[[0xff, 0xfe, 0x41], "v"], [[...utf8.encode("nothing")], null]])
        assert.deepStrictEqual(headers[2], [[...utf8.encode("x-decode-error")], "ValueDecodeError"])
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "a stream started after its Kafka layer closed fails with a KafkaError saying so, not an interruption",
    () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(kafkaLayer(), scope)
        const topic = yield* Topic.make({ topics: [unique("closed-layer")], value: Schema.Number }).pipe(
          Effect.provide(context)
        )
        yield* Scope.close(scope, Exit.void)
        const error = yield* topic.stream().pipe(Stream.runDrain, Effect.timeout("10 seconds"), Effect.flip)
        assert.instanceOf(error, KafkaError)
        assert.include(error.message, "closed")
      }),
    30_000
  )
})

describe.skipIf(!brokerAvailable)("Topic against a record the broker refuses", () => {
  it.live(
    "one oversized sendSoon fails alone: records stored with it succeed once, innocent ones of its batch are sent again",
    () =>
      Effect.gen(function*() {
        const small = yield* Topic.make({
          topics: [unique("limited")],
          value: Schema.String,
          config: { "max.message.bytes": 2000 }
        })
        const other = yield* Topic.make({ topics: [unique("other")], value: Schema.String })
        yield* small.maybeDeclare
        yield* other.maybeDeclare
        const futures = [
          yield* small.sendSoon({ value: "a1" }),
          yield* other.sendSoon({ value: "b1" }),
          yield* small.sendSoon({ value: "x".repeat(5000) }),
          yield* small.sendSoon({ value: "a2" }),
          yield* other.sendSoon({ value: "b2" })
        ]
        const exits = yield* Effect.forEach(futures, (future) => Effect.exit(future.await))
        assert.deepStrictEqual(exits.map(Exit.isSuccess), [true, true, false, true, true])
        const refused = yield* Effect.flip(futures[2].await)
        assert.instanceOf(refused, KafkaError)
        assert.include(refused.message, "larger than the broker accepts")
        assert.strictEqual((refused as KafkaError).partition, 0, "the refused record's partition")
        assert.strictEqual((refused as KafkaError).topic, small.topics[0])
        assert.deepStrictEqual(
          yield* small.stream().pipe(Stream.take(2), Stream.runCollect, Effect.timeout("20 seconds")),
          ["a1", "a2"]
        )
        assert.deepStrictEqual(
          yield* other.stream().pipe(Stream.take(2), Stream.runCollect, Effect.timeout("20 seconds")),
          ["b1", "b2"]
        )
        assert.deepStrictEqual(yield* logEnds([small.topics[0], other.topics[0]]), [2, 2], "each record stored once")
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "a refused sendSoon does not stop an idle consumer of another topic: it goes on reading and committing",
    () =>
      Effect.gen(function*() {
        const consumed = yield* Topic.make({ topics: [unique("bystander")], value: Schema.Number })
        const limited = yield* Topic.make({
          topics: [unique("limited")],
          value: Schema.String,
          config: { "max.message.bytes": 2000 }
        })
        yield* limited.maybeDeclare
        yield* consumed.maybeDeclare
        const seen: Array<number> = []
        const reading = yield* consumed.stream().pipe(
          Stream.runForEach((value) => Effect.sync(() => seen.push(value))),
          Effect.forkChild
        )
        yield* consumed.sendAll([0, 1])
        yield* eventually(() => seen.length === 2)
        const refused = yield* limited.sendSoon({ value: "x".repeat(5000) })
        assert.instanceOf(yield* Effect.flip(refused.await), KafkaError)
        yield* consumed.sendAll([2, 3])
        yield* eventually(() => seen.length === 4)
        yield* Effect.suspend(function loop(): Effect.Effect<void> {
          return Effect.flatMap(
            committedOffset(consumed),
            (offset) => offset === 4 ? Effect.void : Effect.andThen(Effect.sleep("50 millis"), loop)
          )
        }).pipe(Effect.timeout("10 seconds"))
        assert.isUndefined(reading.pollUnsafe(), "the consumer is still reading")
        yield* Fiber.interrupt(reading)
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )
})

describe("KafkaError never throws while describing its cause", () => {
  it("message, toString and JSON work with hostile causes", () => {
    const circular: Record<string, unknown> = {}
    circular.self = circular
    for (
      const cause of [
        Object.create(null),
        {
          toString: () => {
            throw new Error("no")
          }
        },
        circular,
        1n
      ]
    ) {
      const error = new KafkaError({ operation: "produce", topic: "t", partition: 1, cause })
      assert.include(error.message, "Kafka produce failed on t[1]")
      assert.isString(error.toString())
      assert.strictEqual(JSON.parse(JSON.stringify(error))._tag, "KafkaError")
    }
  })
})
