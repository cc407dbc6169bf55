/** The key of a topic partition in maps and sets, and as it is shown: `topic:partition`. @internal */
export const partitionKey = (topic: string, partition: number): string => `${topic}:${partition}`

/** Active partitions as inspection shows them: their keys, or `null` for all partitions. @internal */
export const partitionKeys = (
  partitions: Iterable<{ readonly topic: string; readonly partition: number }> | undefined
): Array<string> | null =>
  partitions === undefined ? null : Array.from(partitions, (tp) => partitionKey(tp.topic, tp.partition))
