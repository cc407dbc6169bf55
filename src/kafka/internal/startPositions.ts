import { type Consumer, ListOffsetTimestamps } from "@platformatic/kafka"
import { partitionKey } from "../../internal/partitionKey.ts"
import type * as Message from "../../Message.ts"
import type { FetchPosition } from "./fetcher.ts"

/**
 * Where a fetcher starts each partition of its assignment: the positions
 * given, else the group's committed offset, else (nothing committed) the
 * `autoOffsetReset` end as the broker has it now.
 */
export const startsOf = async (
  consumer: Consumer,
  assignment: ReadonlyArray<Message.TopicPartition>,
  options: {
    readonly from: ReadonlyArray<FetchPosition> | undefined
    readonly autoOffsetReset: "earliest" | "latest"
  }
): Promise<Map<string, bigint>> => {
  const starts = new Map<string, bigint>()
  if (options.from !== undefined) {
    for (const { offset, partition, topic } of options.from) starts.set(partitionKey(topic, partition), offset)
    return starts
  }
  if (assignment.length === 0) return starts
  const byTopic = new Map<string, Array<number>>()
  for (const { partition, topic } of assignment) {
    const partitions = byTopic.get(topic)
    if (partitions === undefined) byTopic.set(topic, [partition])
    else partitions.push(partition)
  }
  const committed = await consumer.listCommittedOffsets({
    topics: Array.from(byTopic, ([topic, partitions]) => ({ topic, partitions }))
  })
  const unset = new Map<string, Array<number>>()
  for (const [topic, partitions] of byTopic) {
    const offsets = committed.get(topic)
    for (const partition of partitions) {
      const offset = offsets?.[partition]
      if (typeof offset === "bigint" && offset >= 0n) starts.set(partitionKey(topic, partition), offset)
      else {
        const missing = unset.get(topic)
        if (missing === undefined) unset.set(topic, [partition])
        else missing.push(partition)
      }
    }
  }
  if (unset.size > 0) {
    for (const [key, offset] of await resetPositions(consumer, unset, options.autoOffsetReset)) starts.set(key, offset)
  }
  return starts
}

/** The `autoOffsetReset` end of each partition given, as the broker has it now. */
export const resetPositions = async (
  consumer: Consumer,
  partitions: ReadonlyMap<string, ReadonlyArray<number>>,
  reset: "earliest" | "latest"
): Promise<Array<readonly [string, bigint]>> => {
  const ends = await consumer.listOffsets({
    topics: Array.from(partitions.keys()),
    partitions: Object.fromEntries(Array.from(partitions, ([topic, list]) => [topic, [...list]])),
    timestamp: reset === "earliest" ? ListOffsetTimestamps.EARLIEST : ListOffsetTimestamps.LATEST
  })
  const positions: Array<readonly [string, bigint]> = []
  for (const [topic, list] of partitions) {
    const offsets = ends.get(topic)
    for (const partition of list) {
      const offset = offsets?.[partition]
      if (typeof offset !== "bigint" || offset < 0n) {
        throw new Error(`the broker gave no ${reset} offset for ${topic} partition ${partition}`)
      }
      positions.push([partitionKey(topic, partition), offset])
    }
  }
  return positions
}
