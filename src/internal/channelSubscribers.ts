/**
 * Joining, leaving and closing an in-memory channel's root, and who reads
 * the root's no-subscriber buffer when its reader leaves.
 */
import type * as Cause from "effect/Cause"
import * as CauseM from "effect/Cause"
import * as Queue from "effect/Queue"
import type * as Event from "../Event.ts"
import type { ChannelImpl, Root } from "./channel.ts"
import * as fanOut from "./fanOut.ts"
import * as subscriberList from "./subscriberList.ts"

/**
 * Put into the queue of a subscriber that becomes the buffer's reader while
 * its queue is empty (its stream may be waiting on that queue): it wakes the
 * stream, which then reads the buffer first. Never handed to a reader.
 */
export const Wake: Event.Event<any, any> = Object.freeze({}) as unknown as Event.Event<any, any>

/**
 * Registers an iterator clone with its root. If messages wait in the root
 * buffer and nobody is reading it, this subscriber reads them first — also
 * when the channel is already closed: they were sent before it closed.
 */
export const subscribe = (subscriber: ChannelImpl<any, any, any>): void => {
  const root = subscriber.root
  if (root.drainer === undefined && Queue.sizeUnsafe(root.buffer) > 0) {
    root.drainer = subscriber
    subscriber.drainFrom = root.buffer
  }
  subscriberList.join(root, subscriber)
}

/**
 * Removes a subscriber and shuts its queue down. If it was reading the root
 * buffer, another subscriber takes the buffer over; sends waiting on its
 * queue are offered again (or, if it was the last, sent by the no-subscriber
 * policy).
 */
export const unsubscribe = (subscriber: ChannelImpl<any, any, any>): void => {
  const root = subscriber.root
  if (subscriberList.leave(root, subscriber) === undefined) return
  const wasDrainer = root.drainer === subscriber
  subscriber.stopDraining()
  subscriber.held = undefined
  Queue.shutdownUnsafe(subscriber.queue)
  if (wasDrainer && Queue.sizeUnsafe(root.buffer) > 0) handOverBuffer(root)
  fanOut.offerWaiting(root)
}

/**
 * Gives the root buffer to a remaining subscriber, preferring one read
 * through this channel that has read nothing yet (for one that has, the
 * buffer's older messages come after what it already read). A stream may be
 * waiting on its empty queue: a `Wake` gets it to read the buffer now. A
 * `cloneUsingQueue` queue is read by the user directly, so it never gets
 * one: it reads the buffer at its next event.
 */
const handOverBuffer = (root: Root): void => {
  const subscribers = root.subscribers
  const next = subscribers.find((subscriber) => subscriber.readsThroughChannel && !subscriber.hasRead) ??
    subscribers.find((subscriber) => subscriber.readsThroughChannel) ?? subscribers[0]
  if (next === undefined) return
  root.drainer = next
  next.drainFrom = root.buffer
  if (next.readsThroughChannel && !next.wakeQueued && Queue.sizeUnsafe(next.queue) === 0) {
    next.wakeQueued = Queue.offerUnsafe(next.queue, Wake)
  }
}

/** How a root was closed, from the cause it was closed with. */
export const closedByOf = (cause: Cause.Cause<unknown>): "throw" | "end" =>
  cause.reasons.length > 0 &&
    cause.reasons.every((reason) => CauseM.isFailReason(reason) && CauseM.isDone(reason.error))
    ? "end"
    : "throw"

/**
 * Fails (or ends) an instance's queue; on the root, also every current
 * subscriber, and the channel accepts no more sends. Queues close
 * gracefully: readers get what was buffered, then the cause.
 */
export const close = (instance: ChannelImpl<any, any, any>, cause: Cause.Cause<any>): void => {
  const root = instance.root
  if (instance.queue !== root.buffer) {
    fanOut.unwatch(root, instance.queue)
    Queue.failCauseUnsafe(instance.queue, cause)
    // A closed queue no longer holds sends back.
    fanOut.offerWaiting(root)
    return
  }
  if (root.closed !== undefined) return
  root.closed = cause
  root.closedBy = closedByOf(cause)
  // Sends still waiting for room were not sent: they fail, and say why. First, because
  // closing a queue can run its reader at once, and a reader that leaves offers the waiting sends.
  fanOut.failWaiting(root, instance.closedError())
  fanOut.unwatchAll(root)
  Queue.failCauseUnsafe(root.buffer, cause)
  for (const subscriber of root.subscribers) Queue.failCauseUnsafe(subscriber.queue, cause)
}
