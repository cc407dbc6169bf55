/**
 * Memory with a backlog (issue requirement): "with a 10⁶-record backlog and a
 * deliberately slow agent, the consumer's heap stays bounded (fetching pauses
 * while subscriber queues are full); report the peak."
 *
 * Fills a fresh topic with N keyed JSON records (raw `@platformatic/kafka`
 * Producer, batches of 1000, acks ALL, idempotent), then reads it from the
 * earliest offset in three phases, each in a child process of its own (a
 * fresh heap: GC forced and the baseline taken just before reading starts),
 * each with a fresh consumer group, for `seconds`:
 *
 * - `agent`: `Agent.forEach` on a `Topic` (public API: `Kafka.layer` +
 *   `App.layer` with default settings), a handler that sleeps 1 ms per event;
 * - `agent4`: the same with `concurrency: 4` (the agent then reads through
 *   its reader fiber and in-flight gate; a lone instance reads for itself);
 * - `batch`: the same agent in batch mode (`{ size: 100, within: 100 ms }`),
 *   a handler that sleeps 100 ms per batch;
 * - `raw`: the raw client alone, `Consumer.consume()` read with
 *   `for await`, value `JSON.parse`d and a 1 ms timer awaited per message:
 *   the client's own buffering, for comparison.
 *
 * Every 100 ms each phase samples `process.memoryUsage()` (heapUsed, rss,
 * external, arrayBuffers), events handled, and for the agents `agent.stats`
 * (inFlight) and the topic's public metrics (`effect_faust_delivered_total`:
 * events the topic decoded and handed to its subscriber, the subscriber's
 * `effect_faust_queue_depth`, `effect_faust_consumer_lag`). Every 5 s it also
 * forces a GC and samples the live heap. The summary compares peaks of the
 * first and last 10 s (a heap that grows with time would show there), and
 * estimates the records held in memory from the growth and a calibrated
 * per-record size. Agents stop with a 5 s `shutdownTimeout` (what they hold
 * beyond it is left unacknowledged), so a phase ends soon after `seconds`.
 *
 * Usage: node_modules/.bin/node --expose-gc bench/tools/kafka-backlog.ts [records=1000000] [seconds=40] [valueBytes=256] [partitions=1]
 * Exits 1 with one line saying why when no broker answers at
 * KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092).
 */
import { Admin, Consumer, ProduceAcks, Producer } from "@platformatic/kafka"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import { spawn } from "node:child_process"
import { setTimeout as sleep } from "node:timers/promises"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { Agent, App } from "../../src/index.ts"
import { Kafka, Topic } from "../../src/kafka/index.ts"
import { bootstrapServers, brokerUnavailable } from "../groups/kafka.ts"

const brokers = bootstrapServers.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
const MiB = 1024 * 1024
const SAMPLE_MS = 100
const LIVE_EVERY_MS = 5_000

/** `global.gc`, exposed even when the process was started without `--expose-gc`. */
const gc: () => void = (globalThis as { gc?: () => void }).gc ?? (() => {
  v8.setFlagsFromString("--expose-gc")
  return vm.runInNewContext("gc") as () => void
})()

const fullGc = () => {
  gc()
  gc()
}

const unique = (prefix: string): string =>
  `backlog-${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`

// ---------------------------------------------------------------------------------------------
// the records

const Value = Schema.Struct({
  id: Schema.Number,
  user: Schema.String,
  qty: Schema.Number,
  ok: Schema.Boolean,
  note: Schema.String
})
type Value = typeof Value.Type

const keyOf = (i: number): string => `k${i % 1000}`
const valueOf = (i: number, pad: string): Value => ({
  id: i,
  user: `user-${i % 97}`,
  qty: i % 10,
  ok: (i & 1) === 0,
  note: pad
})
/** The `note` that makes a value's JSON about `valueBytes` long. */
const padFor = (valueBytes: number): string => {
  const bare = JSON.stringify(valueOf(999_999, "")).length
  return "x".repeat(Math.max(0, valueBytes - bare))
}

const clientBase = () => ({
  clientId: unique("client"),
  bootstrapBrokers: [...brokers],
  connectTimeout: 5_000,
  requestTimeout: 30_000,
  retries: 3,
  retryDelay: 250
})

