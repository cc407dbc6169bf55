import type { Consumer, GroupProtocolsMetadataCallback } from "@platformatic/kafka"
import * as Effect from "effect/Effect"

/**
 * Notices partitions added to the topics a consumer session reads, and
 * rejoins the group so that they are assigned (as Kafka's own clients do
 * after a metadata refresh); the client alone never reads them until the
 * program restarts.
 *
 * With `autoOffsetReset: "latest"`, a new partition would start at its end
 * when first assigned, skipping what producers wrote to it before this
 * member noticed it. So a new partition with no committed offset gets offset
 * 0 committed first: it is read from its first record.
 *
 * Every `interval`, the partition counts (fresh metadata) are compared with
 * the last ones seen, first with those of the client's cached metadata the
 * group was joined with. The group's leader, which may be another member
 * (another topic's, under a shared `groupId`), assigns from its own cached
 * metadata: the rejoin waits `metadataMaxAge` after the growth was seen, so
 * that every member's cache is fresh enough to know the new partitions.
 * A rejoin moves the group only if the member's subscription changed (the
 * coordinator answers a member that rejoins unchanged with its old
 * assignment): see `subscriptionUserData`.
 */
export const watch = (options: {
  readonly consumer: Consumer<Buffer, Buffer, Buffer, Buffer>
  readonly names: ReadonlyArray<string>
  readonly interval: number
  readonly metadataMaxAge: number
  readonly fromEarliest: boolean
}): Effect.Effect<never> => {
  const { consumer, names } = options
  let known: Map<string, number> | undefined
  const countsOf = (forceUpdate: boolean) =>
    Effect.map(Effect.tryPromise(() => consumer.metadata({ topics: [...names], forceUpdate })), (metadata) => {
      const counts = new Map<string, number>()
      for (const name of names) counts.set(name, metadata.topics.get(name)?.partitionsCount ?? 0)
      return counts
    })
  const check = Effect.gen(function*() {
    const counts = yield* countsOf(true)
    const before = known
    known = counts
    if (before === undefined) return
    const added = names.flatMap((name) => {
      const from = before.get(name) ?? 0
      return Array.from(
        { length: Math.max(0, counts.get(name)! - from) },
        (_, i) => ({ topic: name, partition: from + i })
      )
    })
    if (added.length === 0) return
    if (options.fromEarliest) yield* Effect.tryPromise(() => commitStartOf(consumer, added))
    yield* Effect.sleep(options.metadataMaxAge)
    yield* Effect.tryPromise(() => consumer.joinGroup())
  })
  const joinedWith = Effect.map(countsOf(false), (counts) => {
    known = counts
  })
  // A failed check (the broker away for a moment) is tried again at the next interval.
  return Effect.andThen(
    Effect.ignore(joinedWith),
    Effect.forever(Effect.andThen(Effect.sleep(options.interval), Effect.ignore(check)))
  )
}

/** Commits offset 0 for the partitions that have no committed offset yet. */
const commitStartOf = async (
  consumer: Consumer<Buffer, Buffer, Buffer, Buffer>,
  partitions: ReadonlyArray<{ readonly topic: string; readonly partition: number }>
): Promise<void> => {
  const byTopic = new Map<string, Array<number>>()
  for (const { partition, topic } of partitions) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition])
  const committed = await consumer.listCommittedOffsets({
    topics: Array.from(byTopic, ([topic, list]) => ({ topic, partitions: list }))
  })
  const start = partitions.filter(({ partition, topic }) => (committed.get(topic)?.[partition] ?? -1n) < 0n)
  if (start.length === 0) return
  await consumer.commit({
    offsets: start.map(({ partition, topic }) => ({ topic, partition, offset: 0n, leaderEpoch: -1 }))
  })
}

/**
 * The user data of a member's subscription: the partition counts of its
 * topics, read fresh at each join. A member that saw partitions added
 * rejoins with other user data, which makes the coordinator rebalance the
 * group even when that member is not its leader.
 */
export const subscriptionUserData: GroupProtocolsMetadataCallback = (_protocols, topics, metadata) =>
  Buffer.from(JSON.stringify(topics.map((topic) => [topic, metadata.topics.get(topic)?.partitionsCount ?? 0])))
