/**
 * "A slow agent slows its source down instead of buffering without limit",
 * on the real broker: a topic holding 200 000 records of ~1 KiB values
 * (~200 MiB of bytes; every one of them held decoded would take far more),
 * read from the earliest offset by an agent that sleeps 1 ms per event
 * (concurrency 1, then 4 over 4 partitions) for a few seconds. While it runs:
 *
 * - `agent.stats.inFlight` stays within the README's bound,
 *   `max(256, 2 × concurrency × batch size)` plus what one read returns (up to
 *   1024 on Kafka);
 * - the events the topic decoded and handed out (`effect_faust_delivered_total`)
 *   but the agent has not handled stay within the subscriber's queue
 *   (`streamBufferMaxsize`), one client read the consumer holds while the
 *   queue is full (1024) and the agent's bound above;
 * - the live heap (after a forced GC) grows less than 150 MiB over the
 *   baseline.
 *
 * A last test reads the same backlog into memory with no bound
 * (`Topic.stream()` into an array) and checks that the live heap then grows
 * past that limit: the limit tells a bounded consumer from one that buffers.
 * Each test prints a `[backlog]` line with its figures.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Admin, ProduceAcks, Producer } from "@platformatic/kafka"
import { Effect, Fiber, Layer, Metric, Schema, Stream } from "effect"
import { Agent, App } from "effect-faust"
import { Kafka, Topic } from "effect-faust/kafka"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { quiet } from "../helpers.ts"
import { bootstrapServers, brokerAvailable, unique } from "./setup.ts"

const RECORDS = 200_000
const PARTITIONS = 4
/** Each value's `payload`: with the rest of the JSON, ~1 KiB a record. */
const PAYLOAD = 1000
/** The subscriber queue's size: the app's default (`streamBufferMaxsize`, Faust's 4096), set explicitly. */
const MAXSIZE = 4096
/** What one read takes: the consumer reads the client's stream, and an agent its subscriber, up to 1024 at once. */
const ONE_READ = 1024
/** How long each slow agent runs. */
const RUN_MS = 6_000
const MiB = 1024 * 1024
/** The live heap may grow by this much over its baseline while the slow agent runs. */
const HEAP_LIMIT = 150 * MiB

const gc: () => void = (globalThis as { gc?: () => void }).gc ?? (() => {
  v8.setFlagsFromString("--expose-gc")
  return vm.runInNewContext("gc") as () => void
})()
const fullGc = () => {
  gc()
  gc()
}
const mib = (bytes: number) => (bytes / MiB).toFixed(1)

const Value = Schema.Struct({ id: Schema.Number, payload: Schema.String })

const payload = "p".repeat(PAYLOAD)
const brokers = bootstrapServers.split(",").map((s) => s.trim())
const clientOptions = () => ({ clientId: unique("backlog-client"), bootstrapBrokers: brokers })

const layer = () =>
  Kafka.layer({
    bootstrapServers,
    commitInterval: "1 second",
    sessionTimeout: "6 seconds",
    heartbeatInterval: "500 millis",
    maxWaitTime: "100 millis",
    topicPartitions: PARTITIONS
  }).pipe(Layer.provideMerge(App.layer({ id: unique("backlog-app"), streamBufferMaxsize: MAXSIZE })))

const topicName = unique("backlog")
let backlogBytes = 0

/** The value of a topic's series (summed over its attributes), -1 when not registered. */
const series = (snapshots: ReadonlyArray<Metric.Metric.Snapshot>, id: string, channel: string): number => {
  let total = -1
  for (const s of snapshots) {
    if (s.id !== id || s.attributes?.channel !== channel) continue
    const state = s.state as { readonly count?: number | bigint; readonly value?: number | bigint }
    total = (total < 0 ? 0 : total) + Number(state.count ?? state.value ?? Number.NaN)
  }
  return total
}

