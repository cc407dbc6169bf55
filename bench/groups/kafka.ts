/**
 * Scenario 7 (issue 5): Kafka throughput through `Topic` against the raw
 * `@platformatic/kafka` client it is built on, on the same broker in the
 * same run.
 *
 * - produce: N keyed records (small JSON values) through `Topic.sendSoon`
 *   (every future awaited at the end), against a raw `Producer.send` loop
 *   of the same records in batches of the Kafka layer's `maxBatchSize`
 *   (1000), one request in flight, `acks: ALL`, idempotent — what the
 *   topic's send buffer does. `Topic.send` one at a time and `sendAll`
 *   (values only: it takes no keys) are reported beside it.
 * - consume: the records of a pre-filled topic (ten times N: see below)
 *   through `Topic.stream()` (a fresh consumer group each run, from
 *   earliest; values JSON-decoded and checked by a Schema), against a raw
 *   `Consumer.consume` stream with the same group and fetch settings
 *   (`mode: "committed"`, `fallbackMode: "earliest"`, same `maxWaitTime`,
 *   `autocommit: false`, at most `FETCH_BYTES` per partition per fetch),
 *   key and value `JSON.parse`d. Timed from the first record received to
 *   the last (the group join, ~the same on both sides, is not counted).
 *   The client parses a whole fetch before it hands out the first record
 *   of it, so the first fetch's parsing is outside the timer: over 10⁵
 *   records (two fetches of 4 MiB) that left out more than half of the
 *   client's work and the rates said more about the fetch size than about
 *   the reader; over 10⁶ records (~17 fetches of 4 MiB, ~68 of 1 MiB) it is
 *   ~6 % or less.
 *
 * Anchors on the same broker, same records, same run (issue 5's "anchors"):
 *
 * - KafkaJS (`kafkajs`, the Node client most Kafka users already have), its
 *   defaults (acks -1, not idempotent, autocommit) but fetches of at most
 *   `FETCH_BYTES` per partition as every side (its default, 1 MiB, too): produce with
 *   `producer.send` of 1000 records at a time, awaited one after another;
 *   consume with `consumer.run({ eachBatch })` (a fresh group, from the
 *   beginning), key and value `JSON.parse`d. Each is its own pair with the
 *   `Topic` case above as candidate, target ≥ 1× KafkaJS.
 * - Faust itself on Kafka (`bench/faust/kafka_bench.py` in the virtualenv of
 *   scenario 6, one Python process per run, see `faust-kafka.ts`): `await
 *   topic.send(...)` × N then every future; an agent on the pre-filled topic.
 *   Faust is slow, so these pairs run `FAUST_N` (50 000, or
 *   `BENCH_KAFKA_FAUST_N`) records per run on both sides; target ≥ 20× Faust.
 *   Skipped (with the reason on stderr) when Faust cannot run: in `--smoke`
 *   without an existing `bench/faust/.venv`, or with `BENCH_KAFKA_FAUST=0`.
 *
 * Every run uses fresh topic names and group ids. With no broker at
 * `KAFKA_BOOTSTRAP_SERVERS` (default 127.0.0.1:9092) the group is skipped.
 */
import { Consumer, ProduceAcks, Producer } from "@platformatic/kafka"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { Kafka as KafkaJS, logLevel, Partitioners, type Producer as KafkaJSProducer } from "kafkajs"
import { connect } from "node:net"
import { Kafka, Topic } from "../../src/kafka/index.ts"
import { Agent, App, CAPACITY, type FutureMessage } from "../lib/app.ts"
import { type Case, now, type Pair, progress } from "../lib/harness.ts"
import { checkFaust, faustConsume, faustProduce } from "./faust-kafka.ts"

export const bootstrapServers = process.env.KAFKA_BOOTSTRAP_SERVERS ?? "127.0.0.1:9092"
const brokers = bootstrapServers.split(",").map((s) => s.trim()).filter((s) => s.length > 0)

/** Records per produce request on both sides: the Kafka layer's default `maxBatchSize`. */
export const BATCH = 1000
/** How long a fetch waits for records, on both sides: the Kafka layer's default. */
const MAX_WAIT_TIME = 500
/**
 * At most this much per partition per fetch, on every side (`FETCH_BYTES`
 * overrides it): the Kafka layer's default `consumerMaxFetchSize`, KafkaJS's
 * and Kafka's own default. The raw client's own default is 50 MB.
 */
const FETCH_BYTES = Number(process.env.FETCH_BYTES ?? 1024 * 1024)

