import { EventBase } from "../../Event.ts"
import type * as Event from "../../Event.ts"
import * as Message from "../../Message.ts"
import * as kafkaMetrics from "./kafkaMetrics.ts"
import { headersOf, type Received, toMessage } from "./received.ts"
import * as sendGuard from "./sendGuard.ts"

/** An offset to commit, with the tracker it comes from (its `committed` moves when the commit lands). */
export interface CommitOffset {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  readonly leaderEpoch: number
  readonly tracker: PartitionTracker
}

/**
 * A received message on its way through the subscribers: `pending` counts
 * the copies not yet acknowledged or refused, plus one until every copy is
 * made. It is done when nothing is pending and some subscriber (or the
 * decode-error policy) handled it: a message every subscriber refused (their
 * queues shut down) stays undone, so it is read again.
 */
export interface Tracked extends Delivery {
  readonly tracker: PartitionTracker
  readonly offset: bigint
  readonly leaderEpoch: number
  pending: number
  handled: boolean
  done: boolean
}

/**
 * One subscriber's copy of a tracked message. A message with one subscriber
 * is its own delivery (`tracked` is itself): no second object per message.
 */
export interface Delivery {
  readonly tracked: Tracked
  acked: boolean
  /** The run of a `noack` subscriber's pull holding it, until acknowledged. */
  holder: HeldRun | undefined
}

/**
 * What one pull of a `noack` subscriber handed out and is not acknowledged
 * yet: held in its subscriber's set while `remaining` > 0 (a count per
 * event, not a set entry per event).
 */
export interface HeldRun {
  readonly deliveries: Array<Delivery>
  remaining: number
  readonly held: Set<HeldRun>
}

/**
 * The messages of one partition in one generation, in the order they
 * arrived: the generation's stream starts at the group's committed offset,
 * so the first one is the first record at or after it. Commits move to just after the longest prefix that
 * is done: the highest contiguous acknowledged offset.
 */
export class PartitionTracker {
  readonly topic: string
  readonly partition: number
  /** Shared by the partition's received messages. */
  readonly tp: Message.TopicPartition
  readonly stats: kafkaMetrics.Stats
  entries: Array<Tracked> = []
  head = 0
  /** Where this generation started reading. */
  readonly startOffset: bigint
  committable: bigint | undefined = undefined
  committed: bigint | undefined = undefined
  leaderEpoch = -1
  /** Set when its generation is revoked: its events are no longer delivered, its acknowledgements no longer count. */
  revoked = false
  readonly guard: sendGuard.SessionGuard
  constructor(
    topic: string,
    partition: number,
    startOffset: bigint,
    stats: kafkaMetrics.Stats,
    guard: sendGuard.SessionGuard
  ) {
    this.topic = topic
    this.partition = partition
    this.tp = Message.TopicPartition.make(topic, partition)
    this.startOffset = startOffset
    this.stats = stats
    this.guard = guard
  }
  /** The last offset tracked, to drop what the client fetches twice in one generation. */
  get lastOffset(): bigint {
    return this.entries.length === 0 ? -1n : this.entries[this.entries.length - 1].offset
  }
  track(offset: bigint, leaderEpoch: number): Tracked {
    const tracked = {
      tracker: this,
      offset,
      leaderEpoch,
      pending: 1,
      handled: false,
      done: false,
      tracked: undefined as unknown as Tracked,
      acked: false,
      holder: undefined
    }
    tracked.tracked = tracked
    this.entries.push(tracked)
    this.guard.tracked()
    return tracked
  }
  /** Its generation was revoked: what is not done is dropped (the new owner reads it again). */
  abandon(): void {
    let unsettled = 0
    for (let i = this.head; i < this.entries.length; i++) if (!this.entries[i].done) unsettled++
    if (unsettled > 0) this.guard.settled(unsettled)
  }
  advance(): void {
    const entries = this.entries
    while (this.head < entries.length && entries[this.head].done) {
      const entry = entries[this.head++]
      this.committable = entry.offset + 1n
      this.leaderEpoch = entry.leaderEpoch
    }
    // Keeps the last entry: `lastOffset` reads it.
    if (this.head > 1024 && this.head * 2 > entries.length) {
      this.entries = entries.slice(this.head - 1)
      this.head = 1
    }
  }
  /** What to commit now, if the commit can move. */
  toCommit(): CommitOffset | undefined {
    const offset = this.committable
    if (offset === undefined || offset === this.committed) return undefined
    return { topic: this.topic, partition: this.partition, offset, leaderEpoch: this.leaderEpoch, tracker: this }
  }
}

