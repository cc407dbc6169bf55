import type * as Metric from "effect/Metric"

/**
 * What the web layer shows, read from effect's metric registry only: the
 * series channels, topics and agents register (README "Metrics and
 * tracing"). Names, counts and offsets, never record contents.
 */

/** A channel (a topic is one too: `kind: "topic"`). */

/** The sink labels of an agent's info series: a JSON array of strings (a label may hold a comma). */
const sinkLabels = (encoded: string | undefined): ReadonlyArray<string> => {
  if (encoded === undefined || encoded === "") return []
  try {
    const parsed: unknown = JSON.parse(encoded)
    return Array.isArray(parsed) ? parsed.filter((label): label is string => typeof label === "string") : []
  } catch {
    return []
  }
}
export interface ChannelStats {
  readonly label: string
  readonly kind: "channel" | "topic"
  readonly subscribers: number
  /** Events waiting, all queues of the channel together. */
  readonly queueDepth: number
  /** Events waiting per queue (`buffer`, `subscriber-N`). */
  readonly queues: Readonly<Record<string, number>>
  readonly sent: number
  readonly dropped: number
  readonly delivered: number
  readonly decodeErrors: { readonly failed: number; readonly skipped: number; readonly deadLettered: number }
  /** Sends per second over the last sampling interval. */
  readonly sentPerSecond: number
  /** Deliveries per second over the last sampling interval. */
  readonly deliveredPerSecond: number
}

/** One assigned partition of a topic. */
export interface PartitionStats {
  readonly topic: string
  readonly partition: number
  readonly committedOffset: number
  readonly lag: number
}

/** What a topic adds to its channel series. */
export interface TopicStats {
  readonly label: string
  /** True once partitions are assigned to this member (their series are present). */
  readonly assigned: boolean
  readonly partitions: ReadonlyArray<PartitionStats>
  /** Lag of all assigned partitions together. */
  readonly lag: number
  readonly acknowledged: number
  readonly committed: number
  readonly acknowledgedPerSecond: number
}

/** An agent. */
export interface AgentStats {
  readonly name: string
  readonly status: "running" | "not running"
  /** The label of the channel or topic it reads. */
  readonly source: string
  /** Where its results go (labels). */
  readonly sinks: ReadonlyArray<string>
  readonly inFlight: number
  readonly events: number
  readonly failures: number
  readonly retries: number
  readonly skipped: number
  readonly deadLettered: number
  readonly restarts: number
  readonly repliesDropped: number
  readonly eventsPerSecond: number
  readonly failuresPerSecond: number
  /** Mean processing time (seconds) of what it handled so far; 0 before the first event. */
  readonly meanProcessingSeconds: number
}

/** An edge of the pipeline graph: `source → agent` or `agent → sink`. */
export interface Edge {
  readonly from: string
  readonly to: string
}

/** The snapshot `/stats` serves. */
export interface Stats {
  /** Epoch milliseconds of the sample the rates come from. */
  readonly time: number
  readonly intervalSeconds: number
  readonly channels: ReadonlyArray<ChannelStats>
  readonly topics: ReadonlyArray<TopicStats>
  readonly agents: ReadonlyArray<AgentStats>
  /** Node ids are `channel:<label>` and `agent:<name>`. */
  readonly edges: ReadonlyArray<Edge>
}

/** The last minutes, per graph node: one value per sample, oldest first. */
export interface History {
  readonly times: ReadonlyArray<number>
  readonly series: Readonly<
    Record<string, { readonly rate: ReadonlyArray<number>; readonly depth: ReadonlyArray<number> }>
  >
}

const numberOf = (value: number | bigint): number => typeof value === "bigint" ? Number(value) : value

/** The value of a counter or gauge snapshot (a histogram's count). */
const valueOf = (snapshot: Metric.Metric.Snapshot): number => {
  switch (snapshot.type) {
    case "Counter":
      return numberOf(snapshot.state.count)
    case "Gauge":
      return numberOf(snapshot.state.value)
    case "Histogram":
    case "Summary":
      return snapshot.state.count
    case "Frequency":
      return 0
  }
}

