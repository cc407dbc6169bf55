/**
 * The Kafka service's send buffer: every record of every topic goes through
 * one bounded queue, in order, and a sender fiber produces them in batches;
 * each record's completion runs with its own outcome (see `sendBatch`).
 */
import { ProduceAcks, type Producer } from "@platformatic/kafka"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import { appendedAt } from "../../internal/futureMessage.ts"
import { partitionKey } from "../../internal/partitionKey.ts"
import type * as RecordMetadata from "../../RecordMetadata.ts"
import { type ProducerRecord, type Settings } from "../Kafka.ts"
import { KafkaError } from "../KafkaError.ts"
import type { Outcome, Publish, PublishAll, PublishUnsafe } from "./capabilities.ts"
import { fromBrokers } from "./explain.ts"
import * as partialProduce from "./partialProduce.ts"

/** Records published together with one completion (see `capabilities.ts`). */
interface Group {
  readonly failures: Array<KafkaError | undefined>
  remaining: number
  readonly onDone: (failures: ReadonlyArray<KafkaError | undefined>) => Effect.Effect<void>
}

/**
 * A record in the send buffer: alone, with its completion (given its
 * metadata by `publish`, its bare outcome by `publishUnsafe`), or one of a
 * group.
 */
type RecordPending =
  | {
    readonly record: ProducerRecord
    readonly onDone: (exit: Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>) => Effect.Effect<void>
  }
  | { readonly record: ProducerRecord; readonly onOutcome: (outcome: Outcome) => Effect.Effect<void> }
  | { readonly record: ProducerRecord; readonly group: Group; readonly index: number }

/** A record in the send buffer, or a flush marker. */
type Pending = RecordPending | { readonly flushed: Deferred.Deferred<void> }

/** Records the outcome of a group member; the group's completion once all are in, else `undefined`. */
const settleMember = (
  pending: { readonly group: Group; readonly index: number },
  failure: KafkaError | undefined
): Effect.Effect<void> | undefined => {
  const group = pending.group
  group.failures[pending.index] = failure
  return --group.remaining === 0 ? group.onDone(group.failures) : undefined
}

/**
 * Starts the send buffer in the current scope: `publish` adds a record,
 * `flush` waits for everything published so far. Closing the scope ends the
 * buffer and lets the sender drain what is left.
 */