const withAdmin = async <A>(f: (admin: Admin) => Promise<A>): Promise<A> => {
  const admin = new Admin(clientBase())
  try {
    return await f(admin)
  } finally {
    await admin.close()
  }
}

/** The raw producer: batches of 1000, acks ALL, idempotent, one request in flight. */
const fill = async (topic: string, n: number, partitions: number, pad: string): Promise<number> => {
  const producer = new Producer({ ...clientBase(), idempotent: true })
  let bytes = 0
  try {
    for (let i = 0; i < n; i += 1000) {
      const size = Math.min(1000, n - i)
      const messages = new Array(size)
      for (let j = 0; j < size; j++) {
        const key = Buffer.from(JSON.stringify(keyOf(i + j)))
        const value = Buffer.from(JSON.stringify(valueOf(i + j, pad)))
        bytes += key.length + value.length
        messages[j] = { topic, partition: (i + j) % partitions, key, value }
      }
      const result = await producer.send({ acks: ProduceAcks.ALL, idempotent: true, messages })
      if (result.offsets === undefined || result.offsets.length === 0) throw new Error("no offsets from the broker")
    }
  } finally {
    await producer.close()
  }
  return bytes
}

/**
 * A rough heap + buffer cost of one record held in memory: the client's
 * message (key and value bytes, offset, timestamp, headers) and its decoded
 * value, measured on 20 000 look-alikes.
 */