interface RawChannel {
  sent: number
  dropped: number
  delivered: number
  decodeErrors: { failed: number; skipped: number; deadLettered: number }
  subscribers: number
  queues: Record<string, number>
  topic: boolean
  acknowledged: number
  committed: number
  partitions: Map<string, { topic: string; partition: number; committedOffset: number; lag: number }>
}

interface RawAgent {
  running: number
  source: string | undefined
  sinks: ReadonlyArray<string>
  inFlight: number
  events: number
  failures: number
  retries: number
  skipped: number
  deadLettered: number
  restarts: number
  repliesDropped: number
  processingCount: number
  processingSum: number
}

/** The totals read from one snapshot, before rates. */
export interface Reading {
  readonly time: number
  readonly channels: ReadonlyMap<string, RawChannel>
  readonly agents: ReadonlyMap<string, RawAgent>
}

const emptyChannel = (): RawChannel => ({
  sent: 0,
  dropped: 0,
  delivered: 0,
  decodeErrors: { failed: 0, skipped: 0, deadLettered: 0 },
  subscribers: 0,
  queues: {},
  topic: false,
  acknowledged: 0,
  committed: 0,
  partitions: new Map()
})

const emptyAgent = (): RawAgent => ({
  running: 0,
  source: undefined,
  sinks: [],
  inFlight: 0,
  events: 0,
  failures: 0,
  retries: 0,
  skipped: 0,
  deadLettered: 0,
  restarts: 0,
  repliesDropped: 0,
  processingCount: 0,
  processingSum: 0
})

const agentCounters: Readonly<Record<string, keyof RawAgent>> = {
  effect_faust_agent_events_total: "events",
  effect_faust_agent_failures_total: "failures",
  effect_faust_agent_retries_total: "retries",
  effect_faust_agent_skipped_total: "skipped",
  effect_faust_agent_dead_lettered_total: "deadLettered",
  effect_faust_agent_restarts_total: "restarts",
  effect_faust_agent_replies_dropped_total: "repliesDropped",
  effect_faust_agent_in_flight: "inFlight",
  effect_faust_agent_running: "running"
}

/** Reads the effect-faust series of a metric snapshot; other series are ignored. */
export const read = (snapshots: ReadonlyArray<Metric.Metric.Snapshot>, time: number): Reading => {
  const channels = new Map<string, RawChannel>()
  const agents = new Map<string, RawAgent>()
  const channel = (label: string) => {
    let found = channels.get(label)
    if (found === undefined) channels.set(label, found = emptyChannel())
    return found
  }
  const agent = (name: string) => {
    let found = agents.get(name)
    if (found === undefined) agents.set(name, found = emptyAgent())
    return found
  }
  for (const snapshot of snapshots) {
    if (!snapshot.id.startsWith("effect_faust_")) continue
    const attributes: Readonly<Record<string, string>> = snapshot.attributes ?? {}
    const value = valueOf(snapshot)
    if (snapshot.id.startsWith("effect_faust_agent_")) {
      const name = attributes.agent
      if (name === undefined) continue
      const target = agent(name)
      const field = agentCounters[snapshot.id]
      if (field !== undefined) {
        ;(target as unknown as Record<string, number>)[field] = value
      } else if (snapshot.id === "effect_faust_agent_info") {
        target.source = attributes.source
        target.sinks = sinkLabels(attributes.sinks)
      } else if (snapshot.id === "effect_faust_agent_processing_seconds" && snapshot.type === "Histogram") {
        target.processingCount = snapshot.state.count
        target.processingSum = snapshot.state.sum
      }
      continue
    }
    const label = attributes.channel
    if (label === undefined) continue
    const target = channel(label)
    switch (snapshot.id) {
      case "effect_faust_sent_total":
        target.sent = value
        break
      case "effect_faust_dropped_total":
        target.dropped = value
        break
      case "effect_faust_delivered_total":
        target.delivered = value
        break
      case "effect_faust_decode_errors_total": {
        const policy = attributes.policy
        if (policy === "failed" || policy === "skipped" || policy === "deadLettered") {
          target.decodeErrors[policy] = value
        }
        break
      }
      case "effect_faust_subscribers":
        target.subscribers = value
        break
      case "effect_faust_queue_depth":
        target.queues[attributes.queue ?? "queue"] = value
        break
      case "effect_faust_acknowledged_total":
        target.topic = true
        target.acknowledged = value
        break
      case "effect_faust_committed_total":
        target.topic = true
        target.committed = value
        break
      case "effect_faust_committed_offset":
      case "effect_faust_consumer_lag": {
        target.topic = true
        const topic = attributes.topic ?? label
        const partition = Number(attributes.partition ?? 0)
        const key = `${topic}/${partition}`
        let found = target.partitions.get(key)
        if (found === undefined) {
          target.partitions.set(key, found = { topic, partition, committedOffset: -1, lag: 0 })
        }
        if (snapshot.id === "effect_faust_consumer_lag") found.lag = value
        else found.committedOffset = value
        break
      }
    }
  }
  return { time, channels, agents }
}

