/**
 * Hostile tests of the rewritten consume path (the consumer's own fetch loop,
 * `consumerMaxFetchSize` defaulting to 1 MiB), from the README and the public
 * API only: rebalances with members joining and leaving, where a group
 * resumes, offsets out of range, hostile bytes in compressed batches, many
 * partitions with compressed batches and a start mid-batch, interruption,
 * closing the layer while fetching, an unreachable and a restarted broker,
 * backpressure on a backlog, and `consumerMaxFetchSize` values.
 *
 * Every delivery test prints `[delivery] … sent=N received=N lost=N duplicated=N`
 * and asserts lost = 0.
 */
import { assert, describe, it } from "@effect/vitest"
import { Admin, ProduceAcks, Producer } from "@platformatic/kafka"
import {
  Cause,
  ConfigProvider,
  Effect,
  Exit,
  Fiber,
  HashSet,
  Layer,
  Logger,
  Metric,
  Schedule,
  Schema,
  Scope,
  Stream
} from "effect"
import { Agent, type Event, InvalidChannelOptionsError, KeyDecodeError, ValueDecodeError } from "effect-faust"
import { Kafka, KafkaError, Topic } from "effect-faust/kafka"
import { inspect } from "node:util"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { failureOf, quiet } from "../helpers.ts"
import { kafkaUp, killable, killBroker } from "./brokerControl.ts"
import { committedOffsets, eventually as eventuallyOrDie, eventuallyEffect } from "./delivery.ts"
import { logEnds, readRawRecords, withAdmin } from "./raw.ts"
import { bootstrapServers, brokerAvailable, kafkaLayer, unique } from "./setup.ts"

const utf8 = new TextEncoder()
const text = new TextDecoder()
const range = (count: number, from = 0) => Array.from({ length: count }, (_, i) => from + i)

/** Numbers as records of `topic`, each in partition `number % partitions`, its value the number as text. */
const numberRecords = (topic: string, numbers: ReadonlyArray<number>, partitions: number) =>
  numbers.map((n) => ({ topic, partition: n % partitions, key: null, value: utf8.encode(String(n)) }))

const bytesEqual = (a: unknown, b: Uint8Array | null): boolean =>
  b === null ? a === null : a instanceof Uint8Array && a.byteLength === b.byteLength && a.every((x, i) => x === b[i])

/**
 * Every delivery of every id, across members: where it came from
 * (partition/offset/generation) and who handled it.
 */
class Ledger {
  readonly sent = new Set<number>()
  readonly deliveries = new Map<number, Array<string>>()
  count = 0
  receive(id: number, event: Event.Event<unknown, unknown>, member = "") {
    this.count++
    const m = event.message
    const where = `${m.partition}/${m.offset}/g${m.generationId}${member === "" ? "" : `/${member}`}`
    const seen = this.deliveries.get(id)
    if (seen === undefined) this.deliveries.set(id, [where])
    else seen.push(where)
  }
  get complete(): boolean {
    for (const id of this.sent) if (!this.deliveries.has(id)) return false
    return true
  }
  missing(max = 5): Array<number> {
    const out: Array<number> = []
    for (const id of this.sent) {
      if (!this.deliveries.has(id)) out.push(id)
      if (out.length >= max) break
    }
    return out
  }
  report(test: string) {
    let lost = 0
    for (const id of this.sent) if (!this.deliveries.has(id)) lost++
    let duplicated = 0
    let sameGeneration = 0
    const examples: Array<string> = []
    for (const [id, places] of this.deliveries) {
      duplicated += places.length - 1
      // the same record (partition/offset) twice in the same generation, whoever handled it
      const records = places.map((p) => p.split("/").slice(0, 3).join("/"))
      const distinct = new Set(records).size
      if (distinct < records.length) {
        sameGeneration += records.length - distinct
        if (examples.length < 3) examples.push(`${id}@${places.join(",")}`)
      }
    }
    console.log(
      `[delivery] ${test}: sent=${this.sent.size} received=${this.deliveries.size} lost=${lost} duplicated=${duplicated}` +
        ` (same record in one generation: ${sameGeneration}${
          examples.length > 0 ? `, e.g. ${examples.join(" ")}` : ""
        })`
    )
    return { lost, duplicated, sameGeneration }
  }
}

/** Produces through the Kafka service of a layer of its own (compression chosen), in the given partitions. */
const produceRecords = (
  records: ReadonlyArray<{
    readonly topic: string
    readonly partition: number
    readonly key: Uint8Array | null
    readonly value: Uint8Array | null
    readonly rawHeaders?: ReadonlyArray<readonly [Uint8Array, Uint8Array | null]>
  }>,
  compression: Kafka.Compression = "none",
  create?: { readonly topic: string; readonly partitions: number }
) =>
  Effect.gen(function*() {
    const kafka = yield* Kafka.Kafka
    if (create !== undefined) {
      yield* kafka.createTopic({ topic: create.topic, partitions: create.partitions, replicas: 1, config: {} })
    }
    const timestamp = Date.now()
    return yield* kafka.produce(records.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      key: r.key,
      value: r.value,
      headers: [],
      ...(r.rawHeaders === undefined ? {} : { rawHeaders: r.rawHeaders }),
      timestamp
    })))
  }).pipe(Effect.provide(kafkaLayer({ compression, maxBatchSize: 5000, bufferMaxsize: 50_000 })))

/** Commits offsets for a group that has no member yet, as an operator's tool would. */
const setGroupOffsets = (groupId: string, topic: string, offsets: ReadonlyArray<readonly [number, number]>) =>
  withAdmin((admin) =>
    admin.alterConsumerGroupOffsets({
      groupId,
      topics: [{
        name: topic,
        partitionOffsets: offsets.map(([partition, offset]) => ({ partition, offset: BigInt(offset) }))
      }]
    })
  )

const gc: () => void = (globalThis as { gc?: () => void }).gc ?? (() => {
  v8.setFlagsFromString("--expose-gc")
  return vm.runInNewContext("gc") as () => void
})()

const MiB = 1024 * 1024
const restartLog: Array<string> = []

/** delivery.ts's `eventually`, its timeout a failure (so `Effect.ignore` can let a test go on to report). */
const eventually = (condition: () => boolean, millis?: number, what?: string, detail?: () => string) =>
  eventuallyOrDie(condition, millis, what, detail).pipe(Effect.catchDefect((defect) => Effect.fail(defect as Error)))

/**
 * A new member of `groupId` under `autoOffsetReset: "latest"`: once it is assigned the topic's
 * `partitions` partitions, `values` are produced (the i-th to partition i mod `partitions`). What it
 * received (waiting for as many as were produced, then 300 ms for any extra), and its stream's
 * exit if the stream ended.
 */
const readsAfterJoining = (name: string, groupId: string, partitions: number, values: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const late = yield* Topic.make({ topics: [name], value: Schema.Number, groupId })
    const received: Array<number> = []
    const fiber = yield* late.stream().pipe(
      Stream.runForEach((v) => Effect.sync(() => received.push(v))),
      Effect.forkChild
    )
    yield* eventually(
      () => (late.activePartitions === undefined ? 0 : HashSet.size(late.activePartitions)) === partitions,
      20_000,
      "assignment"
    )
    yield* Effect.sleep("1500 millis")
    yield* produceRecords(
      values.map((v, i) => ({ topic: name, partition: i % partitions, key: null, value: utf8.encode(String(v)) }))
    )
    yield* eventually(
      () => received.length >= values.length || fiber.pollUnsafe() !== undefined,
      20_000,
      "what was produced after joining"
    ).pipe(Effect.ignore)
    yield* Effect.sleep("300 millis")
    const polled = fiber.pollUnsafe()
    yield* Fiber.interrupt(fiber)
    return { received, polled }
  }).pipe(Effect.provide(kafkaLayer({ autoOffsetReset: "latest" })))

