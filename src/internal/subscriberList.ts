import * as Arr from "effect/Array"
import type * as Cause from "effect/Cause"
import * as Queue from "effect/Queue"
import * as metrics from "./metrics.ts"

/**
 * The subscribers of a root channel or topic: shared by both, so that joining
 * and leaving (and the queue-depth series that go with it) are written once.
 */
export interface Subscribers<S extends metrics.Metered> {
  subscribers: ReadonlyArray<S>
  /** Set once the root is closed (`throw`, `end`): a subscriber joining later gets it at once. */
  closed: Cause.Cause<unknown> | undefined
  metrics: metrics.Registry | undefined
}

/** Adds a subscriber; if the root is closed, its queue fails with the root's cause at once. */
export const join = <S extends metrics.Metered>(list: Subscribers<S>, subscriber: S): void => {
  if (list.closed !== undefined) Queue.failCauseUnsafe(subscriber.queue, list.closed as Cause.Cause<any>)
  list.subscribers = Arr.append(list.subscribers, subscriber)
  metrics.trackSubscriber(list.metrics, subscriber)
}

/**
 * Removes a subscriber: the subscribers left, or `undefined` if it was not
 * one. The caller shuts its queue down once done with what it holds.
 */
export const leave = <S extends metrics.Metered>(list: Subscribers<S>, subscriber: S): ReadonlyArray<S> | undefined => {
  const index = list.subscribers.indexOf(subscriber)
  if (index === -1) return undefined
  list.subscribers = Arr.remove(list.subscribers, index)
  metrics.untrackSubscriber(subscriber)
  return list.subscribers
}
