import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import type { ChannelClosedError } from "../Errors.ts"
import type * as Event from "../Event.ts"
import type * as FutureMessage from "../FutureMessage.ts"
import type * as metrics from "./metrics.ts"

/**
 * All-or-nothing delivery of an in-memory channel's sends.
 *
 * A send reaches every subscriber or none: it is offered only once every
 * subscriber's queue has room for it, all in one synchronous step, so an
 * interrupted sender can never leave one subscriber with a message another
 * lacks. A send that finds a full queue waits in a FIFO list (later sends
 * queue behind it, so order holds); a `sendAll` that waits is offered in
 * prefixes, each to every subscriber, so an interruption leaves every
 * subscriber with the same prefix. Sends made while nobody subscribes wait
 * the same way for room in the root's buffer.
 */

/** A send waiting for room in every queue it goes to. */
interface WaitingSend {
  readonly events: ReadonlyArray<Event.Event<any, any>>
  /** Index of the first event not offered yet. */
  next: number
  readonly resume: (effect: Effect.Effect<void, FutureMessage.PublishError>) => void
  /** Sends the events not offered yet again, when every subscriber has left. */
  readonly retry: (events: ReadonlyArray<Event.Event<any, any>>) => Effect.Effect<void, FutureMessage.PublishError>
}

/** Something with a queue to deliver to: a subscriber, or the root's buffer. */
export interface Target {
  readonly queue: Queue.Queue<any, any>
}

/** The part of a root's shared state that sends and waits go through. */
export interface FanOut {
  readonly subscribers: ReadonlyArray<Target>
  /** The root's buffer, as a one-element target list. */
  readonly bufferTarget: ReadonlyArray<Target>
  readonly stats: metrics.Stats
  /** Sends waiting for room in the subscribers' queues, oldest first. */
  readonly waitingForSubscribers: Array<WaitingSend>
  /** Sends made while nobody subscribed, waiting for room in the buffer, oldest first. */
  readonly waitingForBuffer: Array<WaitingSend>
  /** Full queues whose next take wakes this root's waiting sends, with the entry that does it. */
  readonly watched: Map<Queue.Queue<any, any>, Queue.Queue.OfferEntry<any>>
}

/** The waiting state of a new root. */
export const makeWaiting = () => ({
  waitingForSubscribers: [] as Array<WaitingSend>,
  waitingForBuffer: [] as Array<WaitingSend>,
  watched: new Map<Queue.Queue<any, any>, Queue.Queue.OfferEntry<any>>()
})

/**
 * Free slots in a queue. A closed queue (a clone that was thrown or ended on
 * its own) takes nothing and never holds a send back.
 */
export const roomOf = (queue: Queue.Queue<any, any>): number =>
  queue.state._tag === "Open" ? queue.capacity - queue.messages.length : Number.POSITIVE_INFINITY

/** The room every target has. */
export const roomIn = (targets: ReadonlyArray<Target>): number => {
  let room = Number.POSITIVE_INFINITY
  for (let i = 0; i < targets.length; i++) {
    const free = roomOf(targets[i].queue)
    if (free < room) room = free
  }
  return room
}

/** Offers one event to every open target; the caller checked that each has room. */
export const offerToAll = (targets: ReadonlyArray<Target>, event: Event.Event<any, any>): void => {
  for (let i = 0; i < targets.length; i++) Queue.offerUnsafe(targets[i].queue, event)
}

/** Offers events to every open target; the caller checked that each has room for all of them. */
export const offerAllToAll = (targets: ReadonlyArray<Target>, events: ReadonlyArray<Event.Event<any, any>>): void => {
  for (let i = 0; i < targets.length; i++) Queue.offerAllUnsafe(targets[i].queue, events)
}

/**
 * Waits until every target has room, offering `events` (to the subscribers,
 * or to the buffer when `toBuffer`) in prefixes as room appears. Interrupted,
 * it withdraws what was not offered yet.
 */
