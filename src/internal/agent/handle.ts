/**
 * How an agent handles one unit of work (an event, or a batch of them):
 * the handler, then the sends it made without waiting, then the sinks,
 * retried per `onError.retry`; on success the reply to an asker and the
 * acknowledgement; after the last retry, the failure policy. An event is
 * acknowledged only once everything it caused has completed.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Tracer from "effect/Tracer"
import { describe } from "../../Errors.ts"
import * as Event from "../../Event.ts"
import type * as Message from "../../Message.ts"
import { CurrentPendingSends, type PendingSends } from "../acknowledging.ts"
import * as traceContext from "../traceContext.ts"
import { dropStale, type Gate, type Instance, takeUnit, unitDone } from "./instances.ts"
import type { Replies } from "./replies.ts"
import { requestOf } from "./replies.ts"
import type { Settings, Sink } from "./settings.ts"
import * as stats from "./stats.ts"

/** An event whose handling failed for good under the `fail` policy. */
export class EventFailure {
  readonly events: ReadonlyArray<Event.Event<any, any>>
  readonly attempts: number
  readonly cause: unknown
  constructor(events: ReadonlyArray<Event.Event<any, any>>, attempts: number, cause: unknown) {
    this.events = events
    this.attempts = attempts
    this.cause = cause
  }
}

/** The user's handler for a unit (an event, or a batch); its result goes to the sinks and askers. */
export type Handler<R> = (events: ReadonlyArray<Event.Event<any, any>>) => Effect.Effect<unknown, unknown, R>

/** What handling needs of its agent. */
export interface Handling {
  readonly name: string
  /** The source's label. */
  readonly source: string
  readonly settings: Settings
  readonly stats: stats.Stats
  /** Acknowledges one event at its source (nothing to do in memory). */
  readonly ack: ((event: Event.Event<any, any>) => boolean) | undefined
  /** Whether an event read earlier belongs to a partition revoked since (never in memory). */
  readonly stale: ((event: Event.Event<any, any>) => boolean) | undefined
  readonly replies: Replies
}

/** Sends a value to one sink. */
export const sendTo = (sink: Sink<unknown>, value: unknown): Effect.Effect<unknown, unknown> =>
  typeof sink === "function" ? sink(value) : sink.send({ value })

/**
 * The sends a handler made without waiting, collected for the instance
 * running it (an instance handles one unit at a time).
 */
export interface PendingList extends PendingSends {
  list: Array<Effect.Effect<unknown, unknown>>
}

/** A collector for one instance, to provide as `CurrentPendingSends` around its loop. */
export const makePendingList = (): PendingList => {
  const pending: PendingList = {
    list: [],
    add: (completion) => {
      pending.list.push(completion)
    }
  }
  return pending
}

/** Waits for every collected send, including those made while waiting (by the sinks). */
export const awaitPending = (pending: PendingList): Effect.Effect<void, unknown> =>
  Effect.suspend(() => {
    const list = pending.list
    if (list.length === 0) return Effect.void
    pending.list = []
    return Effect.andThen(Effect.forEach(list, (completion) => completion, { discard: true }), awaitPending(pending))
  })

/** Acknowledges events at their source. */
export const ackAll = (handling: Handling, events: ReadonlyArray<Event.Event<any, any>>): void => {
  const ack = handling.ack
  if (ack !== undefined) { for (const event of events) ack(event) }
}

/** Replies `out` to the askers among the events; a reply nobody waits for is dropped and counted. */
export const reply = (
  handling: Handling,
  events: ReadonlyArray<Event.Event<any, any>>,
  out: unknown
): Effect.Effect<void> =>
  Effect.forEach(events, (event) => {
    const request = requestOf(event.headers)
    if (request === undefined) return Effect.void
    return handling.replies.send(request.address, request.correlationId, out).pipe(
      Effect.catchCause(() => Effect.succeed(false)),
      Effect.map((delivered) => {
        if (!delivered) handling.stats.repliesDropped++
      })
    )
  }, { discard: true })

/** The headers a dead letter of this agent carries besides the original ones. */
export const deadLetterHeaders = (
  agent: string,
  source: string,
  message: Message.Message,
  attempts: number,
  cause: unknown
): Message.Headers => [
  ["x-error", errorName(cause)],
  ["x-error-message", describe(cause)],
  ["x-agent", agent],
  ["x-attempts", String(attempts)],
  ["x-source-channel", source],
  ["x-source-topic", message.topic],
  ["x-source-partition", String(message.partition)],
  ["x-source-offset", String(message.offset)]
]

const errorName = (cause: unknown): string => {
  try {
    if (typeof cause === "object" && cause !== null) {
      const tag = (cause as { readonly _tag?: unknown })._tag
      if (typeof tag === "string") return tag
      if (cause instanceof Error) return String(cause.name)
    }
    return typeof cause
  } catch {
    return "unknown"
  }
}

