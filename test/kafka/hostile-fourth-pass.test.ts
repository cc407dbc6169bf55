/**
 * Hostile fourth pass: attacks on four README promises of effect-faust/kafka.
 *
 * 1. "A produce call the broker refuses in part is read partition by partition: records of the
 *    partitions it appended succeed, once (never sent again), and a partition refused as too large
 *    (`MESSAGE_TOO_LARGE`) is sent again one record at a time, so only the record over the limit fails,
 *    with the broker's reason."
 * 2. "Every send goes through the one buffer, in order, in batches; shutting the layer down sends what
 *    is buffered before the producer closes." / "closing the Kafka layer flushes every buffered record
 *    and completes its future" / "Broker failures are typed … never a hang."
 * 3. `effect_faust_consumer_lag`: "log end offset − committed offset … never a negative lag".
 * 4. "A stream that fails on errors the client itself deems passing … is replaced by a new one in the
 *    same group generation: … the subscribers see no failure, nothing skipped and nothing twice."
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Logger, Metric, Option, Schedule, Schema, Scope, Stream } from "effect"
import type { RecordMetadata } from "effect-faust"
import { Kafka, KafkaError, Topic } from "effect-faust/kafka"
import * as Web from "effect-faust/web"
import { brokerPid, killable } from "./brokerControl.ts"
import { committedOffsets, eventually, replacedMetric, Seen } from "./delivery.ts"
import { logEnds, readRawRecords } from "./raw.ts"
import { brokerAvailable, kafkaLayer, unique } from "./setup.ts"

const quiet = Logger.layer([])
const LIMIT = { "max.message.bytes": 2000 } as const
const big = (tag: string) => `${tag}-${"x".repeat(5000)}`
const isBig = (v: string) => v.length > 1000
const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i)
const utf8 = new TextDecoder()

interface Stored {
  readonly value: string
  readonly partition: number
  readonly offset: number
}

/** Everything the broker stored on the topic (every partition), read by the raw client. */
const storedRecords = (name: string, partitions: number) =>
  Effect.gen(function*() {
    const ends = yield* logEnds(name, partitions)
    const total = ends.reduce((a, b) => a + b, 0)
    const raw = yield* readRawRecords(name, total)
    const records: Array<Stored> = raw.map((r) => ({
      value: JSON.parse(utf8.decode(r.value!)) as string,
      partition: r.partition,
      offset: r.offset
    }))
    return { ends, total, records }
  })

/** sent / received / lost / duplicated for the expected values, and whether each prefix keeps its order per partition. */
const audit = (test: string, records: ReadonlyArray<Stored>, expected: ReadonlyArray<string>) => {
  const counts = new Map<string, number>()
  for (const r of records) counts.set(r.value, (counts.get(r.value) ?? 0) + 1)
  let lost = 0
  let duplicated = 0
  const unexpected: Array<string> = []
  for (const v of expected) if (!counts.has(v)) lost++
  for (const [v, n] of counts) {
    duplicated += n - 1
    if (!expected.includes(v)) unexpected.push(v.slice(0, 20))
  }
  // order: for each source prefix (the text before the last "-"), indices increase along each partition's offsets
  const orderViolations: Array<string> = []
  const byPartition = new Map<number, Array<Stored>>()
  for (const r of records) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r])
  for (const [partition, list] of byPartition) {
    list.sort((a, b) => a.offset - b.offset)
    const lastIndex = new Map<string, number>()
    for (const r of list) {
      const cut = r.value.lastIndexOf("-")
      const source = r.value.slice(0, cut)
      const index = Number(r.value.slice(cut + 1))
      const before = lastIndex.get(source)
      if (before !== undefined && index <= before) {
        orderViolations.push(`p${partition}: ${source}-${index} after ${source}-${before}`)
      }
      lastIndex.set(source, index)
    }
  }
  console.log(
    `[delivery] ${test}: sent=${expected.length} received=${counts.size - unexpected.length} lost=${lost}` +
      ` duplicated=${duplicated} unexpected=${unexpected.length} orderViolations=${orderViolations.length}` +
      (orderViolations.length > 0 ? ` e.g. ${orderViolations.slice(0, 3).join("; ")}` : "")
  )
  return { lost, duplicated, unexpected, orderViolations }
}

const assertClean = (result: ReturnType<typeof audit>) => {
  assert.strictEqual(result.lost, 0, "lost")
  assert.strictEqual(result.duplicated, 0, "duplicated")
  assert.deepStrictEqual(result.unexpected, [], "stored values nobody sent (or too-large values stored)")
  assert.deepStrictEqual(result.orderViolations, [], "order per partition")
}

const errorOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Exit.findErrorOption(exit)) : undefined

const assertTooLarge = <A, E>(exit: Exit.Exit<A, E>, what: string) => {
  assert.isTrue(Exit.isFailure(exit), `${what}: expected a failure, got ${String(exit)}`)
  const error = errorOf(exit)
  assert.instanceOf(error, KafkaError, `${what}: ${String(exit)}`)
  assert.match((error as KafkaError).message, /larger than the broker accepts|too large/i, what)
}

const limitedTopic = (prefix: string, partitions = 3) =>
  Effect.gen(function*() {
    const topic = yield* Topic.make({ topics: [unique(prefix)], value: Schema.String, partitions, config: LIMIT })
    yield* topic.maybeDeclare
    return topic
  })

const values = (source: string, count: number, bigAt: ReadonlyArray<number> = []) =>
  range(0, count).map((i) => bigAt.includes(i) ? big(`${source}-${i}`) : `${source}-${i}`)

const small = (vs: ReadonlyArray<string>) => vs.filter((v) => !isBig(v))