let counter = 0
const unique = (prefix: string): string =>
  `bench-${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 6)}`

/** Resolves with why the broker cannot be used, or `undefined` when it answers. */
export const brokerUnavailable = (): Promise<string | undefined> =>
  new Promise((resolve) => {
    const server = brokers[0] ?? ""
    const at = server.lastIndexOf(":")
    const socket = connect({ host: server.slice(0, at), port: Number(server.slice(at + 1)) })
    const no = (why: string) => {
      socket.destroy()
      resolve(`no Kafka broker answers at ${bootstrapServers} (${why}); start one with \`npm run kafka:up\``)
    }
    socket.setTimeout(2_000)
    socket.once("connect", () => {
      socket.destroy()
      resolve(undefined)
    })
    socket.once("timeout", () => no("timeout"))
    socket.once("error", (e) => no((e as NodeJS.ErrnoException).code ?? e.message))
  })

// ---------------------------------------------------------------------------------------------
// the records

const Value = Schema.Struct({ id: Schema.Number, user: Schema.String, qty: Schema.Number, ok: Schema.Boolean })
type Value = typeof Value.Type

const keyOf = (i: number): string => `k${i % 1000}`
const valueOf = (i: number): Value => ({ id: i, user: `user-${i % 97}`, qty: i % 10, ok: (i & 1) === 0 })

const clientBase = () => ({
  clientId: unique("client"),
  bootstrapBrokers: [...brokers],
  connectTimeout: 5_000,
  requestTimeout: 30_000,
  retries: 3,
  retryDelay: 250
})

const rawProducer = () => new Producer({ ...clientBase(), idempotent: true, retries: 3 })

const createTopic = async (name: string, partitions: number): Promise<void> => {
  const { Admin } = await import("@platformatic/kafka")
  const admin = new Admin(clientBase())
  try {
    await admin.createTopics({ topics: [name], partitions, replicas: 1 })
  } finally {
    await admin.close()
  }
}

/** The raw producer loop, also used to pre-fill the consume topic. */
const rawProduce = async (producer: Producer, topic: string, from: number, n: number, batch = BATCH): Promise<void> => {
  for (let i = from; i < from + n; i += batch) {
    const size = Math.min(batch, from + n - i)
    const messages = new Array(size)
    for (let j = 0; j < size; j++) {
      messages[j] = {
        topic,
        partition: 0,
        key: Buffer.from(JSON.stringify(keyOf(i + j))),
        value: Buffer.from(JSON.stringify(valueOf(i + j)))
      }
    }
    const result = await producer.send({ acks: ProduceAcks.ALL, idempotent: true, messages })
    if (result.offsets === undefined || result.offsets.length === 0) throw new Error("no offsets from the broker")
  }
}

/** This process's CPU time since `from`, in milliseconds. */
const cpuMsSince = (from: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(from)
  return (used.user + used.system) / 1000
}

// ---------------------------------------------------------------------------------------------
// effect-faust side

const kafkaLayer = () =>
  Kafka.layer({
    bootstrapServers,
    maxWaitTime: MAX_WAIT_TIME,
    maxBatchSize: BATCH,
    consumerMaxFetchSize: FETCH_BYTES,
    topicPartitions: 1
  }).pipe(
    Layer.provideMerge(App.layer({ id: unique("app"), streamBufferMaxsize: CAPACITY }))
  )

const makeTopic = (name: string) =>
  Topic.make({ topics: [name], key: Schema.String, value: Value, partitions: 1, groupId: unique("group") })

const runTopic = <A, E>(effect: Effect.Effect<A, E, App.App | Kafka.Kafka>): Promise<A> =>
  Effect.runPromise(Effect.provide(effect, kafkaLayer()) as Effect.Effect<A, E>)

/** One warm-up send to declare the topic and connect, outside the timed part. */
const warm = (topic: Topic.Topic<string, Value>) => topic.send({ key: "warm", value: valueOf(-1) })

type ProduceMode = "sendSoon" | "send" | "sendAll"

