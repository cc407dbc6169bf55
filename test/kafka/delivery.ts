/**
 * Accounting for the delivery tests on a broker: what was sent, what each
 * consumer received, and the commits the group made.
 */
import { Admin } from "@platformatic/kafka"
import { Effect, Metric } from "effect"
import type { Event } from "effect-faust"
import { tracingChannel } from "node:diagnostics_channel"
import { bootstrapServers, unique } from "./setup.ts"

/** The numbers every fault test reports. */
export interface Counts {
  /** Distinct ids the broker acknowledged to the producer. */
  readonly sent: number
  /** Distinct ids a consumer handled. */
  readonly received: number
  /** Ids sent and never received. */
  readonly lost: number
  /** Deliveries beyond the first, of any id. */
  readonly duplicated: number
  /** Of those, the same record (partition and offset) delivered again: at-least-once after a crash or rebalance. */
  readonly redelivered: number
  /** Ids the broker holds at more than one offset: a producer retry after an unanswered request. */
  readonly producedTwice: number
}

/** Ids sent, and every delivery of each (where it was in the log). */
export class Tally {
  readonly sent = new Set<number>()
  readonly deliveries = new Map<number, Array<string>>()
  count = 0

  /** Records one handled delivery of `id` from `partition` at `offset`. */
  receive(id: number, partition: number, offset: number): void {
    this.count++
    const seen = this.deliveries.get(id)
    const where = `${partition}/${offset}`
    if (seen === undefined) this.deliveries.set(id, [where])
    else seen.push(where)
  }

  get received(): number {
    return this.deliveries.size
  }

  /** Whether every id sent so far has been received. */
  get complete(): boolean {
    for (const id of this.sent) if (!this.deliveries.has(id)) return false
    return true
  }

  counts(): Counts {
    let lost = 0
    for (const id of this.sent) if (!this.deliveries.has(id)) lost++
    let duplicated = 0
    let redelivered = 0
    let producedTwice = 0
    for (const places of this.deliveries.values()) {
      duplicated += places.length - 1
      const distinct = new Set(places).size
      redelivered += places.length - distinct
      if (distinct > 1) producedTwice++
    }
    return { sent: this.sent.size, received: this.received, lost, duplicated, redelivered, producedTwice }
  }

  /** Prints the test's line and returns the counts. */
  report(test: string): Counts {
    const counts = this.counts()
    console.log(
      `[delivery] ${test}: sent=${counts.sent} received=${counts.received} lost=${counts.lost} duplicated=${counts.duplicated}` +
        ` (redelivered=${counts.redelivered}, produced twice=${counts.producedTwice})`
    )
    return counts
  }
}

/** Waits (polling) until `condition` holds, failing after `millis`. */
export const eventually = (condition: () => boolean, millis = 30_000, what = "condition", detail?: () => string) =>
  Effect.suspend(function loop(): Effect.Effect<void> {
    return condition() ? Effect.void : Effect.andThen(Effect.sleep("20 millis"), loop)
  }).pipe(
    Effect.timeoutOrElse({
      duration: millis,
      orElse: () =>
        Effect.die(
          new Error(`timed out after ${millis} ms waiting for ${what}${detail === undefined ? "" : `: ${detail()}`}`)
        )
    })
  )

/** Polls an effectful condition until it holds, failing after `millis`. */
export const eventuallyEffect = (condition: Effect.Effect<boolean>, millis = 30_000, what = "condition") =>
  Effect.suspend(function loop(): Effect.Effect<void> {
    return Effect.flatMap(condition, (holds) => holds ? Effect.void : Effect.andThen(Effect.sleep("100 millis"), loop))
  }).pipe(
    Effect.timeoutOrElse({
      duration: millis,
      orElse: () => Effect.die(new Error(`timed out after ${millis} ms waiting for ${what}`))
    })
  )

/** The offsets a group committed on a topic, by partition (none: absent), read by an admin client. */
export const committedOffsets = (groupId: string, topic: string) =>
  Effect.promise(async () => {
    const admin = new Admin({ clientId: unique("admin"), bootstrapBrokers: [bootstrapServers] })
    try {
      const [group] = await admin.listConsumerGroupOffsets({ groups: [groupId] })
      const offsets = new Map<number, number>()
      for (const partition of group.topics.find((t) => t.name === topic)?.partitions ?? []) {
        if (partition.committedOffset >= 0n) offsets.set(partition.partitionIndex, Number(partition.committedOffset))
      }
      return offsets
    } finally {
      await admin.close()
    }
  })

