/**
 * The consumer's pump: a generation's fetched records, decoded and tracked,
 * into the topic's subscribers; a failed fetcher replaced where it was.
 */
import * as Effect from "effect/Effect"
import { type DecodeError } from "../../Errors.ts"
import type * as Event from "../../Event.ts"
import * as FutureMessage from "../../FutureMessage.ts"
import { KafkaError } from "../KafkaError.ts"

import {
  decodeError,
  decodeKey,
  decodeMessage,
  decodeValue,
  isDecodeError,
  Undecodable
} from "../../internal/decode.ts"
import { partitionKey } from "../../internal/partitionKey.ts"
import type * as Message from "../../Message.ts"
import { makeTopicEvent, PartitionTracker, receivedTopicEvent, type Tracked } from "./acknowledgement.ts"
import { decodeFailed, deliver, deliverRun } from "./delivery.ts"
import { explain, isTransient } from "./explain.ts"
import type { Fetcher, FetchPosition } from "./fetcher.ts"
import { type Received, toMessage } from "./received.ts"
import type { FetchedGeneration, Generation, Session, SessionFailure } from "./session.ts"
import type { TopicImpl } from "./topic.ts"

/** Opens a fetcher of the session's topics for a generation (from the committed offsets, or the positions given) and closes one. */
export interface FetcherSource {
  readonly open: (
    generation: FetchedGeneration,
    from?: ReadonlyArray<FetchPosition>
  ) => Effect.Effect<Fetcher, KafkaError>
  readonly close: (fetcher: Fetcher) => Effect.Effect<void>
}

/**
 * Where a replacement of `failed` starts, so that it reads on exactly where
 * the pump is: after the last record delivered of a partition, or where
 * `failed` started a partition it delivered nothing of (its resolved start:
 * the committed offset, or the `autoOffsetReset` end at the time, which the
 * committed offsets alone would not give again under `"latest"`).
 * `undefined` when `failed` has no start for a partition: the committed
 * offsets are then what it would have read from.
 */
export const resumeAt = (
  generation: Generation,
  failed: Fetcher
): ReadonlyArray<FetchPosition> | undefined => {
  const positions: Array<FetchPosition> = []
  for (const { partition, topic } of generation.assignment) {
    const key = partitionKey(topic, partition)
    const tracker = generation.partitions.get(key)
    const offset = tracker !== undefined ? tracker.lastOffset + 1n : failed.starts.get(key)
    if (offset === undefined) return undefined
    positions.push({ topic, partition, offset })
  }
  return positions
}

/**
 * Reads one generation's fetcher into the topic. Records of a partition not
 * assigned, or fetched twice, are dropped; nothing is delivered once the
 * generation is revoked.
 *
 * A fetcher that fails on errors the client deems passing (it gives up on a
 * fetch pinned to a partition's old leader after its retries, while the
 * partition has a new leader) is replaced by a new one in the same group
 * generation: it reads on from where the pump is (see `resumeAt`), so
 * nothing is skipped or delivered again and the subscribers see no failure.
 * A replacement that fails before it delivered anything, or any other
 * failure, fails the session.
 */