describe.skipIf(!brokerAvailable)("hostile: the consumer's fetch loop", () => {
  // -------------------------------------------------------------------------------------------
  // Rebalances
  // -------------------------------------------------------------------------------------------
  it.live(
    "rebalance: three Topic members of one group join and one leaves (interrupted with events buffered and in its handler) while 6 000 ids flow through 6 partitions: lost 0, duplicates only across generations",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-rebal")
        const groupId = unique("hf-rebal-group")
        const ledger = new Ledger()
        const producer = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 6 })
        yield* producer.declare
        const member = (label: string) =>
          Effect.gen(function*() {
            const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 6, groupId })
            return yield* topic.events().pipe(
              Stream.runForEach((event) =>
                Effect.andThen(
                  // a handler that takes a while now and then, so events are in it and buffered behind it
                  event.value % 50 === 0 ? Effect.sleep("20 millis") : Effect.yieldNow,
                  Effect.sync(() => ledger.receive(event.value, event, label))
                )
              ),
              Effect.forkChild
            )
          })
        const produceChunk = (from: number) =>
          Effect.gen(function*() {
            const ids = range(200, from)
            yield* producer.sendAll(ids)
            for (const id of ids) ledger.sent.add(id)
          })
        const a = yield* member("A")
        let next = 0
        const until = (n: number) =>
          Effect.gen(function*() {
            while (next < n) {
              yield* produceChunk(next)
              next += 200
              yield* Effect.sleep("30 millis")
            }
          })
        yield* until(1000)
        const b = yield* member("B")
        yield* until(2400)
        const c = yield* member("C")
        yield* until(4000)
        // B leaves while it holds events
        yield* eventually(() => ledger.count > 3000, 30_000, "3000 handled before B leaves")
        yield* Fiber.interrupt(b).pipe(Effect.timeout("15 seconds"))
        yield* until(6000)
        yield* eventually(() => ledger.complete, 60_000, "every id handled", () => `missing ${ledger.missing()}`)
          .pipe(Effect.ignore)
        const { lost, sameGeneration } = ledger.report("hf rebalance (3 members, one leaves)")
        for (const f of [a, c]) {
          assert.isUndefined(f.pollUnsafe(), "the remaining members still run")
        }
        assert.strictEqual(lost, 0, `lost; first missing ${ledger.missing()}`)
        assert.strictEqual(sameGeneration, 0, "a record handled twice within one generation")
        yield* Fiber.interrupt(a)
        yield* Fiber.interrupt(c)
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    90_000
  )

  // -------------------------------------------------------------------------------------------
  // Committed offsets
  // -------------------------------------------------------------------------------------------
  it.live(
    "resume: take(7) commits 7 and the next member starts at 7; under noack, acknowledging 7..11 but not 12 then 13..15 commits 12, and the next member starts at 12",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-resume")
        const groupId = unique("hf-resume-group")
        const producer = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 1 })
        yield* producer.sendAll(range(30))
        const first = yield* Topic.make({ topics: [name], value: Schema.Number, groupId })
        const seven = yield* first.stream().pipe(Stream.take(7), Stream.runCollect, Effect.timeout("20 seconds"))
        assert.deepStrictEqual(seven, range(7))
        yield* eventuallyEffect(Effect.map(committedOffsets(groupId, name), (o) => o.get(0) === 7), 5_000, "commit 7")
          .pipe(Effect.ignore)
        const committed1 = (yield* committedOffsets(groupId, name)).get(0)
        const second = yield* Topic.make({ topics: [name], value: Schema.Number, groupId })
        const acked: Array<number> = []
        const fiber = yield* Topic.noack(second).pipe(
          Stream.runForEach((event) =>
            Effect.gen(function*() {
              acked.push(event.message.offset)
              if (event.message.offset !== 12 && event.message.offset < 16) yield* Topic.ack(event)
            })
          ),
          Effect.forkChild
        )
        yield* eventually(() => acked.length >= 23, 20_000, "the second member reads 7..29")
        assert.strictEqual(acked[0], 7, `the second member starts at ${acked[0]} (committed ${committed1})`)
        // a commit lands within the interval
        yield* eventuallyEffect(Effect.map(committedOffsets(groupId, name), (o) => o.get(0) === 12), 5_000, "commit 12")
          .pipe(Effect.ignore)
        yield* Effect.sleep("300 millis")
        yield* Fiber.interrupt(fiber).pipe(Effect.timeout("10 seconds"))
        const committed2 = (yield* committedOffsets(groupId, name)).get(0)
        const third = yield* Topic.make({ topics: [name], value: Schema.Number, groupId })
        const rest = yield* third.stream().pipe(Stream.take(1), Stream.runCollect, Effect.timeout("20 seconds"))
        console.log(
          `[resume] committed after take(7): ${committed1}; after the noack run: ${committed2}; third starts at ${
            rest[0]
          }`
        )
        assert.strictEqual(committed1, 7)
        assert.strictEqual(committed2, 12)
        assert.deepStrictEqual(rest, [12])
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "autoOffsetReset for a fresh group: earliest reads the log from 0; latest skips what was there and reads exactly what comes after it joined",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-reset")
        yield* produceRecords(
          numberRecords(name, range(5), 2),
          "none",
          { topic: name, partitions: 2 }
        )
        const earliest = yield* Topic.make({ topics: [name], value: Schema.Number, groupId: unique("hf-early") })
        const all = yield* earliest.stream().pipe(Stream.take(5), Stream.runCollect, Effect.timeout("20 seconds"))
        assert.deepStrictEqual([...all].sort(), range(5))

        const got = (yield* readsAfterJoining(name, unique("hf-late"), 2, range(5, 5))).received
        console.log(`[reset] latest read ${inspect(got)}`)
        assert.deepStrictEqual([...got].sort(), range(5, 5))
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "a committed offset past the log end restarts at autoOffsetReset (earliest: from 0; latest: at the end), neither failing nor hanging",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-past-end")
        yield* produceRecords(
          numberRecords(name, range(10), 1),
          "none",
          { topic: name, partitions: 1 }
        )
        const g1 = unique("hf-past-end-e")
        yield* setGroupOffsets(g1, name, [[0, 1000]])
        const early = yield* Topic.make({ topics: [name], value: Schema.Number, groupId: g1 })
        const exit1 = yield* early.stream().pipe(
          Stream.take(10),
          Stream.runCollect,
          Effect.timeout("20 seconds"),
          Effect.exit
        )
        console.log(`[past end] earliest: ${Exit.isSuccess(exit1) ? inspect(exit1.value) : String(failureOf(exit1))}`)
        assert.isTrue(Exit.isSuccess(exit1), `earliest after an offset past the end: ${String(failureOf(exit1))}`)
        if (Exit.isSuccess(exit1)) assert.deepStrictEqual(exit1.value, range(10))
        yield* eventuallyEffect(Effect.map(committedOffsets(g1, name), (o) => o.get(0) === 10), 5_000, "commit 10")
          .pipe(Effect.ignore)
        const afterEarly = (yield* committedOffsets(g1, name)).get(0)
        assert.strictEqual(afterEarly, 10, "the group committed what it read, not the bogus offset")

        const g2 = unique("hf-past-end-l")
        yield* setGroupOffsets(g2, name, [[0, 1000]])
        const exit2 = yield* readsAfterJoining(name, g2, 1, [10])
        console.log(`[past end] latest: received ${inspect(exit2.received)}, stream ${inspect(exit2.polled)}`)
        assert.isUndefined(exit2.polled, "the stream did not end or fail")
        assert.deepStrictEqual(exit2.received, [10])
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "a committed offset before the log start (records deleted with deleteRecords) restarts at the log start under earliest, and at the end under latest",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-before-start")
        yield* produceRecords(
          numberRecords(name, range(10), 1),
          "none",
          { topic: name, partitions: 1 }
        )
        yield* withAdmin((admin) =>
          admin.deleteRecords({ topics: [{ name, partitions: [{ partition: 0, offset: 6n }] }] })
        )
        const g1 = unique("hf-before-e")
        yield* setGroupOffsets(g1, name, [[0, 2]])
        const early = yield* Topic.make({ topics: [name], value: Schema.Number, groupId: g1 })
        const exit1 = yield* early.events().pipe(
          Stream.take(4),
          Stream.runCollect,
          Effect.timeout("20 seconds"),
          Effect.exit
        )
        const offsets = Exit.isSuccess(exit1) ? exit1.value.map((e) => e.message.offset) : undefined
        console.log(`[before start] earliest: ${offsets === undefined ? String(failureOf(exit1)) : inspect(offsets)}`)
        assert.deepStrictEqual(offsets, [6, 7, 8, 9])

        const g2 = unique("hf-before-l")
        yield* setGroupOffsets(g2, name, [[0, 2]])
        const got = yield* readsAfterJoining(name, g2, 1, [10])
        console.log(`[before start] latest: ${inspect(got)}`)
        assert.isUndefined(got.polled)
        assert.deepStrictEqual(got.received, [10])
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )

  // -------------------------------------------------------------------------------------------
  // Hostile bytes, in one lz4 batch
  // -------------------------------------------------------------------------------------------
  const Id = Schema.Struct({ id: Schema.Number })
  type Case = {
    readonly key: Uint8Array | null
    readonly value: Uint8Array | null
    readonly rawHeaders: ReadonlyArray<readonly [Uint8Array, Uint8Array | null]>
    readonly good: boolean
  }
  const good = (i: number, key: Uint8Array | null, rawHeaders: Case["rawHeaders"] = []): Case => ({
    key,
    value: utf8.encode(JSON.stringify({ id: i })),
    rawHeaders,
    good: true
  })
  const hostileCases = (): Array<Case> => [
    good(0, null),
    { key: utf8.encode("k1"), value: null, rawHeaders: [[utf8.encode("h"), null]], good: false },
    good(2, utf8.encode("k2"), [[utf8.encode("nullv"), null], [utf8.encode("x"), utf8.encode("y")]]),
    {
      key: null,
      value: new Uint8Array(0),
      rawHeaders: [[new Uint8Array([0xff, 0xfe, 0x00]), utf8.encode("v")]],
      good: false
    },
    good(4, utf8.encode("k4"), [[new Uint8Array([0xc3, 0x28]), new Uint8Array([0x00, 0xff])]]),
    { key: utf8.encode("k5"), value: utf8.encode("{nope"), rawHeaders: [], good: false },
    good(6, new Uint8Array(0)),
    {
      key: utf8.encode("k7"),
      value: utf8.encode("\"a string\""),
      rawHeaders: [[utf8.encode("h"), new Uint8Array(0)]],
      good: false
    },
    good(8, utf8.encode("k8")),
    {
      key: new Uint8Array([0xff]),
      value: new Uint8Array([0xc3, 0x28, 0xa0, 0xa1]),
      rawHeaders: [[new Uint8Array([0x80]), null], [new Uint8Array([0x80]), null]],
      good: false
    },
    good(10, null)
  ]
  const badOffsets = [1, 3, 5, 7, 9]
  const goodIds = [0, 2, 4, 6, 8, 10]
  const produceHostile = (name: string, compression: Kafka.Compression) =>
    produceRecords(
      hostileCases().map((c) => ({ topic: name, partition: 0, key: c.key, value: c.value, rawHeaders: c.rawHeaders })),
      compression,
      { topic: name, partitions: 1 }
    )
  const hostileTopic = (name: string, onDecodeError: any) =>
    Topic.make({
      topics: [name],
      key: Schema.NullOr(Schema.String),
      value: Id,
      onDecodeError,
      groupId: unique("hf-bytes")
    })

  it.live(
    "hostile bytes in one lz4 batch, deadLetter: goods delivered in order, each bad record dead-lettered with its key, value (null stays null, empty stays empty) and headers byte for byte",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-bytes-dl")
        const deadName = unique("hf-bytes-dead")
        yield* produceHostile(name, "lz4")
        const dead = yield* Topic.make({ topics: [deadName], value: Schema.Unknown, partitions: 1 })
        yield* dead.declare
        const topic = yield* hostileTopic(name, { deadLetter: dead })
        const goods = yield* topic.stream().pipe(Stream.take(6), Stream.runCollect, Effect.timeout("30 seconds"))
        assert.deepStrictEqual(goods.map((g) => g.id), goodIds)
        const letters = yield* readRawRecords(deadName, badOffsets.length)
        const cases = hostileCases()
        const problems: Array<string> = []
        letters.forEach((letter, i) => {
          const c = cases[badOffsets[i]]
          if (!bytesEqual(letter.key, c.key)) {
            problems.push(`letter ${i}: key ${inspect(letter.key)} for ${inspect(c.key)}`)
          }
          if (!bytesEqual(letter.value, c.value)) {
            problems.push(`letter ${i}: value ${inspect(letter.value)} for ${inspect(c.value)}`)
          }
          c.rawHeaders.forEach(([n, v], j) => {
            const got = letter.headers[j]
            if (got === undefined || !bytesEqual(got[0], n) || !bytesEqual(got[1], v)) {
              problems.push(`letter ${i}: header ${j} ${inspect(got)}, sent ${inspect([n, v])}`)
            }
          })
          const named = new Map(letter.headers.map(([n, v]) => [text.decode(n), v === null ? null : text.decode(v)]))
          if (named.get("x-source-offset") !== String(badOffsets[i])) {
            problems.push(`letter ${i}: x-source-offset ${named.get("x-source-offset")}`)
          }
          for (const h of ["x-decode-error", "x-decode-error-message", "x-source-channel", "x-source-topic"]) {
            if (!named.has(h)) problems.push(`letter ${i}: no ${h}`)
          }
        })
        if (letters.length !== badOffsets.length) problems.push(`${letters.length} letters`)
        console.log(
          `[bytes dl] ${problems.length} problems${problems.length > 0 ? `: ${problems.slice(0, 6).join("; ")}` : ""}`
        )
        assert.deepStrictEqual(problems, [])
        assert.strictEqual(topic.decodeErrorCounts.deadLettered, badOffsets.length)
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "hostile bytes in one gzip batch, skip: the goods only, in order, five counted skipped, and the commit reaches the end",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-bytes-skip")
        yield* produceHostile(name, "gzip")
        const topic = yield* hostileTopic(name, "skip")
        const goods = yield* topic.events().pipe(Stream.take(6), Stream.runCollect, Effect.timeout("30 seconds"))
        assert.deepStrictEqual(goods.map((g) => g.value.id), goodIds)
        assert.deepStrictEqual(goods.map((g) => g.key), [null, "k2", "k4", "", "k8", null])
        assert.strictEqual(topic.decodeErrorCounts.skipped, 5)
        yield* Effect.sleep("500 millis")
        const committed = (yield* committedOffsets(topic.groupId, name)).get(0)
        assert.strictEqual(committed, 11)
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "hostile bytes in one snappy batch, fail: each bad record fails one stream in order with a typed error carrying its offset and bytes; the goods are each read once; lost 0",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-bytes-fail")
        yield* produceHostile(name, "snappy")
        const topic = yield* hostileTopic(name, "fail")
        const ledger = new Ledger()
        for (const id of goodIds) ledger.sent.add(id)
        const failures: Array<string> = []
        for (let run = 0; run < 8 && !ledger.complete; run++) {
          const exit = yield* topic.events().pipe(
            Stream.takeUntil((e) => e.value.id === 10),
            Stream.runForEach((e) => Effect.sync(() => ledger.receive(e.value.id, e))),
            Effect.timeout("20 seconds"),
            Effect.exit
          )
          if (Exit.isFailure(exit)) {
            const error = failureOf(exit)
            if (error instanceof KeyDecodeError || error instanceof ValueDecodeError) {
              const r = error.received as { offset: number; value: unknown }
              const c = hostileCases()[r.offset]
              const valueOk = c.value === null
                ? r.value === null || (r.value instanceof Uint8Array && r.value.byteLength === 0)
                : bytesEqual(r.value, c.value)
              failures.push(`${error._tag}@${r.offset}${valueOk ? "" : " (bytes differ)"}`)
            } else {
              failures.push(`other: ${String(error)}`)
            }
          }
        }
        console.log(`[bytes fail] failures ${inspect(failures)}`)
        const { lost, duplicated } = ledger.report("hf hostile bytes, fail policy")
        assert.strictEqual(lost, 0)
        assert.strictEqual(duplicated, 0)
        // offset 9 has a key that is not UTF-8 as well: the key is decoded first
        assert.deepStrictEqual(failures, [1, 3, 5, 7].map((o) => `ValueDecodeError@${o}`).concat("KeyDecodeError@9"))
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )

  // -------------------------------------------------------------------------------------------
  // 12 partitions, uneven, compressed big batches, started mid-batch
  // -------------------------------------------------------------------------------------------
  const COUNTS = [0, 1, 7, 1500, 2200, 3, 0, 999, 2600, 10, 64, 1000]
  const cases: ReadonlyArray<readonly [Kafka.Compression, number | undefined]> = [
    ["gzip", undefined],
    ["lz4", 100],
    ["zstd", 1],
    ["snappy", 5000]
  ]
  for (const [compression, maxFetch] of cases) {
    it.live(
      `12 partitions, uneven, ${compression} batches of up to 1000, consumerMaxFetchSize ${
        maxFetch ?? "default"
      }, a group committed mid-batch: nothing before the commit, everything after, once, in order`,
      () =>
        Effect.gen(function*() {
          const name = unique(`hf-12-${compression}`)
          const records = COUNTS.flatMap((count, partition) =>
            range(count).map((i) => ({
              topic: name,
              partition,
              key: utf8.encode(`k${i % 17}`),
              value: utf8.encode(JSON.stringify(partition * 100_000 + i))
            }))
          )
          yield* produceRecords(records, compression, { topic: name, partitions: 12 })
          const ends = yield* logEnds(name, 12)
          assert.deepStrictEqual(ends, COUNTS)
          const groupId = unique("hf-12-group")
          // mid-batch: 1000-record batches, so e.g. 1500 → 737 sits in the first batch
          const starts = COUNTS.map((count) => count < 2 ? 0 : Math.floor(count * 0.49) + 2)
          yield* setGroupOffsets(groupId, name, starts.map((s, p) => [p, s] as const))
          const ledger = new Ledger()
          const expected = new Map<number, number>()
          COUNTS.forEach((count, p) => {
            for (let i = starts[p]; i < count; i++) {
              ledger.sent.add(p * 100_000 + i)
              expected.set(p * 100_000 + i, i)
            }
          })
          const problems: Array<string> = []
          const lastOffset = new Map<number, number>()
          const consume = Effect.gen(function*() {
            const topic = yield* Topic.make({ topics: [name], value: Schema.Number, groupId })
            const fiber = yield* topic.events().pipe(
              Stream.runForEach((e) =>
                Effect.sync(() => {
                  const m = e.message
                  const p = Math.floor(e.value / 100_000)
                  if (p !== m.partition || e.value % 100_000 !== m.offset) {
                    if (problems.length < 10) problems.push(`value ${e.value} at ${m.partition}/${m.offset}`)
                  }
                  if (m.offset < starts[m.partition] && problems.length < 10) {
                    problems.push(`offset ${m.partition}/${m.offset} before the commit ${starts[m.partition]}`)
                  }
                  const last = lastOffset.get(m.partition)
                  if (last !== undefined && m.offset !== last + 1 && problems.length < 10) {
                    problems.push(`partition ${m.partition}: ${m.offset} after ${last}`)
                  }
                  lastOffset.set(m.partition, m.offset)
                  ledger.receive(e.value, e)
                })
              ),
              Effect.forkChild
            )
            yield* eventually(() => ledger.complete || fiber.pollUnsafe() !== undefined, 60_000, "everything").pipe(
              Effect.ignore
            )
            yield* Effect.sleep("300 millis")
            const polled = fiber.pollUnsafe()
            yield* Fiber.interrupt(fiber)
            return polled
          }).pipe(
            Effect.provide(kafkaLayer(maxFetch === undefined ? {} : { consumerMaxFetchSize: maxFetch }))
          )
          const polled = yield* consume
          const { duplicated, lost } = ledger.report(`hf 12 partitions ${compression} fetch ${maxFetch ?? "default"}`)
          console.log(`[12p ${compression}] problems: ${inspect(problems)}; stream ${inspect(polled)}`)
          assert.isUndefined(polled, "the stream ended or failed")
          assert.deepStrictEqual(problems, [])
          assert.strictEqual(lost, 0, `missing ${ledger.missing()}`)
          assert.strictEqual(duplicated, 0)
          assert.strictEqual(ledger.count, expected.size)
        }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
      90_000
    )
  }

  // -------------------------------------------------------------------------------------------
  // consumerMaxFetchSize
  // -------------------------------------------------------------------------------------------
  it.live(
    "consumerMaxFetchSize: 0, -1, 1.5, NaN, Infinity, a string fail typed naming the option; so does KAFKA_CONSUMER_MAX_FETCH_SIZE=-5; 2^31 (past int32) is refused or works, never a defect or a hang",
    () =>
      Effect.gen(function*() {
        const outcomes: Array<string> = []
        for (const value of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "1 MiB" as any, null as any]) {
          const exit = yield* Layer.build(kafkaLayer({ consumerMaxFetchSize: value })).pipe(Effect.scoped, Effect.exit)
          const error = failureOf(exit)
          outcomes.push(
            `${String(value)}: ${
              error instanceof InvalidChannelOptionsError ? `typed (${error.option})` : String(error)
            }`
          )
          assert.instanceOf(error, InvalidChannelOptionsError, `consumerMaxFetchSize ${String(value)}`)
          assert.include((error as InvalidChannelOptionsError).option, "consumerMaxFetchSize")
        }
        const fromEnv = yield* Layer.build(Kafka.layerConfig()).pipe(
          Effect.scoped,
          Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({
            env: { KAFKA_BOOTSTRAP_SERVERS: bootstrapServers, KAFKA_CONSUMER_MAX_FETCH_SIZE: "-5" }
          }))),
          Effect.provide(kafkaLayer()),
          Effect.exit
        )
        outcomes.push(`env -5: ${String(failureOf(fromEnv))}`)
        assert.isTrue(Exit.isFailure(fromEnv), "KAFKA_CONSUMER_MAX_FETCH_SIZE=-5 accepted")

        console.log(`[maxFetch] ${outcomes.join(" | ")}`)
      }).pipe(Effect.provide(quiet)),
    60_000
  )

  for (
    const [label, maxFetch, partitions] of [
      ["2^31 (past int32), 1 partition", 2 ** 31, 1],
      ["2^31 - 1 (int32 max), 1 partition", 2 ** 31 - 1, 1],
      ["1e9 (1 GB), 4 partitions", 1e9, 4]
    ] as const
  ) {
    it.live(
      `consumerMaxFetchSize ${label}: refused with InvalidChannelOptionsError, or a stream that reads; never a stream that fails every fetch`,
      () =>
        Effect.gen(function*() {
          const name = unique("hf-big-fetch")
          const exit = yield* Effect.gen(function*() {
            const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions })
            yield* topic.sendAll(range(8))
            return yield* topic.stream().pipe(Stream.take(8), Stream.runCollect, Effect.timeout("15 seconds"))
          }).pipe(Effect.provide(kafkaLayer({ consumerMaxFetchSize: maxFetch })), Effect.exit)
          const error = failureOf(exit)
          console.log(
            `[maxFetch ${label}] ${Exit.isSuccess(exit) ? `read ${inspect(exit.value)}` : String(error)}${
              error instanceof KafkaError
                ? `; cause: ${
                  inspect((error.cause as { errors?: unknown }).errors ?? error.cause, { depth: 4 }).slice(0, 1500)
                }`
                : ""
            }`
          )
          assert.isTrue(Exit.isSuccess(exit) || error instanceof InvalidChannelOptionsError, String(error))
        }).pipe(Effect.provide(quiet)),
      30_000
    )
  }

  for (const maxFetch of [1, 100]) {
    it.live(
      `consumerMaxFetchSize ${maxFetch} with 20 KiB records over 3 partitions (uncompressed and gzip): every record read, in order`,
      () =>
        Effect.gen(function*() {
          const name = unique(`hf-tiny-${maxFetch}`)
          const pad = "x".repeat(20 * 1024)
          const records = range(60).map((i) => ({
            topic: name,
            partition: i % 3,
            key: null,
            value: utf8.encode(JSON.stringify({ id: i, pad }))
          }))
          yield* produceRecords(records.slice(0, 30), "none", { topic: name, partitions: 3 })
          yield* produceRecords(records.slice(30), "gzip")
          const ledger = new Ledger()
          for (const i of range(60)) ledger.sent.add(i)
          yield* Effect.gen(function*() {
            const topic = yield* Topic.make({
              topics: [name],
              value: Schema.Struct({ id: Schema.Number, pad: Schema.String }),
              groupId: unique("hf-tiny")
            })
            yield* topic.events().pipe(
              Stream.take(60),
              Stream.runForEach((e) => Effect.sync(() => ledger.receive(e.value.id, e))),
              Effect.timeout("30 seconds"),
              Effect.ignore
            )
          }).pipe(Effect.provide(kafkaLayer({ consumerMaxFetchSize: maxFetch })))
          const { duplicated, lost } = ledger.report(`hf consumerMaxFetchSize ${maxFetch}`)
          assert.strictEqual(lost, 0)
          assert.strictEqual(duplicated, 0)
        }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
      60_000
    )
  }

  // -------------------------------------------------------------------------------------------
  // Interruption and closing
  // -------------------------------------------------------------------------------------------
  it.live(
    "interruption mid-fan-out: of two streams of one topic value, the slow one is interrupted with events buffered, the other reads on; then both stop and a new member reads on: lost 0",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-fanout")
        const groupId = unique("hf-fanout-group")
        const producer = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 4 })
        const ids = range(3000)
        yield* producer.sendAll(ids)
        const fast = new Ledger()
        const restarted = new Ledger()
        for (const id of ids) {
          fast.sent.add(id)
          restarted.sent.add(id)
        }
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number, groupId })
        let slowCount = 0
        const slow = yield* topic.events().pipe(
          Stream.runForEach(() => Effect.andThen(Effect.sleep("2 millis"), Effect.sync(() => slowCount++))),
          Effect.forkChild
        )
        const fastFiber = yield* topic.events().pipe(
          Stream.runForEach((e) =>
            Effect.andThen(
              e.value % 10 === 0 ? Effect.sleep("1 millis") : Effect.void,
              Effect.sync(() => fast.receive(e.value, e, "fast"))
            )
          ),
          Effect.forkChild
        )
        yield* eventually(() => slowCount >= 100, 20_000, "the slow one read 100")
        const t0 = Date.now()
        yield* Fiber.interrupt(slow).pipe(Effect.timeout("10 seconds"))
        const interruptMs = Date.now() - t0
        yield* eventually(() => fast.complete || fastFiber.pollUnsafe() !== undefined, 30_000, "the fast one reads all")
          .pipe(Effect.ignore)
        const fastCounts = fast.report("hf fan-out: the stream left running after the other was interrupted")
        // both stop now, mid-stream: send more, interrupt while the fast one is busy
        const more = range(3000, 3000)
        let handledAfter = 0
        const fast2 = yield* topic.events().pipe(
          Stream.runForEach((e) =>
            Effect.andThen(
              Effect.sleep("1 millis"),
              Effect.sync(() => {
                handledAfter++
                restarted.receive(e.value, e, "before")
              })
            )
          ),
          Effect.forkChild
        )
        yield* Fiber.interrupt(fastFiber)
        yield* producer.sendAll(more)
        for (const id of more) restarted.sent.add(id)
        yield* eventually(() => handledAfter >= 200, 20_000, "200 more handled").pipe(Effect.ignore)
        yield* Fiber.interrupt(fast2).pipe(Effect.timeout("10 seconds"))
        // everything handled by `fast` counts for the restarted ledger too
        for (const [id, places] of fast.deliveries) {
          for (const p of places) restarted.deliveries.set(id, [...(restarted.deliveries.get(id) ?? []), p])
        }
        const next = yield* Topic.make({ topics: [name], value: Schema.Number, groupId })
        const nextFiber = yield* next.events().pipe(
          Stream.runForEach((e) => Effect.sync(() => restarted.receive(e.value, e, "restarted"))),
          Effect.forkChild
        )
        yield* eventually(() => restarted.complete, 30_000, "all 6000").pipe(Effect.ignore)
        yield* Fiber.interrupt(nextFiber)
        const all = restarted.report("hf fan-out: after stopping and restarting")
        console.log(`[fan-out] slow interrupted in ${interruptMs} ms after ${slowCount} handled`)
        assert.isBelow(interruptMs, 5000)
        assert.strictEqual(fastCounts.lost, 0, `the running stream lost ${fast.missing()}`)
        assert.strictEqual(all.lost, 0, `missing ${restarted.missing()}`)
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    90_000
  )

  it.live(
    "an Agent (concurrency 4, 4 partitions) interrupted with events in flight, then a new agent in the group: lost 0",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-agent")
        const groupId = unique("hf-agent-group")
        const producer = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 4 })
        const ledger = new Ledger()
        const ids = range(4000)
        yield* producer.sendAll(ids)
        for (const id of ids) ledger.sent.add(id)
        const first = yield* Topic.make({ topics: [name], value: Schema.Number, groupId })
        const a1 = yield* Agent.forEach(
          "hf-agent-1",
          first,
          (v, e) => Effect.andThen(Effect.sleep("2 millis"), Effect.sync(() => ledger.receive(v, e, "a1"))),
          { concurrency: 4, shutdownTimeout: "1 second" }
        )
        const f1 = yield* Effect.forkChild(a1.run)
        yield* eventually(() => ledger.count >= 800, 30_000, "800 handled")
        const t0 = Date.now()
        yield* Fiber.interrupt(f1).pipe(Effect.timeout("15 seconds"))
        const stopMs = Date.now() - t0
        const second = yield* Topic.make({ topics: [name], value: Schema.Number, groupId })
        const a2 = yield* Agent.forEach("hf-agent-2", second, (v, e) => Effect.sync(() => ledger.receive(v, e, "a2")), {
          concurrency: 4
        })
        const f2 = yield* Effect.forkChild(a2.run)
        yield* eventually(() => ledger.complete, 30_000, "all").pipe(Effect.ignore)
        yield* Fiber.interrupt(f2)
        const { lost } = ledger.report("hf agent interrupted mid-run, then restarted")
        console.log(`[agent] first agent stopped in ${stopMs} ms`)
        assert.strictEqual(lost, 0, `missing ${ledger.missing()}`)
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "closing the Kafka layer while its stream fetches a backlog: the close returns, the stream does not hang, and a new layer in the group reads on: lost 0",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-close")
        const groupId = unique("hf-close-group")
        const ledger = new Ledger()
        const ids = range(20_000)
        yield* Effect.gen(function*() {
          const producer = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 3 })
          yield* producer.sendAll(ids)
        }).pipe(Effect.provide(kafkaLayer()))
        for (const id of ids) ledger.sent.add(id)
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(kafkaLayer(), scope)
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number, groupId }).pipe(
          Effect.provideContext(context)
        )
        const fiber = yield* topic.events().pipe(
          Stream.runForEach((e) =>
            Effect.andThen(
              e.value % 100 === 0 ? Effect.sleep("1 millis") : Effect.void,
              Effect.sync(() => ledger.receive(e.value, e, "first"))
            )
          ),
          Effect.forkDetach
        )
        yield* eventually(() => ledger.count >= 2000, 30_000, "2000 read")
        const t0 = Date.now()
        const closed = yield* Scope.close(scope, Exit.void).pipe(Effect.timeout("20 seconds"), Effect.exit)
        const closeMs = Date.now() - t0
        const ended = yield* Fiber.await(fiber).pipe(Effect.timeout("20 seconds"), Effect.exit)
        const endMs = Date.now() - t0
        console.log(
          `[close] layer closed in ${closeMs} ms (${
            Exit.isSuccess(closed) ? "ok" : String(failureOf(closed))
          }); stream ended after ${endMs} ms: ${
            Exit.isSuccess(ended)
              ? inspect(ended.value._tag) + " " +
                String(Exit.isFailure(ended.value) ? Cause.squash(ended.value.cause) : "")
              : "still running"
          }`
        )
        if (Exit.isFailure(ended)) yield* Fiber.interrupt(fiber).pipe(Effect.timeout("5 seconds"), Effect.ignore)
        // README: "A stream started after its Kafka layer closed fails with a KafkaError saying so."
        const late = yield* topic.stream().pipe(
          Stream.take(1),
          Stream.runCollect,
          Effect.timeout("10 seconds"),
          Effect.exit
        )
        console.log(
          `[close] a stream started after the close: ${
            Exit.isSuccess(late) ? inspect(late.value) : String(failureOf(late))
          }`
        )
        assert.instanceOf(failureOf(late), KafkaError, "a stream started after the close")
        const handledFirst = ledger.count
        yield* Effect.gen(function*() {
          const next = yield* Topic.make({ topics: [name], value: Schema.Number, groupId })
          const f = yield* next.events().pipe(
            Stream.runForEach((e) => Effect.sync(() => ledger.receive(e.value, e, "second"))),
            Effect.forkChild
          )
          yield* eventually(() => ledger.complete, 30_000, "all").pipe(Effect.ignore)
          yield* Fiber.interrupt(f)
        }).pipe(Effect.provide(kafkaLayer()))
        const { lost } = ledger.report("hf Kafka layer closed while fetching, then a new layer")
        console.log(`[close] first layer handled ${handledFirst}`)
        assert.isTrue(Exit.isSuccess(closed), "the layer's close returned")
        assert.isTrue(Exit.isSuccess(ended), "the stream ended after its layer closed")
        assert.strictEqual(lost, 0, `missing ${ledger.missing()}`)
      }).pipe(Effect.provide(quiet)),
    90_000
  )

  it.live(
    "partitions added while reading under autoOffsetReset latest: records written to them right away are read (lost 0)",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-grow")
        const ledger = new Ledger()
        yield* produceRecords([{ topic: name, partition: 0, key: null, value: utf8.encode("-1") }], "none", {
          topic: name,
          partitions: 2
        })
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number, groupId: unique("hf-grow-group") })
        const fiber = yield* topic.events().pipe(
          Stream.runForEach((e) => Effect.sync(() => ledger.receive(e.value, e))),
          Effect.forkChild
        )
        yield* eventually(
          () => (topic.activePartitions === undefined ? 0 : HashSet.size(topic.activePartitions)) === 2,
          20_000,
          "assignment"
        )
        yield* Effect.sleep("1 second")
        yield* produceRecords(
          numberRecords(name, range(20), 2)
        )
        yield* withAdmin((admin) => admin.createPartitions({ topics: [{ name, count: 5 }] }))
        // at once, before the member noticed them
        yield* produceRecords(
          numberRecords(name, range(60, 20), 5)
        ).pipe(Effect.retry(Schedule.spaced("300 millis")), Effect.timeout("20 seconds"))
        for (const i of range(80)) ledger.sent.add(i)
        yield* eventually(() => ledger.complete, 30_000, "all 80").pipe(Effect.ignore)
        yield* Fiber.interrupt(fiber)
        const { lost } = ledger.report("hf partitions added while reading (latest)")
        assert.strictEqual(lost, 0, `missing ${ledger.missing(10)}`)
        assert.isFalse(ledger.deliveries.has(-1), "the record from before joining was read under latest")
      }).pipe(
        Effect.provide(kafkaLayer({ autoOffsetReset: "latest", commitInterval: "1 second" })),
        Effect.provide(quiet)
      ),
    60_000
  )

  it.live(
    "records (2 KiB each) deleted ahead of a running, slow consumer (its position falls before the log start mid-stream): it goes on from the new log start, neither failing nor hanging",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-deleted")
        yield* produceRecords(
          range(3000).map((i) => ({
            topic: name,
            partition: 0,
            key: null,
            value: utf8.encode(String(i) + " ".repeat(2000))
          })),
          "none",
          { topic: name, partitions: 1 }
        )
        const topic = yield* Topic.make({
          topics: [name],
          value: Schema.Number,
          groupId: unique("hf-deleted-group"),
          label: unique("hf-deleted-label")
        })
        yield* topic.registerMetrics
        const deliveredNow = Effect.map(Metric.snapshot, (snapshots) => {
          const found = snapshots.find((x) =>
            x.id === "effect_faust_delivered_total" && x.attributes?.channel === topic.label
          )
          return found === undefined ? -1 : Number((found.state as { count: number | bigint }).count)
        })
        const received: Array<number> = []
        const fiber = yield* topic.events().pipe(
          Stream.runForEach((e) =>
            Effect.andThen(Effect.sleep("2 millis"), Effect.sync(() => received.push(e.message.offset)))
          ),
          Effect.forkChild
        )
        yield* eventually(() => received.length >= 50, 20_000, "50 read")
        const deliveredAtDelete = yield* deliveredNow
        const handledAtDelete = received.length
        const lowWatermark = yield* withAdmin((admin) =>
          admin.deleteRecords({ topics: [{ name, partitions: [{ partition: 0, offset: 2500n }] }] })
        )
        console.log(
          `[deleted] at the deletion: handled ${handledAtDelete}, delivered (decoded, handed out) ${deliveredAtDelete}; low watermark now ${
            inspect(lowWatermark, { depth: 4 })
          }`
        )
        yield* produceRecords(
          range(100, 3000).map((i) => ({
            topic: name,
            partition: 0,
            key: null,
            value: utf8.encode(String(i) + " ".repeat(2000))
          }))
        )
        yield* eventually(() => received.includes(3099) || fiber.pollUnsafe() !== undefined, 40_000, "offset 3099")
          .pipe(Effect.ignore)
        const polled = fiber.pollUnsafe()
        yield* Fiber.interrupt(fiber)
        const after = received.filter((o) => o >= 2500)
        const out = received.filter((o, i) => i > 0 && o <= received[i - 1])
        console.log(
          `[deleted] read ${received.length}: first ${received[0]}, then up to ${
            received.filter((o) => o < 2500).at(-1)
          } before the deleted range; ${after.length} from 2500 (expected 600); out of order ${out.length}; stream ${
            polled === undefined ? "running" : inspect(polled)
          }`
        )
        assert.isUndefined(polled, "the stream ended or failed")
        assert.strictEqual(after.length, 600, "every record from the new log start read once")
        assert.strictEqual(out.length, 0)
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )

  for (const [RECORDS, RECORD] of [[8000, 2048], [2500, 16_384]] as const) {
    it.live(
      `read-ahead of one partition (${RECORDS} records of ${RECORD} B) behind a slow stream, measured by deleting the log ahead of it: what was fetched before the deletion stays within the subscriber's queue and run and about two 1 MiB fetches (README: the fetch size is most of what a consumer holds); the stream then goes on from the new log start`,
      () =>
        Effect.gen(function*() {
          const name = unique("hf-ahead")
          // batches of ~200 KiB, well under the fetch size, produced by the raw client
          yield* Effect.promise(async () => {
            const options = { clientId: unique("hf-ahead-producer"), bootstrapBrokers: [bootstrapServers] }
            const admin = new Admin(options)
            try {
              await admin.createTopics({ topics: [name], partitions: 1, replicas: 1 })
            } finally {
              await admin.close()
            }
            const producer = new Producer(options)
            try {
              const per = Math.floor(200 * 1024 / RECORD)
              for (let from = 0; from < RECORDS; from += per) {
                const messages = range(Math.min(per, RECORDS - from), from).map((i) => ({
                  topic: name,
                  partition: 0,
                  value: Buffer.from(String(i).padEnd(RECORD, " "))
                }))
                // a topic just created may not have its leader yet
                for (let attempt = 0;; attempt++) {
                  try {
                    await producer.send({ acks: ProduceAcks.LEADER, messages })
                    break
                  } catch (error) {
                    if (attempt >= 20) throw error
                    await new Promise((resolve) => setTimeout(resolve, 250))
                  }
                }
              }
            } finally {
              await producer.close()
            }
          })
          const topic = yield* Topic.make({
            topics: [name],
            value: Schema.Number,
            groupId: unique("hf-ahead-group"),
            label: unique("hf-ahead-label")
          })
          yield* topic.registerMetrics
          gc()
          const baseline = process.memoryUsage()
          const received: Array<number> = []
          let slow = true
          const fiber = yield* topic.events().pipe(
            Stream.runForEach((e) =>
              Effect.andThen(
                slow ? Effect.sleep("5 millis") : Effect.void,
                Effect.sync(() => received.push(e.message.offset))
              )
            ),
            Effect.forkChild
          )
          yield* eventually(() => received.length >= 20, 20_000, "20 read")
          // let the fetcher fill whatever it fills behind the slow stream
          yield* Effect.sleep("2 seconds")
          gc()
          const atDelete = process.memoryUsage()
          const growth = (atDelete.heapUsed + atDelete.arrayBuffers - baseline.heapUsed - baseline.arrayBuffers) / MiB
          const deliveredAtDelete = yield* Effect.map(Metric.snapshot, (snapshots) => {
            const found = snapshots.find((x) =>
              x.id === "effect_faust_delivered_total" && x.attributes?.channel === topic.label
            )
            return found === undefined ? -1 : Number((found.state as { count: number | bigint }).count)
          })
          // What is handled from here on and lies below the deletion was held when it was counted, or
          // fetched while the delete request was on its way: the admin is connected and knows the
          // leader first, so that window is one request, not a connection (under load, a cold admin
          // let the slow stream free, and the fetcher refill, a few hundred KiB more).
          const handledAtDelete = yield* withAdmin(async (admin) => {
            await admin.metadata({ topics: [name] })
            const handled = received.length
            await admin.deleteRecords({
              topics: [{ name, partitions: [{ partition: 0, offset: BigInt(RECORDS - 1) }] }]
            })
            return handled
          })
          slow = false
          yield* eventually(
            () => received.includes(RECORDS - 1) || fiber.pollUnsafe() !== undefined,
            30_000,
            "the last"
          )
            .pipe(Effect.ignore)
          const polled = fiber.pollUnsafe()
          yield* Fiber.interrupt(fiber)
          // every offset below the deletion read after it was fetched before it
          const fetchedAhead = received.slice(handledAtDelete).filter((o) => o < RECORDS - 1).length
          const bytesAhead = fetchedAhead * RECORD
          console.log(
            `[read-ahead] live heap + array buffers grew ${
              growth.toFixed(1)
            } MiB; handled ${handledAtDelete} (topic delivered ${deliveredAtDelete}) when the log was deleted up to ${
              RECORDS - 1
            }; then read ${fetchedAhead} deleted records (${
              (bytesAhead / MiB).toFixed(1)
            } MiB of values) that had been fetched before the deletion; last read ${received.at(-1)}; stream ${
              polled === undefined ? "running" : `failed: ${String(failureOf(polled))}`
            }`
          )
          // The subscriber's side: its queue (64) and the run it took from it, which the stream
          // hands out one at a time while the queue fills again (up to 64 more). The fetcher's: under
          // 1 MiB waiting when it asks again, and an answer of up to 1 MiB. Then slack.
          assert.isAtMost(bytesAhead, 2 * 64 * RECORD + 2 * MiB + 256 * 1024, "fetched ahead of the slow stream")
          assert.isUndefined(
            polled,
            `the stream failed when its position fell before the log start: ${
              polled === undefined ? "" : String(failureOf(polled))
            }`
          )
        }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
      60_000
    )
  }

  // -------------------------------------------------------------------------------------------
  // Unreachable and restarted broker
  // -------------------------------------------------------------------------------------------
  it.live(
    "a broker down when consuming starts: the stream fails with a KafkaError naming the address, within the retries, no hang",
    () =>
      Effect.gen(function*() {
        const address = "127.0.0.1:1"
        const t0 = Date.now()
        const exit = yield* Effect.gen(function*() {
          const topic = yield* Topic.make({ topics: [unique("hf-down")], value: Schema.Number })
          return yield* topic.stream().pipe(Stream.take(1), Stream.runCollect)
        }).pipe(
          Effect.provide(kafkaLayer({
            bootstrapServers: address,
            topicAllowDeclare: false,
            retries: 2,
            retryDelay: "100 millis",
            connectTimeout: "1 second",
            requestTimeout: "2 seconds"
          })),
          Effect.timeout("40 seconds"),
          Effect.exit
        )
        const error = failureOf(exit)
        console.log(`[down] after ${Date.now() - t0} ms: ${String(error)}`)
        assert.instanceOf(error, KafkaError)
        assert.include((error as KafkaError).message, address)
      }).pipe(Effect.provide(quiet)),
    60_000
  )

  it.live.skipIf(!killable)(
    "the broker killed and restarted mid-consume (the stream restarted with Effect.retry): lost 0, and nothing committed before the kill read again",
    () =>
      Effect.gen(function*() {
        restartLog.length = 0
        const name = unique("hf-restart")
        const groupId = unique("hf-restart-group")
        const ledger = new Ledger()
        const producer = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 3 })
        yield* producer.sendAll(range(3000))
        for (const id of range(3000)) ledger.sent.add(id)
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number, groupId })
        let failures = 0
        const order: Array<number> = []
        const fiber = yield* topic.events().pipe(
          Stream.runForEach((e) =>
            Effect.andThen(
              e.value % 20 === 0 ? Effect.sleep("1 millis") : Effect.void,
              Effect.sync(() => {
                order.push(e.value)
                ledger.receive(e.value, e)
              })
            )
          ),
          Effect.tapError(() => Effect.sync(() => failures++)),
          Effect.retry(Schedule.spaced("1 second")),
          Effect.forkChild
        )
        yield* eventually(() => ledger.complete, 30_000, "3000 before the kill")
        // everything handled is committed before the kill
        yield* eventuallyEffect(
          Effect.map(committedOffsets(groupId, name), (o) => [...o.values()].reduce((a, b) => a + b, 0) === 3000),
          10_000,
          "all 3000 committed"
        )
        const before = yield* committedOffsets(groupId, name)
        const handledBefore = order.length
        yield* killBroker
        yield* Effect.sleep("1 second")
        yield* kafkaUp
        const after = yield* committedOffsets(groupId, name)
        const more = range(3000, 3000)
        yield* producer.sendAll(more).pipe(Effect.retry(Schedule.spaced("500 millis")), Effect.timeout("60 seconds"))
        for (const id of more) ledger.sent.add(id)
        yield* eventually(() => ledger.complete, 60_000, "all 6000", () => `missing ${ledger.missing()}`).pipe(
          Effect.ignore
        )
        const polled = fiber.pollUnsafe()
        const finalCommitted = yield* committedOffsets(groupId, name)
        const ends = yield* logEnds(name, 3)
        console.log(
          `[restart] handled ${order.length} (${order.length - handledBefore} after the kill); stream ${
            polled === undefined ? "still running" : inspect(polled)
          }; committed now ${inspect([...finalCommitted])}; log ends ${inspect(ends)}`
        )
        yield* Fiber.interrupt(fiber).pipe(Effect.timeout("15 seconds"), Effect.ignore)
        const { lost } = ledger.report("hf broker killed and restarted mid-consume")
        const reread = order.slice(handledBefore).filter((id) => id < 3000)
        console.log(`[restart] consumer log (last 12):\n  ${restartLog.slice(-12).join("\n  ")}`)
        console.log(
          `[restart] stream failures retried: ${failures}; committed before the kill ${
            inspect([...before])
          }, after the restart ${
            inspect([...after])
          }; records committed before the kill read again after it: ${reread.length} (first ${reread.slice(0, 5)})`
        )
        assert.strictEqual(lost, 0, `missing ${ledger.missing()}`)
        assert.strictEqual(reread.length, 0, "records committed before the kill were read again")
      }).pipe(
        Effect.provide(kafkaLayer({ requestTimeout: "5 seconds", retries: 5, retryDelay: "500 millis" })),
        Effect.provide(Logger.layer([Logger.make((options) => {
          const line = `${new Date().toISOString().slice(11, 23)} ${options.logLevel} ${
            Array.isArray(options.message) ? options.message.map(String).join(" ") : String(options.message)
          }`
          restartLog.push(line.slice(0, 400))
        })])),
        Effect.ensuring(kafkaUp.pipe(Effect.ignore))
      ),
    150_000
  )

  // -------------------------------------------------------------------------------------------
  // Backpressure
  // -------------------------------------------------------------------------------------------
  it.live(
    "backpressure: a slow Topic.stream() subscriber on a 40 000-record (~80 MiB) backlog over 8 partitions with the default fetch size: events read ahead and the live heap stay bounded",
    () =>
      Effect.gen(function*() {
        const name = unique("hf-backlog")
        const RECORDS = 40_000
        const pad = "p".repeat(2000)
        for (let from = 0; from < RECORDS; from += 5000) {
          yield* produceRecords(
            range(5000, from).map((i) => ({
              topic: name,
              partition: i % 8,
              key: null,
              value: utf8.encode(JSON.stringify({ id: i, pad }))
            })),
            "lz4",
            from === 0 ? { topic: name, partitions: 8 } : undefined
          )
        }
        const MAXSIZE = 64
        const result = yield* Effect.gen(function*() {
          const topic = yield* Topic.make({
            topics: [name],
            value: Schema.Struct({ id: Schema.Number, pad: Schema.String }),
            groupId: unique("hf-backlog-group"),
            label: unique("hf-backlog-label")
          })
          yield* topic.registerMetrics
          gc()
          gc()
          const baseline = process.memoryUsage().heapUsed
          let handled = 0
          const fiber = yield* topic.stream().pipe(
            Stream.runForEach(() => Effect.andThen(Effect.sleep("1 millis"), Effect.sync(() => handled++))),
            Effect.forkChild
          )
          let maxAhead = 0
          let maxLive = 0
          let delivered = 0
          const start = Date.now()
          let nextGc = 1000
          while (Date.now() - start < 6000) {
            yield* Effect.sleep("100 millis")
            const h = handled
            const snapshots = yield* Metric.snapshot
            const s = snapshots.find((x) =>
              x.id === "effect_faust_delivered_total" && x.attributes?.channel === topic.label
            )
            delivered = s === undefined ? -1 : Number((s.state as { count: number | bigint }).count)
            maxAhead = Math.max(maxAhead, delivered - h)
            if (Date.now() - start >= nextGc) {
              nextGc += 1000
              gc()
              maxLive = Math.max(maxLive, process.memoryUsage().heapUsed - baseline)
            }
          }
          yield* Fiber.interrupt(fiber)
          return { handled, maxAhead, maxLive, delivered }
        }).pipe(Effect.provide(kafkaLayer()))
        console.log(
          `[hf backlog] handled ${result.handled}, delivered ${result.delivered}, max delivered − handled ${result.maxAhead}, live heap growth max ${
            (result.maxLive / MiB).toFixed(1)
          } MiB`
        )
        assert.isAbove(result.handled, 300)
        assert.isAbove(result.delivered, 0, "the delivered metric is registered")
        // the subscriber queue, plus one fetch (8 partitions × 1 MiB of ~2 KiB records), plus slack
        assert.isAtMost(result.maxAhead, MAXSIZE + 8 * 520 + 1024)
        assert.isBelow(result.maxLive, 60 * MiB)
        assert.isBelow(result.delivered, RECORDS / 3, "read far ahead of the subscriber")
      }).pipe(Effect.provide(quiet)),
    90_000
  )
})