const calibrate = (pad: string): number => {
  const count = 20_000
  fullGc()
  const before = process.memoryUsage()
  const keep: Array<unknown> = new Array(count)
  const metadata = { consumer: { groupId: "g", memberId: "m", generationId: 1, coordinatorId: 1 } }
  for (let i = 0; i < count; i++) {
    const value = Buffer.from(JSON.stringify(valueOf(i, pad)))
    keep[i] = {
      key: Buffer.from(JSON.stringify(keyOf(i))),
      value,
      headers: new Map(),
      headerEntries: [],
      topic: "t",
      partition: 0,
      offset: BigInt(i),
      timestamp: BigInt(Date.now()),
      leaderEpoch: 0,
      metadata,
      commit: () => undefined,
      decoded: JSON.parse(value.toString("utf8"))
    }
  }
  fullGc()
  const after = process.memoryUsage()
  const per = (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / count
  if (keep.length !== count) throw new Error("unreachable")
  return per
}

// ---------------------------------------------------------------------------------------------
// a phase, in a child process

type PhaseKind = "agent" | "agent4" | "batch" | "raw"

/** Each agent phase: its concurrency and batch size (1 without a batch). */
const agentShape = (kind: PhaseKind): { readonly concurrency: number; readonly batch: number } =>
  kind === "agent4" ? { concurrency: 4, batch: 1 } : kind === "batch" ? { concurrency: 1, batch: 100 } : {
    concurrency: 1,
    batch: 1
  }
/** How long a stopping agent may finish what it read (its `shutdownTimeout`); what is left is read again. */
const SHUTDOWN = "5 seconds"

interface Sample {
  readonly t: number
  readonly heapUsed: number
  readonly rss: number
  readonly external: number
  readonly arrayBuffers: number
  readonly handled: number
  /** agent.stats.inFlight (agents only) */
  readonly inFlight: number
  /** the topic's delivered_total (agents only) */
  readonly delivered: number
  /** the subscriber queue's depth (agents only) */
  readonly queued: number
  /** the topic's consumer lag, summed over partitions (agents only; -1 before the first reading) */
  readonly lag: number
}

interface LiveSample {
  readonly t: number
  readonly heapUsed: number
  readonly arrayBuffers: number
  readonly rss: number
}

interface PhaseResult {
  readonly kind: PhaseKind
  readonly label: string
  readonly seconds: number
  readonly baseline: NodeJS.MemoryUsage
  readonly samples: ReadonlyArray<Sample>
  readonly live: ReadonlyArray<LiveSample>
  readonly endAfterGc: NodeJS.MemoryUsage
  readonly handled: number
  readonly stopMs: number
}

const phaseLabel = (kind: PhaseKind): string =>
  kind === "agent"
    ? "effect-faust Agent.forEach, 1 ms/event (Effect.sleep)"
    : kind === "agent4"
    ? "effect-faust Agent.forEach, concurrency 4, 1 ms/event (Effect.sleep)"
    : kind === "batch"
    ? "effect-faust Agent.forEach batch { size: 100, within: 100 ms }, 100 ms/batch"
    : "raw Consumer.consume() for await, 1 ms timer/message"

/** Samples the process every 100 ms (and, after a forced GC, the live heap every 5 s). */
class Sampler {
  readonly samples: Array<Sample> = []
  readonly live: Array<LiveSample> = []
  readonly start = performance.now()
  private nextLive = LIVE_EVERY_MS
  private nextPrint = 5_000
  readonly kind: PhaseKind
  constructor(kind: PhaseKind) {
    this.kind = kind
  }
  elapsed(): number {
    return performance.now() - this.start
  }
  sample(counters: Omit<Sample, "t" | "heapUsed" | "rss" | "external" | "arrayBuffers">): void {
    const t = this.elapsed()
    const m = process.memoryUsage()
    this.samples.push({
      t,
      heapUsed: m.heapUsed,
      rss: m.rss,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      ...counters
    })
    if (t >= this.nextLive) {
      this.nextLive += LIVE_EVERY_MS
      fullGc()
      const l = process.memoryUsage()
      this.live.push({ t, heapUsed: l.heapUsed, arrayBuffers: l.arrayBuffers, rss: l.rss })
    }
    if (t >= this.nextPrint) {
      this.nextPrint += 5_000
      const agentPart = this.kind === "raw"
        ? ""
        : `, topic delivered ${counters.delivered}, queue ${counters.queued}, agent inFlight ${counters.inFlight}, lag ${counters.lag}`
      console.log(
        `[backlog] ${this.kind} t=${(t / 1000).toFixed(0)}s heap ${mib(m.heapUsed)} MiB, arrayBuffers ${
          mib(m.arrayBuffers)
        } MiB, rss ${mib(m.rss)} MiB, handled ${counters.handled}${agentPart}`
      )
    }
  }
}

const readMetric = (
  snapshots: ReadonlyArray<Metric.Metric.Snapshot>,
  id: string,
  channel: string,
  queue?: string
): number => {
  let total = -1
  for (const s of snapshots) {
    if (s.id !== id || s.attributes?.channel !== channel) continue
    if (queue !== undefined && s.attributes?.queue !== queue) continue
    const state = s.state as { readonly count?: number | bigint; readonly value?: number | bigint }
    const v = state.count !== undefined ? Number(state.count) : state.value !== undefined ? Number(state.value) : NaN
    total = (total < 0 ? 0 : total) + v
  }
  return total
}

const runAgentPhase = (kind: "agent" | "agent4" | "batch", name: string, seconds: number): Promise<PhaseResult> => {
  const layer = Kafka.layer({ bootstrapServers }).pipe(Layer.provideMerge(App.layer({ id: unique("app") })))
  const program = Effect.gen(function*() {
    const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Value, groupId: unique("group") })
    yield* topic.registerMetrics
    const agent = kind === "batch"
      ? yield* Agent.forEach("backlog-slow-batch", topic, () => Effect.sleep("100 millis"), {
        batch: { size: 100, within: "100 millis" },
        shutdownTimeout: SHUTDOWN
      })
      : yield* Agent.forEach("backlog-slow", topic, () => Effect.sleep("1 millis"), {
        concurrency: agentShape(kind).concurrency,
        shutdownTimeout: SHUTDOWN
      })
    fullGc()
    const baseline = process.memoryUsage()
    const sampler = new Sampler(kind)
    const fiber = yield* Effect.forkChild(agent.run)
    const label = topic.label
    while (sampler.elapsed() < seconds * 1000) {
      yield* Effect.sleep(SAMPLE_MS)
      const snapshots = yield* Metric.snapshot
      const subscriberQueues = snapshots.filter((s) =>
        s.id === "effect_faust_queue_depth" && s.attributes?.channel === label
      )
      let queued = 0
      for (const s of subscriberQueues) queued += Number((s.state as { readonly value: number }).value)
      sampler.sample({
        handled: agent.stats.handled,
        inFlight: agent.stats.inFlight,
        delivered: readMetric(snapshots, "effect_faust_delivered_total", label),
        queued,
        lag: readMetric(snapshots, "effect_faust_consumer_lag", label)
      })
    }
    const handled = agent.stats.handled
    const stopping = performance.now()
    yield* Fiber.interrupt(fiber)
    const stopMs = performance.now() - stopping
    fullGc()
    const endAfterGc = process.memoryUsage()
    return {
      kind,
      label: phaseLabel(kind),
      seconds,
      baseline,
      samples: sampler.samples,
      live: sampler.live,
      endAfterGc,
      handled,
      stopMs
    } satisfies PhaseResult
  })
  return Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(layer)))
}

