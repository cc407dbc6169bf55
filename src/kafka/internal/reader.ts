/**
 * How a topic's subscriber reads its queue: events of revoked generations
 * are dropped, never handed out (a member never hands out an event of a
 * partition it may no longer own; its new owner reads it from the committed
 * offset), and each event handed out is acknowledged by the next pull, or
 * held until `Topic.ack` for a `noack` subscriber.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import type * as Event from "../../Event.ts"
import { acknowledge, type Delivery, deliveryOf, isStale } from "./acknowledgement.ts"

/** What reading needs of a subscriber. */
export interface Reader<A extends Event.Event<any, any>> {
  readonly queue: Queue.Queue<A, any>
  /** The event handed out last, acknowledged on the next pull. */
  last: Delivery | undefined
  /** A `noack` subscriber's events handed out and not acknowledged yet. */
  held: Set<Delivery> | undefined
}

/** Acknowledges the event handed out last (the stream pulled again, or ended). */
export const ackLast = <A extends Event.Event<any, any>>(reader: Reader<A>): void => {
  const last = reader.last
  if (last !== undefined) {
    reader.last = undefined
    acknowledge(last)
  }
}

/** A pull acknowledging the previous event (Faust's rule): one event at a time. */
export const pullOne = <A extends Event.Event<any, any>>(reader: Reader<A>): Effect.Effect<readonly [A], any> =>
  Effect.suspend(() => {
    ackLast(reader)
    // Without an effect per event while the queue has some.
    const taken = takeFreshUnsafe(reader)
    if (taken === undefined) return Effect.map(takeFresh(reader), (event) => handOut(reader, event))
    return Exit.isSuccess(taken) ? Exit.succeed(handOut(reader, taken.value)) : taken as Exit.Exit<never, any>
  })

const handOut = <A extends Event.Event<any, any>>(reader: Reader<A>, event: A): readonly [A] => {
  reader.last = deliveryOf(event)
  return [event]
}

/** A `noack` pull: the event is held until `Topic.ack`. */
export const pullHeld = <A extends Event.Event<any, any>>(reader: Reader<A>): Effect.Effect<readonly [A], any> =>
  Effect.map(takeFresh(reader), (event) => {
    const delivery = deliveryOf(event)
    if (delivery !== undefined && !delivery.acked && reader.held !== undefined) {
      delivery.holder = reader.held
      reader.held.add(delivery)
    }
    return [event] as const
  })

/** The next event of the queue if it has one, dropping those of revoked generations. */
const takeFreshUnsafe = <A extends Event.Event<any, any>>(reader: Reader<A>): Exit.Exit<A, any> | undefined => {
  let taken = Queue.takeUnsafe(reader.queue)
  while (taken !== undefined && Exit.isSuccess(taken) && isStale(taken.value)) taken = Queue.takeUnsafe(reader.queue)
  return taken
}

/** The next event of the queue, dropping those of revoked generations. */
export const takeFresh = <A extends Event.Event<any, any>>(reader: Reader<A>): Effect.Effect<A, any> =>
  Effect.suspend(() => {
    const taken = takeFreshUnsafe(reader)
    if (taken !== undefined) return taken
    return Effect.flatMap(
      Queue.take(reader.queue),
      (event) => isStale(event) ? takeFresh(reader) : Effect.succeed(event)
    )
  })