const rate = (now: number, before: number | undefined, seconds: number): number =>
  before === undefined || seconds <= 0 ? 0 : Math.max(0, now - before) / seconds

const sum = (values: Iterable<number>): number => {
  let total = 0
  for (const value of values) total += value
  return total
}

/** The `/stats` snapshot of a reading, with rates against the previous reading. */
export const toStats = (current: Reading, previous: Reading | undefined, intervalSeconds: number): Stats => {
  const seconds = previous === undefined ? 0 : (current.time - previous.time) / 1000
  const channels: Array<ChannelStats> = []
  const topics: Array<TopicStats> = []
  for (const [label, raw] of [...current.channels].sort(([a], [b]) => a.localeCompare(b))) {
    const before = previous?.channels.get(label)
    channels.push({
      label,
      kind: raw.topic ? "topic" : "channel",
      subscribers: raw.subscribers,
      queueDepth: sum(Object.values(raw.queues)),
      queues: { ...raw.queues },
      sent: raw.sent,
      dropped: raw.dropped,
      delivered: raw.delivered,
      decodeErrors: { ...raw.decodeErrors },
      sentPerSecond: rate(raw.sent, before?.sent, seconds),
      deliveredPerSecond: rate(raw.delivered, before?.delivered, seconds)
    })
    if (raw.topic) {
      // Lag is read every commitInterval against the log end offset seen then, so a commit made
      // since can put the committed offset past it for a moment: shown as 0, never negative.
      const partitions = [...raw.partitions.values()]
        .map((p) => ({ ...p, lag: Math.max(0, p.lag) }))
        .sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition)
      topics.push({
        label,
        assigned: partitions.length > 0,
        partitions,
        lag: sum(partitions.map((p) => p.lag)),
        acknowledged: raw.acknowledged,
        committed: raw.committed,
        acknowledgedPerSecond: rate(raw.acknowledged, before?.acknowledged, seconds)
      })
    }
  }
  const agents: Array<AgentStats> = []
  const edges: Array<Edge> = []
  for (const [name, raw] of [...current.agents].sort(([a], [b]) => a.localeCompare(b))) {
    const before = previous?.agents.get(name)
    agents.push({
      name,
      status: raw.running === 1 ? "running" : "not running",
      source: raw.source ?? "",
      sinks: raw.sinks,
      inFlight: raw.inFlight,
      events: raw.events,
      failures: raw.failures,
      retries: raw.retries,
      skipped: raw.skipped,
      deadLettered: raw.deadLettered,
      restarts: raw.restarts,
      repliesDropped: raw.repliesDropped,
      eventsPerSecond: rate(raw.events, before?.events, seconds),
      failuresPerSecond: rate(raw.failures, before?.failures, seconds),
      meanProcessingSeconds: raw.processingCount === 0 ? 0 : raw.processingSum / raw.processingCount
    })
    if (raw.source !== undefined) edges.push({ from: `channel:${raw.source}`, to: `agent:${name}` })
    for (const sink of raw.sinks) {
      const target = current.agents.has(sink) && !current.channels.has(sink) ? `agent:${sink}` : `channel:${sink}`
      edges.push({ from: `agent:${name}`, to: target })
    }
  }
  return { time: current.time, intervalSeconds, channels, topics, agents, edges }
}

