/**
 * The consumer's fetch loop on the broker, without a Topic: where it starts
 * each partition, what it hands out, and how it recovers from an offset out
 * of range.
 */
import { assert, describe, it } from "@effect/vitest"
import { Consumer, ProduceAcks, Producer, type RecordsBatch } from "@platformatic/kafka"
import { Effect } from "effect"
import { Message } from "effect-faust"
import * as fetcher from "../../src/kafka/internal/fetcher.ts"
import type { Received } from "../../src/kafka/internal/received.ts"
import { abortedBatches } from "../../src/kafka/internal/transactions.ts"
import { withAdmin } from "./raw.ts"
import { bootstrapServers, brokerAvailable, unique } from "./setup.ts"

const client = () => ({
  clientId: unique("fetcher"),
  bootstrapBrokers: [bootstrapServers],
  retries: 3,
  retryDelay: 100
})

/** Sends once the new topic's metadata and leaders are there (a topic just created may be unknown for a moment). */
const sendOnceReady = async (producer: Producer, messages: Parameters<Producer["send"]>[0]["messages"]) => {
  for (let attempt = 1;; attempt++) {
    try {
      return await producer.send({ acks: ProduceAcks.LEADER, messages })
    } catch (error) {
      if (attempt >= 50) throw error
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

/** A topic of `partitions` partitions with `perPartition` records each, `value` = `p<partition>-<i>`, in gzip batches of 7. */
const filledTopic = (partitions: number, perPartition: number) =>
  Effect.promise(async () => {
    const topic = unique("fetcher")
    await withAdmin((admin) => admin.createTopics({ topics: [topic], partitions, replicas: 1 })).pipe(Effect.runPromise)
    const producer = new Producer({ ...client(), compression: "gzip" })
    try {
      for (let partition = 0; partition < partitions; partition++) {
        for (let from = 0; from < perPartition; from += 7) {
          const messages = []
          for (let i = from; i < Math.min(perPartition, from + 7); i++) {
            messages.push({
              topic,
              partition,
              key: Buffer.from(`k${i}`),
              value: Buffer.from(`p${partition}-${i}`),
              headers: new Map([[Buffer.from("h"), Buffer.from(`${i}`)]])
            })
          }
          await sendOnceReady(producer, messages)
        }
      }
    } finally {
      await producer.close()
    }
    return topic
  })

const withConsumer = <A, E>(groupId: string, f: (consumer: Consumer) => Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => new Consumer({ ...client(), groupId })),
    f,
    (consumer) => Effect.promise(() => consumer.close(true).catch(() => undefined))
  )

const options = (
  topic: string,
  partitions: ReadonlyArray<number>,
  rest: Partial<fetcher.FetcherOptions> = {}
): fetcher.FetcherOptions => ({
  names: [topic],
  assignment: partitions.map((partition) => Message.TopicPartition.make(topic, partition)),
  generation: 3,
  from: undefined,
  autoOffsetReset: "earliest",
  maxWaitTime: 100,
  partitionMaxBytes: 1024 * 1024,
  retryDelay: 100,
  ...rest
})

/** Reads until `count` records came (failing after 15 s). */
const take = (opened: fetcher.Fetcher, count: number) =>
  Effect.gen(function*() {
    const records: Array<Received> = []
    while (records.length < count) records.push(...(yield* opened.next))
    return records
  }).pipe(Effect.timeout("15 seconds"))

const values = (records: ReadonlyArray<Received>) => records.map((record) => record.value!.toString())

describe.skipIf(!brokerAvailable)("the consumer's fetcher", () => {
  it.live(
    "reads each partition in order from the positions given, mid-batch included, with keys, headers and offsets",
    () =>
      Effect.gen(function*() {
        const topic = yield* filledTopic(3, 20)
        yield* withConsumer(unique("group"), (consumer) =>
          Effect.gen(function*() {
            const from = [{ topic, partition: 0, offset: 3n }, { topic, partition: 1, offset: 0n }, {
              topic,
              partition: 2,
              offset: 19n
            }]
            // Assigned out of order, as a HashSet iterates: asked, and so answered, in partition order.
            const opened = yield* Effect.promise(() => fetcher.open(consumer, options(topic, [2, 0, 1], { from })))
            assert.deepStrictEqual(Object.fromEntries(opened.starts), {
              [`${topic}:0`]: 3n,
              [`${topic}:1`]: 0n,
              [`${topic}:2`]: 19n
            })
            const records = yield* take(opened, 17 + 20 + 1)
            const partitions = records.map((record) => record.partition)
            assert.deepStrictEqual(partitions, [...partitions].sort(), "partition 0's records, then 1's, then 2's")
            const of = (partition: number) => records.filter((record) => record.partition === partition)
            assert.deepStrictEqual(values(of(0)), Array.from({ length: 17 }, (_, i) => `p0-${i + 3}`))
            assert.deepStrictEqual(values(of(1)), Array.from({ length: 20 }, (_, i) => `p1-${i}`))
            assert.deepStrictEqual(values(of(2)), ["p2-19"])
            for (const record of records) {
              const i = Number(record.offset)
              assert.strictEqual(record.topic, topic)
              assert.strictEqual(record.generation, 3)
              assert.strictEqual(record.key!.toString(), `k${i}`)
              assert.deepStrictEqual(record.headerEntries.map(([k, v]) => [k!.toString(), v!.toString()]), [[
                "h",
                `${i}`
              ]])
              assert.isAbove(Number(record.timestamp), 0)
            }
            yield* Effect.promise(() => opened.close())
          }))
      }),
    60_000
  )

  it.live(
    "starts at the group's committed offsets, and at autoOffsetReset where nothing is committed",
    () =>
      Effect.gen(function*() {
        const topic = yield* filledTopic(2, 10)
        const groupId = unique("group")
        yield* withConsumer(groupId, (consumer) =>
          Effect.gen(function*() {
            yield* Effect.promise(() => consumer.joinGroup({}))
            yield* Effect.promise(() =>
              consumer.commit({ offsets: [{ topic, partition: 0, offset: 6n, leaderEpoch: -1 }] })
            )
            const earliest = yield* Effect.promise(() => fetcher.open(consumer, options(topic, [0, 1])))
            assert.deepStrictEqual(Object.fromEntries(earliest.starts), { [`${topic}:0`]: 6n, [`${topic}:1`]: 0n })
            const records = yield* take(earliest, 4 + 10)
            assert.deepStrictEqual(values(records.filter((record) => record.partition === 0)), [
              "p0-6",
              "p0-7",
              "p0-8",
              "p0-9"
            ])
            yield* Effect.promise(() => earliest.close())
            const latest = yield* Effect.promise(() =>
              fetcher.open(consumer, options(topic, [0, 1], { autoOffsetReset: "latest" }))
            )
            assert.deepStrictEqual(Object.fromEntries(latest.starts), { [`${topic}:0`]: 6n, [`${topic}:1`]: 10n })
            yield* Effect.promise(() => latest.close())
          }))
      }),
    60_000
  )

  it.live(
    "an offset out of range starts again at autoOffsetReset: earliest reads the log, latest waits for what comes",
    () =>
      Effect.gen(function*() {
        const topic = yield* filledTopic(1, 5)
        yield* withConsumer(unique("group"), (consumer) =>
          Effect.gen(function*() {
            const from = [{ topic, partition: 0, offset: 1_000n }]
            const earliest = yield* Effect.promise(() => fetcher.open(consumer, options(topic, [0], { from })))
            assert.deepStrictEqual(values(yield* take(earliest, 5)), ["p0-0", "p0-1", "p0-2", "p0-3", "p0-4"])
            assert.strictEqual(earliest.starts.get(`${topic}:0`), 0n, "the start moves with the reset")
            yield* Effect.promise(() => earliest.close())

            const latest = yield* Effect.promise(() =>
              fetcher.open(consumer, options(topic, [0], { from, autoOffsetReset: "latest" }))
            )
            yield* Effect.sleep("500 millis")
            yield* Effect.promise(async () => {
              const producer = new Producer(client())
              await producer.send({ messages: [{ topic, partition: 0, value: Buffer.from("p0-5") }] })
              await producer.close()
            })
            assert.deepStrictEqual(values(yield* take(latest, 1)), ["p0-5"])
            assert.strictEqual(latest.starts.get(`${topic}:0`), 5n)
            yield* Effect.promise(() => latest.close())
          }))
      }),
    60_000
  )

  it.live(
    "hands out no record of an aborted transaction, and every record of a committed one and of plain sends",
    () =>
      Effect.gen(function*() {
        const topic = unique("fetcher-tx")
        yield* withAdmin((admin) => admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 }))
        yield* Effect.promise(async () => {
          const producer = new Producer({ ...client(), idempotent: true, transactionalId: unique("tx") })
          const plain = new Producer(client())
          const records = (names: ReadonlyArray<string>) =>
            names.map((name) => ({ topic, partition: 0, value: Buffer.from(name) }))
          try {
            await sendOnceReady(plain, records(["plain0"]))
            const aborted = await producer.beginTransaction()
            await aborted.send({ messages: records(["a1", "a2"]) })
            await plain.send({ messages: records(["plain1"]) })
            await aborted.send({ messages: records(["a3"]) })
            await aborted.abort()
            const committed = await producer.beginTransaction()
            await committed.send({ messages: records(["c1", "c2"]) })
            await committed.commit()
            await plain.send({ messages: records(["plain2"]) })
          } finally {
            await producer.close()
            await plain.close()
          }
        })
        yield* withConsumer(unique("group"), (consumer) =>
          Effect.gen(function*() {
            const opened = yield* Effect.promise(() => fetcher.open(consumer, options(topic, [0])))
            assert.deepStrictEqual(values(yield* take(opened, 5)), ["plain0", "plain1", "c1", "c2", "plain2"])
            const more = yield* Effect.timeoutOption(opened.next, "500 millis")
            assert.isTrue(more._tag === "None", "nothing else")
            yield* Effect.promise(() => opened.close())
          }))
      }),
    60_000
  )

  it.live(
    "nothing assigned reads nothing; a closed fetcher stops fetching and closes again harmlessly",
    () =>
      Effect.gen(function*() {
        const topic = yield* filledTopic(1, 3)
        yield* withConsumer(unique("group"), (consumer) =>
          Effect.gen(function*() {
            const idle = yield* Effect.promise(() => fetcher.open(consumer, options(topic, [])))
            assert.strictEqual(idle.starts.size, 0)
            const none = yield* Effect.timeoutOption(idle.next, "300 millis")
            assert.isTrue(none._tag === "None")
            yield* Effect.promise(() => idle.close())
            yield* Effect.promise(() => idle.close())
          }))
      }),
    60_000
  )
})

