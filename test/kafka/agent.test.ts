/**
 * Agents on a real broker (`npm run kafka:up`): the agent acknowledges each
 * event once its handling, its sends and its sinks are done, so commits never
 * pass an unfinished event; fresh topic names per test. The at-least-once
 * tests print `[delivery] sent / received / lost / duplicated` like the fault
 * suite and require lost = 0; the ones with a process of their own run
 * agent-process.ts as a child.
 */
import { assert, describe, it } from "@effect/vitest"
import { Consumer } from "@platformatic/kafka"
import { Cause, Deferred, Effect, Exit, Fiber, Random, Schedule, Schema } from "effect"
import { Agent } from "effect-faust"
import { Topic } from "effect-faust/kafka"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { quiet } from "../helpers.ts"
import { committedOffsets, commitWatch, eventually as eventuallyOr, groupAssignments, Tally } from "./delivery.ts"
import { bootstrapServers, brokerAvailable, eventually, eventuallyEffect, kafkaLayer, unique } from "./setup.ts"

const produce = (name: string, count: number, partitions: number) =>
  Effect.gen(function*() {
    const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number, partitions })
    yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => i),
      (i) => topic.sendSoon({ key: `k${i % 16}`, value: i }),
      { discard: true }
    )
    yield* topic.maybeDeclare
  }).pipe(Effect.provide(kafkaLayer()))

const range = (count: number, from = 0) => Array.from({ length: count }, (_, i) => from + i)

/**
 * Sends the ids `0 … count-1` (key `k<id % 16>`, header `origin: producer`), each send awaited:
 * `tally.sent` holds what the broker acknowledged.
 */
const produceTallied = (name: string, count: number, partitions: number, tally: Tally) =>
  Effect.gen(function*() {
    const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number, partitions })
    yield* Effect.forEach(
      range(count),
      (id) =>
        Effect.andThen(
          topic.send({ key: `k${id % 16}`, value: id, headers: [["origin", "producer"]] }),
          Effect.sync(() => tally.sent.add(id))
        ),
      { concurrency: 64, discard: true }
    )
  }).pipe(Effect.provide(kafkaLayer()))

/** Sends the ids `0 … count-1` (values only) in chunks of 500, pausing `pause` millis between chunks. */
const produceChunks = (name: string, count: number, partitions: number, tally: Tally, pause = 0) =>
  Effect.gen(function*() {
    const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions })
    for (let from = 0; from < count; from += 500) {
      const ids = range(Math.min(500, count - from), from)
      yield* topic.sendAll(ids)
      for (const id of ids) tally.sent.add(id)
      if (pause > 0) yield* Effect.sleep(pause)
    }
  }).pipe(Effect.provide(kafkaLayer()))

class Refused extends Schema.TaggedError<Refused>()("Refused", { value: Schema.Number }) {
  override get message(): string {
    return `refused ${this.value}`
  }
}

const text = new TextDecoder()

/** A record as the raw client reads it: bytes, and headers as text. */
interface RawRecord {
  readonly partition: number
  readonly offset: number
  readonly key: Array<number> | null
  readonly value: Array<number> | null
  readonly headers: Array<readonly [string, string]>
}

const bytesOf = (buffer: unknown): Array<number> | null => buffer == null ? null : [...(buffer as Uint8Array)]

/** The first `count` records of `topic`, read from the earliest offset by the raw client (no codec). */
const readRaw = (topic: string, count: number) =>
  Effect.promise(async (): Promise<Array<RawRecord>> => {
    const consumer = new Consumer({
      clientId: unique("raw"),
      groupId: unique("raw-group"),
      bootstrapBrokers: [bootstrapServers]
    })
    const records: Array<RawRecord> = []
    try {
      const stream = await consumer.consume({ topics: [topic], mode: "earliest" })
      for await (const message of stream) {
        records.push({
          partition: message.partition,
          offset: Number(message.offset),
          key: bytesOf(message.key),
          value: bytesOf(message.value),
          headers: message.headerEntries.map(([name, value]) =>
            [
              text.decode(name as unknown as Uint8Array),
              value == null ? "" : text.decode(value as unknown as Uint8Array)
            ] as const
          )
        })
        if (records.length >= count) break
      }
      await stream.close()
      return records
    } finally {
      await consumer.close(true)
    }
  }).pipe(Effect.timeout("30 seconds"))