/** Runs a slow agent on the backlog for `RUN_MS`, sampling every 100 ms (a forced GC and the live heap every second). */
const slowAgent = (concurrency: number) =>
  Effect.gen(function*() {
    const topic = yield* Topic.make({
      topics: [topicName],
      key: Schema.String,
      value: Value,
      groupId: unique("backlog-group")
    })
    yield* topic.registerMetrics
    // A short shutdown: stopping an agent that holds more than its bound must not outlast the test.
    const agent = yield* Agent.forEach(`backlog-slow-${concurrency}`, topic, () => Effect.sleep("1 millis"), {
      concurrency,
      shutdownTimeout: "2 seconds"
    })
    fullGc()
    const baseline = process.memoryUsage()
    const start = performance.now()
    const fiber = yield* Effect.forkChild(agent.run)
    let maxInFlight = 0
    let maxUnhandled = 0
    let maxHeap = 0
    let maxLiveHeap = baseline.heapUsed
    let maxLiveTotal = baseline.heapUsed + baseline.arrayBuffers
    let maxRss = 0
    let delivered = 0
    const live: Array<string> = []
    let nextGc = 1_000
    while (performance.now() - start < RUN_MS) {
      yield* Effect.sleep("100 millis")
      const snapshots = yield* Metric.snapshot
      const stats = agent.stats
      // the agent's counters first: an event counted as handled was delivered before
      const handled = stats.handled
      maxInFlight = Math.max(maxInFlight, stats.inFlight)
      delivered = series(snapshots, "effect_faust_delivered_total", topic.label)
      maxUnhandled = Math.max(maxUnhandled, delivered - handled)
      const m = process.memoryUsage()
      maxHeap = Math.max(maxHeap, m.heapUsed)
      maxRss = Math.max(maxRss, m.rss)
      if (performance.now() - start >= nextGc) {
        nextGc += 1_000
        fullGc()
        const l = process.memoryUsage()
        live.push(mib(l.heapUsed - baseline.heapUsed))
        maxLiveHeap = Math.max(maxLiveHeap, l.heapUsed)
        maxLiveTotal = Math.max(maxLiveTotal, l.heapUsed + l.arrayBuffers)
      }
    }
    const handled = agent.stats.handled
    const agentBound = Math.max(256, 2 * concurrency) + ONE_READ
    const topicBound = MAXSIZE + ONE_READ + agentBound
    console.log(
      `[backlog] concurrency ${concurrency}, 1 ms/event, ${RECORDS} records (${
        mib(backlogBytes)
      } MiB) behind it: handled ${handled} in ${
        RUN_MS / 1000
      } s; topic delivered ${delivered}; max delivered − handled ${maxUnhandled} (bound ${topicBound}); agent inFlight max ${maxInFlight} (bound ${agentBound}); live heap growth max ${
        mib(maxLiveHeap - baseline.heapUsed)
      } MiB (limit ${mib(HEAP_LIMIT)}; per second: ${live.join(", ")}), live heap+arrayBuffers growth max ${
        mib(maxLiveTotal - baseline.heapUsed - baseline.arrayBuffers)
      } MiB; heap peak ${mib(maxHeap)} MiB over a baseline of ${mib(baseline.heapUsed)} MiB, rss peak ${
        mib(maxRss)
      } MiB`
    )
    yield* Fiber.interrupt(fiber)
    assert.isAtMost(maxInFlight, agentBound, "agent.stats.inFlight within max(256, 2 × concurrency) + one read")
    assert.isAtMost(
      maxUnhandled,
      topicBound,
      "events read and not handled within the queue, one read and the agent's bound"
    )
    assert.isBelow(maxLiveHeap - baseline.heapUsed, HEAP_LIMIT, "live heap growth under the limit")
    assert.isAbove(handled, 500, "the agent handled events")
    assert.isBelow(delivered, RECORDS / 4, "the topic read a small part of the backlog")
  }).pipe(Effect.scoped, Effect.provide(layer()), Effect.provide(quiet))

describe.skipIf(!brokerAvailable)("a slow agent on a 200 000-record backlog", () => {
  beforeAll(async () => {
    const admin = new Admin(clientOptions())
    try {
      await admin.createTopics({ topics: [topicName], partitions: PARTITIONS, replicas: 1 })
    } finally {
      await admin.close()
    }
    const producer = new Producer({ ...clientOptions(), idempotent: true })
    const started = performance.now()
    try {
      for (let i = 0; i < RECORDS; i += 1000) {
        const messages = []
        for (let j = i; j < i + 1000; j++) {
          const key = Buffer.from(JSON.stringify(`k${j % 1000}`))
          const value = Buffer.from(JSON.stringify({ id: j, payload }))
          backlogBytes += key.length + value.length
          messages.push({ topic: topicName, partition: j % PARTITIONS, key, value })
        }
        await producer.send({ acks: ProduceAcks.ALL, idempotent: true, messages })
      }
    } finally {
      await producer.close()
    }
    console.log(
      `[backlog] produced ${RECORDS} records (${
        mib(backlogBytes)
      } MiB of keys and values, ${PARTITIONS} partitions) in ${((performance.now() - started) / 1000).toFixed(1)} s`
    )
  }, 60_000)

  afterAll(async () => {
    const admin = new Admin(clientOptions())
    try {
      await admin.deleteTopics({ topics: [topicName] })
    } catch {
      // the topic is unique to this run; a broker gone by now leaves it behind
    } finally {
      await admin.close()
    }
  })

  it.live("concurrency 1: events read and not handled, and the heap, stay bounded", () => slowAgent(1), 30_000)

  it.live("concurrency 4 over 4 partitions: the same bounds", () => slowAgent(4), 30_000)

  it.live(
    "control: the same backlog held in memory without a bound takes more heap than the limit",
    () =>
      Effect.gen(function*() {
        const topic = yield* Topic.make({
          topics: [topicName],
          key: Schema.String,
          value: Value,
          groupId: unique("backlog-control")
        })
        fullGc()
        const baseline = process.memoryUsage()
        const held: Array<unknown> = []
        yield* topic.events().pipe(
          Stream.take(RECORDS),
          Stream.runForEachArray((events) =>
            Effect.sync(() => {
              for (const event of events) held.push(event)
            })
          )
        )
        fullGc()
        const after = process.memoryUsage()
        const growth = after.heapUsed - baseline.heapUsed
        console.log(
          `[backlog] control: all ${held.length} events held in an array: live heap growth ${mib(growth)} MiB (limit ${
            mib(HEAP_LIMIT)
          }), heap+arrayBuffers growth ${mib(growth + after.arrayBuffers - baseline.arrayBuffers)} MiB`
        )
        assert.strictEqual(held.length, RECORDS)
        assert.isAbove(growth, HEAP_LIMIT, "an unbounded consumer of this backlog would break the limit")
      }).pipe(Effect.scoped, Effect.provide(layer()), Effect.provide(quiet)),
    30_000
  )
})