describe.skipIf(!brokerAvailable)("hostile 4th pass: one record too large in sendAll / sendSoon", () => {
  // README: "a partition refused as too large (MESSAGE_TOO_LARGE) is sent again one record at a time,
  // so only the record over the limit fails, with the broker's reason."
  for (
    const [title, count, bigAt] of [
      ["the too-large record first", 30, [0]],
      ["the too-large record last", 30, [29]],
      ["several too-large records on different partitions", 30, [3, 4, 5, 17]]
    ] as const
  ) {
    it.live(
      `promise "only the record over the limit fails": sendAll over 3 partitions, ${title}`,
      () =>
        Effect.gen(function*() {
          const topic = yield* limitedTopic("big-sendall")
          const sent = values("a", count, bigAt)
          const exit = yield* topic.sendAll(sent).pipe(Effect.timeout("30 seconds"), Effect.exit)
          assertTooLarge(exit, "sendAll")
          const { records } = yield* storedRecords(topic.topics[0], 3)
          assertClean(audit(`sendAll, ${title}`, records, small(sent)))
        }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
      60_000
    )
  }

  it.live(
    `promise "only the record over the limit fails": sendSoon neighbours resolve with their own partition/offset`,
    () =>
      Effect.gen(function*() {
        const topic = yield* limitedTopic("big-soon")
        const sent = values("s", 40, [0, 7, 20, 39])
        const futures = yield* Effect.forEach(sent, (value) => topic.sendSoon({ value }))
        const exits = yield* Effect.forEach(futures, (f) => Effect.exit(f.await)).pipe(Effect.timeout("30 seconds"))
        const { records } = yield* storedRecords(topic.topics[0], 3)
        const at = new Map(records.map((r) => [`${r.partition}/${r.offset}`, r.value]))
        const wrong: Array<string> = []
        exits.forEach((exit, i) => {
          if (isBig(sent[i])) {
            assertTooLarge(exit, `future ${i}`)
            return
          }
          if (Exit.isFailure(exit)) {
            wrong.push(`${sent[i]} failed: ${String(errorOf(exit))}`)
            return
          }
          const md = exit.value
          const there = at.get(`${md.partition}/${md.offset}`)
          if (there !== sent[i] || md.topic !== topic.topics[0]) {
            wrong.push(`${sent[i]} says ${md.topic}[${md.partition}]@${md.offset}, where the broker holds ${there}`)
          }
        })
        console.log(`[delivery] sendSoon futures: ${wrong.length} wrong${wrong.length ? `: ${wrong.slice(0, 3)}` : ""}`)
        assert.deepStrictEqual(wrong, [])
        assertClean(audit("sendSoon with 4 too-large", records, small(sent)))
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )

  it.live(
    `promise "only the record over the limit fails": two concurrent sendAll calls sharing a batch`,
    () =>
      Effect.gen(function*() {
        const topic = yield* limitedTopic("big-concurrent")
        const a = values("a", 25, [12])
        const b = values("b", 25)
        const c = values("c", 25, [0])
        const [ea, eb, ec] = yield* Effect.all([
          Effect.exit(topic.sendAll(a)),
          Effect.exit(topic.sendAll(b)),
          Effect.exit(topic.sendAll(c))
        ], { concurrency: "unbounded" }).pipe(Effect.timeout("30 seconds"))
        assertTooLarge(ea, "sendAll a")
        assert.isTrue(Exit.isSuccess(eb), `sendAll b (no record too large) must succeed: ${String(eb)}`)
        assertTooLarge(ec, "sendAll c")
        const { records } = yield* storedRecords(topic.topics[0], 3)
        assertClean(audit("two+1 concurrent sendAll", records, [...small(a), ...b, ...small(c)]))
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )

  for (
    const [title, count, bigAt] of [
      ["exactly maxBatchSize (10), the last too large", 10, [9]],
      ["maxBatchSize + 1 (11), the 11th too large (alone in its batch)", 11, [10]],
      ["maxBatchSize + 1 (11), the first too large", 11, [0]],
      ["maxBatchSize + 1 (11), every value of the first batch too large but one", 11, [0, 1, 2, 3, 4, 5, 6, 7, 8]]
    ] as const
  ) {
    it.live(
      `promise "only the record over the limit fails": sendAll of ${title}`,
      () =>
        Effect.gen(function*() {
          const topic = yield* limitedTopic("big-batch")
          const sent = values("m", count, bigAt)
          const exit = yield* topic.sendAll(sent).pipe(Effect.timeout("30 seconds"), Effect.exit)
          assertTooLarge(exit, "sendAll")
          // the buffer still works afterwards
          const after = values("n", 12)
          yield* topic.sendAll(after).pipe(Effect.timeout("30 seconds"))
          const { records } = yield* storedRecords(topic.topics[0], 3)
          assertClean(audit(`sendAll of ${title}`, records, [...small(sent), ...after]))
        }).pipe(Effect.provide(kafkaLayer({ maxBatchSize: 10 })), Effect.provide(quiet)),
      60_000
    )
  }

  it.live(
    `promise "only the record over the limit fails": sendAll + sendSoon + a derived acks:false topic + flush in one instant`,
    () =>
      Effect.gen(function*() {
        const kafka = yield* Kafka.Kafka
        const topic = yield* limitedTopic("big-mixed")
        const fire = yield* topic.derive({ acks: false })
        assert.strictEqual(fire.acks, false)
        assert.deepStrictEqual(fire.topics, topic.topics)
        const a = values("a", 30, [15])
        const s = values("s", 30, [3])
        const f = values("f", 10)
        const b = values("b", 30)
        let futures: ReadonlyArray<Exit.Exit<RecordMetadata.RecordMetadata, unknown>> = []
        const fireMeta: Array<RecordMetadata.RecordMetadata> = []
        const [ea, , , eb, flushed] = yield* Effect.all([
          Effect.exit(topic.sendAll(a)),
          Effect.gen(function*() {
            const fs = yield* Effect.forEach(s, (value) => topic.sendSoon({ value }))
            futures = yield* Effect.forEach(fs, (x) => Effect.exit(x.await))
          }),
          Effect.forEach(f, (value) => Effect.map(fire.send({ value }), (md) => fireMeta.push(md))),
          Effect.exit(Effect.andThen(kafka.flush, topic.sendAll(b))),
          Effect.exit(kafka.flush)
        ], { concurrency: "unbounded" }).pipe(Effect.timeout("30 seconds"))
        assertTooLarge(ea, "sendAll a")
        assert.isTrue(Exit.isSuccess(eb), `sendAll b after a flush: ${String(eb)}`)
        assert.isTrue(Exit.isSuccess(flushed), "flush")
        assert.deepStrictEqual(fireMeta.map((md) => md.offset), f.map(() => -1), "acks:false offsets are -1")
        yield* kafka.flush
        yield* Effect.sleep("500 millis") // acks: false records are not answered: give them time to land
        const { records } = yield* storedRecords(topic.topics[0], 3)
        const at = new Map(records.map((r) => [`${r.partition}/${r.offset}`, r.value]))
        const wrong: Array<string> = []
        futures.forEach((exit, i) => {
          if (isBig(s[i])) {
            assertTooLarge(exit, `future ${i}`)
          } else if (Exit.isFailure(exit)) wrong.push(`${s[i]} failed: ${String(errorOf(exit))}`)
          else if (at.get(`${exit.value.partition}/${exit.value.offset}`) !== s[i]) {
            wrong.push(`${s[i]} says [${exit.value.partition}]@${exit.value.offset}`)
          }
        })
        assert.deepStrictEqual(wrong, [], "sendSoon futures")
        assertClean(audit("mixed instant", records, [...small(a), ...small(s), ...f, ...b]))
      }).pipe(Effect.provide(kafkaLayer({ maxBatchSize: 16 })), Effect.provide(quiet)),
    60_000
  )
})

describe.skipIf(!brokerAvailable)("hostile 4th pass: a batch over the limit made of records under it", () => {
  it.live(
    `promise "a partition refused as too large (MESSAGE_TOO_LARGE) is sent again one record at a time, so only the record over the limit fails": no record is over the limit, their batch is`,
    () =>
      Effect.gen(function*() {
        const topic = yield* limitedTopic("big-batchonly", 1)
        // each record ~1.2 kB fits max.message.bytes (2000); any two in one record batch do not
        const sent = range(0, 30).map((i) => `${"y".repeat(1200)}w-${i}`)
        const exit = yield* topic.sendAll(sent).pipe(Effect.timeout("30 seconds"), Effect.exit)
        const soon = yield* Effect.forEach(range(0, 10), (i) => topic.sendSoon({ value: `${"y".repeat(1200)}z-${i}` }))
        const soonExits = yield* Effect.forEach(soon, (f) => Effect.exit(f.await)).pipe(Effect.timeout("30 seconds"))
        const { records } = yield* storedRecords(topic.topics[0], 1)
        console.log(
          `[delivery] batch over the limit: sendAll ${Exit.isSuccess(exit) ? "ok" : String(errorOf(exit))}; ` +
            `sendSoon ${soonExits.filter(Exit.isSuccess).length}/10 ok`
        )
        assert.isTrue(Exit.isSuccess(exit), `sendAll of records each under the limit: ${String(exit)}`)
        assert.strictEqual(soonExits.filter(Exit.isSuccess).length, 10, "sendSoon of records each under the limit")
        assertClean(
          audit("batch over the limit", records, [...sent, ...range(0, 10).map((i) => `${"y".repeat(1200)}z-${i}`)])
        )
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )
})

describe.skipIf(!brokerAvailable)("hostile 4th pass: sendAll under shutdown and interruption", () => {
  it.live(
    `promise "shutting the layer down sends what is buffered before the producer closes … never a hang": layer closed 60 ms into 4 sendAll calls of 20 000 values (+ a sendSoon loop)`,
    () =>
      Effect.gen(function*() {
        const name = unique("shutdown-big")
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(kafkaLayer({ bufferMaxsize: 100, maxBatchSize: 50 }), scope)
        const topic = yield* Topic.make({ topics: [name], value: Schema.String, partitions: 3 }).pipe(
          Effect.provideContext(context)
        )
        yield* topic.maybeDeclare
        yield* topic.send({ value: "warm-0" }) // metadata cached, connections open: the calls below buffer at once
        const calls = range(0, 4).map((k) => values(`big${k}`, 20_000))
        const fibers = yield* Effect.forEach(calls, (vs) => Effect.forkChild(Effect.exit(topic.sendAll(vs))))
        let closing = false
        const beforeClose: Array<boolean> = []
        const soonFiber = yield* Effect.forkChild(
          Effect.forEach(values("soon", 2000), (value) =>
            Effect.tap(topic.sendSoon({ value }), () => Effect.sync(() => beforeClose.push(!closing)))).pipe(
              Effect.exit
            )
        )
        yield* Effect.sleep("60 millis")
        const runningAtClose = fibers.filter((f) =>
          f.pollUnsafe() === undefined
        ).length
        closing = true
        const closed = yield* Scope.close(scope, Exit.void).pipe(Effect.timeout("30 seconds"), Effect.exit)
        assert.isTrue(Exit.isSuccess(closed), `closing the layer returned: ${String(closed)}`)
        const joined = yield* Effect.forEach(fibers, (fiber) => Fiber.join(fiber)).pipe(
          Effect.timeout("30 seconds"),
          Effect.exit
        )
        assert.isTrue(Exit.isSuccess(joined), `every sendAll returned: ${String(joined)}`)
        const callExits = Exit.isSuccess(joined) ? joined.value : []
        const soonJoined = yield* Fiber.join(soonFiber).pipe(Effect.timeout("30 seconds"), Effect.exit)
        assert.isTrue(Exit.isSuccess(soonJoined), `the sendSoon loop returned: ${String(soonJoined)}`)
        const soonLoop = Exit.isSuccess(soonJoined) ? soonJoined.value : undefined
        const soonExit: Exit.Exit<unknown, unknown> = soonLoop ?? Exit.void
        const futures = soonLoop !== undefined && Exit.isSuccess(soonLoop) ? soonLoop.value : []
        const futureExits = yield* Effect.forEach(futures, (f) => Effect.exit(f.await)).pipe(
          Effect.timeout("10 seconds"),
          Effect.exit
        )
        assert.isTrue(Exit.isSuccess(futureExits), `every sendSoon future completes: ${String(futureExits)}`)
        const fExits = Exit.isSuccess(futureExits) ? futureExits.value : []
        const { records } = yield* storedRecords(name, 3)
        const stored = new Map<string, number>()
        for (const r of records) stored.set(r.value, (stored.get(r.value) ?? 0) + 1)
        const summary = callExits.map((exit, k) => {
          const kept = calls[k].filter((v) => stored.has(v)).length
          const tag = Exit.isSuccess(exit) ? "ok" : (errorOf(exit) as any)?._tag ?? `defect/interrupt ${String(exit)}`
          return `call${k}: ${tag} stored=${kept}`
        })
        console.log(
          `[delivery] shutdown 60 ms in: ${runningAtClose} of 4 running at close; ${
            summary.join(", ")
          }; sendSoon loop ` +
            `${Exit.isSuccess(soonExit) ? "ok" : String(errorOf(soonExit) ?? soonExit)}, futures ${futures.length}, ` +
            `ok ${fExits.filter(Exit.isSuccess).length}, failed ${
              fExits.filter(Exit.isFailure).map((e) => (errorOf(e) as any)?._tag).slice(0, 1)
            }`
        )
        const failedBefore = fExits.flatMap((exit, i) =>
          beforeClose[i] === true && Exit.isFailure(exit)
            ? [(errorOf(exit) as Error | undefined)?.message ?? String(exit)]
            : []
        )
        console.log(
          `[delivery] sendSoon futures returned before the close began: ${beforeClose.filter((b) => b).length},` +
            ` of which failed: ${failedBefore.length}${failedBefore.length > 0 ? ` (e.g. ${failedBefore[0]})` : ""}`
        )
        const untyped = [...callExits, soonExit, ...fExits].filter((exit) =>
          Exit.isFailure(exit) && errorOf(exit) === undefined
        )
        assert.deepStrictEqual(untyped.map(String), [], "every call succeeded or failed typed")
        const soonValues = values("soon", 2000)
        const reported = [
          "warm-0",
          ...soonValues.filter((_, i) => fExits[i] !== undefined && Exit.isSuccess(fExits[i])),
          ...callExits.flatMap((exit, k) => Exit.isSuccess(exit) ? calls[k] : [])
        ]
        const result = audit("shutdown 60 ms in (reported sent)", records, reported)
        assert.strictEqual(result.lost, 0, "lost")
        assert.strictEqual(result.duplicated, 0, "duplicated")
        assert.deepStrictEqual(result.orderViolations, [], "order per partition")
        assert.strictEqual([...stored.values()].filter((n) => n > 1).length, 0, "no value stored twice")
        // a future reported failed must not be on the broker: it was reported as not sent
        const failedButStored = soonValues.filter((v, i) =>
          fExits[i] !== undefined && Exit.isFailure(fExits[i]) && stored.has(v)
        )
        assert.deepStrictEqual(failedButStored.slice(0, 5), [], "sendSoon futures reported failed, yet stored")
        assert.deepStrictEqual(
          failedBefore.length,
          0,
          "closing the Kafka layer flushes every buffered record and completes its future (with success)"
        )
      }).pipe(Effect.provide(quiet)),
    90_000
  )

  it.live(
    `promise "shutting the layer down sends what is buffered before the producer closes … never a hang": layer closed while 4 fibers are inside sendAll`,
    () =>
      Effect.gen(function*() {
        const name = unique("shutdown")
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          kafkaLayer({ bufferMaxsize: 50, maxBatchSize: 20 }),
          scope
        )
        const topic = yield* Topic.make({ topics: [name], value: Schema.String, partitions: 3 }).pipe(
          Effect.provideContext(context)
        )
        yield* topic.maybeDeclare
        const soon = values("soon", 30)
        const futures = yield* Effect.forEach(soon, (value) => topic.sendSoon({ value }))
        const calls = range(0, 4).map((k) => values(`call${k}`, 1500))
        const fibers = yield* Effect.forEach(calls, (vs) => Effect.forkChild(Effect.exit(topic.sendAll(vs))))
        yield* Effect.sleep("150 millis")
        const closed = yield* Scope.close(scope, Exit.void).pipe(Effect.timeout("30 seconds"), Effect.exit)
        assert.isTrue(Exit.isSuccess(closed), `closing the layer returned: ${String(closed)}`)
        const exits = yield* Effect.forEach(fibers, (fiber) => Fiber.join(fiber)).pipe(
          Effect.timeout("30 seconds"),
          Effect.exit
        )
        assert.isTrue(Exit.isSuccess(exits), `every sendAll returned: ${String(exits)}`)
        const callExits = Exit.isSuccess(exits) ? exits.value : []
        const futureExits = yield* Effect.forEach(futures, (f) => Effect.exit(f.await)).pipe(
          Effect.timeout("10 seconds")
        )
        const { records } = yield* storedRecords(name, 3)
        const stored = new Map<string, number>()
        for (const r of records) stored.set(r.value, (stored.get(r.value) ?? 0) + 1)
        const summary = callExits.map((exit, k) => {
          const kept = calls[k].filter((v) => stored.has(v)).length
          return `call${k}: ${
            Exit.isSuccess(exit) ? "ok" : (errorOf(exit) as any)?._tag ?? String(exit)
          } stored=${kept}`
        })
        console.log(`[delivery] shutdown mid-sendAll: ${summary.join(", ")}`)
        const defects = callExits.filter((exit) => Exit.isFailure(exit) && errorOf(exit) === undefined)
        assert.deepStrictEqual(defects.map(String), [], "every sendAll succeeded or failed typed")
        // what was reported as sent is on the broker exactly once
        const reported = [
          ...soon.filter((_, i) => Exit.isSuccess(futureExits[i])),
          ...callExits.flatMap((exit, k) => Exit.isSuccess(exit) ? calls[k] : [])
        ]
        assert.strictEqual(
          futureExits.filter(Exit.isSuccess).length,
          soon.length,
          "closing the layer flushes every buffered sendSoon and completes its future"
        )
        const result = audit("shutdown mid-sendAll (reported sent)", records, reported)
        assert.strictEqual(result.lost, 0, "lost")
        assert.strictEqual(result.duplicated, 0, "duplicated")
        assert.deepStrictEqual(result.orderViolations, [], "order per partition")
        // A failed sendAll must not have left its values on the broker more than once either
        assert.strictEqual([...stored.values()].filter((n) => n > 1).length, 0, "no value stored twice")
      }).pipe(Effect.provide(quiet)),
    90_000
  )

  it.live(
    `promise "never a hang" / "in order, in batches": interrupting a fiber mid-sendAll, then sending on`,
    () =>
      Effect.gen(function*() {
        const topic = yield* Topic.make({ topics: [unique("interrupt")], value: Schema.String, partitions: 3 })
        yield* topic.maybeDeclare
        const first = values("int", 4000)
        const fiber = yield* Effect.forkChild(topic.sendAll(first))
        yield* Effect.sleep("100 millis")
        const interrupted = yield* Fiber.interrupt(fiber).pipe(Effect.timeout("10 seconds"), Effect.exit)
        assert.isTrue(Exit.isSuccess(interrupted), `interrupt returned: ${String(interrupted)}`)
        const after = values("after", 200)
        yield* topic.sendAll(after).pipe(Effect.timeout("30 seconds"))
        const soon = yield* topic.sendSoon({ value: "soon-0" })
        const md = yield* soon.await.pipe(Effect.timeout("30 seconds"))
        const { records } = yield* storedRecords(topic.topics[0], 3)
        const storedFirst = first.filter((v) => records.some((r) => r.value === v))
        const isPrefix = storedFirst.every((v, i) => v === first[i])
        console.log(
          `[delivery] interrupted sendAll: ${storedFirst.length} of ${first.length} stored, prefix=${isPrefix}`
        )
        assert.strictEqual(records.find((r) => r.partition === md.partition && r.offset === md.offset)?.value, "soon-0")
        assertClean(audit("interrupted sendAll then more", records, [...storedFirst, ...after, "soon-0"]))
      }).pipe(Effect.provide(kafkaLayer({ bufferMaxsize: 50, maxBatchSize: 20 })), Effect.provide(quiet)),
    60_000
  )
})

/** A gauge of `label` per partition, from the registry in the environment. */
const lagGauges = (label: string) =>
  Effect.map(Metric.snapshot, (snapshots) => {
    const out = new Map<number, number>()
    for (const s of snapshots) {
      if (s.id === "effect_faust_consumer_lag" && s.attributes?.channel === label) {
        out.set(Number(s.attributes?.partition), Number((s.state as any).value))
      }
    }
    return out
  })

/** The broker frozen with SIGSTOP by `freeze` until `thaw` (which does nothing once thawed: run it as a finalizer too). */
const freezer = () => {
  let frozen: number | undefined
  return {
    freeze: () => {
      frozen = brokerPid()
      process.kill(frozen, "SIGSTOP")
    },
    thaw: Effect.sync(() => {
      if (frozen !== undefined) {
        try {
          process.kill(frozen, "SIGCONT")
        } catch {
          // gone
        }
        frozen = undefined
      }
    })
  }
}

/**
 * A topic of 2 partitions read with queues of 2 under a label of its own
 * (metrics registered), and `produce`, which sends on a connection of its own
 * (its own Kafka layer, in the test's scope) again until the broker takes a
 * chunk, noting what it took in `sent`.
 */
const replacementTopics = (prefix: string) =>
  Effect.gen(function*() {
    const name = unique(prefix)
    const label = unique(`${prefix}-label`)
    const sent = new Set<number>()
    const producer = yield* Layer.build(kafkaLayer({ requestTimeout: "30 seconds" }))
    const out = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 2 }).pipe(
      Effect.provideContext(producer)
    )
    yield* out.maybeDeclare
    const produce = (ids: ReadonlyArray<number>) =>
      out.sendAll(ids).pipe(
        Effect.retry(Schedule.spaced("500 millis")),
        Effect.tap(() => Effect.sync(() => ids.forEach((id) => sent.add(id))))
      )
    const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 2, label, maxsize: 2 })
    yield* topic.registerMetrics
    return { label, produce, sent, topic }
  })

/** Until the topic under `label` has `partitions` lag series (its consumer joined and was assigned them). */
const awaitAssigned = (label: string, partitions: number) =>
  Effect.flatMap(lagGauges(label), (m) => Effect.sync(() => m.size === partitions)).pipe(
    Effect.repeat({ until: (ok) => ok, schedule: Schedule.spaced("50 millis") }),
    Effect.timeout("30 seconds")
  )

/** The lag lines of the Prometheus text of `/metrics`. */
const promLags = (url: string, label: string) =>
  Effect.promise(() => fetch(`${url}/metrics`).then((r) => r.text())).pipe(Effect.map((text) => {
    const out: Array<number> = []
    for (const line of text.split("\n")) {
      if (line.startsWith("effect_faust_consumer_lag{") && line.includes(`channel="${label}"`)) {
        out.push(Number(line.slice(line.lastIndexOf(" ") + 1)))
      }
    }
    return out
  }))

describe.skipIf(!brokerAvailable)("hostile 4th pass: the consumer lag gauge", () => {
  it.live(
    `promise "effect_faust_consumer_lag … log end offset − committed offset … never a negative lag": fast commits while producing`,
    () =>
      Effect.gen(function*() {
        const web = yield* Web.Server
        const name = unique("lag")
        const label = unique("lag-label")
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 3, label })
        yield* topic.maybeDeclare
        yield* topic.registerMetrics
        let received = 0
        let hold = false
        const reading = yield* topic.stream().pipe(
          Stream.runForEach(() =>
            Effect.gen(function*() {
              received++
              while (hold) yield* Effect.sleep("10 millis")
            })
          ),
          Effect.forkChild
        )
        yield* awaitAssigned(label, 3)
        const samples: Array<number> = []
        const negative: Array<string> = []
        let promSamples = 0
        const sampler = yield* Effect.forkChild(Effect.forever(
          Effect.gen(function*() {
            for (const [p, v] of yield* lagGauges(label)) {
              samples.push(v)
              if (!(v >= 0) || !Number.isInteger(v)) negative.push(`p${p}=${v}`)
            }
            yield* Effect.sleep("3 millis")
          })
        ))
        const promSampler = yield* Effect.forkChild(Effect.forever(
          Effect.gen(function*() {
            for (const v of yield* promLags(web.url, label)) {
              promSamples++
              if (!(v >= 0)) negative.push(`prometheus ${v}`)
            }
            yield* Effect.sleep("40 millis")
          })
        ))
        let sent = 0
        for (let round = 0; round < 60; round++) {
          yield* topic.sendAll(range(sent, 40))
          sent += 40
          yield* Effect.sleep("30 millis")
        }
        yield* eventually(() => received >= sent, 30_000, "the consumer to read everything")
        // settled, fully read: lag = log end − committed = 0 on every partition
        const ends = yield* logEnds(name, 3)
        yield* Effect.flatMap(committedOffsets(topic.groupId, name), (c) =>
          Effect.succeed(ends.every((end, p) => (c.get(p) ?? -1) === end))).pipe(
            Effect.repeat({
              until: (ok) =>
                ok,
              schedule: Schedule.spaced("50 millis")
            }),
            Effect.timeout("20 seconds")
          )
        yield* Effect.sleep("1 second")
        const settled = yield* lagGauges(label)
        console.log(
          `[lag] phase 1: ${samples.length} gauge samples, ${promSamples} prometheus samples, negatives=${negative.length}` +
            ` ${negative.slice(0, 5).join(" ")}; ends=${ends} settled=${[...settled].map(([p, v]) => `p${p}=${v}`)}`
        )
        assert.deepStrictEqual(
          [...settled.entries()].sort(),
          [[0, 0], [1, 0], [2, 0]],
          "lag 0 once everything is committed"
        )
        // phase 2: the handler holds; records keep arriving; the lag must equal log end − committed exactly
        hold = true
        yield* topic.sendAll(range(sent, 300))
        sent += 300
        yield* Effect.sleep("3 seconds")
        const ends2 = yield* logEnds(name, 3)
        const committed2 = yield* committedOffsets(topic.groupId, name)
        yield* Effect.sleep("1 second")
        const ends3 = yield* logEnds(name, 3)
        const committed3 = yield* committedOffsets(topic.groupId, name)
        const lag2 = yield* lagGauges(label)
        const expected = ends3.map((end, p) => end - (committed3.get(p) ?? 0))
        console.log(
          `[lag] phase 2 (held): ends=${ends2}/${ends3} committed=${[...committed2]}/${[...committed3]}` +
            ` gauge=${[...lag2].map(([p, v]) => `p${p}=${v}`)} expected=${expected} negatives=${negative.length}`
        )
        assert.deepStrictEqual(ends2, ends3, "log ends stable")
        assert.deepStrictEqual([...committed2], [...committed3], "commits stable")
        assert.deepStrictEqual([0, 1, 2].map((p) => lag2.get(p)), expected, "lag = log end − committed")
        hold = false
        yield* eventually(() => received >= sent, 30_000, "the consumer to read the rest")
        yield* Fiber.interrupt(sampler)
        yield* Fiber.interrupt(promSampler)
        assert.deepStrictEqual(negative, [], "never a negative lag")
        yield* Fiber.interrupt(reading)
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Layer.mergeAll(Web.layer({ port: 0, interval: "100 millis" }), kafkaLayer({ commitInterval: "20 millis" }))
        ),
        Effect.provide(Layer.succeed(Metric.MetricRegistry, new Map())),
        Effect.provide(quiet)
      ),
    90_000
  )
})