const topicProduce = (mode: ProduceMode, topicName: () => string): Case => ({
  label: mode === "sendSoon"
    ? "Topic.sendSoon × N, then await every future"
    : mode === "send"
    ? "Topic.send one at a time (waits for each ack)"
    : `Topic.sendAll(${BATCH} values, no keys)`,
  run: (n) =>
    runTopic(Effect.gen(function*() {
      const topic = yield* makeTopic(topicName())
      yield* warm(topic)
      const start = now()
      const cpu = process.cpuUsage()
      if (mode === "sendSoon") {
        const futures = new Array<FutureMessage.FutureMessage<string, Value>>(n)
        for (let i = 0; i < n; i++) futures[i] = yield* topic.sendSoon({ key: keyOf(i), value: valueOf(i) })
        for (let i = 0; i < n; i++) yield* futures[i].await
      } else if (mode === "send") {
        for (let i = 0; i < n; i++) yield* topic.send({ key: keyOf(i), value: valueOf(i) })
      } else {
        for (let i = 0; i < n; i += BATCH) {
          const size = Math.min(BATCH, n - i)
          const values = new Array<Value>(size)
          for (let j = 0; j < size; j++) values[j] = valueOf(i + j)
          yield* topic.sendAll(values)
        }
      }
      return { elapsedMs: now() - start, cpuMs: cpuMsSince(cpu) }
    }))
})

const topicConsume = (topicName: () => string): Case => ({
  label: "Topic.stream() (new group, from earliest)",
  run: (n) =>
    runTopic(Effect.gen(function*() {
      const topic = yield* makeTopic(topicName())
      let start = 0
      let cpu = process.cpuUsage()
      let count = 0
      let sum = 0
      yield* topic.stream().pipe(
        Stream.take(n),
        Stream.runForEachArray((values) => {
          if (count === 0) {
            start = now()
            cpu = process.cpuUsage()
          }
          for (let i = 0; i < values.length; i++) sum += values[i].qty
          count += values.length
          return Effect.void
        })
      )
      const elapsedMs = now() - start
      if (count !== n || sum < 0) throw new Error(`read ${count} of ${n}`)
      return { elapsedMs, cpuMs: cpuMsSince(cpu) }
    }))
})

/** An agent in batch mode (Faust's `stream.take`): each batch acknowledged once its handler is done. */
const agentBatchConsume = (topicName: () => string): Case => ({
  label: "Agent.forEach, batch of 1000 within 100 ms (new group, from earliest)",
  run: (n) =>
    runTopic(Effect.gen(function*() {
      const topic = yield* makeTopic(topicName())
      let start = 0
      let cpu = process.cpuUsage()
      let count = 0
      let sum = 0
      const done = Deferred.makeUnsafe<void>()
      const agent = yield* Agent.forEach("bench-batch", topic, (values) =>
        Effect.sync(() => {
          if (count === 0) {
            start = now()
            cpu = process.cpuUsage()
          }
          for (let i = 0; i < values.length; i++) sum += values[i].qty
          count += values.length
          if (count >= n) Deferred.doneUnsafe(done, Effect.void)
        }), { batch: { size: 1000, within: "100 millis" } })
      const fiber = yield* Effect.forkChild(agent.run)
      yield* Deferred.await(done)
      const elapsedMs = now() - start
      const cpuMs = cpuMsSince(cpu)
      yield* Fiber.interrupt(fiber)
      if (count < n || sum < 0) throw new Error(`read ${count} of ${n}`)
      return { elapsedMs, cpuMs }
    }))
})

// ---------------------------------------------------------------------------------------------
// raw @platformatic/kafka side

const rawProduceCase = (topicName: () => string, batch = BATCH): Case => ({
  label: batch === 1
    ? "raw Producer.send one record at a time, acks ALL, idempotent"
    : `raw Producer.send(${batch} records), acks ALL, idempotent`,
  run: async (n) => {
    const producer = rawProducer()
    try {
      const topic = topicName()
      await createTopic(topic, 1)
      await rawProduce(producer, topic, -1, 1, batch) // connect, outside the timed part
      const start = now()
      const cpu = process.cpuUsage()
      await rawProduce(producer, topic, 0, n, batch)
      return { elapsedMs: now() - start, cpuMs: cpuMsSince(cpu) }
    } finally {
      await producer.close()
    }
  }
})

