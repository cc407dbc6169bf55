/**
 * How a topic is read: a stream subscribes for its lifetime and joins the
 * consumer session; its subscriber's queue drops events of revoked
 * generations, never handing them out (a member never hands out an event of
 * a partition it may no longer own; its new owner reads it from the
 * committed offset), and each event handed out is acknowledged by the next
 * pull, or held until `Topic.ack` for a `noack` subscriber.
 */
import type * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as RcRef from "effect/RcRef"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { ChannelClosedError, type TransportError } from "../../Errors.ts"
import type * as Event from "../../Event.ts"
import { withoutStale } from "../../internal/acknowledging.ts"
import { KafkaError } from "../KafkaError.ts"
import { ack, acknowledge, type Delivery, deliveryOf, type HeldRun, isStale } from "./acknowledgement.ts"

/** What reading needs of a subscriber. */
export interface Reader<A extends Event.Event<any, any>> {
  readonly queue: Queue.Queue<A, any>
  /** The event handed out last, acknowledged on the next pull. */
  last: Delivery | undefined
  /** A `noack` subscriber's pulls with events handed out and not acknowledged yet. */
  held: Set<HeldRun> | undefined
}

/** What a topic's stream needs of it: a new subscriber for the stream, and the consumer session to join. */
export interface StreamedTopic<A extends Event.Event<any, any>> {
  readonly iteratorClone: Effect.Effect<Reader<A> & { readonly onStopIteration: Effect.Effect<void> }>
  readonly settings: { readonly topics: ReadonlyArray<string> }
  readonly context: { readonly kafka: { readonly scope: Scope.Scope } }
  readonly root: { readonly sessions: RcRef.RcRef<unknown, TransportError> }
}

/**
 * Subscribes, joins the consumer session (starting it if this is the first
 * subscriber) and emits one event per pull, acknowledged on the next pull
 * and when the stream ends successfully (Faust's rule), or `"manually"`
 * (Faust's `noack`) only by `Topic.ack`. Failing or being interrupted leaves
 * the last event unacknowledged.
 */
export const events = <A extends Event.Event<any, any>, B = A>(
  topic: StreamedTopic<A>,
  acknowledged: "onNextPull" | "manually",
  project?: (event: A) => B
): Stream.Stream<B, any> =>
  Stream.unwrap(Effect.gen(function*() {
    const subscriber = yield* Effect.acquireRelease(topic.iteratorClone, (subscriber) => subscriber.onStopIteration)
    if (acknowledged === "manually") subscriber.held = new Set()
    if (topic.context.kafka.scope.state._tag === "Closed") {
      return yield* new KafkaError({
        operation: "consume",
        topic: topic.settings.topics.join(", "),
        cause: new Error("the Kafka layer this topic was made with is closed")
      })
    }
    yield* RcRef.get(topic.root.sessions)
    if (acknowledged === "onNextPull") {
      yield* Effect.addFinalizer((exit) => Exit.isSuccess(exit) ? Effect.sync(() => ackLast(subscriber)) : Effect.void)
    }
    const pull = acknowledged === "manually" ? pullHeld(subscriber) : pullOne(subscriber, project)
    return Stream.fromPull(Effect.succeed(pull as Effect.Effect<Arr.NonEmptyReadonlyArray<B>, any>))
  }))

/**
 * The next event: a subscriber takes it from its own queue and acknowledges
 * it; any other instance reads it from the broker through a one-event
 * subscription.
 */
export const get = <A extends Event.Event<any, any>>(
  topic: Reader<A> & {
    readonly label: string
    readonly isIterator: boolean
    events(): Stream.Stream<A, any>
  },
  timeout: Duration.Input | undefined
): Effect.Effect<A, any> => {
  const closed = () => Effect.fail(new ChannelClosedError({ channel: topic.label }))
  const take = topic.isIterator
    ? Effect.catchIf(Effect.tap(takeFresh(topic), (event) => Effect.sync(() => ack(event))), Cause.isDone, closed)
    : Effect.flatMap(Stream.runHead(topic.events()), Option.match({ onNone: closed, onSome: Effect.succeed }))
  return timeout === undefined ? take : Effect.timeout(take, timeout)
}

/** Acknowledges the event handed out last (the stream pulled again, or ended). */
export const ackLast = <A extends Event.Event<any, any>>(reader: Reader<A>): void => {
  const last = reader.last
  if (last !== undefined) {
    reader.last = undefined
    acknowledge(last)
  }
}

/**
 * A pull acknowledging the previous event (Faust's rule): one event at a
 * time, or what `project` makes of it (`stream()`'s value: no second stream
 * stage per event).
 */
export const pullOne = <A extends Event.Event<any, any>, B = A>(
  reader: Reader<A>,
  project?: (event: A) => B
): Effect.Effect<readonly [B], any> => {
  const handOut = (event: A): readonly [B] => {
    reader.last = deliveryOf(event)
    return [project === undefined ? event as unknown as B : project(event)]
  }
  return Effect.suspend(() => {
    ackLast(reader)
    // Without an effect per event while the queue has some.
    const taken = takeFreshUnsafe(reader)
    if (taken === undefined) return Effect.map(takeFresh(reader), handOut)
    return Exit.isSuccess(taken) ? Exit.succeed(handOut(taken.value)) : taken as Exit.Exit<never, any>
  })
}

/** At most this many events are handed out by one `noack` pull. */
const HELD_BATCH = 1024

/**
 * A `noack` pull: the next event (waiting for one) and what else the queue
 * holds, each held until `Topic.ack`. Nothing is acknowledged by pulling, so
 * a pull can hand out many at once, taken from the queue in one step.
 */
export const pullHeld = <A extends Event.Event<any, any>>(
  reader: Reader<A>
): Effect.Effect<Arr.NonEmptyReadonlyArray<A>, any> =>
  Effect.flatMap(Queue.takeBetween(reader.queue, 1, HELD_BATCH), (taken) => {
    // An end or a failure stays in the queue for the next pull, after these.
    const events = withoutStale(taken, isStale)
    if (!isNonEmpty(events)) return pullHeld(reader)
    const held = reader.held
    if (held !== undefined) {
      const run: HeldRun = { deliveries: [], remaining: 0, held }
      for (const event of events) hold(run, event)
      if (run.remaining > 0) held.add(run)
    }
    return Effect.succeed(events)
  })

const isNonEmpty = <A>(events: ReadonlyArray<A>): events is Arr.NonEmptyReadonlyArray<A> => events.length > 0

const hold = (run: HeldRun, event: Event.Event<any, any>): void => {
  const delivery = deliveryOf(event)
  if (delivery !== undefined && !delivery.acked) {
    delivery.holder = run
    run.deliveries.push(delivery)
    run.remaining++
  }
}

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
