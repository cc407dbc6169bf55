/**
 * Where a consumer's replacement stream starts (no broker needed): the
 * cluster suite's (c1) shows a replacement on real brokers; this checks the
 * positions it is given, partition by partition.
 */
import { assert, describe, it } from "@effect/vitest"
import type { MessagesStream } from "@platformatic/kafka"
import { HashSet } from "effect"
import { Message } from "effect-faust"
import { EventEmitter } from "node:events"
import { PartitionTracker } from "../../src/kafka/internal/acknowledgement.ts"
import { makeStats } from "../../src/kafka/internal/kafkaMetrics.ts"
import { resumeAt, watchStarts } from "../../src/kafka/internal/pump.ts"
import * as sendGuard from "../../src/kafka/internal/sendGuard.ts"
import { Generation } from "../../src/kafka/internal/session.ts"

/** A failed client stream: only where it resolved each partition's start is read. */
const failedStream = (started: Record<string, bigint>, fetching: Record<string, bigint> = {}) =>
  ({
    offsetsCommitted: new Map(Object.entries(started)),
    offsetsToFetch: new Map(Object.entries(fetching))
  }) as unknown as MessagesStream<Buffer, Buffer, Buffer, Buffer>

const generationOf = (partitions: ReadonlyArray<number>, delivered: Record<number, ReadonlyArray<bigint>>) => {
  const generation = new Generation(
    7,
    HashSet.fromIterable(partitions.map((partition) => Message.TopicPartition.make("orders", partition))),
    failedStream({})
  )
  const guard = sendGuard.register(sendGuard.makeRegistry())
  for (const [partition, offsets] of Object.entries(delivered)) {
    const tracker = new PartitionTracker("orders", Number(partition), offsets[0], makeStats(), guard)
    for (const offset of offsets) tracker.track(offset, 0)
    generation.partitions.set(`orders:${partition}`, tracker)
  }
  return generation
}

const byPartition = (positions: ReturnType<typeof resumeAt>) =>
  positions === undefined
    ? undefined
    : Object.fromEntries(positions.map(({ offset, partition, topic }) => [`${topic}:${partition}`, offset]))

describe("a replacement stream reads on where the failed one was", () => {
  it("after the last record delivered of a partition, and where the failed stream started the others", () => {
    // partition 0 delivered 5..7 (a gap, as compaction leaves); 1 nothing yet, the failed stream
    // had started it at 42 (the log end, under "latest"), past the committed offsets; 2 nothing, from 0
    const generation = generationOf([0, 1, 2], { 0: [5n, 6n, 9n] })
    const positions = resumeAt(generation, failedStream({ "orders:0": 5n, "orders:1": 42n, "orders:2": 0n }))
    assert.deepStrictEqual(byPartition(positions), { "orders:0": 10n, "orders:1": 42n, "orders:2": 0n })
  })

  it("a partition the failed stream never resolved leaves it to the committed offsets, for every partition", () => {
    const generation = generationOf([0, 1], { 0: [3n] })
    assert.isUndefined(resumeAt(generation, failedStream({ "orders:0": 3n })))
  })

  it("a start the client forgot (it clears them on a rejoin) is taken from where it was fetching", () => {
    const generation = generationOf([0, 1], { 0: [3n] })
    assert.deepStrictEqual(
      byPartition(resumeAt(generation, failedStream({ "orders:0": 3n }, { "orders:0": 9n, "orders:1": 17n }))),
      { "orders:0": 4n, "orders:1": 17n }
    )
  })

  it("a start the client resolved is kept once it clears it, not taken from past records it fetched and nobody read", () => {
    // A client stream as `watchStarts` sees it: it announces each resolution of the starts ("offsets").
    const stream = Object.assign(new EventEmitter(), {
      offsetsCommitted: new Map<string, bigint>(),
      offsetsToFetch: new Map<string, bigint>()
    })
    const client = stream as unknown as MessagesStream<Buffer, Buffer, Buffer, Buffer>
    watchStarts(client)
    // It resolves 0 → 5 (committed) and 1 → 42 (the log end, under "latest"), and announces them.
    stream.offsetsCommitted.set("orders:0", 5n).set("orders:1", 42n)
    stream.offsetsToFetch.set("orders:0", 5n).set("orders:1", 42n)
    stream.emit("offsets")
    // It fetches 42..59 of partition 1 into its buffer, then the group rejoins: it clears the starts.
    stream.offsetsToFetch.set("orders:1", 60n)
    stream.offsetsCommitted.clear()
    const generation = generationOf([0, 1], { 0: [5n, 6n] })
    assert.deepStrictEqual(byPartition(resumeAt(generation, client)), { "orders:0": 7n, "orders:1": 42n })
    // A later resolution (after a rejoin, or an offset out of range) replaces the earlier one.
    stream.offsetsCommitted.set("orders:1", 50n)
    stream.emit("offsets")
    assert.deepStrictEqual(byPartition(resumeAt(generation, client)), { "orders:0": 7n, "orders:1": 50n })
  })

  it("only the assigned partitions: none assigned, no positions", () => {
    assert.deepStrictEqual(resumeAt(generationOf([], {}), failedStream({ "orders:0": 1n })), [])
  })
})
