import {
  ConnectionPool,
  type Consumer,
  type fetchV17,
  findErrorBy,
  kOptions,
  type RecordsBatch
} from "@platformatic/kafka"
import * as Effect from "effect/Effect"
import { partitionKey } from "../../internal/partitionKey.ts"
import type * as Message from "../../Message.ts"
import { Received } from "./received.ts"
import { resetPositions, startsOf } from "./startPositions.ts"
import { abortedBatches } from "./transactions.ts"

/**
 * The consumer's fetch loop (KafkaJS's "runner"): one per group generation,
 * reading the partitions of its assignment from where they start. The
 * client's own `MessagesStream` builds, per record, a copy of it, a bound
 * commit function, a diagnostics context, a header map and array and a
 * message with its metadata, then passes each through a Node stream; this
 * loop keeps the client's parsed record as it is and adds one `Received`
 * around it (about half the CPU per record: see `bench/README.md`). The
 * client still does the rest: the group (joins, heartbeats, rebalances),
 * each fetch's retries, the partition leaders and the fetch sessions.
 */
export interface Fetcher {
  /** Up to `READ_BATCH` fetched records, in offset order per partition (waits for some); fails with the client's error. */
  readonly next: Effect.Effect<ReadonlyArray<Received>, unknown>
  /** Where each partition started: the position given, the committed offset or the `autoOffsetReset` end then. */
  readonly starts: ReadonlyMap<string, bigint>
  /** Stops fetching (an answer still on its way is dropped) and closes the fetcher's connections. */
  readonly close: () => Promise<void>
}

/** Where a fetcher starts reading a partition. */
export interface FetchPosition {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
}

export interface FetcherOptions {
  readonly names: ReadonlyArray<string>
  readonly assignment: Iterable<Message.TopicPartition>
  /** The group generation the records belong to. */
  readonly generation: number
  /** Where to start; the group's committed offsets (or `autoOffsetReset`) when absent. */
  readonly from: ReadonlyArray<FetchPosition> | undefined
  readonly autoOffsetReset: "earliest" | "latest"
  readonly maxWaitTime: number
  readonly partitionMaxBytes: number
  readonly retryDelay: number
}

/** At most this many records are handed out at once. */
const READ_BATCH = 1024

/**
 * The next fetch is sent while fewer records than this, and fewer bytes than
 * `partitionMaxBytes`, wait to be read, so that the broker's answer is on its
 * way while the last of the previous one is handled; at most one answer
 * (`partitionMaxBytes` per partition) waits beyond that.
 */
const PREFETCH_BELOW = 4 * READ_BATCH

const IS_CONTROL = 0b10_0000

type FetchResponse = fetchV17.FetchResponse

/**
 * Opens a fetcher: resolves where each partition starts, then fetches ahead
 * of its reader (see `PREFETCH_BELOW`).
 */
export const open = (consumer: Consumer, options: FetcherOptions): Promise<Fetcher> => {
  // In topic and partition order, as the client's stream asked: the broker answers in the order asked
  // (an assignment's own iteration order is a hash's).
  const assignment = Array.from(options.assignment).sort((a, b) =>
    a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition
  )
  return startsOf(consumer, assignment, options).then((starts) => {
    const loop = new FetchLoop(consumer, assignment, starts, options)
    loop.schedule()
    return {
      next: loop.next,
      starts,
      close: () => loop.close()
    }
  })
}

class FetchLoop {
  readonly consumer: Consumer
  readonly assignment: ReadonlyArray<Message.TopicPartition>
  /** The next offset to fetch, per `topic:partition`. */
  readonly positions: Map<string, bigint>
  readonly starts: Map<string, bigint>
  readonly options: FetcherOptions
  /** The fetcher's own connections: a fetch waiting `maxWaitTime` at the broker holds back no commit or heartbeat. */
  readonly pool: ConnectionPool
  /** Nodes with a fetch on its way. */
  readonly inflight = new Set<number>()
  /** Records fetched and not read yet, in chunks of at most `READ_BATCH`. */
  readonly ready: Array<Array<Received>> = []
  /** The key, value and header bytes of each chunk in `ready`. */
  readonly readyBytes: Array<number> = []
  buffered = 0
  bufferedBytes = 0
  failure: { readonly error: unknown } | undefined = undefined
  closed = false
  retryTimer: ReturnType<typeof setTimeout> | undefined = undefined
  wake: (() => void) | undefined = undefined

  constructor(
    consumer: Consumer,
    assignment: ReadonlyArray<Message.TopicPartition>,
    starts: Map<string, bigint>,
    options: FetcherOptions
  ) {
    this.consumer = consumer
    this.assignment = assignment
    this.starts = starts
    this.positions = new Map(starts)
    this.options = options
    this.pool = new ConnectionPool(consumer.clientId, { ...consumer[kOptions] })
  }

