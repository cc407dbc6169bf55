/**
 * Hostile tests of the futures a Topic hands out (`sendSoon`, `asFutureMessage`,
 * `publishMessage`, `FutureMessage`): the metadata a future resolves with is
 * built lazily from where its record went, so every test compares it with
 * what the broker stored (read back with kcat, independently of the library).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Equal, Exit, Fiber, HashSet, Schema } from "effect"
import {
  ChannelClosedError,
  CodecError,
  FutureMessage,
  Message,
  PublishInterruptedError,
  RecordMetadata
} from "effect-faust"
import { Kafka, KafkaError, Topic } from "effect-faust/kafka"
import { TestClock } from "effect/testing"
import { execFile } from "node:child_process"
import { assertSameMetadata, failureOf, handWritten } from "../helpers.ts"
import { bootstrapServers, brokerAvailable, kafkaLayer, unique } from "./setup.ts"

const Value = Schema.Struct({ id: Schema.Number, pad: Schema.optional(Schema.String) })

interface Stored {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly tstype: string
  readonly ts: number
  readonly key: string | null
  readonly payload: string | null
}

/** Every record of a topic, as the broker stored it (kcat, not the library). */
const readBack = (topic: string) =>
  Effect.promise(() =>
    new Promise<Array<Stored>>((resolve, reject) =>
      execFile(
        "kcat",
        ["-b", bootstrapServers.split(",")[0].trim(), "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q"],
        { maxBuffer: 1 << 28 },
        (error, stdout) => {
          if (error) return reject(error)
          resolve(stdout.split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line) as Stored))
        }
      )
    )
  )

/** The stored records of a topic by the `id` of their JSON value. */
const storedById = (records: ReadonlyArray<Stored>) => {
  const byId = new Map<number, Array<Stored>>()
  for (const record of records) {
    const id = (JSON.parse(record.payload!) as { id: number }).id
    byId.set(id, [...(byId.get(id) ?? []), record])
  }
  return byId
}

/** The metadata equals what the broker stored for that record, field by field. */
const assertMatches = (metadata: RecordMetadata.RecordMetadata, stored: Stored | undefined, label: string) => {
  assert.isDefined(stored, `${label}: nothing stored`)
  assert.strictEqual(metadata.topic, stored!.topic, `${label}: topic`)
  assert.strictEqual(metadata.partition, stored!.partition, `${label}: partition`)
  assert.strictEqual(metadata.offset, stored!.offset, `${label}: offset`)
  assert.strictEqual(metadata.timestamp, stored!.ts, `${label}: timestamp`)
  assert.strictEqual(stored!.tstype, "create", `${label}: stored timestamp type`)
  assert.strictEqual(metadata.timestampType, 0, `${label}: timestampType (create time)`)
  assert.deepStrictEqual(
    { topic: metadata.topicPartition.topic, partition: metadata.topicPartition.partition },
    { topic: stored!.topic, partition: stored!.partition },
    `${label}: topicPartition`
  )
  assert.isTrue(
    Equal.equals(metadata.topicPartition, Message.TopicPartition.make(stored!.topic, stored!.partition)),
    `${label}: topicPartition Equal`
  )
}

/** Metadata no broker gave: what a user's own `succeed` completes a future with. */
const fakeMetadata = RecordMetadata.make({
  topic: "fake",
  partition: 99,
  offset: 12345,
  timestamp: 1,
  timestampType: 1
})

const makeTopic = (name: string, partitions: number, extra?: { acks?: boolean; config?: Record<string, string> }) =>
  Topic.make({ topics: [name], key: Schema.String, value: Value, partitions, ...extra })

