import { Consumer } from "@platformatic/kafka"
import * as Effect from "effect/Effect"
import * as HashSet from "effect/HashSet"
import type * as Scope from "effect/Scope"
import * as Message from "../../Message.ts"
import * as kafkaMetrics from "./kafkaMetrics.ts"

import * as metrics from "../../internal/metrics.ts"
import { partitionKey } from "../../internal/partitionKey.ts"
import { type Session } from "./session.ts"
import type { TopicImpl } from "./topic.ts"

/**
 * Reads the log end offsets and the group's committed offsets of the
 * assigned partitions, for the lag gauges: only while the topic's metrics
 * are registered, and a failure only leaves the last values.
 */
export const readOffsets = (
  consumer: Consumer<Buffer, Buffer, Buffer, Buffer>,
  topic: TopicImpl<any, any, any>,
  session: Session
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const generation = session.current
    if (
      topic.root.metrics === undefined || generation === undefined || generation.revoked ||
      generation.assigned.size === 0
    ) {
      return Effect.void
    }
    const byTopic = new Map<string, Array<number>>()
    for (const tp of generation.assignment) byTopic.set(tp.topic, [...(byTopic.get(tp.topic) ?? []), tp.partition])
    return Effect.tryPromise(async () => {
      const ends = await consumer.listOffsets({ topics: [...byTopic.keys()] })
      const committed = await consumer.listCommittedOffsets({
        topics: Array.from(byTopic, ([topic, partitions]) => ({ topic, partitions }))
      })
      return { ends, committed }
    }).pipe(
      Effect.map(({ committed, ends }) => {
        for (const [name, partitions] of byTopic) {
          for (const partition of partitions) {
            session.offsets.set(`${name}:${partition}`, {
              end: ends.get(name)?.[partition] ?? -1n,
              committed: committed.get(name)?.[partition] ?? -1n
            })
          }
        }
      }),
      Effect.ignore
    )
  })

/**
 * A partition's lag: records after the committed offset (-1: none, from the
 * start), up to the log end offset last read (-1: not read yet, no lag
 * known). The end is read periodically and this member's own commits are
 * seen at once, so a commit can pass the end last read: the log end is then
 * at least the committed offset, and the lag is 0, never negative.
 *
 * @internal
 */
export const lagOf = (end: bigint, committed: bigint): number => {
  if (end < 0n) return 0
  const from = committed < 0n ? 0n : committed
  return end > from ? Number(end - from) : 0
}

/** The offset committed on a partition, as far as this member knows (-1: none). */
const committedOffsetOf = (session: Session, key: string): bigint => {
  const ours = session.current?.partitions.get(key)?.committed ?? -1n
  const group = session.offsets.get(key)?.committed ?? -1n
  return ours > group ? ours : group
}

/** Registers the partition series of the current assignment, removes the others. */
export const syncPartitionMetrics = (topic: TopicImpl<any, any, any>, session: Session): void => {
  const registry = topic.root.metrics
  const generation = session.current
  const wanted =
    registry !== undefined && generation !== undefined && !generation.revoked && topic.root.session === session
      ? generation.assignment
      : HashSet.empty<Message.TopicPartition>()
  const keys = new Set(Array.from(wanted, (tp) => partitionKey(tp.topic, tp.partition)))
  for (const [key, remove] of session.partitionMetrics) {
    if (!keys.has(key)) {
      remove()
      session.partitionMetrics.delete(key)
    }
  }
  if (registry === undefined) return
  for (const tp of wanted) {
    const key = partitionKey(tp.topic, tp.partition)
    if (session.partitionMetrics.has(key)) continue
    session.partitionMetrics.set(
      key,
      kafkaMetrics.registerPartition(registry.context, topic.label, tp.topic, tp.partition, {
        committedOffset: () => Number(committedOffsetOf(session, key)),
        lag: () => lagOf(session.offsets.get(key)?.end ?? -1n, committedOffsetOf(session, key))
      })
    )
  }
}

/**
 * Registers a topic's metrics (the channel series, with queue depths of its
 * subscribers, and the Kafka series) with the current metric registry until
 * the scope closes.
 */
export const registerTopicMetrics = (topic: TopicImpl<any, any, any>): Effect.Effect<void, never, Scope.Scope> => {
  const root = topic.root
  return metrics.registerRoot(root, topic.label, undefined, {
    register: (context) => kafkaMetrics.registerTopic(context, topic.label, root.kafkaStats),
    resync: () => {
      if (root.session !== undefined) syncPartitionMetrics(topic, root.session)
    }
  })
}