describe.skipIf(!brokerAvailable)("hostile 4th pass: the consumer lag gauge before any commit", () => {
  it.live(
    `promise "effect_faust_consumer_lag: log end offset − committed offset (-1: none yet)": a new group under "latest" that has acknowledged nothing`,
    () =>
      Effect.gen(function*() {
        const name = unique("lag-nocommit")
        const label = unique("lag-nocommit-label")
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 2, label })
        yield* topic.maybeDeclare
        yield* topic.sendAll(range(0, 50))
        yield* topic.registerMetrics
        let got = 0
        const reading = yield* Topic.noack(topic).pipe(
          Stream.runForEach(() => Effect.sync(() => got++)),
          Effect.forkChild
        )
        yield* awaitAssigned(label, 2)
        yield* Effect.sleep("1 second")
        yield* topic.sendAll(range(50, 20))
        yield* eventually(() => got === 20, 20_000, "the 20 new records")
        yield* Effect.sleep("1 second")
        const ends = yield* logEnds(name, 2)
        const committed = yield* committedOffsets(topic.groupId, name)
        const lag = yield* lagGauges(label)
        console.log(
          `[lag] no commit: ends=${ends} committed=${JSON.stringify([...committed])} gauge=${
            [...lag].map(([p, v]) => `p${p}=${v}`)
          }`
        )
        for (const p of [0, 1]) {
          const c = committed.get(p)
          const gauge = lag.get(p)!
          assert.isAtLeast(gauge, 0, `p${p} lag never negative`)
          assert.isAtMost(gauge, ends[p], `p${p}: a lag above the whole log (${ends[p]} records) is impossible`)
          if (c !== undefined) assert.strictEqual(gauge, ends[p] - c, `p${p} lag = log end − committed`)
        }
        yield* Fiber.interrupt(reading)
      }).pipe(
        Effect.scoped,
        Effect.provide(kafkaLayer({ autoOffsetReset: "latest", commitInterval: "50 millis" })),
        Effect.provide(Layer.succeed(Metric.MetricRegistry, new Map())),
        Effect.provide(quiet)
      ),
    60_000
  )
})