describe.skipIf(!brokerAvailable)("hostile: futures of sendSoon / publishMessage on Kafka", () => {
  it.live(
    "sendSoon metadata equals what the broker stored: keyed and keyless, timestamps given or not, two topics, 4 partitions, awaited late",
    () =>
      Effect.gen(function*() {
        const nameA = unique("hf-meta-a")
        const nameB = unique("hf-meta-b")
        const a = yield* makeTopic(nameA, 4)
        const b = yield* makeTopic(nameB, 3)
        yield* a.maybeDeclare
        yield* b.maybeDeclare
        // given timestamps an hour back (within the topic's retention, within 24 days of the others)
        const given = Date.now() - 3_600_000
        const futures: Array<readonly [number, FutureMessage.FutureMessage<string, { id: number }>]> = []
        for (let i = 0; i < 120; i++) {
          const topic = i % 5 === 4 ? b : a
          futures.push([
            i,
            yield* topic.sendSoon({
              key: i % 2 === 0 ? `k${i % 7}` : null,
              value: { id: i },
              timestamp: i % 3 === 0 ? given + i : undefined,
              partition: i % 11 === 10 ? 1 : undefined
            })
          ])
        }
        // Awaited well after the broker answered: a lazy metadata must still say what happened then.
        yield* Effect.sleep("1500 millis")
        const stored = storedById([...(yield* readBack(nameA)), ...(yield* readBack(nameB))])
        assert.strictEqual(stored.size, 120)
        for (const [i, future] of futures) {
          assert.isTrue(future.isDone, `#${i} isDone`)
          const metadata = yield* future.await
          const records = stored.get(i)!
          assert.strictEqual(records.length, 1, `#${i} stored once`)
          assertMatches(metadata, records[0], `#${i}`)
          if (i % 3 === 0) assert.strictEqual(metadata.timestamp, given + i, `#${i} given timestamp`)
          if (i % 11 === 10) assert.strictEqual(metadata.partition, 1, `#${i} given partition`)
          assert.strictEqual(records[0].key, i % 2 === 0 ? `k${i % 7}` : null, `#${i} key`)
        }
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.live(
    "given timestamps more than 2^31 ms (24.9 days) apart in one batch: stored as given, and the metadata says what is stored",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-ts-far")
        // no retention, so that a 40-day-old record stays on the log
        const topic = yield* makeTopic(name, 1, { config: { "retention.ms": "-1" } })
        yield* topic.maybeDeclare
        const day = 86_400_000
        const base = Date.now() - 40 * day
        // replaying an old record next to a fresh one, as a forwarder would
        const timestamps = [base, base + 30 * day, base + 5, base + 30 * day + 7]
        const futures: Array<FutureMessage.FutureMessage<string, { id: number; pad?: string }>> = []
        for (let i = 0; i < timestamps.length; i++) {
          futures.push(yield* topic.sendSoon({ key: null, value: { id: i }, timestamp: timestamps[i] }))
        }
        const metadata = yield* Effect.forEach(futures, (future) => future.await)
        const stored = storedById(yield* readBack(name))
        const report = timestamps.map((t, i) => ({
          given: t - base,
          metadata: metadata[i].timestamp - base,
          stored: (stored.get(i)?.[0].ts ?? NaN) - base
        }))
        console.log(`[timestamps, ms after the first] ${JSON.stringify(report)}`)
        timestamps.forEach((t, i) => {
          assert.strictEqual(metadata[i].timestamp, t, `#${i} metadata timestamp is the given one`)
          assert.strictEqual(stored.get(i)?.[0].ts, t, `#${i} stored timestamp is the given one`)
        })
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.effect(
    "under a TestClock: a record without a timestamp is stamped with the Clock's time; the future says so even when awaited after the clock moved",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-testclock")
        const t0 = Date.now() - 3_600_000
        yield* TestClock.setTime(t0)
        const topic = yield* makeTopic(name, 2)
        yield* topic.maybeDeclare
        const futures: Array<FutureMessage.FutureMessage<string, { id: number; pad?: string }>> = []
        for (let i = 0; i < 6; i++) {
          futures.push(yield* topic.sendSoon({ key: `k${i}`, value: { id: i } }))
          yield* TestClock.adjust("1 second")
        }
        const kafka = yield* Kafka.Kafka
        yield* kafka.flush
        yield* TestClock.adjust("10 minutes")
        const stored = storedById(yield* readBack(name))
        for (let i = 0; i < futures.length; i++) {
          const metadata = yield* futures[i].await
          assertMatches(metadata, stored.get(i)?.[0], `#${i}`)
          assert.strictEqual(metadata.timestamp, t0 + i * 1000, `#${i} the Clock's time at sendSoon`)
        }
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.live(
    "sendSoon metadata has the same shape and fields as send's for the same kind of record",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-shape")
        const topic = yield* makeTopic(name, 2)
        const sent = yield* topic.send({ key: "same", value: { id: 0 }, timestamp: 1_700_000_000_000 })
        const future = yield* topic.sendSoon({ key: "same", value: { id: 1 }, timestamp: 1_700_000_000_000 })
        const soon = yield* future.await
        assert.deepStrictEqual(Object.keys(soon).sort(), Object.keys(sent).sort())
        assert.strictEqual(soon.topic, sent.topic)
        assert.strictEqual(soon.partition, sent.partition)
        assert.strictEqual(soon.offset, sent.offset + 1)
        assert.strictEqual(soon.timestamp, sent.timestamp)
        assert.strictEqual(soon.timestampType, sent.timestampType)
        assert.isTrue(Equal.equals(soon.topicPartition, sent.topicPartition))
        assert.isTrue(Equal.equals(soon, RecordMetadata.make({ ...sent, offset: sent.offset + 1 })))
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.live(
    "acks: false: futures resolve with offset -1, the partition the record went to, and its stored timestamp",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-noacks")
        const topic = yield* makeTopic(name, 3, { acks: false })
        assert.isFalse(topic.acks)
        // acks: false is fire and forget: records sent while the new topic has no leader yet may be dropped
        yield* topic.maybeDeclare
        yield* Effect.sleep("500 millis")
        const now = Date.now()
        const futures: Array<FutureMessage.FutureMessage<string, { id: number; pad?: string }>> = []
        for (let i = 0; i < 30; i++) {
          futures.push(
            yield* topic.sendSoon({
              key: i % 2 === 0 ? `k${i}` : null,
              value: { id: i },
              timestamp: i % 4 === 0 ? now - 600_000 + i : undefined
            })
          )
        }
        const metadata = yield* Effect.forEach(futures, (future) => future.await)
        const kafka = yield* Kafka.Kafka
        yield* kafka.flush
        // acks: false does not wait: give the broker a moment to store them
        yield* Effect.sleep("1 second")
        const stored = storedById(yield* readBack(name))
        assert.strictEqual(stored.size, 30, "every acks:false record stored")
        metadata.forEach((m, i) => {
          const record = stored.get(i)![0]
          assert.strictEqual(m.offset, -1, `#${i} offset`)
          assert.strictEqual(m.topic, name, `#${i} topic`)
          assert.strictEqual(m.partition, record.partition, `#${i} partition`)
          assert.strictEqual(m.timestamp, record.ts, `#${i} timestamp`)
          assert.isTrue(Equal.equals(m.topicPartition, Message.TopicPartition.make(name, record.partition)), `#${i} tp`)
          assert.isTrue(futures[i].isDone)
        })
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.live(
    "awaited before the broker answers, from many fibers at once, one awaiter interrupted: all others get the same, correct metadata",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-many")
        const topic = yield* makeTopic(name, 4)
        yield* topic.maybeDeclare
        const futures: Array<FutureMessage.FutureMessage<string, { id: number; pad?: string }>> = []
        for (let i = 0; i < 40; i++) {
          futures.push(yield* topic.sendSoon({ key: i % 3 === 0 ? null : `k${i}`, value: { id: i } }))
        }
        assert.isFalse(futures[0].isDone, "not done before the broker could answer")
        const awaiters = futures.map((future) => Array.from({ length: 6 }, () => Effect.runFork(future.await)))
        // one awaiter of every future interrupted while the others wait
        yield* Effect.forEach(awaiters, (fibers) => Fiber.interrupt(fibers[0]))
        const results = yield* Effect.forEach(awaiters, (fibers) => Effect.forEach(fibers.slice(1), Fiber.join))
        const stored = storedById(yield* readBack(name))
        results.forEach((all, i) => {
          assert.isTrue(futures[i].isDone)
          for (const m of all) assertSameMetadata(m, all[0], `#${i}`)
          assertMatches(all[0], stored.get(i)?.[0], `#${i}`)
        })
        // awaited again after the interruptions
        const again = yield* Effect.forEach(futures, (future) => future.await)
        again.forEach((m, i) => assertSameMetadata(m, results[i][0], `#${i} again`))
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.live(
    "awaited only after the broker answered (never before): isDone already true, every await equal, serializes the same",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-after")
        const topic = yield* makeTopic(name, 3)
        yield* topic.maybeDeclare
        const futures: Array<FutureMessage.FutureMessage<string, { id: number; pad?: string }>> = []
        for (let i = 0; i < 30; i++) futures.push(yield* topic.sendSoon({ key: `k${i}`, value: { id: i } }))
        const kafka = yield* Kafka.Kafka
        yield* kafka.flush
        futures.forEach((future, i) => assert.isTrue(future.isDone, `#${i} isDone after flush, before any await`))
        const stored = storedById(yield* readBack(name))
        for (let i = 0; i < futures.length; i++) {
          const first = yield* futures[i].await
          const second = yield* futures[i].await
          const concurrent = yield* Effect.all([futures[i].await, futures[i].await, futures[i].await], {
            concurrency: 3
          })
          assertSameMetadata(first, second, `#${i}`)
          assert.strictEqual(
            HashSet.size(HashSet.make(first, second, RecordMetadata.make({ ...first }))),
            1,
            `#${i} hash`
          )
          for (const m of concurrent) assertSameMetadata(m, first, `#${i} concurrent`)
          assertMatches(first, stored.get(i)?.[0], `#${i}`)
          assert.deepStrictEqual(JSON.parse(JSON.stringify(first)), {
            topic: name,
            partition: first.partition,
            topicPartition: { topic: name, partition: first.partition },
            offset: first.offset,
            timestamp: first.timestamp,
            timestampType: 0
          })
        }
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.live(
    "the only awaiter interrupted before the broker answers: a later await still gets the stored metadata",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-sole")
        const topic = yield* makeTopic(name, 2)
        yield* topic.maybeDeclare
        const futures: Array<FutureMessage.FutureMessage<string, { id: number; pad?: string }>> = []
        for (let i = 0; i < 10; i++) futures.push(yield* topic.sendSoon({ key: `k${i}`, value: { id: i } }))
        const awaiters = futures.map((future) => Effect.runFork(future.await))
        yield* Effect.forEach(awaiters, Fiber.interrupt)
        const kafka = yield* Kafka.Kafka
        yield* kafka.flush
        const stored = storedById(yield* readBack(name))
        for (let i = 0; i < futures.length; i++) {
          assert.isTrue(futures[i].isDone, `#${i} isDone`)
          const exit = yield* Effect.exit(futures[i].await.pipe(Effect.timeout("5 seconds")))
          assert.isTrue(Exit.isSuccess(exit), `#${i}: ${String(exit)}`)
          if (Exit.isSuccess(exit)) assertMatches(exit.value, stored.get(i)?.[0], `#${i}`)
        }
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.live(
    "publishMessage of a future the user already resolved: the record is still published, the future keeps the user's outcome",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-pre-resolved")
        const topic = yield* makeTopic(name, 1)
        yield* topic.maybeDeclare
        const fake = RecordMetadata.make({ topic: "fake", partition: 7, offset: 7, timestamp: 7, timestampType: 1 })
        const callbacks = { n: 0 }
        const future = yield* topic.asFutureMessage({
          key: "k",
          value: { id: 1 },
          callback: () => {
            callbacks.n++
          }
        })
        assert.isTrue(yield* future.succeed(fake))
        const returned = yield* topic.publishMessage(future).pipe(Effect.timeout("10 seconds"))
        const stored = storedById(yield* readBack(name))
        assert.strictEqual(stored.get(1)?.length, 1, "the record is published once")
        // what publishMessage returns is not specified here: the broker's metadata or the future's outcome
        assert.isTrue(
          Equal.equals(returned, fake) || returned.offset === stored.get(1)![0].offset,
          `publishMessage returned ${JSON.stringify(returned)}`
        )
        assertSameMetadata(yield* future.await, fake, "the first outcome")
        assert.isAtMost(callbacks.n, 1, "callback at most once")
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.live(
    "sendSoon on a topic whose Kafka layer has closed: fails, or its future settles; never a hang",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-after-close")
        const topic = yield* makeTopic(name, 1).pipe(
          Effect.tap((t) => t.maybeDeclare),
          Effect.provide(kafkaLayer())
        )
        const outcome = yield* Effect.exit(
          Effect.flatMap(topic.sendSoon({ key: "late", value: { id: 1 } }), (future) => future.await)
        ).pipe(Effect.timeout("15 seconds"), Effect.exit)
        assert.isTrue(Exit.isSuccess(outcome), `sendSoon after the layer closed hangs: ${String(outcome)}`)
      }),
    30_000
  )

  it.live(
    "user succeed / fail before the broker answers: the first outcome wins, the second call returns false",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-user-before")
        const topic = yield* makeTopic(name, 1)
        yield* topic.maybeDeclare
        const fake = fakeMetadata
        const userError = new PublishInterruptedError({ channel: "user" })
        const a = yield* topic.sendSoon({ key: "a", value: { id: 1 } })
        const b = yield* topic.sendSoon({ key: "b", value: { id: 2 } })
        const waiting = yield* Effect.forkChild(a.await) // an awaiter from before
        assert.isTrue(yield* a.succeed(fake), "first succeed")
        assert.isTrue(a.isDone)
        assert.isFalse(yield* a.succeed(RecordMetadata.make({ ...fake, offset: 1 })), "second succeed")
        assert.isFalse(yield* a.fail(userError), "fail after succeed")
        assert.isTrue(yield* b.fail(userError), "first fail")
        assert.isFalse(yield* b.succeed(fake), "succeed after fail")
        assert.isFalse(yield* b.fail(new PublishInterruptedError({ channel: "other" })), "second fail")
        const kafka = yield* Kafka.Kafka
        yield* kafka.flush
        // the broker's answer came later: it must not override what the user set
        assertSameMetadata(yield* Fiber.join(waiting), fake, "awaiter from before")
        assertSameMetadata(yield* a.await, fake, "a after the answer")
        const bExit = yield* Effect.exit(b.await)
        assert.strictEqual(failureOf(bExit), userError, "b fails with the user's error")
        assert.isFalse(yield* a.succeed(fake))
        assert.isFalse(yield* b.succeed(fake))
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.live(
    "user succeed / fail after the broker answered, before anyone awaited: false, and await gives the broker's metadata",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-user-after")
        const topic = yield* makeTopic(name, 2)
        yield* topic.maybeDeclare
        const fake = fakeMetadata
        const futures: Array<FutureMessage.FutureMessage<string, { id: number; pad?: string }>> = []
        for (let i = 0; i < 6; i++) futures.push(yield* topic.sendSoon({ key: `k${i}`, value: { id: i } }))
        // future 5 has an awaiter from before the answer
        const early = yield* Effect.forkChild(futures[5].await)
        const kafka = yield* Kafka.Kafka
        yield* kafka.flush
        const stored = storedById(yield* readBack(name))
        for (let i = 0; i < futures.length; i++) {
          const future = futures[i]
          assert.isTrue(future.isDone, `#${i} isDone`)
          if (i % 2 === 0) {
            assert.isFalse(yield* future.succeed(fake), `#${i} succeed after the answer`)
            assert.isFalse(yield* future.fail(new PublishInterruptedError({ channel: "user" })), `#${i} fail after`)
          } else {
            assert.isFalse(yield* future.fail(new PublishInterruptedError({ channel: "user" })), `#${i} fail after`)
            assert.isFalse(yield* future.succeed(fake), `#${i} succeed after the answer`)
          }
          const exit = yield* Effect.exit(future.await)
          assert.isTrue(Exit.isSuccess(exit), `#${i} still succeeds: ${String(exit)}`)
          if (Exit.isSuccess(exit)) assertMatches(exit.value, stored.get(i)?.[0], `#${i}`)
        }
        assertMatches(yield* Fiber.join(early), stored.get(5)?.[0], "early awaiter")
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.live(
    "callback: runs exactly once per record, after the acknowledgement, sees the future done with its metadata; failing or throwing callbacks break nothing",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-callback")
        const topic = yield* makeTopic(name, 3)
        yield* topic.maybeDeclare
        const calls = new Map<number, number>()
        const seen = new Map<number, { done: boolean; metadata: RecordMetadata.RecordMetadata | undefined }>()
        const futures: Array<FutureMessage.FutureMessage<string, { id: number; pad?: string }>> = []
        for (let i = 0; i < 60; i++) {
          const mode = i % 4
          futures.push(
            yield* topic.sendSoon({
              key: i % 2 ? `k${i}` : null,
              value: { id: i },
              callback: (future) => {
                calls.set(i, (calls.get(i) ?? 0) + 1)
                if (mode === 1) throw new Error(`callback ${i} throws`)
                return Effect.gen(function*() {
                  const done = future.isDone
                  const metadata = yield* Effect.option(future.await)
                  seen.set(i, { done, metadata: metadata._tag === "Some" ? metadata.value : undefined })
                  if (mode === 2) return yield* Effect.die(new Error(`callback ${i} dies`))
                  if (mode === 3) return yield* (Effect.fail("callback fails") as unknown as Effect.Effect<void>)
                })
              }
            })
          )
        }
        const metadata = yield* Effect.forEach(futures, (future) => future.await)
        const kafka = yield* Kafka.Kafka
        yield* kafka.flush
        yield* Effect.sleep("200 millis")
        // the buffer still works after the failing callbacks
        const later = yield* topic.sendSoon({ key: "after", value: { id: 1000 } })
        const laterMetadata = yield* later.await
        const stored = storedById(yield* readBack(name))
        assertMatches(laterMetadata, stored.get(1000)?.[0], "after the failing callbacks")
        for (let i = 0; i < 60; i++) {
          assert.strictEqual(calls.get(i), 1, `#${i} callback calls`)
          assertMatches(metadata[i], stored.get(i)?.[0], `#${i}`)
          if (i % 4 !== 1) {
            assert.isTrue(seen.get(i)?.done, `#${i} future done in its callback`)
            assert.isDefined(seen.get(i)?.metadata, `#${i} metadata in callback`)
            assertSameMetadata(seen.get(i)!.metadata!, metadata[i], `#${i} callback's metadata`)
          }
        }
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.live(
    "a record over the broker's size limit among good ones (its topic and another): only it fails, with a KafkaError; the others' metadata matches the log",
    () =>
      Effect.gen(function*() {
        const bigName = unique("hf-big")
        const otherName = unique("hf-big-other")
        // a small limit, so that the good records of the batch exceed it together
        const big = yield* makeTopic(bigName, 1, { config: { "max.message.bytes": "4000" } })
        const other = yield* makeTopic(otherName, 2)
        yield* big.maybeDeclare
        yield* other.maybeDeclare
        const pad = "x".repeat(60)
        const futures: Array<readonly [number, FutureMessage.FutureMessage<string, any>]> = []
        for (let i = 0; i < 100; i++) {
          if (i === 50) {
            futures.push([i, yield* big.sendSoon({ key: "big", value: { id: i, pad: "y".repeat(20_000) } })])
          } else {
            const topic = i % 3 === 0 ? other : big
            futures.push([i, yield* topic.sendSoon({ key: i % 2 ? `k${i}` : null, value: { id: i, pad } })])
          }
        }
        const exits = yield* Effect.forEach(futures, ([, future]) => Effect.exit(future.await))
        const stored = storedById([...(yield* readBack(bigName)), ...(yield* readBack(otherName))])
        let failed = 0
        exits.forEach((exit, i) => {
          if (i === 50) {
            const error = failureOf(exit)
            assert.instanceOf(error, KafkaError, `#50 fails with KafkaError: ${String(exit)}`)
            assert.strictEqual((error as KafkaError).operation, "produce")
            assert.strictEqual((error as KafkaError).topic, bigName)
            assert.isFalse(stored.has(50), "the big one is not stored")
            assert.isTrue(futures[50][1].isDone, "the failed future is done")
            return
          }
          if (Exit.isFailure(exit)) {
            failed++
            return
          }
          const records = stored.get(i) ?? []
          assert.strictEqual(records.length, 1, `#${i} stored exactly once`)
          assertMatches(exit.value, records[0], `#${i}`)
        })
        assert.strictEqual(failed, 0, "no good record failed")
        // every offset of the big topic's partition distinct and contiguous
        const offsets = [...stored.values()].flat().filter((r) => r.topic === bigName).map((r) => r.offset).sort((
          x,
          y
        ) => x - y)
        assert.deepStrictEqual(offsets, offsets.map((_, i) => offsets[0] + i))
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.live(
    "a value the codec refuses (NaN) among good records: only it fails, with a typed CodecError; the others resolve with their stored metadata",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-nan")
        const topic = yield* makeTopic(name, 2)
        yield* topic.maybeDeclare
        const outcomes: Array<Exit.Exit<RecordMetadata.RecordMetadata, unknown>> = []
        const futures: Array<FutureMessage.FutureMessage<string, any> | undefined> = []
        for (let i = 0; i < 20; i++) {
          const sent = yield* Effect.exit(topic.sendSoon({ key: `k${i}`, value: { id: i === 7 ? Number.NaN : i } }))
          futures.push(Exit.isSuccess(sent) ? sent.value : undefined)
          if (Exit.isFailure(sent)) outcomes[i] = sent as any
        }
        for (let i = 0; i < 20; i++) {
          if (futures[i] !== undefined) outcomes[i] = yield* Effect.exit(futures[i]!.await)
        }
        const stored = storedById(yield* readBack(name))
        outcomes.forEach((exit, i) => {
          if (i === 7) {
            assert.instanceOf(failureOf(exit), CodecError, `#7: ${String(exit)}`)
            if (futures[7] !== undefined) assert.isTrue(futures[7].isDone)
            return
          }
          assert.isTrue(Exit.isSuccess(exit), `#${i}: ${String(exit)}`)
          if (Exit.isSuccess(exit)) assertMatches(exit.value, stored.get(i)?.[0], `#${i}`)
        })
        assert.strictEqual(stored.size, 19)
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.live("a derived topic's futures name the derived topic, where the records are", () =>
    Effect.gen(function*() {
      const name = unique("hf-derive")
      const base = yield* makeTopic(name, 1)
      const derived = yield* base.derive({ suffix: "-d", partitions: 2 })
      yield* derived.maybeDeclare
      const futures: Array<FutureMessage.FutureMessage<string, { id: number; pad?: string }>> = []
      for (let i = 0; i < 10; i++) futures.push(yield* derived.sendSoon({ key: `k${i}`, value: { id: i } }))
      const metadata = yield* Effect.forEach(futures, (future) => future.await)
      const stored = storedById(yield* readBack(`${name}-d`))
      metadata.forEach((m, i) => assertMatches(m, stored.get(i)?.[0], `#${i}`))
    }).pipe(Effect.provide(kafkaLayer())), 30_000)

  it.live(
    "a closed topic (end): sendSoon / publishMessage fail with ChannelClosedError; the future never hangs",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-closed")
        const topic = yield* makeTopic(name, 1)
        yield* topic.maybeDeclare
        const before = yield* topic.sendSoon({ key: "a", value: { id: 1 } })
        yield* topic.end
        const soon = yield* Effect.exit(Effect.flatMap(topic.sendSoon({ key: "b", value: { id: 2 } }), (f) => f.await))
          .pipe(
            Effect.timeout("10 seconds")
          )
        assert.instanceOf(failureOf(soon), ChannelClosedError, `sendSoon after end: ${String(soon)}`)
        const future = yield* topic.asFutureMessage({ key: "c", value: { id: 3 } })
        const published = yield* Effect.exit(topic.publishMessage(future)).pipe(Effect.timeout("10 seconds"))
        assert.instanceOf(failureOf(published), ChannelClosedError, `publishMessage after end: ${String(published)}`)
        assert.isTrue(future.isDone, "the published future is done")
        const awaited = yield* Effect.exit(future.await).pipe(Effect.timeout("10 seconds"))
        assert.instanceOf(failureOf(awaited), ChannelClosedError, `future after end: ${String(awaited)}`)
        // what was sent before the close is unaffected
        const metadata = yield* before.await
        assertMatches(metadata, storedById(yield* readBack(name)).get(1)?.[0], "sent before end")
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  for (
    const [label, options, count] of [
      ["default buffer", {}, 5_000],
      ["a buffer of 100 and batches of 50 (senders wait)", { bufferMaxsize: 100, maxBatchSize: 50 }, 3_000]
    ] as const
  ) {
    it.live(
      `the Kafka layer closed with sendSoon records still buffered (${label}): they are flushed, every future done with the stored metadata`,
      () =>
        Effect.gen(function*() {
          const name = unique("hf-shutdown")
          const callbacks = { n: 0 }
          const { early, futures } = yield* Effect.gen(function*() {
            const topic = yield* makeTopic(name, 3)
            yield* topic.maybeDeclare
            const futures: Array<FutureMessage.FutureMessage<string, { id: number; pad?: string }>> = []
            for (let i = 0; i < count; i++) {
              futures.push(
                yield* topic.sendSoon({
                  key: i % 2 ? `k${i % 13}` : null,
                  value: { id: i },
                  callback: () => {
                    callbacks.n++
                  }
                })
              )
            }
            // an awaiter outside the layer's scope, started before the close
            const early = Effect.runFork(futures[count - 1].await)
            return { early, futures }
          }).pipe(Effect.provide(kafkaLayer(options)))
          const notDone = futures.filter((future) => !future.isDone).length
          assert.strictEqual(notDone, 0, "every future done once the layer closed")
          const stored = storedById(yield* readBack(name))
          let mismatched = 0
          for (let i = 0; i < count; i++) {
            const exit = yield* Effect.exit(futures[i].await)
            const record = stored.get(i)?.[0]
            if (
              !Exit.isSuccess(exit) || record === undefined || exit.value.offset !== record.offset ||
              exit.value.partition !== record.partition || exit.value.timestamp !== record.ts
            ) mismatched++
          }
          assert.strictEqual(mismatched, 0, "every future resolved with its stored record's metadata")
          assert.strictEqual(stored.size, count)
          assert.strictEqual(callbacks.n, count, "every callback ran")
          const last = yield* Fiber.join(early)
          assertMatches(last, stored.get(count - 1)?.[0], "awaiter started before the close")
        }),
      30_000
    )
  }

  it.live(
    "publishMessage with asFutureMessage (eager partitioning or not), FutureMessage.make and a hand-written FutureMessage: each completes with the stored metadata",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-publish")
        const topic = yield* makeTopic(name, 4)
        yield* topic.maybeDeclare
        const callbackRuns: Array<string> = []
        const callback = (label: string): FutureMessage.Callback<string, { id: number }> => (future) => {
          callbackRuns.push(`${label}:${future.isDone}`)
        }

        // 1. asFutureMessage, lazy partitioning, keyed, timestamp given
        const f1 = yield* topic.asFutureMessage({
          key: "k1",
          value: { id: 1 },
          timestamp: 1_600_000_000_001,
          callback: callback("f1")
        })
        assert.isFalse(f1.isDone)
        const r1 = yield* topic.publishMessage(f1)
        // 2. asFutureMessage, eager partitioning, keyless
        const f2 = yield* topic.asFutureMessage({ value: { id: 2 }, eagerPartitioning: true, callback: callback("f2") })
        assert.isNumber(f2.message.partition, "eager partitioning computes the partition")
        const r2 = yield* topic.publishMessage(f2)
        assert.strictEqual(r2.partition, f2.message.partition)
        // 3. FutureMessage.make of a PendingMessage built by hand
        const f3 = yield* FutureMessage.make(
          FutureMessage.PendingMessage.make<string, { id: number }>({
            channel: { label: "by hand" },
            key: "k3",
            value: { id: 3 },
            partition: 2,
            callback: callback("f3")
          })
        )
        const r3 = yield* topic.publishMessage(f3)
        assert.strictEqual(r3.partition, 2)
        // 4. a FutureMessage the library did not make
        const { calls: handCalls, future: hand } = yield* handWritten(
          f1,
          FutureMessage.PendingMessage.make<string, { id: number }>({
            channel: { label: "hand-written" },
            key: null,
            value: { id: 4 },
            timestamp: 1_600_000_000_004,
            callback: callback("f4")
          })
        )
        assert.isTrue(FutureMessage.isFutureMessage(hand))
        const r4 = yield* topic.publishMessage(hand)
        // 5. publishMessage without waiting
        const f5 = yield* topic.asFutureMessage({ key: "k5", value: { id: 5 }, callback: callback("f5") })
        yield* topic.publishMessage(f5, { wait: false })
        const r5 = yield* f5.await

        const stored = storedById(yield* readBack(name))
        const cases = [[1, f1, r1], [2, f2, r2], [3, f3, r3], [4, hand, r4], [5, f5, r5]] as const
        for (const [id, future, returned] of cases) {
          assert.isTrue(future.isDone, `f${id} done`)
          const awaited = yield* future.await
          assertSameMetadata(awaited, returned, `f${id} returned vs awaited`)
          assertMatches(awaited, stored.get(id)?.[0], `f${id}`)
        }
        assert.strictEqual(stored.get(1)![0].ts, 1_600_000_000_001)
        assert.strictEqual(stored.get(4)![0].ts, 1_600_000_000_004)
        assert.strictEqual(handCalls.succeed, 1, "the hand-written future completed once")
        assert.strictEqual(handCalls.fail, 0)
        yield* Effect.sleep("100 millis")
        assert.sameMembers(callbackRuns, ["f1:true", "f2:true", "f3:true", "f4:true", "f5:true"])
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.live(
    "concurrent fibers mixing sendSoon, send and publishMessage on shared partitions: every future's metadata is its own record's",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-concurrent")
        const topic = yield* makeTopic(name, 3)
        yield* topic.maybeDeclare
        const perFiber = 1_500
        const fibers = 8
        const results = yield* Effect.forEach(
          Array.from({ length: fibers }, (_, f) => f),
          (f) =>
            Effect.gen(function*() {
              const out: Array<readonly [number, RecordMetadata.RecordMetadata]> = []
              const pending: Array<readonly [number, FutureMessage.FutureMessage<string, { id: number }>]> = []
              for (let j = 0; j < perFiber; j++) {
                const id = f * perFiber + j
                const key = id % 5 === 0 ? null : `k${id % 17}`
                if (j % 50 === 0) out.push([id, yield* topic.send({ key, value: { id } })])
                else if (j % 50 === 1) {
                  const future = yield* topic.asFutureMessage({ key, value: { id } })
                  yield* topic.publishMessage(future, { wait: false })
                  pending.push([id, future])
                } else pending.push([id, yield* topic.sendSoon({ key, value: { id } })])
                if (j % 100 === 0) yield* Effect.yieldNow
              }
              for (const [id, future] of pending) out.push([id, yield* future.await])
              return out
            }),
          { concurrency: "unbounded" }
        )
        const stored = storedById(yield* readBack(name))
        let mismatched = 0
        const seen = new Set<string>()
        for (const [id, m] of results.flat()) {
          const record = stored.get(id)?.[0]
          if (
            record === undefined || record.partition !== m.partition || record.offset !== m.offset ||
            record.ts !== m.timestamp
          ) {
            mismatched++
          }
          seen.add(`${m.partition}:${m.offset}`)
        }
        assert.strictEqual(stored.size, perFiber * fibers)
        assert.strictEqual(seen.size, perFiber * fibers, "distinct (partition, offset) per record")
        assert.strictEqual(mismatched, 0)
      }).pipe(Effect.provide(kafkaLayer())),
    30_000
  )

  it.live(
    "a burst of 50 000 sendSoon then every future: offsets distinct and contiguous per partition, nothing lost or duplicated",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-burst")
        const partitions = 6
        const count = 50_000
        const topic = yield* makeTopic(name, partitions)
        yield* topic.maybeDeclare
        const futures = new Array<FutureMessage.FutureMessage<string, { id: number }>>(count)
        for (let i = 0; i < count; i++) {
          futures[i] = yield* topic.sendSoon({ key: i % 4 === 0 ? null : `k${i % 997}`, value: { id: i } })
        }
        const metadata = yield* Effect.forEach(futures, (future) => future.await)
        const byPartition = new Map<number, Array<number>>()
        for (const m of metadata) {
          assert.strictEqual(m.topic, name)
          byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), m.offset])
        }
        for (const [partition, offsets] of byPartition) {
          offsets.sort((x, y) => x - y)
          assert.deepStrictEqual(offsets, offsets.map((_, i) => i), `partition ${partition}: offsets 0..n-1`)
        }
        const records = yield* readBack(name)
        const stored = storedById(records)
        let lost = 0
        let duplicated = 0
        let mismatched = 0
        for (let i = 0; i < count; i++) {
          const found = stored.get(i) ?? []
          if (found.length === 0) lost++
          if (found.length > 1) duplicated += found.length - 1
          if (
            found.length >= 1 &&
            (found[0].partition !== metadata[i].partition || found[0].offset !== metadata[i].offset)
          ) {
            mismatched++
          }
        }
        console.log(
          `[delivery] sent ${count} / received ${records.length} / lost ${lost} / duplicated ${duplicated} (metadata not matching the log: ${mismatched})`
        )
        assert.strictEqual(records.length, count)
        assert.strictEqual(lost, 0)
        assert.strictEqual(duplicated, 0)
        assert.strictEqual(mismatched, 0)
      }).pipe(Effect.provide(kafkaLayer())),
    60_000
  )
})