const runRawPhase = async (name: string, seconds: number): Promise<PhaseResult> => {
  const consumer = new Consumer({
    ...clientBase(),
    groupId: unique("group"),
    autocommit: false,
    sessionTimeout: 10_000,
    rebalanceTimeout: 10_000,
    heartbeatInterval: 1_000,
    maxWaitTime: 500
  })
  let handled = 0
  let sum = 0
  try {
    const stream = await consumer.consume({
      topics: [name],
      mode: "committed",
      fallbackMode: "earliest",
      autocommit: false,
      maxWaitTime: 500
    })
    fullGc()
    const baseline = process.memoryUsage()
    const sampler = new Sampler("raw")
    const timer = setInterval(
      () => sampler.sample({ handled, inFlight: 0, delivered: 0, queued: 0, lag: -1 }),
      SAMPLE_MS
    )
    const deadline = seconds * 1000
    for await (const message of stream) {
      const value = JSON.parse(message.value!.toString("utf8")) as Value
      sum += value.qty
      await sleep(1)
      handled++
      if (sampler.elapsed() >= deadline) break
    }
    // A `for await` left by `break` destroys the stream; wait out the deadline if it ended early.
    while (sampler.elapsed() < deadline) await sleep(SAMPLE_MS)
    clearInterval(timer)
    const stopping = performance.now()
    await stream.close().catch(() => undefined)
    const stopMs = performance.now() - stopping
    fullGc()
    const endAfterGc = process.memoryUsage()
    if (sum < 0) throw new Error("unreachable")
    return {
      kind: "raw",
      label: phaseLabel("raw"),
      seconds,
      baseline,
      samples: sampler.samples,
      live: sampler.live,
      endAfterGc,
      handled,
      stopMs
    }
  } finally {
    await consumer.close(true).catch(() => undefined)
  }
}

const child = async (kind: PhaseKind, name: string, seconds: number): Promise<void> => {
  const result = kind === "raw" ? await runRawPhase(name, seconds) : await runAgentPhase(kind, name, seconds)
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
}

/** Runs a phase in a child process of its own (same node, same flags), forwarding its progress lines. */
const runChild = (kind: PhaseKind, name: string, seconds: number): Promise<PhaseResult> =>
  new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [...process.execArgv, process.argv[1], "--phase", kind, name, String(seconds)],
      { stdio: ["ignore", "pipe", "inherit"], env: process.env }
    )
    let result: PhaseResult | undefined
    let buffered = ""
    proc.stdout.setEncoding("utf8")
    proc.stdout.on("data", (chunk: string) => {
      buffered += chunk
      let nl: number
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        if (line.startsWith("RESULT ")) result = JSON.parse(line.slice(7)) as PhaseResult
        else if (line.length > 0) console.log(line)
      }
    })
    const guard = setTimeout(() => proc.kill("SIGKILL"), (seconds + 120) * 1000)
    proc.on("error", reject)
    proc.on("exit", (code, signal) => {
      clearTimeout(guard)
      if (result !== undefined && code === 0) resolve(result)
      else reject(new Error(`phase ${kind} exited with ${signal ?? code}${result === undefined ? ", no result" : ""}`))
    })
  })

// ---------------------------------------------------------------------------------------------
// the report

const mib = (bytes: number): string => (bytes / MiB).toFixed(1)
const peak = <A>(items: ReadonlyArray<A>, f: (a: A) => number): number =>
  items.reduce((m, a) => Math.max(m, f(a)), Number.NEGATIVE_INFINITY)

interface Summary {
  readonly line: string
  readonly details: ReadonlyArray<string>
  readonly peakHeapGrowth: number
  readonly liveHeapGrowth: number
}

