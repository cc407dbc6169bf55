/**
 * How an agent reads a source whose events are acknowledged by their reader
 * (a Kafka topic: acknowledging moves the committed offset), without the
 * core knowing the transport: the source carries this protocol under
 * {@link TypeId}. An in-memory channel does not: its events are done once
 * read.
 *
 * It also carries the sends an event's handler made without waiting
 * (`sendSoon`): the agent waits for them before it acknowledges the event,
 * so a refused record fails the event instead of passing unnoticed.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type * as Event from "../Event.ts"

/** @internal */
export const TypeId = "~effect-faust/Acknowledging" as const

/** What a source whose reader acknowledges its events offers an agent. @internal */
export interface Protocol<K, V, E> {
  /** Events that only `ack` acknowledges (a `noack` stream). */
  readonly events: () => Stream.Stream<Event.Event<K, V>, E>
  /** Acknowledges one event; `false` if it no longer counts (its partition was revoked). */
  readonly ack: (event: Event.Event<any, any>) => boolean
  /**
   * Whether an event read earlier belongs to a partition revoked since: it is
   * not to be handled (the partition's new owner reads it again).
   */
  readonly stale: (event: Event.Event<any, any>) => boolean
}

/** A source carrying the protocol. @internal */
export interface Acknowledging<K, V, E> {
  readonly [TypeId]: Protocol<K, V, E>
}

/** The protocol of a source, if it has one. @internal */
export const protocolOf = <K, V, E>(source: object): Protocol<K, V, E> | undefined =>
  (source as Partial<Acknowledging<K, V, E>>)[TypeId]

/**
 * Collects what an event's handler sent without waiting. A transport adds
 * the completion of each such send made while a collector is current.
 *
 * @internal
 */
export interface PendingSends {
  readonly add: (completion: Effect.Effect<unknown, unknown>) => void
}

/** The collector of the event being handled on this fiber, if any. @internal */
export const CurrentPendingSends = Context.Reference<PendingSends | undefined>(
  "effect-faust/internal/CurrentPendingSends",
  { defaultValue: () => undefined }
)

/**
 * The events not `stale`, in order: the same array when none is (the common
 * case allocates nothing). `stale` may act on what it drops (release it).
 */
export const withoutStale = <A extends Event.Event<any, any>>(
  events: ReadonlyArray<A>,
  stale: (event: A) => boolean
): ReadonlyArray<A> => {
  let fresh: Array<A> | undefined
  for (let i = 0; i < events.length; i++) {
    if (stale(events[i])) fresh ??= events.slice(0, i)
    else if (fresh !== undefined) fresh.push(events[i])
  }
  return fresh ?? events
}