export const make = (
  producer: Producer<Buffer, Buffer, Buffer, Buffer>,
  settings: Settings
): Effect.Effect<
  {
    readonly publish: Publish
    readonly publishAll: PublishAll
    readonly publishUnsafe: PublishUnsafe
    readonly flush: Effect.Effect<void>
  },
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const buffer = yield* Queue.bounded<Pending, Cause.Done>(settings.bufferMaxsize)

    /**
     * Sends a batch: each record's own outcome, in order. When the call fails,
     * the partitions the broker did append still succeed (their records must
     * not be sent again), and a partition refused as too large is sent again
     * one record at a time, so only the record that is too large fails.
     */
    const sendBatch = (
      records: ReadonlyArray<ProducerRecord>,
      acks: boolean
    ): Effect.Effect<Array<Outcome>> =>
      Effect.callback<Array<Outcome>>((resume) => {
        const messages = new Array<ClientMessage>(records.length)
        for (let i = 0; i < records.length; i++) messages[i] = toClientMessage(records[i])
        producer.send({
          acks: acks ? ProduceAcks.ALL : ProduceAcks.NO_RESPONSE,
          idempotent: acks,
          messages
        }).then(
          (result) => {
            const appended = new Map<string, partialProduce.PartitionResult>()
            for (const { offset, partition, topic } of result.offsets ?? []) {
              appended.set(partitionKey(topic, partition), { _tag: "Appended", baseOffset: Number(offset) })
            }
            resume(Effect.succeed(outcomes(records, acks ? appended : undefined, undefined).outcomes))
          },
          (rejection) => {
            const whole = new KafkaError({
              operation: "produce",
              cause: fromBrokers(rejection, settings.bootstrapServers),
              ...(sameTopic(records) ? { topic: records[0].topic } : {})
            })
            const { outcomes: results, resend } = outcomes(records, partialProduce.partitionResults(rejection), whole)
            if (resend.length === 0) return resume(Effect.succeed(results))
            resume(Effect.as(
              Effect.forEach(resend, (index) =>
                Effect.map(sendBatch([records[index]], acks), ([outcome]) => {
                  results[index] = outcome
                }), { discard: true }),
              results
            ))
          }
        )
      })

    /**
     * Sends one run of records (all with acks, or all without) and hands each
     * record's outcome to its completion, in a plain loop: a completion that
     * finishes synchronously returns `Effect.void`, and only the others are
     * run (in order) afterwards.
     */
    const sendRun = (items: ReadonlyArray<RecordPending>, acks: boolean): Effect.Effect<void> => {
      const runs = timestampRuns(items)
      if (runs !== undefined) return Effect.forEach(runs, (run) => sendRun(run, acks), { discard: true })
      return Effect.flatMap(
        sendBatch(items.map((item) => item.record), acks),
        (results) => {
          let after: Array<Effect.Effect<void>> | undefined
          for (let i = 0; i < items.length; i++) {
            const item = items[i]
            const outcome = results[i]
            const failure = typeof outcome === "number" ? undefined : outcome
            const done = "onOutcome" in item
              ? item.onOutcome(outcome)
              : "onDone" in item
              ? item.onDone(
                failure === undefined ? Exit.succeed(metadataOf(item.record, outcome as number)) : Exit.fail(failure)
              )
              : settleMember(item, failure)
            if (done !== undefined && done !== Effect.void) (after ??= []).push(done)
          }
          return after === undefined ? Effect.void : Effect.forEach(after, (done) => done, { discard: true })
        }
      )
    }

    /**
     * A batch from the buffer: its records with acks, then those without, then
     * its flush markers. A batch of records with acks only (the common one) is
     * sent as it is, without a generator: an `Effect.gen` suspended while its
     * batch was in flight made the collector promote ~0.1 kB per record, a
     * quarter of `sendAll`'s CPU gap to the raw client (`bench/README.md`,
     * fourth pass).
     */
    const complete = (batch: ReadonlyArray<Pending>): Effect.Effect<void> => {
      let plain = true
      for (let i = 0; i < batch.length && plain; i++) {
        const pending = batch[i]
        plain = !("flushed" in pending) && pending.record.acks !== false
      }
      if (plain) return sendRun(batch as ReadonlyArray<RecordPending>, true)
      const acked: Array<RecordPending> = []
      let unacked: Array<RecordPending> | undefined
      let flushes: Array<Deferred.Deferred<void>> | undefined
      for (const pending of batch) {
        if ("flushed" in pending) (flushes ??= []).push(pending.flushed)
        else if (pending.record.acks === false) (unacked ??= []).push(pending)
        else acked.push(pending)
      }
      return Effect.gen(function*() {
        if (acked.length > 0) yield* sendRun(acked, true)
        if (unacked !== undefined) yield* sendRun(unacked, false)
        if (flushes !== undefined) { for (const flushed of flushes) yield* Deferred.succeed(flushed, undefined) }
      })
    }

    const sender = yield* Effect.forkIn(
      Effect.catchIf(
        Effect.forever(Effect.flatMap(Queue.takeBetween(buffer, 1, settings.maxBatchSize), complete)),
        Cause.isDone,
        () => Effect.void
      ),
      scope
    )
    // Registered after the clients, so it runs before they close: end the
    // buffer, and let the sender drain what is left.
    yield* Effect.addFinalizer(() => Effect.andThen(Queue.end(buffer), Fiber.await(sender)))

    const shutDown = (record: ProducerRecord) =>
      new KafkaError({ operation: "produce", topic: record.topic, cause: new Error("the Kafka layer is shut down") })

    const publishUnsafe: PublishUnsafe = (record, onOutcome) => Queue.offerUnsafe(buffer, { record, onOutcome })

    const publish = (
      record: ProducerRecord,
      onDone: (exit: Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>) => Effect.Effect<void>
    ): Effect.Effect<void> =>
      // Suspended: the record joins the buffer when the effect runs, not when it is built.
      Effect.suspend(() => {
        if (Queue.offerUnsafe(buffer, { record, onDone })) return Effect.void
        return Effect.flatMap(
          Queue.offer(buffer, { record, onDone }),
          (offered) => offered ? Effect.void : onDone(Exit.fail(shutDown(record)))
        )
      })

    const publishAll: PublishAll = (records, onDone) =>
      Effect.suspend(() => {
        if (records.length === 0) return onDone([])
        const group: Group = { failures: new Array(records.length), remaining: records.length, onDone }
        const pendings: Array<Pending> = records.map((record, index) => ({ record, group, index }))
        const remaining = Queue.offerAllUnsafe(buffer, pendings)
        if (remaining.length === 0) return Effect.void
        // What did not fit waits for room, in order; a shut buffer refuses it.
        return Effect.flatMap(Queue.offerAll(buffer, remaining), (refused) =>
          Effect.suspend(() => {
            let done: Effect.Effect<void> | undefined
            for (const pending of refused as Array<Extract<Pending, { group: Group }>>) {
              done = settleMember(pending, shutDown(pending.record)) ?? done
            }
            return done ?? Effect.void
          }))
      })

    const flush = Effect.flatMap(
      Deferred.make<void>(),
      (flushed) =>
        Effect.flatMap(Queue.offer(buffer, { flushed }), (offered) => offered ? Deferred.await(flushed) : Effect.void)
    )
    return { publish, publishAll, publishUnsafe, flush }
  })

type ClientMessage = Parameters<Producer["send"]>[0]["messages"][number]

/**
 * The widest spread of timestamps one request may carry. The client writes
 * a record's timestamp as its difference from the first of its batch, and
 * encodes that 64-bit varint with a 32-bit sign (`int64ZigZagEncode` of
 * `@platformatic/dynamic-buffer` 0.3.1 shifts by 31, not 63): a difference
 * of 2³¹ ms (~24.9 days) or more is stored as another timestamp.
 */