const summarize = (
  r: PhaseResult,
  records: number,
  perRecord: number,
  maxsize: number
): Summary => {
  const s = r.samples
  const base = r.baseline
  const end = s[s.length - 1]
  const first = s.filter((x) => x.t <= 10_000)
  const last = s.filter((x) => x.t >= r.seconds * 1000 - 10_000)
  const peakHeap = peak(s, (x) => x.heapUsed)
  const peakRss = peak(s, (x) => x.rss)
  const peakBuffers = peak(s, (x) => x.arrayBuffers)
  const peakTotal = peak(s, (x) => x.heapUsed + x.arrayBuffers)
  const liveHeap = r.live.length === 0 ? Number.NaN : peak(r.live, (x) => x.heapUsed)
  const liveTotal = r.live.length === 0 ? Number.NaN : peak(r.live, (x) => x.heapUsed + x.arrayBuffers)
  const liveFirst = r.live.filter((x) => x.t <= 10_000 + SAMPLE_MS)
  const liveLast = r.live.filter((x) => x.t >= r.seconds * 1000 - 10_000)
  const growthTotal = liveTotal - base.heapUsed - base.arrayBuffers
  const heldEstimate = Math.round(growthTotal / perRecord)
  const pace = r.kind === "batch"
    ? "slow agent, batches of 100 at 100 ms/batch"
    : r.kind === "agent"
    ? "slow agent 1 ms/event"
    : r.kind === "agent4"
    ? "slow agent 1 ms/event, concurrency 4"
    : "raw client alone, 1 ms/message"
  const line =
    `[backlog] ${r.kind}: ${records} records, ${pace}: handled ${r.handled} in ${r.seconds} s, heap baseline ${
      mib(base.heapUsed)
    } MiB, peak ${mib(peakHeap)} MiB, end ${mib(end.heapUsed)} MiB (after gc ${
      mib(r.endAfterGc.heapUsed)
    } MiB), rss peak ${mib(peakRss)} MiB; first 10 s peak ${mib(peak(first, (x) => x.heapUsed))} MiB, last 10 s peak ${
      mib(peak(last, (x) => x.heapUsed))
    } MiB`
  const details = [
    `  ${r.label}`,
    `  arrayBuffers: baseline ${mib(base.arrayBuffers)} MiB, peak ${mib(peakBuffers)} MiB, end ${
      mib(end.arrayBuffers)
    } MiB; external peak ${mib(peak(s, (x) => x.external))} MiB; heap+arrayBuffers peak ${mib(peakTotal)} MiB`,
    `  live (gc every 5 s): heap ${r.live.map((x) => mib(x.heapUsed)).join(" → ")} MiB; arrayBuffers ${
      r.live.map((x) => mib(x.arrayBuffers)).join(" → ")
    } MiB`,
    `  live peak: heap ${mib(liveHeap)} MiB (+${mib(liveHeap - base.heapUsed)} over baseline), heap+arrayBuffers ${
      mib(liveTotal)
    } MiB (+${mib(growthTotal)}); first 10 s ${
      mib(peak(liveFirst, (x) => x.heapUsed + x.arrayBuffers))
    } MiB, last 10 s ${mib(peak(liveLast, (x) => x.heapUsed + x.arrayBuffers))} MiB`,
    `  ≈ ${heldEstimate} records held in memory (live growth ÷ ~${
      perRecord.toFixed(0)
    } B per record) of the ${records} backlog; stop took ${r.stopMs.toFixed(0)} ms${
      r.kind === "raw" ? "" : ` (shutdownTimeout ${SHUTDOWN})`
    }`
  ]
  if (r.kind !== "raw") {
    const unhandled = s.map((x) => x.delivered - x.handled)
    const shape = agentShape(r.kind)
    const limit = Math.max(256, 2 * shape.concurrency * shape.batch)
    details.push(
      `  topic: delivered ${end.delivered} (read from the client, decoded, handed to the agent), max delivered − handled ${
        peak(unhandled, (x) => x)
      } (bound: queue ${maxsize} + one client read 1024 + agent ${limit} + one pull 1024 = ${
        maxsize + 1024 + limit + 1024
      })`,
      `  agent inFlight max ${
        peak(s, (x) => x.inFlight)
      } (documented bound max(256, 2 × concurrency × batch) + one read ≤ 1024 = ${
        limit + 1024
      }); subscriber queue max ${peak(s, (x) => x.queued)} of ${maxsize}; consumer lag at the end ${end.lag}`
    )
  }
  return {
    line,
    details,
    peakHeapGrowth: peakHeap - base.heapUsed,
    liveHeapGrowth: liveHeap - base.heapUsed
  }
}