describe.skipIf(!killable)("hostile 4th pass: a client stream replaced under slow subscribers", () => {
  it.live(
    `promise "replaced by a new one in the same group generation … nothing skipped and nothing twice": SIGSTOP while records are buffered, small queues, latest, new group`,
    () => {
      const { freeze, thaw } = freezer()
      return Effect.gen(function*() {
        const { label, produce, sent, topic } = yield* replacementTopics("replace")
        const slow = new Seen("slow subscriber")
        const fast = new Seen("fast subscriber")
        const fs = yield* topic.events().pipe(
          Stream.runForEach((e) => Effect.andThen(Effect.sleep("4 millis"), Effect.sync(() => slow.receive(e)))),
          Effect.forkChild
        )
        const ff = yield* topic.events().pipe(
          Stream.runForEach((e) => Effect.sync(() => fast.receive(e))),
          Effect.forkChild
        )
        // "latest": wait until both partitions are assigned (their lag series are present)
        yield* awaitAssigned(label, 2)
        yield* Effect.sleep("500 millis")
        yield* produce(range(0, 400))
        yield* eventually(() => slow.deliveries.size >= 60, 30_000, "the slow subscriber to start")
        const replacedBefore = yield* replacedMetric(label)
        freeze()
        const waited = yield* eventuallyEffectBool(
          Effect.map(replacedMetric(label), (n) => (n ?? 0) > (replacedBefore ?? 0)),
          45_000
        )
        yield* thaw
        console.log(`[replace] replacement seen while frozen: ${waited}, slow had ${slow.deliveries.size}`)
        yield* produce(range(400, 200))
        yield* eventually(
          () => (slow.has(sent) && fast.has(sent)) || fs.pollUnsafe() !== undefined || ff.pollUnsafe() !== undefined,
          40_000,
          "both subscribers to read all 600 (or one to fail)",
          () => `slow ${slow.deliveries.size}, fast ${fast.deliveries.size}`
        ).pipe(Effect.exit)
        const exitSlow = fs.pollUnsafe()
        const exitFast = ff.pollUnsafe()
        const replaced = yield* replacedMetric(label)
        console.log(`[replace] metric effect_faust_consumer_streams_replaced_total=${replaced}`)
        const a = slow.report("replacement: slow subscriber", sent)
        const b = fast.report("replacement: fast subscriber", sent)
        assert.isUndefined(exitSlow, `slow subscriber ended: ${String(exitSlow)}`)
        assert.isUndefined(exitFast, `fast subscriber ended: ${String(exitFast)}`)
        assert.strictEqual(a.lost, 0, "slow: lost")
        assert.strictEqual(b.lost, 0, "fast: lost")
        assert.strictEqual(a.sameGeneration, 0, "slow: twice in one generation")
        assert.strictEqual(b.sameGeneration, 0, "fast: twice in one generation")
        assert.isTrue(waited, "the frozen broker made the consumer replace its client stream")
        assert.strictEqual(replaced, 1, "one replacement counted")
        yield* Fiber.interrupt(fs)
        yield* Fiber.interrupt(ff)
      }).pipe(
        Effect.ensuring(thaw),
        Effect.scoped,
        Effect.provide(kafkaLayer({
          requestTimeout: "2 seconds",
          retries: 3,
          retryDelay: "200 millis",
          autoOffsetReset: "latest"
        })),
        Effect.provide(Layer.succeed(Metric.MetricRegistry, new Map())),
        Effect.provide(quiet)
      )
    },
    90_000
  )

  it.live(
    `promise "what this generation already delivered is dropped as fetched twice, so the subscribers see … nothing skipped and nothing twice": frozen with a 28 s backlog behind a slow subscriber (session outlives the freeze)`,
    () => {
      const { freeze, thaw } = freezer()
      return Effect.gen(function*() {
        const { label, produce, sent, topic } = yield* replacementTopics("replace-backlog")
        const slow = new Seen("slow subscriber")
        const fast = new Seen("fast subscriber")
        const generations = new Set<number | undefined>()
        const started = Date.now()
        const failures: Array<string> = []
        const noteFailure = (who: string) => (error: unknown) =>
          Effect.sync(() => failures.push(`${who} at ${Date.now() - started} ms: ${(error as Error).message}`))
        const fs = yield* topic.events().pipe(
          Stream.runForEach((e) =>
            Effect.andThen(
              Effect.sleep("40 millis"),
              Effect.sync(() => {
                generations.add(e.message.generationId)
                slow.receive(e)
              })
            )
          ),
          Effect.tapError(noteFailure("slow")),
          Effect.forkChild
        )
        const ff = yield* topic.events().pipe(
          Stream.runForEach((e) => Effect.sync(() => fast.receive(e))),
          Effect.tapError(noteFailure("fast")),
          Effect.forkChild
        )
        yield* awaitAssigned(label, 2)
        yield* Effect.sleep("500 millis")
        yield* produce(range(0, 700))
        yield* eventually(() => slow.deliveries.size >= 60, 30_000, "the slow subscriber to start")
        freeze()
        const frozenAt = Date.now() - started
        const waited = yield* eventuallyEffectBool(Effect.map(replacedMetric(label), (n) => (n ?? 0) > 0), 40_000)
        const slowAtReplacement = slow.deliveries.size
        const replacedAt = Date.now() - started
        yield* thaw
        console.log(`[replace] backlog: frozen at ${frozenAt} ms, replaced and thawed at ${replacedAt} ms`)
        console.log(
          `[replace] backlog: replacement seen while frozen: ${waited}, slow had ${slowAtReplacement} of 700`
        )
        yield* produce(range(700, 100))
        yield* eventually(
          () => (slow.has(sent) && fast.has(sent)) || fs.pollUnsafe() !== undefined || ff.pollUnsafe() !== undefined,
          40_000,
          "both subscribers to read all 800 (or one to fail)",
          () => `slow ${slow.deliveries.size}, fast ${fast.deliveries.size}`
        ).pipe(Effect.exit)
        const exitSlow = fs.pollUnsafe()
        const exitFast = ff.pollUnsafe()
        const replaced = yield* replacedMetric(label)
        console.log(
          `[replace] backlog: metric=${replaced} generations=${[...generations]} failures: ${
            failures.join(" | ") || "none"
          }`
        )
        assert.isTrue(waited, "the frozen broker made the consumer replace its client stream")
        assert.strictEqual(replaced, 1, "one replacement counted")
        if (exitSlow === undefined && exitFast === undefined) {
          const a = slow.report("replacement with backlog: slow subscriber", sent)
          const b = fast.report("replacement with backlog: fast subscriber", sent)
          assert.strictEqual(generations.size, 1, "no rebalance (the session outlives the freeze)")
          assert.strictEqual(a.lost, 0, "slow: lost")
          assert.strictEqual(b.lost, 0, "fast: lost")
          assert.strictEqual(a.duplicated, 0, "slow: delivered twice")
          assert.strictEqual(b.duplicated, 0, "fast: delivered twice")
          yield* Fiber.interrupt(fs)
          yield* Fiber.interrupt(ff)
          return
        }
        // README: "A replacement that fails before it delivers anything fails the session … with
        // KafkaError". Seen once here: the replacement's offset listing, just after the broker
        // resumed, failed within its 3 retries. Then every subscriber fails typed, and a new one
        // reads on from the committed offsets: nothing lost, nothing twice in one generation.
        for (const [who, fiber] of [["slow", fs], ["fast", ff]] as const) {
          const exit = yield* Fiber.await(fiber).pipe(Effect.timeout("10 seconds"), Effect.option)
          assert.isTrue(Option.isSome(exit), `${who}: the session's failure reached every subscriber`)
          const ended = Option.getOrThrow(exit)
          assert.isTrue(Exit.isFailure(ended), `${who}: ${String(ended)}`)
          const error = Option.getOrUndefined(Exit.findErrorOption(ended))
          assert.instanceOf(error, KafkaError, `${who}: typed, got ${String(error)}`)
        }
        const recovered = new Seen("slow subscriber, then a new one")
        for (const [id, places] of slow.deliveries) recovered.deliveries.set(id, [...places])
        const fr = yield* topic.events().pipe(
          Stream.runForEach((e) => Effect.sync(() => recovered.receive(e))),
          Effect.forkChild
        )
        yield* eventually(() => recovered.has(sent), 40_000, "a new subscriber to read the rest")
        const r = recovered.report("replacement failed, then a new subscriber (slow's + the new one's)", sent)
        assert.strictEqual(r.lost, 0, "lost")
        assert.strictEqual(r.sameGeneration, 0, "delivered twice in one generation")
        yield* Fiber.interrupt(fr)
      }).pipe(
        Effect.ensuring(thaw),
        Effect.scoped,
        Effect.provide(kafkaLayer({
          requestTimeout: "2 seconds",
          retries: 3,
          retryDelay: "200 millis",
          autoOffsetReset: "latest",
          sessionTimeout: "60 seconds",
          heartbeatInterval: "1 second"
        })),
        Effect.provide(Layer.succeed(Metric.MetricRegistry, new Map())),
        Effect.provide(quiet)
      )
    },
    90_000
  )
})

/** Polls until the condition holds (true) or the time is up (false). */
const eventuallyEffectBool = (condition: Effect.Effect<boolean>, millis: number) =>
  Effect.suspend(function loop(): Effect.Effect<boolean> {
    return Effect.flatMap(
      condition,
      (holds) => holds ? Effect.succeed(true) : Effect.andThen(Effect.sleep("100 millis"), loop)
    )
  }).pipe(Effect.timeoutOrElse({ duration: millis, orElse: () => Effect.succeed(false) }))