describe("aborted transactions in a fetch answer", () => {
  const batch = (firstOffset: bigint, count: number, producerId: bigint, kind: "plain" | "tx" | "abort" | "commit") =>
    ({
      firstOffset,
      lastOffsetDelta: count - 1,
      producerId,
      attributes: kind === "plain" ? 0 : kind === "tx" ? 0b1_0000 : 0b11_0000,
      records: kind === "abort" || kind === "commit"
        ? [{ key: Buffer.from([0, 0, 0, kind === "abort" ? 0 : 1]) }]
        : []
    }) as unknown as RecordsBatch

  it("skips a producer's batches from its aborted transaction's first offset to its abort marker, and nothing else", () => {
    const skip = abortedBatches([{ producerId: 8n, firstOffset: 9n }, { producerId: 7n, firstOffset: 0n }])
    const answer = [
      batch(0n, 2, 7n, "tx"), // aborted (7 from 0)
      batch(2n, 1, 5n, "plain"),
      batch(3n, 1, 9n, "tx"), // another producer's transaction, not aborted
      batch(4n, 1, 7n, "tx"), // still 7's aborted transaction
      batch(5n, 1, 7n, "abort"), // 7's abort marker: a control batch, not skipped here (dropped as control)
      batch(6n, 1, 7n, "tx"), // 7's next transaction, not listed
      batch(7n, 1, 7n, "commit"),
      batch(8n, 2, 8n, "tx") // 8's aborted transaction starts at 9, inside this batch
    ]
    assert.deepStrictEqual(answer.map(skip), [true, false, false, true, false, false, false, true])
  })
})