export const pump = (
  topic: TopicImpl<any, any, any>,
  session: Session,
  generation: Generation,
  fail: (error: SessionFailure) => void,
  fetchers: FetcherSource
): Effect.Effect<void> => {
  const label = session.names.join(", ")
  // The tracker of the last message's partition: a fetched batch is mostly one partition's run.
  let last: PartitionTracker | undefined = undefined
  const trackerOf = (received: Received): PartitionTracker | undefined => {
    if (last !== undefined && last.partition === received.partition && last.topic === received.topic) return last
    const key = partitionKey(received.topic, received.partition)
    if (!generation.assigned.has(key)) return undefined
    let tracker = generation.partitions.get(key)
    if (tracker === undefined) {
      tracker = new PartitionTracker(
        received.topic,
        received.partition,
        received.offset,
        topic.root.kafkaStats,
        session.guard
      )
      generation.partitions.set(key, tracker)
    }
    return last = tracker
  }
  /**
   * Goes on with `next` once a message is delivered. A delivery that failed
   * (the "fail" policy on a bad record, a dead letter refused) stops this
   * generation: nothing after it is handled or settled, so the next session
   * starts right after the bad record (settled by the policy) and the next
   * bad record fails the next session in its turn.
   */
  const failed = (
    delivered: Effect.Effect<void, DecodeError | FutureMessage.PublishError>,
    next: () => Effect.Effect<void, unknown>
  ): Effect.Effect<void, unknown> =>
    Effect.matchEffect(delivered, {
      onFailure: (error) => Effect.andThen(Effect.sync(() => fail(error)), Effect.never),
      onSuccess: next
    })
  // Set when a failed fetcher is replaced, cleared by the replacement's first batch.
  let replacing = false
  const createEvent = topic.eventFactory
  const channelSettings = topic.channelSettings
  const spans = channelSettings.spans
  const lazyEvents = createEvent === makeTopicEvent && !spans
  /**
   * Delivers a fetched batch from `from` on: decodes the messages of this
   * generation's partitions (dropping those fetched twice) and hands each run
   * of decoded events to the subscribers at once; a decode error goes
   * through the policy between two runs, so the order holds.
   */
  const handleFrom = (batch: ReadonlyArray<Received>, from: number): Effect.Effect<void, unknown> => {
    const events: Array<Event.Event<any, any>> = []
    const tracked: Array<Tracked> = []
    for (let i = from; i < batch.length; i++) {
      const received = batch[i]
      if (generation.revoked) continue
      const tracker = trackerOf(received)
      // not assigned, or fetched twice in one generation
      if (tracker === undefined || received.offset <= tracker.lastOffset) continue
      const entry = tracker.track(received.offset, received.leaderEpoch)
      let message: Message.Message
      let error: DecodeError
      if (lazyEvents) {
        // The default events: decoded from the record, the message built only if something reads it.
        const key = decodeKey(channelSettings, received.key)
        const value = key instanceof Undecodable ? key : decodeValue(channelSettings, received.value)
        if (!(value instanceof Undecodable)) {
          events.push(receivedTopicEvent(key, value, received, tracker.tp))
          tracked.push(entry)
          continue
        }
        message = toMessage(received, tracker.tp)
        error = decodeError(channelSettings, value, message)
      } else {
        message = toMessage(received, tracker.tp)
        if (spans) return failed(deliver(topic, message, entry), () => handleFrom(batch, i + 1))
        const decoded = decodeMessage(channelSettings, message, createEvent)
        if (!isDecodeError(decoded)) {
          events.push(decoded)
          tracked.push(entry)
          continue
        }
        error = decoded
      }
      // After a wait for room, the partition may be revoked: its new owner applies the policy.
      const rest = Effect.suspend(() =>
        generation.revoked
          ? handleFrom(batch, i + 1)
          : failed(decodeFailed(topic, error, message, entry), () => handleFrom(batch, i + 1))
      )
      const waiting = events.length === 0 ? undefined : deliverRun(topic, events, tracked)
      return waiting === undefined ? rest : Effect.andThen(waiting, rest)
    }
    const waiting = events.length === 0 ? undefined : deliverRun(topic, events, tracked)
    return waiting === undefined ? loop : Effect.andThen(waiting, loop)
  }
  const loop: Effect.Effect<void, unknown> = Effect.flatMap(
    Effect.suspend(() => generation.fetcher.next),
    (batch) => {
      replacing = false
      return handleFrom(batch, 0)
    }
  )
  const replace = (cause: unknown): Effect.Effect<void, unknown> =>
    replacing || generation.revoked || session.current !== generation || !isTransient(cause)
      ? Effect.fail(cause)
      : Effect.gen(function*() {
        replacing = true
        yield* Effect.logWarning(
          `Kafka consume on ${label}: a fetch failed (${
            explain(cause) ?? String(cause)
          }); reading on with a new fetcher from where this member is`
        )
        const failed = generation.fetcher
        yield* fetchers.close(failed)
        generation.fetcher = yield* fetchers.open(generation, resumeAt(generation, failed))
        topic.root.kafkaStats.streamsReplaced++
        return yield* reading
      })
  const reading: Effect.Effect<void, unknown> = Effect.catch(loop, replace)
  return reading.pipe(
    Effect.mapError((cause) =>
      cause instanceof KafkaError ? cause : new KafkaError({ operation: "consume", topic: label, cause })
    ),
    Effect.catch((error) =>
      Effect.sync(() => {
        if (session.current === generation) fail(error)
      })
    ),
    // A throw while delivering (an app's own createEvent) fails the session
    // like a fetch error, rather than leaving it without a pump.
    Effect.catchDefect((defect) =>
      Effect.sync(() => {
        if (session.current === generation) fail(new KafkaError({ operation: "consume", topic: label, cause: defect }))
      })
    )
  )
}
