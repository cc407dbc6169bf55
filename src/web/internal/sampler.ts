import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as stats from "./stats.ts"

/**
 * Samples the metric registry every interval: the latest snapshot with its
 * rates (counter deltas over the interval) and a ring buffer of the last
 * samples per graph node for the sparklines. Requests read what it holds.
 */
export interface Sampler {
  readonly intervalSeconds: number
  /** Takes a sample now (the sampling fiber calls it every interval). */
  readonly sample: Effect.Effect<stats.Stats>
  /** A snapshot read now (rates against the latest sample), recorded nowhere. */
  readonly now: Effect.Effect<stats.Stats>
  /** The latest sample, taking one if there is none yet. */
  readonly latest: Effect.Effect<stats.Stats>
  readonly history: () => stats.History
}

export const make = (intervalSeconds: number, capacity: number): Sampler => {
  let previous: stats.Reading | undefined
  let latest: stats.Stats | undefined
  const recorder = new stats.Recorder(capacity)
  const sample = Effect.gen(function*() {
    const snapshot = yield* Metric.snapshot
    const time = yield* Clock.currentTimeMillis
    const reading = stats.read(snapshot, time)
    const current = stats.toStats(reading, previous, intervalSeconds)
    previous = reading
    latest = current
    recorder.record(current)
    return current
  })
  const now = Effect.gen(function*() {
    const snapshot = yield* Metric.snapshot
    const time = yield* Clock.currentTimeMillis
    return stats.toStats(stats.read(snapshot, time), previous, intervalSeconds)
  })
  return {
    intervalSeconds,
    sample,
    now,
    latest: Effect.suspend(() => latest === undefined ? sample : Effect.succeed(latest)),
    history: () => recorder.history()
  }
}