/** Applies the policy that follows the last retry; fails only under `fail` (or when the dead letter cannot be written). */
export const afterFailure = (
  handling: Handling,
  events: ReadonlyArray<Event.Event<any, any>>,
  attempts: number,
  cause: unknown
): Effect.Effect<void, EventFailure> => {
  const policy = handling.settings.onError
  const count = events.length
  handling.stats.failed += count
  if (policy === "fail") return Effect.fail(new EventFailure(events, attempts, cause))
  if (policy === "skip") {
    return Effect.suspend(() => {
      handling.stats.skipped += count
      ackAll(handling, events)
      return Effect.logWarning(`agent ${handling.name} skipped ${count} event(s): ${describe(cause)}`)
    })
  }
  const target = policy.deadLetter
  return Effect.forEach(events, (event) =>
    target.put(Event.make({
      key: event.message.key,
      value: event.message.value,
      headers: [
        ...event.message.headers,
        ...deadLetterHeaders(handling.name, handling.source, event.message, attempts, cause)
      ],
      message: event.message
    })), { discard: true }).pipe(
      Effect.matchEffect({
        onFailure: (error) =>
          Effect.fail(
            new EventFailure(
              events,
              attempts,
              new Error(`dead letter to ${target.label} failed: ${describe(error)}`, { cause: error })
            )
          ),
        onSuccess: () =>
          Effect.suspend(() => {
            handling.stats.deadLettered += count
            ackAll(handling, events)
            return Effect.logWarning(
              `agent ${handling.name} dead-lettered ${count} event(s) to ${target.label}: ${describe(cause)}`
            )
          })
      })
    )
}

const hasRequest = (events: ReadonlyArray<Event.Event<any, any>>): boolean => {
  for (const event of events) if (event.headers.length > 0 && requestOf(event.headers) !== undefined) return true
  return false
}

/**
 * An instance of a `forEach` agent: takes units from its queue and handles
 * each to its end — acknowledged (handled, skipped or dead-lettered), or
 * failed with {@link EventFailure} and left unacknowledged (interruption
 * leaves it unacknowledged too).
 *
 * An instance handles one unit at a time, so its continuations are made
 * once: the common case (no retry schedule, no sinks, nothing sent without
 * waiting, no asker) costs the handler and one match per event.
 *
 * With a tracer installed, a unit whose events carry a `traceparent` is
 * handled (handler, retries, sinks) inside an `agent <name>` span: see
 * {@link HandlerInstance.spanOf}. Without a tracer, tracing costs one
 * boolean test per unit.
 */
class HandlerInstance<R> {
  readonly handling: Handling
  readonly handler: Handler<R>
  readonly instance: Instance
  readonly gate: Gate
  readonly clock: Clock.Clock
  /** Whether spans go somewhere (a tracer other than the native one): read once per instance. */
  readonly tracing: boolean
  readonly spanName: string
  readonly pending: PendingList = makePendingList()
  unit: ReadonlyArray<Event.Event<any, any>> = []
  started = 0
  attempts = 0
  constructor(
    handling: Handling,
    handler: Handler<R>,
    instance: Instance,
    gate: Gate,
    clock: Clock.Clock,
    tracing: boolean
  ) {
    this.handling = handling
    this.handler = handler
    this.instance = instance
    this.gate = gate
    this.clock = clock
    this.tracing = tracing
    this.spanName = `agent ${handling.name}`
  }

  /**
   * The span of a unit whose events carry a producer's span, or `undefined`
   * (no event carries a valid `traceparent`). One event: a child of the
   * producer's span (the handling continues the send's trace). A batch: a
   * root span linking every event's producer span (a span has one parent;
   * a batch has many producers).
   */
  spanOf(unit: ReadonlyArray<Event.Event<any, any>>): Tracer.SpanOptionsNoTrace | undefined {
    const agent = this.handling.name
    if (this.handling.settings.batch === undefined) {
      const event = unit[0]
      const parent = traceContext.fromHeaders(event.headers)
      if (parent === undefined) return undefined
      const { offset, partition, topic } = event.message
      return { parent, kind: "consumer", attributes: { agent, topic, partition, offset } }
    }
    const links: Array<Tracer.SpanLink> = []
    for (const event of unit) {
      const span = traceContext.fromHeaders(event.headers)
      if (span === undefined) continue
      const { offset, partition, topic } = event.message
      links.push({ span, attributes: { topic, partition, offset } })
    }
    if (links.length === 0) return undefined
    const { offset, partition, topic } = unit[0].message
    return {
      root: true,
      links,
      kind: "consumer",
      attributes: { agent, topic, partition, offset, events: unit.length }
    }
  }

  readonly next = (): Effect.Effect<void, EventFailure, R> => {
    const instance = this.instance
    const batch = this.handling.settings.batch
    if (batch === undefined) {
      // Without an effect per event while the queue has some.
      const taken = instance.queue.poll()
      if (taken !== undefined) return this.handleFresh([taken])
      const refill = instance.refill
      if (refill !== undefined) {
        return instance.queue.ended ? Effect.void : Effect.flatMap(refill, (more) => more ? this.next() : Effect.void)
      }
    }
    return Effect.flatMap(
      takeUnit(instance, batch),
      (unit) => unit === undefined ? Effect.void : this.handleFresh(unit)
    )
  }

