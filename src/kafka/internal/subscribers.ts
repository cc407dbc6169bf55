import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as subscriberList from "../../internal/subscriberList.ts"

import { ack, acknowledge } from "./acknowledgement.ts"
import type { TopicImpl } from "./topic.ts"

export const subscribe = (subscriber: TopicImpl<any, any, any>): void => {
  subscriberList.join(subscriber.root, subscriber)
}

/**
 * Removes a subscriber and shuts its queue down, which releases a delivery
 * waiting on it. While others still read the topic, what this one held
 * counts as handled (else its partitions' commits would stall); the last one
 * leaves it unacknowledged, to be read again.
 */
export const unsubscribe = (subscriber: TopicImpl<any, any, any>): void => {
  const next = subscriberList.leave(subscriber.root, subscriber)
  if (next === undefined) return
  if (next.length > 0) {
    subscriber.ackLast()
    if (subscriber.held !== undefined) {
      for (const run of Array.from(subscriber.held)) for (const delivery of run.deliveries) acknowledge(delivery)
    }
    let taken = Queue.takeUnsafe(subscriber.queue)
    while (taken !== undefined && Exit.isSuccess(taken)) {
      ack(taken.value)
      taken = Queue.takeUnsafe(subscriber.queue)
    }
  }
  Queue.shutdownUnsafe(subscriber.queue)
}

/** Fails every current subscriber (each reads what it holds first), without closing the topic. */
export const failSubscribers = (topic: TopicImpl<any, any, any>, cause: Cause.Cause<unknown>): void => {
  for (const subscriber of topic.isIterator ? [topic] : topic.root.subscribers) {
    Queue.failCauseUnsafe(subscriber.queue, cause as Cause.Cause<any>)
  }
}