const MAX_TIMESTAMP_SPREAD = 2 ** 31 - 1

/**
 * A run of records split, in order, so that the timestamps of each part lie
 * within {@link MAX_TIMESTAMP_SPREAD} of each other (then every difference
 * the client writes fits); `undefined` when the run needs no split, as it
 * nearly always does.
 */
const timestampRuns = (items: ReadonlyArray<RecordPending>): Array<ReadonlyArray<RecordPending>> | undefined => {
  let runs: Array<ReadonlyArray<RecordPending>> | undefined
  let start = 0
  let min = items[0].record.timestamp
  let max = min
  for (let i = 1; i < items.length; i++) {
    const timestamp = items[i].record.timestamp
    const low = timestamp < min ? timestamp : min
    const high = timestamp > max ? timestamp : max
    if (high - low > MAX_TIMESTAMP_SPREAD) {
      ;(runs ??= []).push(items.slice(start, i))
      start = i
      min = max = timestamp
    } else {
      min = low
      max = high
    }
  }
  if (runs === undefined) return undefined
  runs.push(items.slice(start))
  return runs
}

/**
 * A record as the client sends it: every message of one shape (the client
 * writes an `undefined` key, value or headers as absent), no headers map
 * when there are none.
 */
const toClientMessage = (record: ProducerRecord): ClientMessage => ({
  topic: record.topic,
  partition: record.partition,
  key: record.key === null ? undefined : toBuffer(record.key),
  value: record.value === null ? undefined : toBuffer(record.value),
  headers: record.rawHeaders !== undefined
    ? new Map(record.rawHeaders.map(([name, value]) => [toBuffer(name), value === null ? null : toBuffer(value)]))
    : record.headers.length === 0
    ? undefined
    : new Map(record.headers.map(([name, value]) => [Buffer.from(name), toBuffer(value)])),
  timestamp: timestampOf(record.timestamp)
} as ClientMessage)

/** The records of a batch mostly share their millisecond: its `BigInt` is made once. */
let lastTimestamp = NaN
let lastTimestampBig = 0n
const timestampOf = (timestamp: number): bigint => {
  if (timestamp !== lastTimestamp) {
    lastTimestampBig = BigInt(timestamp)
    lastTimestamp = timestamp
  }
  return lastTimestampBig
}

/** The metadata of a record appended at `offset` (-1 without acks). */
export const metadataOf = (record: ProducerRecord, offset: number): RecordMetadata.RecordMetadata =>
  appendedAt(record.topic, record.partition, offset, record.timestamp)

const toBuffer = (bytes: Uint8Array | string): Buffer =>
  typeof bytes === "string"
    ? Buffer.from(bytes)
    : Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/**
 * Each record's outcome from its partition's answer (`results`): appended
 * from the partition's base offset, in order; refused with the partition's
 * cause; or, refused as too large in a batch of several, to be sent again
 * alone (`resend`, by index). With no answer for its partition (or no
 * answers at all), a record fails with `whole`; without acks (no answers
 * expected, no failure) it succeeds with offset -1.
 */
const outcomes = (
  records: ReadonlyArray<ProducerRecord>,
  results: Map<string, partialProduce.PartitionResult> | undefined,
  whole: KafkaError | undefined
): { outcomes: Array<Outcome>; resend: Array<number> } => {
  const next = new Map<string, number>()
  // Records per partition, needed only when something was refused.
  const counts = new Map<string, number>()
  if (whole !== undefined) {
    for (const record of records) {
      const key = partitionKey(record.topic, record.partition)
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
  }
  const resend: Array<number> = []
  // A batch is mostly runs of one partition: its answer is looked up once per run.
  let runTopic: string | undefined = undefined
  let runPartition = -1
  let runKey = ""
  let result: partialProduce.PartitionResult | undefined = undefined
  /** The offset of the run's next appended record. */
  let runNext = -1
  const list = new Array<Outcome>(records.length)
  for (let index = 0; index < records.length; index++) {
    const record = records[index]
    if (record.topic !== runTopic || record.partition !== runPartition) {
      if (result !== undefined && result._tag === "Appended") next.set(runKey, runNext)
      runTopic = record.topic
      runPartition = record.partition
      runKey = partitionKey(record.topic, record.partition)
      result = results?.get(runKey)
      if (result !== undefined && result._tag === "Appended") runNext = next.get(runKey) ?? result.baseOffset
    }
    if (result === undefined && whole !== undefined) list[index] = whole
    else if (result !== undefined && result._tag === "Refused") {
      if (result.tooLarge && counts.get(runKey)! > 1) resend.push(index)
      list[index] = new KafkaError({
        operation: "produce",
        topic: record.topic,
        partition: record.partition,
        cause: result.cause
      })
    } else list[index] = result === undefined ? -1 : runNext++
  }
  return { outcomes: list, resend }
}

const sameTopic = (records: ReadonlyArray<ProducerRecord>): boolean =>
  records.every((record) => record.topic === records[0].topic)
