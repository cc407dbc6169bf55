/** The key of a topic partition in maps and sets, and as it is shown: `topic:partition`. @internal */
export const partitionKey = (topic: string, partition: number): string => `${topic}:${partition}`
