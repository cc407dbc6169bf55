/**
 * An agent's counters and their metrics (label `agent`). The hot path bumps
 * plain numbers; the metrics read them when a snapshot is taken, except the
 * processing-time histogram, which records each handled unit.
 */
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import { counterHooks, gaugeHooks } from "../metrics.ts"

/** Where an agent is in its life. */
export type Status = "idle" | "running" | "restarting" | "stopped" | "failed"

/** What an agent did so far (read by `agent.stats` and the metrics). */
export interface Stats {
  /** `idle` before its first run, `running`, `restarting` (waiting for its restart schedule), `stopped` or `failed`. */
  status: Status
  /** Events handled successfully (each event of a batch counts). */
  handled: number
  /** Events whose handling failed after its retries (whatever the policy did next). */
  failed: number
  /** Handler attempts that were retried. */
  retries: number
  /** Failed events skipped by the `skip` policy. */
  skipped: number
  /** Failed events written to the dead-letter target. */
  deadLettered: number
  /** Times the agent was restarted by its `restart` schedule. */
  restarts: number
  /** Events read from the source and not finished yet (queued for an instance or being handled). */
  inFlight: number
  /** Replies that found no asker waiting (it timed out or was interrupted). */
  repliesDropped: number
  /** Processing times: counts per bucket of {@link boundaries} (the last one is +Inf), their sum, min and max. */
  readonly processing: ProcessingTimes
}

/** A processing-time histogram kept as plain numbers: recording one costs no allocation. */
export interface ProcessingTimes {
  readonly counts: Array<number>
  count: number
  sum: number
  min: number
  max: number
}

/** The upper bounds, in seconds, of the processing-time buckets. */
export const boundaries: ReadonlyArray<number> = Metric.exponentialBoundaries({ start: 0.0001, factor: 4, count: 10 })

/** Records one processing time, in seconds. */
export const recordProcessing = (times: ProcessingTimes, seconds: number): void => {
  let bucket = 0
  while (bucket < boundaries.length && seconds > boundaries[bucket]) bucket++
  times.counts[bucket]++
  times.count++
  times.sum += seconds
  if (seconds < times.min) times.min = seconds
  if (seconds > times.max) times.max = seconds
}

/** Counters at zero. */
export const makeStats = (): Stats => ({
  status: "idle",
  handled: 0,
  failed: 0,
  retries: 0,
  skipped: 0,
  deadLettered: 0,
  restarts: 0,
  inFlight: 0,
  repliesDropped: 0,
  processing: {
    counts: new Array(boundaries.length + 1).fill(0),
    count: 0,
    sum: 0,
    min: Number.POSITIVE_INFINITY,
    max: Number.NEGATIVE_INFINITY
  }
})

const counters = {
  handled: Metric.counter("effect_faust_agent_events_total", { description: "Events an agent handled successfully" }),
  failed: Metric.counter("effect_faust_agent_failures_total", {
    description: "Events whose handling failed after its retries"
  }),
  retries: Metric.counter("effect_faust_agent_retries_total", { description: "Handler attempts retried" }),
  skipped: Metric.counter("effect_faust_agent_skipped_total", { description: "Failed events skipped" }),
  deadLettered: Metric.counter("effect_faust_agent_dead_lettered_total", {
    description: "Failed events written to the dead-letter target"
  }),
  restarts: Metric.counter("effect_faust_agent_restarts_total", { description: "Agent restarts" }),
  repliesDropped: Metric.counter("effect_faust_agent_replies_dropped_total", {
    description: "Replies whose asker was gone"
  })
} as const

const inFlight = Metric.gauge("effect_faust_agent_in_flight", {
  description: "Events read by an agent and not finished yet"
})

const running = Metric.gauge("effect_faust_agent_running", {
  description: "1 while the agent runs (reading its source), else 0"
})

/** An info series: constant 1, its attributes say what the agent reads and where its results go (a JSON array of labels). */
const info = Metric.gauge("effect_faust_agent_info", {
  description:
    "An agent's source and sinks (attributes source, and sinks as a JSON array of labels; the value is always 1)"
})

/** Seconds from taking an event (or a batch) to acknowledging it. */
const processingTime = Metric.histogram("effect_faust_agent_processing_seconds", {
  description: "Time an agent took to handle an event or a batch, retries and sinks included",
  boundaries
})

const histogramHooks = (
  times: ProcessingTimes
): Metric.Metric.Hooks<number, Metric.HistogramState> => ({
  get: () => {
    let cumulated = 0
    const buckets = boundaries.map((boundary, i): [number, number] => [boundary, cumulated += times.counts[i]])
    return {
      buckets,
      count: times.count,
      sum: times.sum,
      min: times.count === 0 ? 0 : times.min,
      max: times.count === 0 ? 0 : times.max
    }
  },
  update: () => {},
  modify: () => {}
})

/**
 * Registers the agent's metrics with the current registry; returns what
 * removes them.
 */
export const register = (
  agent: string,
  stats: Stats,
  wiring: { readonly source: string; readonly sinks: ReadonlyArray<string> }
): Effect.Effect<() => void> =>
  Effect.flatMap(Effect.context<never>(), (context: Context.Context<never>) =>
    Effect.sync(() => {
      const attributes = { agent }
      const registrations = [
        ...(Object.keys(counters) as Array<keyof typeof counters>).map((name) =>
          Metric.registerUnsafe(
            Metric.withAttributes(counters[name], attributes),
            context,
            counterHooks(() => stats[name])
          )
        ),
        Metric.registerUnsafe(Metric.withAttributes(inFlight, attributes), context, gaugeHooks(() => stats.inFlight)),
        Metric.registerUnsafe(
          Metric.withAttributes(running, attributes),
          context,
          gaugeHooks(() => stats.status === "running" ? 1 : 0)
        ),
        Metric.registerUnsafe(
          Metric.withAttributes(info, { agent, source: wiring.source, sinks: JSON.stringify(wiring.sinks) }),
          context,
          gaugeHooks(() => 1)
        ),
        Metric.registerUnsafe(
          Metric.withAttributes(processingTime, attributes),
          context,
          histogramHooks(stats.processing)
        )
      ]
      return () => registrations.forEach((registration) => registration.remove())
    }))
