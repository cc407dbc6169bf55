import type * as Context from "effect/Context"
import * as Metric from "effect/Metric"
import { counterHooks, gaugeHooks } from "../../internal/metrics.ts"

/**
 * The metrics a topic adds to the channel series (see `metrics.ts`): like
 * those, registered series whose values are read from the topic's own
 * counters when a snapshot is taken, so a message costs one integer
 * increment and nothing else.
 */
export const acknowledged = Metric.counter("effect_faust_acknowledged_total", {
  description: "Messages of a topic acknowledged by every subscriber (or settled by a decode-error policy)"
})
export const committed = Metric.counter("effect_faust_committed_total", {
  description: "Offsets a topic's consumer committed: how far the committed offsets of its partitions moved"
})
export const streamsReplaced = Metric.counter("effect_faust_consumer_streams_replaced_total", {
  description:
    "Client streams a topic's consumer replaced because they failed on brokers they could not reach (a partition leader down)"
})
export const committedOffset = Metric.gauge("effect_faust_committed_offset", {
  description: "The offset this member last committed on an assigned partition (-1: none yet)"
})
export const consumerLag = Metric.gauge("effect_faust_consumer_lag", {
  description: "Records of an assigned partition past the group's committed offset (log end offset - committed offset)"
})

/** The counters a topic keeps for its metrics. */
export interface Stats {
  acknowledged: number
  committed: number
  streamsReplaced: number
}

export const makeStats = (): Stats => ({ acknowledged: 0, committed: 0, streamsReplaced: 0 })

/** Registers the topic-wide series; returns a function removing them. */
export const registerTopic = (context: Context.Context<never>, label: string, stats: Stats): () => void => {
  const channel = { channel: label }
  const registrations = [
    Metric.registerUnsafe(
      Metric.withAttributes(acknowledged, channel),
      context,
      counterHooks(() => stats.acknowledged)
    ),
    Metric.registerUnsafe(Metric.withAttributes(committed, channel), context, counterHooks(() => stats.committed)),
    Metric.registerUnsafe(
      Metric.withAttributes(streamsReplaced, channel),
      context,
      counterHooks(() => stats.streamsReplaced)
    )
  ]
  return () => registrations.forEach((registration) => registration.remove())
}

/** Registers the series of one assigned partition; returns their removal. */
export const registerPartition = (
  context: Context.Context<never>,
  label: string,
  topic: string,
  partition: number,
  read: { readonly committedOffset: () => number; readonly lag: () => number }
): () => void => {
  const attributes = { channel: label, topic, partition: String(partition) }
  const registrations = [
    Metric.registerUnsafe(
      Metric.withAttributes(committedOffset, attributes),
      context,
      gaugeHooks(read.committedOffset)
    ),
    Metric.registerUnsafe(Metric.withAttributes(consumerLag, attributes), context, gaugeHooks(read.lag))
  ]
  return () => registrations.forEach((registration) => registration.remove())
}