const rawConsumeCase = (topicName: () => string): Case => ({
  label: "raw Consumer.consume() stream (new group, from earliest)",
  run: async (n) => {
    const consumer = new Consumer({
      ...clientBase(),
      groupId: unique("group"),
      autocommit: false,
      sessionTimeout: 10_000,
      rebalanceTimeout: 10_000,
      heartbeatInterval: 1_000,
      maxWaitTime: MAX_WAIT_TIME,
      maxBytesPerPartition: FETCH_BYTES
    })
    try {
      const stream = await consumer.consume({
        topics: [topicName()],
        mode: "committed",
        fallbackMode: "earliest",
        autocommit: false,
        maxWaitTime: MAX_WAIT_TIME
      })
      let start = 0
      let cpu = process.cpuUsage()
      let count = 0
      let sum = 0
      for await (const message of stream) {
        if (count === 0) {
          start = now()
          cpu = process.cpuUsage()
        }
        const key = JSON.parse(message.key!.toString("utf8")) as string
        const value = JSON.parse(message.value!.toString("utf8")) as Value
        sum += value.qty + (key.length > 0 ? 0 : 1)
        if (++count >= n) break
      }
      const elapsedMs = now() - start
      const cpuMs = cpuMsSince(cpu)
      await stream.close().catch(() => undefined)
      if (count !== n || sum < 0) throw new Error(`read ${count} of ${n}`)
      return { elapsedMs, cpuMs }
    } finally {
      await consumer.close(true).catch(() => undefined)
    }
  }
})

// ---------------------------------------------------------------------------------------------
// KafkaJS side

const kafkajsClient = () =>
  new KafkaJS({
    clientId: unique("kafkajs"),
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5_000
  })

const kafkajsProduce = async (producer: KafkaJSProducer, topic: string, from: number, n: number): Promise<void> => {
  for (let i = from; i < from + n; i += BATCH) {
    const size = Math.min(BATCH, from + n - i)
    const messages = new Array<{ key: string; value: string }>(size)
    for (let j = 0; j < size; j++) {
      messages[j] = { key: JSON.stringify(keyOf(i + j)), value: JSON.stringify(valueOf(i + j)) }
    }
    const result = await producer.send({ topic, messages, acks: -1 })
    if (result.length === 0) throw new Error("no offsets from the broker")
  }
}

const kafkajsProduceCase = (topicName: () => string): Case => ({
  label: `KafkaJS producer.send(${BATCH} records), acks -1 (KafkaJS defaults)`,
  run: async (n) => {
    const producer = kafkajsClient().producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false
    })
    await producer.connect()
    try {
      const topic = topicName()
      await createTopic(topic, 1)
      await kafkajsProduce(producer, topic, -1, 1) // metadata and connection, outside the timed part
      const start = now()
      await kafkajsProduce(producer, topic, 0, n)
      return { elapsedMs: now() - start }
    } finally {
      await producer.disconnect()
    }
  }
})

const kafkajsConsumeCase = (topicName: () => string): Case => ({
  label: "KafkaJS consumer.run({ eachBatch }) (new group, from beginning)",
  run: async (n) => {
    const consumer = kafkajsClient().consumer({
      groupId: unique("group"),
      sessionTimeout: 10_000,
      rebalanceTimeout: 10_000,
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: MAX_WAIT_TIME,
      maxBytesPerPartition: FETCH_BYTES
    })
    await consumer.connect()
    try {
      await consumer.subscribe({ topics: [topicName()], fromBeginning: true })
      let start = 0
      let end = 0
      let count = 0
      let sum = 0
      let finish!: () => void
      const finished = new Promise<void>((resolve) => (finish = resolve))
      await consumer.run({
        eachBatch: async ({ batch }) => {
          if (count >= n) return
          if (count === 0) start = now()
          for (const message of batch.messages) {
            const key = JSON.parse(message.key!.toString("utf8")) as string
            const value = JSON.parse(message.value!.toString("utf8")) as Value
            sum += value.qty + (key.length > 0 ? 0 : 1)
            if (++count >= n) {
              end = now()
              finish()
              break
            }
          }
        }
      })
      await finished
      if (count !== n || sum < 0) throw new Error(`read ${count} of ${n}`)
      return { elapsedMs: end - start }
    } finally {
      await consumer.disconnect()
    }
  }
})

// ---------------------------------------------------------------------------------------------

/** Records per run in the "vs Faust" pairs (both sides): Faust runs at a few thousand records a second. */
const FAUST_N = Number(process.env.BENCH_KAFKA_FAUST_N ?? 50_000)

/**
 * The pairs: produce pairs of `n` records, consume pairs of `consumeN`
 * (ten times `n` unless given), after pre-filling the consume topic.
 */
