/**
 * The broker as another client sees it, for tests: an admin client, the log
 * end offsets of a topic, and its records read by the raw client with their
 * exact bytes (no codec, no Schema).
 */
import { Admin, Consumer } from "@platformatic/kafka"
import { Effect } from "effect"
import { bootstrapServers, unique } from "./setup.ts"

export const withAdmin = <A>(f: (admin: Admin) => Promise<A>) =>
  Effect.promise(async () => {
    const admin = new Admin({ clientId: unique("admin"), bootstrapBrokers: [bootstrapServers] })
    try {
      return await f(admin)
    } finally {
      await admin.close()
    }
  })

/** The log end offset of each partition of a topic: how many records it stored. */
export const logEnds = (topic: string, partitions: number) =>
  withAdmin(async (admin) => {
    const listed = await admin.listOffsets({
      topics: [{
        name: topic,
        partitions: Array.from({ length: partitions }, (_, partitionIndex) => ({ partitionIndex, timestamp: -1n }))
      }]
    })
    const parts = listed.find((t) => t.name === topic)!.partitions
    return Array.from({ length: partitions }, (_, i) => Number(parts.find((p) => p.partitionIndex === i)!.offset))
  })

/** A record as another client reads it: the bytes exactly. */
export interface RawRecord {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly timestamp: number
  readonly key: Uint8Array | null
  readonly value: Uint8Array | null
  readonly headers: ReadonlyArray<readonly [Uint8Array, Uint8Array | null]>
}

const copy = (bytes: unknown): Uint8Array | null => bytes == null ? null : new Uint8Array(bytes as Uint8Array)

/** The first `count` records of the topics, read from the earliest offset by the raw client. */
export const readRawRecords = (topics: string | ReadonlyArray<string>, count: number) =>
  Effect.promise(async (): Promise<Array<RawRecord>> => {
    const consumer = new Consumer({
      clientId: unique("raw"),
      groupId: unique("raw-group"),
      bootstrapBrokers: [bootstrapServers],
      maxWaitTime: 100
    })
    const records: Array<RawRecord> = []
    try {
      if (count === 0) return records
      const stream = await consumer.consume({
        topics: typeof topics === "string" ? [topics] : [...topics],
        mode: "earliest"
      })
      for await (const message of stream) {
        records.push({
          topic: message.topic,
          partition: message.partition,
          offset: Number(message.offset),
          timestamp: Number(message.timestamp),
          key: copy(message.key),
          value: copy(message.value),
          headers: message.headerEntries.map(([name, value]) => [copy(name)!, copy(value)] as const)
        })
        if (records.length >= count) break
      }
      await stream.close()
      return records
    } finally {
      await consumer.close(true)
    }
  }).pipe(Effect.timeout("30 seconds"))