export const waitForRoom = (
  fanOut: FanOut,
  events: ReadonlyArray<Event.Event<any, any>>,
  toBuffer: boolean,
  retry: WaitingSend["retry"]
): Effect.Effect<void, FutureMessage.PublishError> =>
  Effect.callback<void, FutureMessage.PublishError>((resume) => {
    const waiting: WaitingSend = { events, next: 0, resume, retry }
    const list = toBuffer ? fanOut.waitingForBuffer : fanOut.waitingForSubscribers
    list.push(waiting)
    offerWaiting(fanOut)
    return Effect.sync(() => {
      const index = list.indexOf(waiting)
      if (index === -1) return
      list.splice(index, 1)
      // The sends behind it may have room now that it no longer goes first.
      offerWaiting(fanOut)
    })
  })

/**
 * Offers what the waiting sends can place now, oldest first; a send whose
 * subscribers have all left is sent again (the no-subscriber policy decides).
 * Where a send must still wait, watches a full queue that holds it back.
 */
export const offerWaiting = (fanOut: FanOut): void => {
  const waiting = fanOut.waitingForSubscribers
  while (waiting.length > 0) {
    const send = waiting[0]
    if (fanOut.subscribers.length === 0) {
      waiting.shift()
      send.resume(send.retry(send.next === 0 ? send.events : send.events.slice(send.next)))
      continue
    }
    if (!offerSome(fanOut, waiting, send, fanOut.subscribers)) break
  }
  const buffered = fanOut.waitingForBuffer
  while (buffered.length > 0) {
    if (!offerSome(fanOut, buffered, buffered[0], fanOut.bufferTarget)) break
  }
}

/** Fails every waiting send with `error` (the root was closed). */
export const failWaiting = (fanOut: FanOut, error: ChannelClosedError): void => {
  const sends = [...fanOut.waitingForSubscribers, ...fanOut.waitingForBuffer]
  fanOut.waitingForSubscribers.length = 0
  fanOut.waitingForBuffer.length = 0
  const failed = Exit.fail(error)
  for (const send of sends) send.resume(failed)
}

/**
 * Offers the longest prefix of `send`'s remaining events that every target
 * has room for; `true` once the send is complete (and resumed).
 */
const offerSome = (
  fanOut: FanOut,
  list: Array<WaitingSend>,
  send: WaitingSend,
  targets: ReadonlyArray<Target>
): boolean => {
  const room = roomIn(targets)
  if (room === 0) {
    watchFullQueue(fanOut, targets)
    return false
  }
  const events = send.events
  const count = Math.min(room, events.length - send.next)
  offerAllToAll(targets, count === events.length ? events : events.slice(send.next, send.next + count))
  fanOut.stats.sent += count
  send.next += count
  if (send.next < events.length) {
    watchFullQueue(fanOut, targets)
    return false
  }
  list.shift()
  send.resume(Exit.void)
  return true
}

/**
 * Asks a full target queue to wake the waiting sends on its next take.
 *
 * The wake-up is an empty entry in the queue's own list of suspended offers
 * (`Queue.State.offers`, part of effect's public queue model): every take
 * that frees room resumes those entries, whoever takes (a stream, `get`, or
 * `Queue.take` on the channel's `queue`), and shutting the queue down resumes
 * them too. An entry exists only while its queue is full, so no take ever
 * mistakes it for a message.
 */
const watchFullQueue = (fanOut: FanOut, targets: ReadonlyArray<Target>): void => {
  for (let i = 0; i < targets.length; i++) {
    const queue = targets[i].queue
    const state = queue.state
    if (state._tag !== "Open" || roomOf(queue) > 0) continue
    if (fanOut.watched.has(queue)) return
    const entry: Queue.Queue.OfferEntry<any> = {
      _tag: "Array",
      remaining: [],
      offset: 0,
      resume: () => {
        fanOut.watched.delete(queue)
        offerWaiting(fanOut)
      }
    }
    fanOut.watched.set(queue, entry)
    state.offers.add(entry)
    return
  }
}

/**
 * Takes the wake-up entry out of a queue about to be closed: a closing
 * queue ends only once it has no suspended offers left, and the entry would
 * keep its reader waiting after the last message.
 */
export const unwatch = (fanOut: FanOut, queue: Queue.Queue<any, any>): void => {
  const entry = fanOut.watched.get(queue)
  if (entry === undefined) return
  fanOut.watched.delete(queue)
  if (queue.state._tag !== "Done") queue.state.offers.delete(entry)
}

/** `unwatch` for every queue (the root is closing). */
export const unwatchAll = (fanOut: FanOut): void => {
  for (const queue of Array.from(fanOut.watched.keys())) unwatch(fanOut, queue)
}