  readonly next: Effect.Effect<ReadonlyArray<Received>, unknown> = Effect.callback((resume) => {
    const attempt = (): boolean => {
      const chunk = this.ready.shift()
      if (chunk !== undefined) {
        this.buffered -= chunk.length
        this.bufferedBytes -= this.readyBytes.shift()!
        this.schedule()
        resume(Effect.succeed(chunk))
        return true
      }
      if (this.failure !== undefined) {
        resume(Effect.fail(this.failure.error))
        return true
      }
      return false
    }
    if (attempt()) return
    // Cleared before the attempt: resuming may run the reader on to its next wait at once.
    const retry = () => {
      this.wake = undefined
      if (!attempt()) this.wake = retry
    }
    this.wake = retry
    return Effect.sync(() => {
      this.wake = undefined
    })
  })

  /** Sends a fetch to each partition leader with none on its way, unless enough waits to be read. */
  schedule(): void {
    if (this.closed || this.failure !== undefined) return
    if (this.buffered >= PREFETCH_BELOW || this.bufferedBytes >= this.options.partitionMaxBytes) return
    if (this.assignment.length === 0 || this.retryTimer !== undefined) return
    this.consumer.metadata({ topics: [...this.options.names] }, (error, metadata) => {
      if (this.closed) return
      if (error || metadata === undefined) return this.fail(error)
      const requests = new Map<number, Array<{ topicId: string; partition: number; fetchOffset: bigint }>>()
      const topicIds = new Map<string, string>()
      let leaderless = false
      for (const { partition, topic } of this.assignment) {
        const topicMetadata = metadata.topics.get(topic)
        const leader = topicMetadata?.partitions[partition]?.leader
        if (topicMetadata === undefined || leader === undefined || leader < 0) {
          leaderless = true
          continue
        }
        if (this.inflight.has(leader)) continue
        topicIds.set(topicMetadata.id, topic)
        let list = requests.get(leader)
        if (list === undefined) requests.set(leader, list = [])
        list.push({
          topicId: topicMetadata.id,
          partition,
          fetchOffset: this.positions.get(partitionKey(topic, partition))!
        })
      }
      // A partition between leaders is fetched again once the metadata names one.
      if (leaderless && requests.size === 0 && this.inflight.size === 0) {
        this.consumer.clearMetadata()
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined
          this.schedule()
        }, this.options.retryDelay)
      }
      for (const [node, list] of requests) this.fetchFrom(node, list, topicIds)
    })
  }

  fetchFrom(
    node: number,
    list: ReadonlyArray<{ topicId: string; partition: number; fetchOffset: bigint }>,
    topicIds: ReadonlyMap<string, string>
  ): void {
    if (this.inflight.has(node)) return
    this.inflight.add(node)
    const byTopic = new Map<
      string,
      Array<{
        partition: number
        fetchOffset: bigint
        partitionMaxBytes: number
        currentLeaderEpoch: number
        lastFetchedEpoch: number
      }>
    >()
    const requested = new Map<string, bigint>()
    for (const { fetchOffset, partition, topicId } of list) {
      let partitions = byTopic.get(topicId)
      if (partitions === undefined) byTopic.set(topicId, partitions = [])
      partitions.push({
        partition,
        fetchOffset,
        partitionMaxBytes: this.options.partitionMaxBytes,
        currentLeaderEpoch: -1,
        lastFetchedEpoch: -1
      })
      requested.set(partitionKey(topicIds.get(topicId)!, partition), fetchOffset)
    }
    const done = (error: Error | null, response: FetchResponse | undefined) => {
      this.inflight.delete(node)
      if (this.closed) return
      if (error || response === undefined) return this.recover(error ?? new Error("a fetch with no answer"), topicIds)
      this.receive(response, topicIds, requested)
      this.schedule()
    }
    this.consumer.fetch({
      node,
      maxWaitTime: this.options.maxWaitTime,
      topics: Array.from(byTopic, ([topicId, partitions]) => ({ topicId, partitions })),
      connectionPool: this.pool
    }, done)
  }

  /** Keeps the records of an answer, from each partition's requested offset on. */
  receive(
    response: FetchResponse,
    topicIds: ReadonlyMap<string, string>,
    requested: ReadonlyMap<string, bigint>
  ): void {
    const generation = this.options.generation
    const ready = this.ready
    const readyBytes = this.readyBytes
    let chunk: Array<Received> | undefined = ready.length > 0 ? ready[ready.length - 1] : undefined
    let chunkBytes = chunk === undefined ? 0 : readyBytes[readyBytes.length - 1]
    let added = 0
    let addedBytes = 0
    for (const topicResponse of response.responses) {
      const topic = topicIds.get(topicResponse.topicId)
      if (topic === undefined) continue
      for (const partitionResponse of topicResponse.partitions) {
        const partition = partitionResponse.partitionIndex
        const key = partitionKey(topic, partition)
        const from = requested.get(key)
        const batches: ReadonlyArray<RecordsBatch> | null | undefined = partitionResponse.records
        // A partition left in the broker's fetch session, or moved since (a reset), is not this answer's.
        if (from === undefined || this.positions.get(key) !== from || !batches || batches.length === 0) continue
        const aborted = partitionResponse.abortedTransactions
        const skipAborted = aborted !== null && aborted.length > 0 ? abortedBatches(aborted) : undefined
        for (const batch of batches) {
          const firstOffset = batch.firstOffset
          if (skipAborted !== undefined && skipAborted(batch)) continue
          if (batch.attributes & IS_CONTROL) continue
          const firstTimestamp = batch.firstTimestamp
          const leaderEpoch = batch.partitionLeaderEpoch
          const records = batch.records
          for (let i = 0; i < records.length; i++) {
            const record = records[i]
            const delta = record.offsetDelta
            const offset = firstOffset + (delta < smallBigInts.length ? smallBigInts[delta] : BigInt(delta))
            // A compressed batch starts before the offset asked for.
            if (offset < from) continue
            if (chunk === undefined || chunk.length === READ_BATCH) {
              if (chunk !== undefined) readyBytes[readyBytes.length - 1] = chunkBytes
              ready.push(chunk = [])
              readyBytes.push(chunkBytes = 0)
            }
            const bytes = sizeOf(record)
            chunkBytes += bytes
            addedBytes += bytes
            chunk.push(
              new Received(
                topic,
                partition,
                offset,
                firstTimestamp,
                record.timestampDelta,
                leaderEpoch,
                record.key,
                record.value,
                record.headers,
                generation
              )
            )
            added++
          }
        }
        const last = batches[batches.length - 1]
        this.positions.set(key, last.firstOffset + BigInt(last.lastOffsetDelta) + 1n)
      }
    }
    if (added === 0) return
    readyBytes[readyBytes.length - 1] = chunkBytes
    this.buffered += added
    this.bufferedBytes += addedBytes
    this.wake?.()
  }

  /**
   * A fetch the client gave up on: partitions whose offset is out of range
   * (deleted by retention, or past a truncated log) start again at the
   * `autoOffsetReset` end; anything else fails the fetcher.
   */
  recover(error: Error, topicIds: ReadonlyMap<string, string>): void {
    const response = outOfRangeAnswer(error)
    if (response === undefined || response.errorCode !== 0) return this.fail(error)
    const reset = this.options.autoOffsetReset
    const toList = new Map<string, Array<number>>()
    const recovered: Array<readonly [string, bigint]> = []
    for (const topicResponse of response.responses) {
      const topic = topicIds.get(topicResponse.topicId)
      if (topic === undefined) return this.fail(error)
      for (const partitionResponse of topicResponse.partitions) {
        if (partitionResponse.errorCode === 0) continue
        if (partitionResponse.errorCode !== OFFSET_OUT_OF_RANGE) return this.fail(error)
        const partition = partitionResponse.partitionIndex
        const offset = reset === "earliest" ? partitionResponse.logStartOffset : partitionResponse.highWatermark
        if (offset >= 0n) recovered.push([partitionKey(topic, partition), offset])
        else {
          const list = toList.get(topic)
          if (list === undefined) toList.set(topic, [partition])
          else list.push(partition)
        }
      }
    }
    const listed = toList.size === 0 ? Promise.resolve([]) : resetPositions(this.consumer, toList, reset)
    listed.then(
      (more) => {
        if (this.closed) return
        for (const [key, offset] of [...recovered, ...more]) {
          this.positions.set(key, offset)
          this.starts.set(key, offset)
        }
        this.schedule()
      },
      (cause) => this.fail(cause)
    )
  }

  fail(error: unknown): void {
    if (this.closed || this.failure !== undefined) return
    this.failure = { error }
    this.wake?.()
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve()
    this.closed = true
    this.wake = undefined
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    this.ready.length = 0
    this.readyBytes.length = 0
    this.buffered = 0
    this.bufferedBytes = 0
    return new Promise((resolve) => this.pool.close(() => resolve()))
  }
}

