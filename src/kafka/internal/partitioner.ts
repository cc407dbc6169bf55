/**
 * Kafka's default partitioner: murmur2 of the key bytes (so Java and Python
 * producers agree), keyless records round-robin per topic.
 */
import { partitionForKey } from "./murmur2.ts"

/** The partition of a record of `topic` among `count`; `next` keeps each topic's round-robin position. */
export const partitionOf = (
  next: Map<string, number>,
  topic: string,
  key: Uint8Array | null,
  count: number
): number => {
  if (key !== null) return partitionForKey(key, count)
  const position = next.get(topic) ?? 0
  next.set(topic, position + 1)
  return position % count
}