/** tsx as a loader of this node process (its CLI would run the script in a grandchild, out of a SIGKILL's reach). */
const tsx = new URL("../../node_modules/tsx/dist/loader.mjs", import.meta.url).href
const childScript = fileURLToPath(new URL("./agent-process.ts", import.meta.url))

/**
 * Starts agent-process.ts in `mode` on the topic and group, calling `onLine` for each line it
 * writes; SIGKILLed when the scope closes if still running. `closed` completes once it exited
 * and all its output was read.
 */
const spawnAgent = (mode: "batch" | "each", name: string, groupId: string, onLine: (line: string) => void) =>
  Effect.gen(function*() {
    const child = spawn(process.execPath, ["--conditions=source", "--import", tsx, childScript, mode, name, groupId], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    const done = Deferred.makeUnsafe<void>()
    child.once("close", () => Deferred.doneUnsafe(done, Effect.void))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
    )
    let pending = ""
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (chunk: string) => {
      const lines = (pending + chunk).split("\n")
      pending = lines.pop()!
      for (const line of lines) onLine(line)
    })
    return { child, closed: Deferred.await(done) }
  })

describe.skipIf(!brokerAvailable)("Agent on a Topic", () => {
  it.live(
    "concurrency 8 with random delays: every event once, commits only over finished prefixes",
    () =>
      Effect.gen(function*() {
        const name = unique("agent-concurrent")
        yield* produce(name, 400, 4)
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number })
        const seen: Array<number> = []
        const { finish, stop, violations } = commitWatch(topic.groupId)
        const agent = yield* Agent.forEach("agent-concurrent", topic, (value, event) =>
          Effect.gen(function*() {
            yield* Effect.sleep(yield* Random.nextIntBetween(0, 5))
            seen.push(value)
            finish(event.message.partition, event.message.offset)
          }), { concurrency: 8 })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* eventually(() => seen.length >= 400, 60_000)
        yield* Fiber.interrupt(fiber)
        stop()
        assert.deepStrictEqual(violations, [])
        assert.deepStrictEqual([...seen].sort((a, b) => a - b), Array.from({ length: 400 }, (_, i) => i))
        const committed = yield* committedOffsets(topic.groupId, name)
        assert.strictEqual([...committed.values()].reduce((a, b) => a + b, 0), 400, "everything handled is committed")
      }).pipe(Effect.provide(kafkaLayer())),
    120_000
  )

  for (const ordering of ["key", "none"] as const) {
    it.live(
      `concurrency 16, ordering "${ordering}", 0–20 ms per event: every event once; each of the periodic commits made during the run covers only finished events`,
      () =>
        Effect.gen(function*() {
          const name = unique("agent-16")
          const total = 2_000
          const tally = new Tally()
          yield* produceTallied(name, total, 8, tally)
          const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number })
          const byKey = new Map<string, Array<number>>()
          let running = true
          const commitsDuringRun: Array<readonly [number, number]> = []
          const { finish, stop, violations } = commitWatch(topic.groupId, (partition, offset) => {
            if (running) commitsDuringRun.push([partition, offset])
          })
          const agent = yield* Agent.forEach(`agent-16-${ordering}`, topic, (value, event) =>
            Effect.gen(function*() {
              const { offset, partition } = event.message
              const key = event.key as string
              byKey.set(key, [...(byKey.get(key) ?? []), offset])
              yield* Effect.sleep(yield* Random.nextIntBetween(0, 20))
              tally.receive(value, partition, offset)
              finish(partition, offset)
            }), { concurrency: 16, ordering })
          const fiber = yield* Effect.forkChild(agent.run)
          yield* eventuallyOr(() => tally.complete, 60_000, "every event", () => JSON.stringify(tally.counts()))
          running = false
          yield* Fiber.interrupt(fiber)
          stop()
          const counts = tally.report(`agent, concurrency 16, ordering ${ordering}, random delays`)
          assert.deepStrictEqual(violations, [])
          assert.strictEqual(counts.sent, total)
          assert.strictEqual(counts.lost, 0)
          assert.strictEqual(counts.duplicated, 0)
          // periodic commits happened while events were still being handled, not only the last one
          const ends = new Map<number, number>()
          for (const places of tally.deliveries.values()) {
            const [partition, offset] = places[0].split("/").map(Number)
            ends.set(partition, Math.max(ends.get(partition) ?? 0, offset + 1))
          }
          const partial = commitsDuringRun.filter(([partition, offset]) => offset < ends.get(partition)!)
          console.log(
            `[delivery] ordering ${ordering}: ${commitsDuringRun.length} offsets committed during the run, ${partial.length} of them mid-partition`
          )
          assert.isAtLeast(partial.length, 3, "periodic commits during the run")
          if (ordering === "key") {
            for (const [key, offsets] of byKey) {
              assert.deepStrictEqual(offsets, [...offsets].sort((a, b) => a - b), `events of ${key} in order`)
            }
          }
          const committed = yield* committedOffsets(topic.groupId, name)
          assert.strictEqual(
            [...committed.values()].reduce((a, b) => a + b, 0),
            total,
            "everything handled is committed"
          )
        }).pipe(Effect.provide(kafkaLayer({ commitInterval: "50 millis" }))),
      120_000
    )
  }

  it.live(
    "batch mode, one instance (it reads the topic itself): every event once, in offset order per partition, in batches of at most the size; a quiet topic closes a partial batch within the window; the commits cover only finished batches",
    () =>
      Effect.gen(function*() {
        const name = unique("agent-batch-1")
        const total = 3_000
        const tally = new Tally()
        yield* produceTallied(name, total, 3, tally)
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number })
        const sizes: Array<number> = []
        const offsetsByPartition = new Map<number, Array<number>>()
        const { finish, stop, violations } = commitWatch(topic.groupId)
        const agent = yield* Agent.forEach("agent-batch-1", topic, (values, events) =>
          Effect.gen(function*() {
            sizes.push(values.length)
            yield* Effect.sleep(yield* Random.nextIntBetween(0, 5))
            for (let i = 0; i < events.length; i++) {
              const { offset, partition } = events[i].message
              offsetsByPartition.set(partition, [...(offsetsByPartition.get(partition) ?? []), offset])
              tally.receive(values[i], partition, offset)
              finish(partition, offset)
            }
          }), { batch: { size: 100, within: "200 millis" } })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* eventuallyOr(() => tally.complete, 60_000, "every event", () => JSON.stringify(tally.counts()))
        // one more event on a quiet topic: its batch of one closes when the window does
        const before = sizes.length
        const late = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number })
        yield* late.send({ key: "late", value: total })
        yield* eventuallyOr(() => sizes.length > before, 10_000, "the late event's batch", () => String(sizes.length))
        assert.deepStrictEqual(sizes.slice(before), [1])
        yield* Fiber.interrupt(fiber)
        stop()
        const counts = tally.report("agent in batch mode, one instance reading the topic itself")
        assert.deepStrictEqual(violations, [])
        assert.strictEqual(counts.sent, total)
        assert.strictEqual(counts.lost, 0)
        assert.strictEqual(counts.duplicated, 0)
        assert.isAtMost(Math.max(...sizes), 100)
        assert.isAbove(sizes.filter((size) => size === 100).length, 0, "full batches when the topic has a backlog")
        for (const [partition, offsets] of offsetsByPartition) {
          assert.deepStrictEqual(offsets, [...offsets].sort((a, b) => a - b), `partition ${partition} in order`)
        }
        assert.strictEqual(agent.stats.inFlight, 0)
        const committed = yield* committedOffsets(topic.groupId, name)
        assert.strictEqual(
          [...committed.values()].reduce((a, b) => a + b, 0),
          total + 1,
          "everything handled is committed"
        )
      }).pipe(Effect.provide(kafkaLayer({ commitInterval: "50 millis" }))),
    120_000
  )

  it.live(
    "a handler failing on 1 % of events, retried once then dead-lettered: handled + dead-lettered = sent; each dead letter holds the original key, value and headers, and the x-* headers",
    () =>
      Effect.gen(function*() {
        const name = unique("agent-dl-source")
        const dlName = unique("agent-dl")
        const total = 2_000
        const tally = new Tally()
        yield* produceTallied(name, total, 4, tally)
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number })
        const deadLetters = yield* Topic.make({ topics: [dlName], keySerializer: "raw", valueSerializer: "raw" })
        yield* deadLetters.maybeDeclare
        const failing = (id: number) => id % 100 === 37
        const attempts = new Map<number, number>()
        const failedAt = new Map<string, number>()
        const agent = yield* Agent.forEach("agent-dl", topic, (value, event) =>
          Effect.gen(function*() {
            const { offset, partition } = event.message
            yield* Effect.sleep(yield* Random.nextIntBetween(0, 2))
            if (failing(value)) {
              attempts.set(value, (attempts.get(value) ?? 0) + 1)
              failedAt.set(`${partition}/${offset}`, value)
              return yield* new Refused({ value })
            }
            tally.receive(value, partition, offset)
          }), { concurrency: 8, onError: { retry: Schedule.recurs(1), then: { deadLetter: deadLetters } } })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* eventuallyOr(
          () => agent.stats.handled + agent.stats.deadLettered >= total,
          60_000,
          "every event handled or dead-lettered",
          () => JSON.stringify(agent.stats)
        )
        yield* Fiber.interrupt(fiber)
        const expectedFailing = range(total).filter(failing)
        const letters = yield* readRaw(dlName, expectedFailing.length)
        const sources = new Map(
          (yield* readRaw(name, total)).map((record) => [`${record.partition}/${record.offset}`, record])
        )
        for (const letter of letters) {
          const headers = new Map(letter.headers)
          const place = `${headers.get("x-source-partition")}/${headers.get("x-source-offset")}`
          const id = failedAt.get(place)
          assert.isDefined(id, `the dead letter of ${place} is an event that failed`)
          const original = sources.get(place)!
          assert.deepStrictEqual(letter.key, original.key, "original key bytes")
          assert.deepStrictEqual(letter.value, original.value, "original value bytes")
          assert.strictEqual(text.decode(new Uint8Array(original.value!)), String(id))
          assert.deepStrictEqual(
            letter.headers.slice(0, original.headers.length),
            original.headers,
            "original headers first"
          )
          assert.deepStrictEqual(original.headers, [["origin", "producer"]])
          assert.strictEqual(headers.get("x-error"), "Refused")
          assert.strictEqual(headers.get("x-error-message"), `refused ${id}`)
          assert.strictEqual(headers.get("x-agent"), "agent-dl")
          assert.strictEqual(headers.get("x-attempts"), "2")
          assert.strictEqual(headers.get("x-source-channel"), topic.label)
          assert.strictEqual(headers.get("x-source-topic"), name)
          // received: handled, or dead-lettered
          tally.receive(id!, original.partition, original.offset)
        }
        const counts = tally.report("agent, handler failing on 1 % of events, dead-lettered")
        assert.strictEqual(counts.sent, total)
        assert.strictEqual(counts.lost, 0)
        assert.strictEqual(counts.duplicated, 0)
        assert.strictEqual(letters.length, expectedFailing.length)
        assert.strictEqual(agent.stats.handled + agent.stats.deadLettered, total)
        assert.strictEqual(agent.stats.deadLettered, expectedFailing.length)
        assert.strictEqual(agent.stats.failed, expectedFailing.length)
        assert.strictEqual(agent.stats.retries, expectedFailing.length)
        assert.deepStrictEqual([...attempts.keys()].sort((a, b) => a - b), expectedFailing)
        assert.isTrue([...attempts.values()].every((n) => n === 2), "each failing event attempted twice")
        const committed = yield* committedOffsets(topic.groupId, name)
        assert.strictEqual(
          [...committed.values()].reduce((a, b) => a + b, 0),
          total,
          "dead-lettered events are acknowledged and committed too"
        )
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    120_000
  )

  it.live(
    "ask / join on a topic: replies matched to their requests under concurrency 8 (the reply travels in memory); a timeout fails with AskTimeoutError and the late reply is dropped",
    () =>
      Effect.gen(function*() {
        const topic = yield* Topic.make({
          topics: [unique("agent-ask")],
          key: Schema.String,
          value: Schema.Number,
          partitions: 4
        })
        yield* topic.maybeDeclare
        const agent = yield* Agent.forEach("agent-ask", topic, (value) =>
          Effect.gen(function*() {
            yield* Effect.sleep(value < 0 ? 1_500 : yield* Random.nextIntBetween(0, 10))
            return value * 2
          }), { concurrency: 8, ordering: "none" })
        const fiber = yield* Effect.forkChild(agent.run)
        const values = range(200)
        // one request per value, 32 at a time: each reply is the handler's result for its own request
        assert.deepStrictEqual(
          yield* agent.join(values, { timeout: "30 seconds", concurrency: 32 }),
          values.map((v) => v * 2)
        )
        const keyed = yield* Effect.forEach(
          range(64),
          (i) => Effect.map(agent.ask({ key: `k${i}`, value: 1_000 + i, timeout: "30 seconds" }), (out) => [i, out]),
          { concurrency: "unbounded" }
        )
        for (const [i, out] of keyed) assert.strictEqual(out, (1_000 + i) * 2)
        const late = yield* Effect.exit(agent.ask({ value: -1, timeout: "300 millis" }))
        assert.isTrue(Exit.isFailure(late))
        const error = Cause.squash((late as Exit.Failure<number, unknown>).cause)
        assert.instanceOf(error, Agent.AskTimeoutError)
        assert.strictEqual((error as Agent.AskTimeoutError).agent, "agent-ask")
        assert.strictEqual((error as Agent.AskTimeoutError).timeoutMillis, 300)
        yield* eventually(() => agent.stats.repliesDropped === 1, 10_000)
        assert.strictEqual(agent.stats.handled, 200 + 64 + 1)
        yield* Fiber.interrupt(fiber)
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    120_000
  )

  it.live(
    "restart with then: \"fail\": the failed event is left unacknowledged and, after the restart, read again from Kafka at the same offset",
    () =>
      Effect.gen(function*() {
        const name = unique("agent-restart")
        const total = 1_000
        const tally = new Tally()
        yield* produceTallied(name, total, 4, tally)
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number })
        const failOn = 500
        const failures: Array<string> = []
        const agent = yield* Agent.forEach("agent-restart", topic, (value, event) =>
          Effect.gen(function*() {
            const { offset, partition } = event.message
            yield* Effect.sleep(yield* Random.nextIntBetween(0, 2))
            if (value === failOn && failures.length === 0) {
              failures.push(`${partition}/${offset}`)
              return yield* new Refused({ value })
            }
            tally.receive(value, partition, offset)
          }), { concurrency: 4, restart: Schedule.recurs(3) })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* eventuallyOr(() => tally.complete, 60_000, "every event", () =>
          JSON.stringify({ ...tally.counts(), ...agent.stats }))
        yield* Fiber.interrupt(fiber)
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause), "stopped by the interruption only")
        const counts = tally.report("agent, then: fail, restarted")
        assert.strictEqual(counts.sent, total)
        assert.strictEqual(counts.lost, 0)
        assert.strictEqual(agent.stats.restarts, 1)
        assert.strictEqual(agent.stats.failed, 1)
        assert.strictEqual(failures.length, 1)
        // handled once, after the restart, where it failed: Kafka delivered it again
        assert.deepStrictEqual(tally.deliveries.get(failOn), failures)
        // what the first run handled and did not commit may be read again; the producer never duplicates
        assert.strictEqual(counts.producedTwice, 0)
        assert.strictEqual(counts.duplicated, counts.redelivered)
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    120_000
  )

  it.live(
    "restart gives up when its schedule does: each restart reads the failed event again from Kafka, then the agent fails with an AgentError naming where it came from",
    () =>
      Effect.gen(function*() {
        const name = unique("agent-gives-up")
        const tally = new Tally()
        yield* produceTallied(name, 100, 1, tally)
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number })
        const failOn = 40 // at some offset: the sends were concurrent
        const attemptsAt: Array<string> = []
        const agent = yield* Agent.forEach("agent-gives-up", topic, (value, event) =>
          Effect.suspend(() => {
            if (value === failOn) {
              attemptsAt.push(`${event.message.partition}/${event.message.offset}`)
              return Effect.fail(new Refused({ value }))
            }
            tally.receive(value, event.message.partition, event.message.offset)
            return Effect.void
          }), { restart: Schedule.recurs(2) })
        const exit = yield* Effect.exit(agent.run)
        assert.isTrue(Exit.isFailure(exit))
        const error = Cause.squash((exit as Exit.Failure<void, unknown>).cause)
        assert.instanceOf(error, Agent.AgentError)
        const agentError = error as Agent.AgentError
        // the first run and each of the 2 restarts read the unacknowledged event again, at its offset
        assert.strictEqual(attemptsAt.length, 3)
        assert.deepStrictEqual(new Set(attemptsAt).size, 1, "the same record each time")
        const failedOffset = Number(attemptsAt[0].split("/")[1])
        assert.strictEqual(agentError.agent, "agent-gives-up")
        assert.strictEqual(agentError.topic, name)
        assert.strictEqual(agentError.partition, 0)
        assert.strictEqual(agentError.offset, failedOffset)
        assert.strictEqual(agentError.attempts, 1)
        assert.strictEqual(agentError.restarts, 2)
        assert.instanceOf(agentError.cause, Refused)
        assert.include(agentError.message, `on ${name}[0]@${failedOffset}`)
        assert.strictEqual(agent.stats.restarts, 2)
        // in order on the partition: everything before it handled (once), nothing after it
        const handledOffsets = [...tally.deliveries.values()].flat().map((place) => Number(place.split("/")[1]))
        assert.deepStrictEqual(handledOffsets.sort((a, b) => a - b), range(failedOffset))
        const committed = yield* committedOffsets(topic.groupId, name)
        assert.strictEqual(committed.get(0), failedOffset, "committed up to the failed event, not past it")
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    120_000
  )

  it.live(
    "batch mode: the agent's process is killed with SIGKILL in the middle of a batch; the restarted one gets everything not committed, the interrupted batch included",
    () =>
      Effect.gen(function*() {
        const name = unique("agent-batch-killed")
        const groupId = unique("group")
        const total = 3_000
        const tally = new Tally()
        yield* produceChunks(name, total, 2, tally)
        // per process: batches started (their events) and finished, events handled
        const started = new Map<string, Array<readonly [number, number, number]>>()
        const finishedBatches = new Set<string>()
        const handledBy: Array<Array<readonly [number, number, number]>> = [[], []]
        let kill: (() => void) | undefined
        const onLine = (run: 0 | 1) => (line: string) => {
          const [tag, ...rest] = line.split(" ")
          if (tag === "B") {
            started.set(
              `${run}/${rest[0]}`,
              rest.slice(1).map((e) => e.split(":").map(Number) as [number, number, number])
            )
            kill?.()
          } else if (tag === "F") {
            finishedBatches.add(`${run}/${rest[0]}`)
          } else if (tag === "E") {
            const [id, partition, offset] = rest.map(Number)
            tally.receive(id, partition, offset)
            handledBy[run].push([id, partition, offset])
          }
        }
        const first = yield* spawnAgent("batch", name, groupId, onLine(0))
        yield* eventuallyOr(() => tally.count >= 1_000, 90_000, "1000 events handled by the first process")
        // killed as soon as its next batch starts: its 40 ms of work are not done
        kill = () => {
          kill = undefined
          first.child.kill("SIGKILL")
        }
        yield* first.closed
        assert.strictEqual(first.child.signalCode, "SIGKILL")
        assert.isBelow(tally.count, total, "killed mid-stream")
        const interrupted = [...started].filter(([batch]) => batch.startsWith("0/") && !finishedBatches.has(batch))
          .flatMap(([, events]) => events)
        assert.isAbove(interrupted.length, 0, "killed in the middle of a batch")
        yield* Effect.sleep("500 millis") // a commit the child sent before dying has landed
        const committed = yield* committedOffsets(`${groupId}.${name}`, name)
        assert.isAbove(committed.size, 0, "the first process committed periodically")
        for (const [id, partition, offset] of interrupted) {
          assert.isAtMost(committed.get(partition) ?? 0, offset, `the commit never passes ${id}, in the killed batch`)
        }
        const again = handledBy[0].filter(([, partition, offset]) => offset >= (committed.get(partition) ?? 0))
        const second = yield* spawnAgent("batch", name, groupId, onLine(1))
        yield* eventuallyOr(
          () => tally.complete && again.every(([id]) => tally.deliveries.get(id)!.length >= 2),
          90_000,
          "every event, and the uncommitted ones again",
          () => JSON.stringify(tally.counts())
        )
        second.child.kill("SIGTERM")
        yield* second.closed
        const counts = tally.report("agent in batch mode, process killed with SIGKILL mid-batch")
        console.log(
          `[delivery] batch mode: ${interrupted.length} events in the killed batch(es), ${again.length} handled past the last commit`
        )
        assert.strictEqual(counts.sent, total)
        assert.strictEqual(counts.lost, 0)
        for (const [id] of interrupted) {
          assert.isTrue(
            handledBy[1].some(([handled]) => handled === id),
            `${id} of the killed batch handled by the restarted process`
          )
        }
        assert.strictEqual(counts.duplicated, again.length, "duplicates are the handled events past the last commit")
        assert.strictEqual(counts.redelivered, again.length)
      }).pipe(Effect.scoped, Effect.provide(quiet)),
    120_000
  )

  it.live(
    "two agent processes in one group while one leaves (SIGTERM: graceful): nothing lost, and nothing the leaving one handled is read again",
    () =>
      Effect.gen(function*() {
        const name = unique("agent-leaving")
        const groupId = unique("group")
        const total = 12_000
        const partitions = 6
        const tally = new Tally()
        const handledBy: Array<Array<number>> = [[], []]
        const onLine = (index: 0 | 1) => (line: string) => {
          const [tag, ...rest] = line.split(" ")
          if (tag !== "E") return
          const [id, partition, offset] = rest.map(Number)
          tally.receive(id, partition, offset)
          handledBy[index].push(id)
        }
        yield* Effect.gen(function*() {
          const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions })
          yield* topic.maybeDeclare
        }).pipe(Effect.provide(kafkaLayer()))
        const leaving = yield* spawnAgent("each", name, groupId, onLine(0))
        const staying = yield* spawnAgent("each", name, groupId, onLine(1))
        yield* eventuallyEffect(
          Effect.map(groupAssignments(`${groupId}.${name}`, name), (members) =>
            members.length === 2 && members.every((assigned) =>
              assigned.length > 0
            ) &&
            members.flat().length === partitions),
          60_000
        )
        const producing = yield* Effect.forkChild(produceChunks(name, total, partitions, tally, 100))
        yield* eventuallyOr(
          () => tally.received >= 4_000 && handledBy[0].length > 0 && handledBy[1].length > 0,
          90_000,
          "4000 events, handled by both processes"
        )
        leaving.child.kill("SIGTERM")
        yield* leaving.closed
        assert.isNull(leaving.child.signalCode, "the leaving process stopped by itself")
        assert.strictEqual(leaving.child.exitCode, 130, "runMain's exit code after a signal")
        const handledBeforeLeaving = handledBy[0].length
        yield* Fiber.join(producing)
        yield* eventuallyOr(() => tally.complete, 90_000, "every event", () => JSON.stringify(tally.counts()))
        staying.child.kill("SIGTERM")
        yield* staying.closed
        const counts = tally.report("two agent processes in one group, one leaves")
        console.log(
          `[delivery] leaving process handled ${handledBeforeLeaving}, staying one ${handledBy[1].length}`
        )
        assert.strictEqual(counts.sent, total)
        assert.strictEqual(counts.lost, 0)
        assert.strictEqual(handledBy[0].length, handledBeforeLeaving, "nothing handled after leaving")
        // the leaving process finished, acknowledged and committed what it read before it left
        const readAgain = handledBy[0].filter((id) => tally.deliveries.get(id)!.length > 1)
        assert.deepStrictEqual(readAgain, [], "events the leaving process handled, read again")
        // the staying one may read again what it was handling when its partitions were revoked
        assert.strictEqual(counts.producedTwice, 0)
        assert.strictEqual(counts.duplicated, counts.redelivered)
      }).pipe(Effect.scoped, Effect.provide(quiet)),
    120_000
  )
})
