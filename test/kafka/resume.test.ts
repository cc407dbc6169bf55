/**
 * Where a consumer's replacement fetcher starts (no broker needed): the
 * cluster suite's (c1) shows a replacement on real brokers; this checks the
 * positions it is given, partition by partition.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, HashSet } from "effect"
import { Message } from "effect-faust"
import { PartitionTracker } from "../../src/kafka/internal/acknowledgement.ts"
import type { Fetcher } from "../../src/kafka/internal/fetcher.ts"
import { makeStats } from "../../src/kafka/internal/kafkaMetrics.ts"
import { resumeAt } from "../../src/kafka/internal/pump.ts"
import * as sendGuard from "../../src/kafka/internal/sendGuard.ts"
import { Generation } from "../../src/kafka/internal/session.ts"

/** A failed fetcher: only where it started each partition is read. */
const failedFetcher = (started: Record<string, bigint>): Fetcher => ({
  next: Effect.never,
  starts: new Map(Object.entries(started)),
  close: () => Promise.resolve()
})

const generationOf = (partitions: ReadonlyArray<number>, delivered: Record<number, ReadonlyArray<bigint>>) => {
  const generation = new Generation(
    7,
    HashSet.fromIterable(partitions.map((partition) => Message.TopicPartition.make("orders", partition))),
    failedFetcher({})
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

describe("a replacement fetcher reads on where the failed one was", () => {
  it("after the last record delivered of a partition, and where the failed fetcher started the others", () => {
    // partition 0 delivered 5..7 (a gap, as compaction leaves); 1 nothing yet, the failed fetcher
    // had started it at 42 (the log end, under "latest"), past the committed offsets; 2 nothing, from 0
    const generation = generationOf([0, 1, 2], { 0: [5n, 6n, 9n] })
    const positions = resumeAt(generation, failedFetcher({ "orders:0": 5n, "orders:1": 42n, "orders:2": 0n }))
    assert.deepStrictEqual(byPartition(positions), { "orders:0": 10n, "orders:1": 42n, "orders:2": 0n })
  })

  it("a partition the failed fetcher never resolved leaves it to the committed offsets, for every partition", () => {
    const generation = generationOf([0, 1], { 0: [3n] })
    assert.isUndefined(resumeAt(generation, failedFetcher({ "orders:0": 3n })))
  })

  it("only the assigned partitions: none assigned, no positions", () => {
    assert.deepStrictEqual(resumeAt(generationOf([], {}), failedFetcher({ "orders:0": 1n })), [])
  })
})