const OFFSET_OUT_OF_RANGE = 1

/**
 * The broker's answer that refused a fetch for an offset out of range: on
 * the error itself, or, when the client retried the fetch, on the last
 * attempt's error among those it nests.
 */
const outOfRangeAnswer = (error: unknown, depth = 0): FetchResponse | undefined => {
  if (typeof error !== "object" || error === null || depth > 8) return undefined
  const nested = (error as { errors?: unknown }).errors
  if (Array.isArray(nested)) {
    for (let i = nested.length - 1; i >= 0; i--) {
      const found = outOfRangeAnswer(nested[i], depth + 1)
      if (found !== undefined) return found
    }
  }
  const response = (error as { response?: FetchResponse }).response
  return response !== undefined && findErrorBy(error as Error, "apiId", "OFFSET_OUT_OF_RANGE") ? response : undefined
}

/** A record's key, value and header bytes. */
const sizeOf = (record: RecordsBatch["records"][number]): number => {
  let bytes = (record.key?.length ?? 0) + (record.value?.length ?? 0)
  const headers = record.headers
  for (let i = 0; i < headers.length; i++) bytes += (headers[i][0]?.length ?? 0) + (headers[i][1]?.length ?? 0)
  return bytes
}

/** Offset deltas as bigints, made once: a record's offset is then one addition. */
const smallBigInts: ReadonlyArray<bigint> = Array.from({ length: 4096 }, (_, i) => BigInt(i))