/** Whether the app is ready, and what is not. */
export interface Readiness {
  readonly ready: boolean
  /** One sentence per thing that is not ready; empty when ready. */
  readonly notReady: ReadonlyArray<string>
  readonly agents: { readonly registered: number; readonly notRunning: ReadonlyArray<string> }
  readonly topics: { readonly registered: number; readonly unassigned: ReadonlyArray<string> }
}

/**
 * Ready: every registered agent runs (`effect_faust_agent_running` 1), and
 * every registered topic has partitions assigned (its lag series are
 * present, which needs the broker to have answered).
 */
export const readiness = (stats: Stats): Readiness => {
  const notRunning = stats.agents.filter((agent) => agent.status !== "running").map((agent) => agent.name)
  const unassigned = stats.topics.filter((topic) => !topic.assigned).map((topic) => topic.label)
  const notReady = [
    ...notRunning.map((name) => `agent ${name} is not running`),
    ...unassigned.map((label) =>
      `topic ${label} has no partitions assigned (consumer not assigned or broker unreachable)`
    )
  ]
  return {
    ready: notReady.length === 0,
    notReady,
    agents: { registered: stats.agents.length, notRunning },
    topics: { registered: stats.topics.length, unassigned }
  }
}

/** Node ids of a snapshot and the value its sparkline tracks. */
export const nodeValues = (stats: Stats): Array<readonly [string, { rate: number; depth: number }]> => {
  const lag = new Map(stats.topics.map((topic) => [topic.label, topic.lag]))
  return [
    ...stats.channels.map((channel) =>
      [`channel:${channel.label}`, {
        rate: channel.kind === "topic"
          ? Math.max(channel.sentPerSecond, channel.deliveredPerSecond)
          : channel.sentPerSecond,
        depth: channel.queueDepth + (lag.get(channel.label) ?? 0)
      }] as const
    ),
    ...stats.agents.map((agent) =>
      [`agent:${agent.name}`, { rate: agent.eventsPerSecond, depth: agent.inFlight }] as const
    )
  ]
}

/** A ring buffer of the last `capacity` samples per node. */
export class Recorder {
  private readonly times: Array<number> = []
  private readonly series = new Map<string, { rate: Array<number>; depth: Array<number> }>()
  private readonly capacity: number
  constructor(capacity: number) {
    this.capacity = capacity
  }

  record(stats: Stats): void {
    this.times.push(stats.time)
    const overflow = this.times.length > this.capacity
    if (overflow) this.times.shift()
    const seen = new Set<string>()
    for (const [id, value] of nodeValues(stats)) {
      seen.add(id)
      let found = this.series.get(id)
      if (found === undefined) {
        // A node that appears later starts with zeros, so every series lines up with `times`.
        const zeros = this.times.slice(0, -1).map(() => 0)
        this.series.set(id, found = { rate: zeros, depth: [...zeros] })
      }
      found.rate.push(value.rate)
      found.depth.push(value.depth)
    }
    for (const [id, found] of this.series) {
      if (!seen.has(id)) {
        found.rate.push(0)
        found.depth.push(0)
      }
      while (found.rate.length > this.times.length) {
        found.rate.shift()
        found.depth.shift()
      }
      if (found.rate.every((value) => value === 0) && !seen.has(id)) this.series.delete(id)
    }
  }

  history(): History {
    const series: Record<string, { rate: Array<number>; depth: Array<number> }> = {}
    for (const [id, found] of this.series) series[id] = { rate: [...found.rate], depth: [...found.depth] }
    return { times: [...this.times], series }
  }
}