/** The tracking of a message whose decoding failed, for the decode-error policy (called with the message alone). */
export const trackedMessages = new WeakMap<Message.Message, Tracked>()
/** Deliveries of events built by an app's own `createEvent`; the default events carry theirs. */
const deliveries = new WeakMap<Event.Event<any, any>, Delivery>()

/**
 * A topic's event when the app builds default events: it carries its
 * delivery, which saves a WeakMap entry per event and per subscriber. A
 * consumer's event builds its `message` from the client's record the first
 * time something reads it: most handlers read only the key and the value.
 */
class TopicEvent<K, V> extends EventBase<K, V> {
  readonly key: K | null
  readonly value: V
  readonly headers: Message.Headers
  // Private: not serialized, not logged with the event (they point into the consumer's tracking).
  #message: Message.Message | undefined
  #record: Received | undefined
  #tp: Message.TopicPartition | undefined
  #delivery: Delivery | undefined
  constructor(
    key: K | null,
    value: V,
    headers: Message.Headers,
    message: Message.Message | undefined,
    record: Received | undefined,
    tp: Message.TopicPartition | undefined
  ) {
    super()
    this.key = key
    this.value = value
    this.headers = headers
    this.#message = message
    this.#record = record
    this.#tp = tp
    this.#delivery = undefined
  }
  get message(): Message.Message {
    if (this.#message === undefined) {
      this.#message = toMessage(this.#record!, this.#tp!, this.headers)
      this.#record = undefined
    }
    return this.#message
  }
  static deliveryOf(event: TopicEvent<unknown, unknown>): Delivery | undefined {
    return event.#delivery
  }
  static setDelivery(event: TopicEvent<unknown, unknown>, delivery: Delivery): void {
    event.#delivery = delivery
  }
}

export const makeTopicEvent = <K, V>(
  key: K | null,
  value: V,
  headers: Message.Headers,
  message: Message.Message
): Event.Event<K, V> => new TopicEvent(key, value, headers, message, undefined, undefined)

/** A consumer's event whose message is built from the client's record when read (see `TopicEvent`). */
export const receivedTopicEvent = <K, V>(
  key: K | null,
  value: V,
  record: Received,
  tp: Message.TopicPartition
): Event.Event<K, V> => new TopicEvent(key, value, headersOf(record), undefined, record, tp)

export const deliveryOf = (event: Event.Event<any, any>): Delivery | undefined =>
  event instanceof TopicEvent ? TopicEvent.deliveryOf(event) : deliveries.get(event)

export const setDelivery = (event: Event.Event<any, any>, delivery: Delivery): void => {
  if (event instanceof TopicEvent) TopicEvent.setDelivery(event, delivery)
  else deliveries.set(event, delivery)
}

/** One pending copy (or the hold while copies are made) is over: acknowledged, refused, or all made. */
export const release = (tracked: Tracked): void => {
  if (--tracked.pending === 0 && tracked.handled) {
    tracked.done = true
    const tracker = tracked.tracker
    tracker.stats.acknowledged++
    // A revoked tracker's guard no longer counts it (see `abandon`).
    if (!tracker.revoked) tracker.guard.settled()
    tracker.advance()
  }
}

/** Takes a delivery out of the `noack` pull that held it; the pull leaves its set once none is left. */
const unhold = (delivery: Delivery): void => {
  const holder = delivery.holder
  if (holder === undefined) return
  delivery.holder = undefined
  if (--holder.remaining === 0) holder.held.delete(holder)
}

export const acknowledge = (delivery: Delivery): boolean => {
  if (delivery.acked) return false
  delivery.acked = true
  unhold(delivery)
  delivery.tracked.handled = true
  release(delivery.tracked)
  return true
}

/**
 * Acknowledges one subscriber's event: `true` if the acknowledgement counts,
 * `false` if it was not a topic's, was acknowledged already, or belongs to a
 * revoked generation (it no longer counts: the partition's new owner reads
 * the event again). @internal
 */
export const ack = (event: Event.Event<any, any>): boolean => {
  const delivery = deliveryOf(event)
  return delivery !== undefined && acknowledge(delivery) && !delivery.tracked.tracker.revoked
}

/** Whether an event belongs to a revoked generation: it is dropped, never delivered. */
export const isStale = (event: Event.Event<any, any>): boolean => {
  const delivery = deliveryOf(event)
  if (delivery === undefined || !delivery.tracked.tracker.revoked) return false
  if (!delivery.acked) {
    delivery.acked = true
    // No longer held: a `noack` reader that dropped it will not acknowledge it.
    unhold(delivery)
  }
  return true
}
