/**
 * Handing decoded events of tracked messages to a topic's subscribers, and
 * a message that did not decode to the topic's decode-error hooks.
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type { App } from "../../App.ts"
import type { DecodeError } from "../../Errors.ts"
import type * as Event from "../../Event.ts"
import type * as FutureMessage from "../../FutureMessage.ts"
import type { Settings as ChannelSettings } from "../../internal/channel.ts"
import { decodeMessage, isDecodeError } from "../../internal/decode.ts"
import { type Hook, routeDecodeError } from "../../internal/decodeErrorPolicy.ts"
import type * as metrics from "../../internal/metrics.ts"
import type * as Message from "../../Message.ts"
import { release, setDelivery, type Tracked, trackedMessages } from "./acknowledgement.ts"

/** A subscriber as delivery sees it: its queue. */
interface Subscriber {
  readonly queue: Queue.Queue<Event.Event<any, any>, any>
}

/** What delivering a run needs of a topic. */
export interface DeliveringTopic {
  readonly root: { readonly stats: metrics.Stats; readonly subscribers: ReadonlyArray<Subscriber> }
  readonly eventFactory: App["Service"]["createEvent"]
}

/** What delivering one message needs of a topic instance: its settings, queue and decode-error hooks. */
export interface DeliveringInstance extends DeliveringTopic, Subscriber {
  readonly channelSettings: ChannelSettings<any, any>
  readonly isIterator: boolean
  readonly spanOptions: { readonly attributes: Record<string, unknown> }
  readonly onKeyDecodeError: Hook
  readonly onValueDecodeError: Hook
}

/**
 * Decodes a message and offers it to this subscriber's queue, or on a root
 * to every subscriber; decode errors go through the policy. `tracked` when
 * the consumer read it.
 */
export const deliver = (
  topic: DeliveringInstance,
  message: Message.Message,
  tracked: Tracked | undefined
): Effect.Effect<void, DecodeError | FutureMessage.PublishError> => {
  const deliver = Effect.suspend(() => {
    const decoded = decodeMessage(topic.channelSettings, message, topic.eventFactory)
    if (isDecodeError(decoded)) return decodeFailed(topic, decoded, message, tracked)
    topic.root.stats.delivered++
    const subscribers = topic.isIterator ? [topic] : topic.root.subscribers
    return offerRun(subscribers, [decoded], tracked === undefined ? undefined : [tracked], topic.eventFactory) ??
      Effect.void
  })
  return topic.channelSettings.spans ? Effect.withSpan(deliver, "Topic.deliver", topic.spanOptions) : deliver
}

/** Hands a message that did not decode to the topic's key or value hook. */
export const decodeFailed = (
  hooks: { readonly onKeyDecodeError: Hook; readonly onValueDecodeError: Hook },
  error: DecodeError,
  message: Message.Message,
  tracked: Tracked | undefined
): Effect.Effect<void, DecodeError | FutureMessage.PublishError> => {
  // The policy is Faust's public hook, called with the message alone.
  if (tracked !== undefined) trackedMessages.set(message, tracked)
  return routeDecodeError(hooks, error, message)
}

/** Delivers a run of decoded events of tracked messages, in order, to every subscriber; see `offerRun`. */
export const deliverRun = (
  topic: DeliveringTopic,
  events: Array<Event.Event<any, any>>,
  tracked: ReadonlyArray<Tracked>
): Effect.Effect<void> | undefined => {
  topic.root.stats.delivered += events.length
  return offerRun(topic.root.subscribers, events, tracked, topic.eventFactory)
}

/**
 * Offers a run of events, in order, to each subscriber: a copy each (so
 * that each acknowledges its own), with one `offerAll` per subscriber, so a
 * full queue costs one wait for the run rather than one per event.
 * `undefined` when every queue took everything; otherwise the effect that
 * waits for room. Every copy is counted before the first is offered, so a
 * copy acknowledged early cannot complete its message while others are
 * still to be offered; a message no subscriber took stays undone.
 */
export const offerRun = (
  subscribers: ReadonlyArray<Subscriber>,
  events: Array<Event.Event<any, any>>,
  tracked: ReadonlyArray<Tracked> | undefined,
  createEvent: App["Service"]["createEvent"]
): Effect.Effect<void> | undefined => {
  const n = events.length
  if (subscribers.length === 0) return undefined
  const copies = subscribers.map((_, s) =>
    s === 0 ? events : events.map((event) => createEvent(event.key, event.value, event.headers, event.message))
  )
  if (tracked !== undefined) {
    if (copies.length === 1) {
      // One subscriber: the message is its own delivery, and its hold while copies are made is the copy.
      const run = copies[0]
      for (let j = 0; j < n; j++) setDelivery(run[j], tracked[j])
    } else {
      for (const run of copies) for (let j = 0; j < n; j++) track(run[j], tracked[j])
      for (let j = 0; j < n; j++) release(tracked[j])
    }
  }
  let waits: Array<Effect.Effect<void>> | undefined
  for (let s = 0; s < subscribers.length; s++) {
    const queue = subscribers[s].queue as Queue.Queue<Event.Event<any, any>, Cause.Done>
    const rest = Queue.offerAllUnsafe(queue, copies[s])
    if (rest.length === 0) continue
    ;(waits ??= []).push(Effect.map(Queue.offerAll(queue, rest), (refused) => {
      // what a queue shut down while waiting did not take: the suffix of the run
      if (tracked !== undefined) { for (let j = n - refused.length; j < n; j++) release(tracked[j]) }
    }))
  }
  // Concurrently: a subscriber must not wait for its run behind another's full queue (a reader
  // taking from both in step would never drain the first).
  return waits === undefined ? undefined : Effect.all(waits, { concurrency: "unbounded", discard: true })
}

/** One subscriber's copy of a tracked message: counted until it is acknowledged. */
const track = (event: Event.Event<any, any>, tracked: Tracked): void => {
  setDelivery(event, { tracked, acked: false, holder: undefined })
  tracked.pending++
}