export const kafka = async (n: number, consumeN = 10 * n): Promise<Array<Pair>> => {
  const produceTopic = () => unique("produce")
  const consumeTopic = unique("consume")
  await createTopic(consumeTopic, 1)
  const producer = rawProducer()
  try {
    await rawProduce(producer, consumeTopic, 0, consumeN)
  } finally {
    await producer.close()
  }
  const sendN = Math.max(1, Math.min(n, Math.round(n / 50)))
  const note = `broker ${bootstrapServers}, 1 partition, fresh topics and groups per run`
  // child.ts does not pass --smoke to the group; it is on this process's command line.
  const faust = checkFaust(process.argv.includes("--smoke"))
  const faustN = Math.max(1, Math.min(n, FAUST_N))
  if (typeof faust === "string") progress(`kafka: no "vs Faust" pairs: ${faust}`)
  const faustPairs: Array<Pair> = typeof faust === "string" ? [] : [
    {
      id: "s7-kafka-produce-faust",
      scenario: 7,
      title: "Kafka produce vs Faust",
      n: faustN,
      candidate: topicProduce("sendSoon", produceTopic),
      baseline: faustProduce(faust, bootstrapServers, produceTopic),
      latency: false,
      target: { ratio: 20, text: "≥ 20× Faust" },
      note:
        `${faustN} records per run on both sides (Faust is slow); Faust ${faust.faustVersion}, aiokafka ${faust.aiokafkaVersion}, ${faust.python}, one Python process per run`
    },
    {
      id: "s7-kafka-consume-faust",
      scenario: 7,
      title: "Kafka consume vs Faust",
      n: faustN,
      candidate: topicConsume(() => consumeTopic),
      baseline: faustConsume(faust, bootstrapServers, () => consumeTopic),
      latency: false,
      target: { ratio: 20, text: "≥ 20× Faust" },
      note:
        `the first ${faustN} records of the pre-filled topic on both sides; Faust ${faust.faustVersion}, aiokafka ${faust.aiokafkaVersion}, ${faust.python}`
    }
  ]
  return [
    {
      id: "s7-kafka-produce",
      scenario: 7,
      title: "Kafka produce (keyed JSON records)",
      n,
      candidate: topicProduce("sendSoon", produceTopic),
      baseline: rawProduceCase(produceTopic),
      extras: [topicProduce("sendAll", produceTopic)],
      extrasAre: "candidates",
      latency: false,
      target: { ratio: 0.8, text: "≥ 0.8× raw client (sendAll ≥ 0.9×)" },
      note
    },
    {
      id: "s7-kafka-send",
      scenario: 7,
      title: "Kafka produce, Topic.send one at a time",
      n: sendN,
      candidate: topicProduce("send", produceTopic),
      baseline: rawProduceCase(produceTopic, 1),
      latency: false,
      note: `${sendN} records per run: each send waits for its ack, so one record per request on both sides`
    },
    {
      id: "s7-kafka-consume",
      scenario: 7,
      title: "Kafka consume (consumer group, from earliest)",
      n: consumeN,
      candidate: topicConsume(() => consumeTopic),
      baseline: rawConsumeCase(() => consumeTopic),
      latency: false,
      target: { ratio: 0.9, text: "≥ 0.9× raw client" },
      note
    },
    {
      id: "s7-kafka-consume-agent-batch",
      scenario: 7,
      title: "Kafka consume through an agent in batch mode",
      n: consumeN,
      candidate: agentBatchConsume(() => consumeTopic),
      baseline: rawConsumeCase(() => consumeTopic),
      latency: false,
      target: { ratio: 0.9, text: "≥ 0.9× raw client" },
      note
    },
    {
      id: "s7-kafka-produce-kafkajs",
      scenario: 7,
      title: "Kafka produce vs KafkaJS",
      n,
      candidate: topicProduce("sendSoon", produceTopic),
      baseline: kafkajsProduceCase(produceTopic),
      latency: false,
      target: { ratio: 1, text: "≥ 1× KafkaJS" },
      note
    },
    {
      id: "s7-kafka-consume-agent-batch-kafkajs",
      scenario: 7,
      title: "Kafka consume vs KafkaJS, both a batch at a time",
      n: consumeN,
      candidate: agentBatchConsume(() => consumeTopic),
      baseline: kafkajsConsumeCase(() => consumeTopic),
      latency: false,
      target: { ratio: 1, text: "≥ 1× KafkaJS" },
      note
    },
    {
      id: "s7-kafka-consume-kafkajs",
      scenario: 7,
      title: "Kafka consume vs KafkaJS",
      n: consumeN,
      candidate: topicConsume(() => consumeTopic),
      baseline: kafkajsConsumeCase(() => consumeTopic),
      latency: false,
      target: { ratio: 1, text: "≥ 1× KafkaJS" },
      note
    },
    ...faustPairs
  ]
}