/** Each member's assigned partitions of `topic`, as the group coordinator describes the group. */
export const groupAssignments = (groupId: string, topic: string) =>
  Effect.promise(async () => {
    const admin = new Admin({ clientId: unique("admin"), bootstrapBrokers: [bootstrapServers] })
    try {
      const groups = await admin.describeGroups({ groups: [groupId] })
      const group = groups.get(groupId)
      return Array.from(group?.members.values() ?? [], (member) =>
        [...(member.assignments?.get(topic)?.partitions ?? [])].sort((a, b) => a - b))
    } finally {
      await admin.close()
    }
  })

interface CommitContext {
  readonly client: { readonly groupId: string }
  readonly options: { readonly offsets: ReadonlyArray<{ readonly partition: number; readonly offset: bigint }> }
  readonly error?: unknown
}

/**
 * Calls `onCommit` for every offset a consumer of `groupId` in this process
 * committed successfully, as the client reports it on its diagnostics
 * channel. Returns the unsubscription.
 */
export const observeCommits = (groupId: string, onCommit: (partition: number, offset: number) => void): () => void => {
  const channel = tracingChannel<unknown, CommitContext>("plt:kafka:consumer:commits")
  const handlers = {
    asyncEnd: (context: CommitContext) => {
      if (context.client.groupId !== groupId || context.error !== undefined) return
      for (const { offset, partition } of context.options.offsets) onCommit(partition, Number(offset))
    }
  }
  channel.subscribe(handlers as any)
  return () => channel.unsubscribe(handlers as any)
}

/**
 * A group's commits checked against what finished handling: `finish` marks an
 * offset done, `violations` lists each commit past an offset not done, `last`
 * the highest commit per partition.
 */
export const commitWatch = (groupId: string, onCommit?: (partition: number, offset: number) => void) => {
  const finished = new Map<number, Set<number>>()
  const violations: Array<string> = []
  const last = new Map<number, number>()
  const stop = observeCommits(groupId, (partition, offset) => {
    onCommit?.(partition, offset)
    last.set(partition, Math.max(last.get(partition) ?? 0, offset))
    const done = finished.get(partition) ?? new Set()
    for (let o = 0; o < offset; o++) {
      if (!done.has(o)) {
        violations.push(`partition ${partition} committed ${offset} before offset ${o} finished`)
        break
      }
    }
  })
  const finish = (partition: number, offset: number): void => {
    const done = finished.get(partition) ?? new Set()
    done.add(offset)
    finished.set(partition, done)
  }
  return { violations, finish, stop, last }
}

/**
 * One subscriber's deliveries: id → where each delivery came from
 * (partition/offset/generation). Unlike `Tally`, it tells a record delivered
 * twice within one group generation (a broken promise) from one delivered
 * again after a rebalance (allowed).
 */
export class Seen {
  readonly deliveries = new Map<number, Array<string>>()
  count = 0
  readonly name: string
  constructor(name: string) {
    this.name = name
  }
  receive(event: Event.Event<unknown, number>): void {
    this.count++
    const where = `${event.message.partition}/${event.message.offset}/g${event.message.generationId}`
    const seen = this.deliveries.get(event.value)
    if (seen === undefined) this.deliveries.set(event.value, [where])
    else seen.push(where)
  }
  has(ids: Iterable<number>): boolean {
    for (const id of ids) if (!this.deliveries.has(id)) return false
    return true
  }
  /** sent / received / lost / duplicated, and duplicates of the same record within one generation. */
  report(test: string, sent: ReadonlySet<number>) {
    let lost = 0
    for (const id of sent) if (!this.deliveries.has(id)) lost++
    let duplicated = 0
    let sameGeneration = 0
    const examples: Array<string> = []
    for (const [id, places] of this.deliveries) {
      duplicated += places.length - 1
      if (new Set(places).size < places.length) {
        sameGeneration += places.length - new Set(places).size
        if (examples.length < 3) examples.push(`${id}@${places.join(",")}`)
      }
    }
    console.log(
      `[delivery] ${test} (${this.name}): sent=${sent.size} received=${this.deliveries.size} lost=${lost}` +
        ` duplicated=${duplicated} (same record in the same generation: ${sameGeneration}${
          examples.length > 0 ? `, e.g. ${examples.join(" ")}` : ""
        })`
    )
    return { lost, duplicated, sameGeneration }
  }
}

/** The replacement counter of `label`, from the registry in the environment. */
export const replacedMetric = (label: string) =>
  Effect.map(Metric.snapshot, (snapshots) => {
    const found = snapshots.find((s) =>
      s.id === "effect_faust_consumer_streams_replaced_total" && s.attributes?.channel === label
    )
    return found === undefined ? undefined : Number((found.state as { count: number | bigint }).count)
  })
