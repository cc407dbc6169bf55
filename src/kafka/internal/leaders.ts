/**
 * Waiting for a new topic's partitions to have leaders. The broker answers
 * `CreateTopics` before it leads the new partitions: a send right after a
 * declare meets NOT_LEADER_OR_FOLLOWER until it does, and fails if that
 * lasts past the client's retries (seen on a broker just restarted, with
 * many topics to load).
 */
import type { Admin, Producer } from "@platformatic/kafka"
import * as Effect from "effect/Effect"

/** A topic's partitions as the cluster's metadata describes them (`leader` -1: none yet). */
export type PartitionLeaders = ReadonlyArray<{ readonly leader: number }> | undefined

/**
 * Asks `partitionsOf` every `interval` millis until each partition of
 * `topic` has a leader: `true` then, `false` after `within` millis (the
 * caller goes on: its sends still have the client's retries). A failed
 * answer counts as not yet.
 */
export const awaitLeaders = (
  partitionsOf: (topic: string) => Promise<PartitionLeaders>,
  topic: string,
  within: number,
  interval = 100
): Effect.Effect<boolean> => {
  const led: Effect.Effect<boolean> = Effect.tryPromise(() => partitionsOf(topic)).pipe(
    Effect.map((partitions) =>
      partitions !== undefined && partitions.length > 0 && partitions.every((p) => p.leader >= 0)
    ),
    Effect.orElseSucceed(() => false)
  )
  const poll: Effect.Effect<boolean> = Effect.flatMap(
    led,
    (ready) => ready ? Effect.succeed(true) : Effect.andThen(Effect.sleep(interval), poll)
  )
  return Effect.timeoutOrElse(poll, { duration: within, orElse: () => Effect.succeed(false) })
}

/**
 * A topic's partitions once each leader answers for its own: the metadata
 * (refreshed, so that the producer knows the leaders) names a leader before
 * that broker leads the partition, and a ListOffsets, which only the leader
 * serves, is refused until it does. Rejects while a leader does not answer.
 */
export const answeringLeaders = (
  producer: Producer<Buffer, Buffer, Buffer, Buffer>,
  admin: Admin
) =>
async (topic: string): Promise<PartitionLeaders> => {
  const metadata = await producer.metadata({ topics: [topic], forceUpdate: true })
  const partitions = metadata.topics.get(topic)?.partitions
  if (partitions === undefined || partitions.some((p) => p.leader < 0)) return partitions
  await admin.listOffsets({
    topics: [{ name: topic, partitions: partitions.map((_, partitionIndex) => ({ partitionIndex, timestamp: -1n })) }]
  })
  return partitions
}