  /** Handles what is left of a unit once the events of revoked partitions are dropped. */
  handleFresh(unit: ReadonlyArray<Event.Event<any, any>>): Effect.Effect<void, EventFailure, R> {
    const fresh = dropStale(unit, this.handling.stale, this.gate, this.handling.stats)
    return fresh.length === 0 ? Effect.suspend(this.next) : this.handle(fresh)
  }

  /** The user's handler: one that throws before returning an effect failed its event like any other. */
  call(unit: ReadonlyArray<Event.Event<any, any>>): Effect.Effect<unknown, unknown, R> {
    try {
      return this.handler(unit)
    } catch (thrown) {
      return Effect.fail(thrown)
    }
  }

  handle(unit: ReadonlyArray<Event.Event<any, any>>): Effect.Effect<void, EventFailure, R> {
    this.unit = unit
    this.instance.current = unit
    this.started = this.clock.currentTimeMillisUnsafe()
    this.pending.list = []
    const retry = this.handling.settings.retry
    const span = this.tracing ? this.spanOf(unit) : undefined
    if (retry === undefined) {
      this.attempts = 1
      if (span === undefined) return Effect.matchCauseEffect(this.call(unit), this.afterHandler)
      // The same steps as `afterHandler`, the sinks inside the span (what they send carries it on).
      return Effect.matchCauseEffect(
        Effect.withSpan(Effect.flatMap(this.call(unit), this.sendsAndSinks), this.spanName, span),
        this.outcome
      )
    }
    this.attempts = 0
    const attempt = Effect.suspend(() => {
      this.attempts++
      this.pending.list = []
      return Effect.flatMap(Effect.catchDefect(this.call(unit), Effect.fail), this.sendsAndSinks)
    })
    const attempts = Effect.retry(attempt, retry)
    return Effect.matchCauseEffect(
      span === undefined ? attempts : Effect.withSpan(attempts, this.spanName, span),
      this.outcome
    )
  }

  /** What the handler sent without waiting, then the sinks (and what they sent). */
  readonly sendsAndSinks = (out: unknown): Effect.Effect<unknown, unknown> => {
    const sinks = this.handling.settings.sinks
    const toSinks = out !== undefined && sinks.length > 0
    if (this.pending.list.length === 0 && !toSinks) return Effect.succeed(out)
    return awaitPending(this.pending).pipe(
      Effect.andThen(toSinks ? Effect.forEach(sinks, (sink) => sendTo(sink, out), { discard: true }) : Effect.void),
      Effect.andThen(awaitPending(this.pending)),
      Effect.as(out)
    )
  }

  readonly succeeded = (out: unknown): Effect.Effect<void, EventFailure, R> => {
    const { handling, unit } = this
    handling.stats.retries += this.attempts - 1
    handling.stats.handled += unit.length
    ackAll(handling, unit)
    return hasRequest(unit) ? Effect.flatMap(reply(handling, unit, out), this.finish) : this.finish()
  }

  readonly failed = (cause: Cause.Cause<unknown>): Effect.Effect<void, EventFailure, R> => {
    if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
    this.handling.stats.retries += this.attempts - 1
    // A handler that throws (a defect) is a failed event like any other.
    return Effect.flatMap(afterFailure(this.handling, this.unit, this.attempts, Cause.squash(cause)), this.finish)
  }

  readonly outcome = { onSuccess: this.succeeded, onFailure: this.failed }

  readonly afterHandler = {
    onSuccess: (out: unknown): Effect.Effect<void, EventFailure, R> => {
      const sinks = this.handling.settings.sinks
      if (this.pending.list.length === 0 && (out === undefined || sinks.length === 0)) return this.succeeded(out)
      return Effect.matchCauseEffect(this.sendsAndSinks(out), this.outcome)
    },
    onFailure: this.failed
  }

  readonly finish = (): Effect.Effect<void, EventFailure, R> => {
    const { handling } = this
    unitDone(this.instance, this.gate, handling.stats)
    stats.recordProcessing(handling.stats.processing, (this.clock.currentTimeMillisUnsafe() - this.started) / 1000)
    return this.next()
  }
}

/** The work of a `forEach` agent's instance (see {@link HandlerInstance}). */
export const handlerLoop = <R>(handler: Handler<R>) =>
(
  handling: Handling,
  instance: Instance,
  gate: Gate
): Effect.Effect<void, EventFailure, R> =>
  Effect.withFiber((fiber) => {
    const running = new HandlerInstance(
      handling,
      handler,
      instance,
      gate,
      fiber.getRef(Clock.Clock),
      traceContext.tracing(fiber)
    )
    return Effect.provideService(Effect.suspend(running.next), CurrentPendingSends, running.pending)
  })
