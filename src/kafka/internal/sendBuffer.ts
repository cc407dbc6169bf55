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
import { partitionKey } from "../../internal/partitionKey.ts"
import * as RecordMetadata from "../../RecordMetadata.ts"
import { type ProducerRecord, type Settings } from "../Kafka.ts"
import { KafkaError } from "../KafkaError.ts"
import type { Publish, PublishAll, PublishUnsafe } from "./capabilities.ts"
import { fromBrokers } from "./explain.ts"
import * as partialProduce from "./partialProduce.ts"

/** Records published together with one completion (see `capabilities.ts`). */
interface Group {
  readonly exits: Array<Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>>
  remaining: number
  readonly onDone: (exits: ReadonlyArray<Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>>) => Effect.Effect<void>
}

/** A record in the send buffer (alone, or one of a group), or a flush marker. */
type Pending =
  | {
    readonly record: ProducerRecord
    readonly onDone: (exit: Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>) => Effect.Effect<void>
  }
  | { readonly record: ProducerRecord; readonly group: Group; readonly index: number }
  | { readonly flushed: Deferred.Deferred<void> }

/** Records an exit of a group member; the group's completion once all are in, else `undefined`. */
const settleMember = (
  pending: { readonly group: Group; readonly index: number },
  exit: Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>
): Effect.Effect<void> | undefined => {
  const group = pending.group
  group.exits[pending.index] = exit
  return --group.remaining === 0 ? group.onDone(group.exits) : undefined
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
    ): Effect.Effect<Array<Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>>> =>
      Effect.callback<Array<Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>>>((resume) => {
        producer.send({
          acks: acks ? ProduceAcks.ALL : ProduceAcks.NO_RESPONSE,
          idempotent: acks,
          messages: records.map(toClientMessage)
        }).then(
          (result) => {
            const appended = new Map<string, partialProduce.PartitionResult>()
            for (const { offset, partition, topic } of result.offsets ?? []) {
              appended.set(partitionKey(topic, partition), { _tag: "Appended", baseOffset: Number(offset) })
            }
            resume(Effect.succeed(outcomes(records, acks ? appended : undefined, undefined).exits))
          },
          (rejection) => {
            const whole = new KafkaError({
              operation: "produce",
              cause: fromBrokers(rejection, settings.bootstrapServers),
              ...(sameTopic(records) ? { topic: records[0].topic } : {})
            })
            const { exits, resend } = outcomes(records, partialProduce.partitionResults(rejection), whole)
            if (resend.length === 0) return resume(Effect.succeed(exits))
            resume(Effect.as(
              Effect.forEach(resend, (index) =>
                Effect.map(sendBatch([records[index]], acks), ([exit]) => {
                  exits[index] = exit
                }), { discard: true }),
              exits
            ))
          }
        )
      })

    /**
     * Sends a batch and hands each record's result to its completion, in a
     * plain loop: a completion that finishes synchronously returns
     * `Effect.void`, and only the others are run (in order) afterwards.
     */
    const complete = (batch: ReadonlyArray<Pending>) =>
      Effect.gen(function*() {
        const groups = [
          batch.filter((pending) => "record" in pending && pending.record.acks !== false),
          batch.filter((pending) => "record" in pending && pending.record.acks === false)
        ] as const
        for (const [index, group] of groups.entries()) {
          if (group.length === 0) continue
          const items = group as ReadonlyArray<Extract<Pending, { record: ProducerRecord }>>
          const exits = yield* sendBatch(items.map((pending) => pending.record), index === 0)
          let after: Array<Effect.Effect<void>> | undefined
          for (let i = 0; i < items.length; i++) {
            const item = items[i]
            const result = exits[i]
            const done = "onDone" in item ? item.onDone(result) : settleMember(item, result)
            if (done !== undefined && done !== Effect.void) (after ??= []).push(done)
          }
          if (after !== undefined) { for (const done of after) yield* done }
        }
        for (const pending of batch) if ("flushed" in pending) yield* Deferred.succeed(pending.flushed, undefined)
      })

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

    const publishUnsafe: PublishUnsafe = (record, onDone) => Queue.offerUnsafe(buffer, { record, onDone })

    const publish = (
      record: ProducerRecord,
      onDone: (exit: Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>) => Effect.Effect<void>
    ): Effect.Effect<void> =>
      // Suspended: the record joins the buffer when the effect runs, not when it is built.
      Effect.suspend(() => {
        if (publishUnsafe(record, onDone)) return Effect.void
        return Effect.flatMap(
          Queue.offer(buffer, { record, onDone }),
          (offered) => offered ? Effect.void : onDone(Exit.fail(shutDown(record)))
        )
      })

    const publishAll: PublishAll = (records, onDone) =>
      Effect.suspend(() => {
        if (records.length === 0) return onDone([])
        const group: Group = { exits: new Array(records.length), remaining: records.length, onDone }
        const pendings: Array<Pending> = records.map((record, index) => ({ record, group, index }))
        const remaining = Queue.offerAllUnsafe(buffer, pendings)
        if (remaining.length === 0) return Effect.void
        // What did not fit waits for room, in order; a shut buffer refuses it.
        return Effect.flatMap(Queue.offerAll(buffer, remaining), (refused) =>
          Effect.suspend(() => {
            let done: Effect.Effect<void> | undefined
            for (const pending of refused as Array<Extract<Pending, { group: Group }>>) {
              done = settleMember(pending, Exit.fail(shutDown(pending.record))) ?? done
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
  timestamp: BigInt(record.timestamp)
} as ClientMessage)

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
): { exits: Array<Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>>; resend: Array<number> } => {
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
  const exits = records.map((record, index): Exit.Exit<RecordMetadata.RecordMetadata, KafkaError> => {
    if (record.topic !== runTopic || record.partition !== runPartition) {
      if (result !== undefined && result._tag === "Appended") next.set(runKey, runNext)
      runTopic = record.topic
      runPartition = record.partition
      runKey = partitionKey(record.topic, record.partition)
      result = results?.get(runKey)
      if (result !== undefined && result._tag === "Appended") runNext = next.get(runKey) ?? result.baseOffset
    }
    if (result === undefined && whole !== undefined) return Exit.fail(whole)
    if (result !== undefined && result._tag === "Refused") {
      if (result.tooLarge && counts.get(runKey)! > 1) resend.push(index)
      return Exit.fail(
        new KafkaError({ operation: "produce", topic: record.topic, partition: record.partition, cause: result.cause })
      )
    }
    const offset = result === undefined ? -1 : runNext++
    return Exit.succeed(RecordMetadata.make({
      topic: record.topic,
      partition: record.partition,
      offset,
      timestamp: record.timestamp,
      timestampType: 0
    }))
  })
  return { exits, resend }
}

const sameTopic = (records: ReadonlyArray<ProducerRecord>): boolean =>
  records.every((record) => record.topic === records[0].topic)