// ---------------------------------------------------------------------------------------------

const main = async (): Promise<void> => {
  const records = Number(process.argv[2] ?? 1_000_000)
  const seconds = Number(process.argv[3] ?? 40)
  const valueBytes = Number(process.argv[4] ?? 256)
  const partitions = Number(process.argv[5] ?? 1)
  for (
    const [what, v] of [["records", records], ["seconds", seconds], ["valueBytes", valueBytes], [
      "partitions",
      partitions
    ]] as const
  ) {
    if (!Number.isInteger(v) || v < 1) {
      console.error(`[backlog] ${what} must be a positive integer, got ${v}`)
      process.exit(1)
    }
  }
  const unavailable = await brokerUnavailable()
  if (unavailable !== undefined) {
    console.error(`[backlog] ${unavailable}`)
    process.exit(1)
  }
  const pad = padFor(valueBytes)
  const perRecord = calibrate(pad)
  const name = unique("topic")
  await withAdmin((admin) => admin.createTopics({ topics: [name], partitions, replicas: 1 }))
  const results: Array<PhaseResult> = []
  const failures: Array<string> = []
  try {
    const filling = performance.now()
    const bytes = await fill(name, records, partitions, pad)
    const fillMs = performance.now() - filling
    console.log(
      `[backlog] filled ${name}: ${records} records (${partitions} partition${partitions === 1 ? "" : "s"}), ${
        mib(bytes)
      } MiB of keys and values (value ~${JSON.stringify(valueOf(0, pad)).length} B), in ${
        (fillMs / 1000).toFixed(1)
      } s (${(records / fillMs).toFixed(0)} k/s); ~${perRecord.toFixed(0)} B per record held in memory (calibrated)`
    )
    for (const kind of ["agent", "agent4", "batch", "raw"] as const) {
      console.log(`[backlog] phase ${kind}: ${phaseLabel(kind)}, ${seconds} s`)
      try {
        results.push(await runChild(kind, name, seconds))
      } catch (error) {
        failures.push(error instanceof Error ? error.message : String(error))
      }
    }
  } finally {
    await withAdmin((admin) => admin.deleteTopics({ topics: [name] })).catch((e) =>
      console.error(`[backlog] could not delete ${name}: ${String(e)}`)
    )
  }
  const summaries = results.map((r) => summarize(r, records, perRecord, 4096))
  const backlogBytes = records * perRecord
  console.log("")
  console.log(
    `[backlog] summary (${records} records of ~${
      JSON.stringify(valueOf(0, pad)).length
    } B values; the whole backlog in memory would be ~${mib(backlogBytes)} MiB):`
  )
  for (const s of summaries) {
    console.log(s.line)
    for (const d of s.details) console.log(d)
  }
  const raw = summaries.find((_, i) => results[i].kind === "raw")
  for (let i = 0; i < summaries.length && raw !== undefined; i++) {
    if (results[i].kind === "raw") continue
    console.log(
      `[backlog] ${results[i].kind} vs raw client: peak heap growth ${mib(summaries[i].peakHeapGrowth)} vs ${
        mib(raw.peakHeapGrowth)
      } MiB (${(summaries[i].peakHeapGrowth / raw.peakHeapGrowth).toFixed(2)}×), live heap growth ${
        mib(summaries[i].liveHeapGrowth)
      } vs ${mib(raw.liveHeapGrowth)} MiB`
    )
  }
  if (failures.length > 0) throw new Error(failures.join("; "))
}

if (process.argv[2] === "--phase") {
  const kind = process.argv[3] as PhaseKind
  child(kind, process.argv[4], Number(process.argv[5])).then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(`[backlog] phase ${kind} failed: ${error instanceof Error ? error.stack : String(error)}`)
      process.exit(1)
    }
  )
} else {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(`[backlog] failed: ${error instanceof Error ? error.message : String(error)}`)
      process.exit(1)
    }
  )
}
