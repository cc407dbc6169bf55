import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"

/**
 * The metrics of a channel. They are registered series whose values are read
 * from the channel's own counters when a snapshot is taken, so the hot paths
 * pay one integer increment per message and nothing else.
 */
export const sent = Metric.counter("effect_faust_sent_total", {
  description: "Events published to a channel (send, sendAll, put)"
})
export const dropped = Metric.counter("effect_faust_dropped_total", {
  description: "Events dropped because nobody subscribed (whenNoSubscribers: drop)"
})
export const delivered = Metric.counter("effect_faust_delivered_total", {
  description: "Messages decoded and delivered to a channel by deliver"
})
export const decodeErrors = Metric.counter("effect_faust_decode_errors_total", {
  description: "Undecodable messages, by the policy that handled them"
})
export const subscribers = Metric.gauge("effect_faust_subscribers", {
  description: "Subscribers of a channel"
})
export const queueDepth = Metric.gauge("effect_faust_queue_depth", {
  description: "Events waiting in a queue: a subscriber's, or the root's no-subscriber buffer"
})

/** The counters a channel keeps for its metrics. */
export interface Stats {
  sent: number
  dropped: number
  delivered: number
  readonly decodeErrors: { failed: number; skipped: number; deadLettered: number }
}

export const makeStats = (): Stats => ({
  sent: 0,
  dropped: 0,
  delivered: 0,
  decodeErrors: { failed: 0, skipped: 0, deadLettered: 0 }
})

/** Hooks of a registered counter whose value is read from elsewhere. */
export const counterHooks = (read: () => number): Metric.Metric.Hooks<number, Metric.CounterState<number>> => ({
  get: () => ({ count: read(), incremental: false }),
  update: () => {},
  modify: () => {}
})

/** Hooks of a registered gauge whose value is read from elsewhere. */
export const gaugeHooks = (read: () => number): Metric.Metric.Hooks<number, Metric.GaugeState<number>> => ({
  get: () => ({ value: read() }),
  update: () => {},
  modify: () => {}
})

/**
 * Registers the channel-wide series; returns a function removing them. The
 * `buffer` queue-depth series is registered for a channel that has one (a
 * topic does not: its root queue never holds anything).
 */
export const registerChannel = (
  context: Context.Context<never>,
  label: string,
  stats: Stats,
  subscriberCount: () => number,
  buffer: Queue.Queue<any, any> | undefined
): () => void => {
  const channel = { channel: label }
  const registrations = [
    Metric.registerUnsafe(Metric.withAttributes(sent, channel), context, counterHooks(() => stats.sent)),
    Metric.registerUnsafe(Metric.withAttributes(dropped, channel), context, counterHooks(() => stats.dropped)),
    Metric.registerUnsafe(Metric.withAttributes(delivered, channel), context, counterHooks(() => stats.delivered)),
    ...(["failed", "skipped", "deadLettered"] as const).map((policy) =>
      Metric.registerUnsafe(
        Metric.withAttributes(decodeErrors, { ...channel, policy }),
        context,
        counterHooks(() => stats.decodeErrors[policy])
      )
    ),
    Metric.registerUnsafe(Metric.withAttributes(subscribers, channel), context, gaugeHooks(subscriberCount)),
    ...(buffer === undefined ? [] : [
      Metric.registerUnsafe(
        Metric.withAttributes(queueDepth, { ...channel, queue: "buffer" }),
        context,
        gaugeHooks(() => Queue.sizeUnsafe(buffer))
      )
    ])
  ]
  return () => registrations.forEach((registration) => registration.remove())
}

/** Where a channel's series are registered, while they are. */
export interface Registry {
  readonly context: Context.Context<never>
  nextSubscriber: number
}

/** What a subscriber (of a channel or a topic) carries for its queue-depth series. */
export interface Metered {
  readonly label: string
  readonly queue: Queue.Queue<any, any>
  unregisterMetrics: (() => void) | undefined
}

/** Registers the queue-depth series of one subscriber, when its channel's metrics are registered. */
export const trackSubscriber = (registry: Registry | undefined, subscriber: Metered): void => {
  if (registry === undefined) return
  const registration = Metric.registerUnsafe(
    Metric.withAttributes(queueDepth, { channel: subscriber.label, queue: `subscriber-${registry.nextSubscriber++}` }),
    registry.context,
    gaugeHooks(() => Queue.sizeUnsafe(subscriber.queue))
  )
  subscriber.unregisterMetrics = () => registration.remove()
}

/** Removes the queue-depth series of one subscriber, if it has one. */
export const untrackSubscriber = (subscriber: Metered): void => {
  subscriber.unregisterMetrics?.()
  subscriber.unregisterMetrics = undefined
}

/** The part of a channel's or topic's root that registering its metrics reads and marks. */
export interface MeteredRoot {
  metrics: Registry | undefined
  readonly stats: Stats
  readonly subscribers: ReadonlyArray<Metered>
}

/**
 * Registers a root's series with the metric registry of the current context
 * until the scope closes: the channel series (with the `buffer` queue depth
 * when there is a `buffer`), each subscriber's queue depth, and what a
 * transport adds (`extra` registers and returns its removal; `resync` runs
 * after registering and after removing). Registering twice is a no-op.
 */
export const registerRoot = (
  root: MeteredRoot,
  label: string,
  buffer: Queue.Queue<any, any> | undefined,
  extra?: {
    readonly register: (context: Context.Context<never>) => () => void
    readonly resync: () => void
  }
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.flatMap(Effect.context<never>(), (context) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        if (root.metrics !== undefined) return undefined
        root.metrics = { context, nextSubscriber: 0 }
        const removeChannel = registerChannel(context, label, root.stats, () => root.subscribers.length, buffer)
        const removeExtra = extra?.register(context)
        for (const subscriber of root.subscribers) trackSubscriber(root.metrics, subscriber)
        extra?.resync()
        return () => {
          removeChannel()
          removeExtra?.()
        }
      }),
      (remove) =>
        Effect.sync(() => {
          if (remove === undefined) return
          remove()
          for (const subscriber of root.subscribers) untrackSubscriber(subscriber)
          root.metrics = undefined
          extra?.resync()
        })
    ))
