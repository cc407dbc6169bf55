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
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import { describe } from "../../Errors.ts"
import * as Event from "../../Event.ts"
import type * as Message from "../../Message.ts"
import { CurrentPendingSends, type PendingSends } from "../acknowledging.ts"
import { type Gate, type Instance, takeUnit } from "./instances.ts"
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
  readonly replies: Replies
}

/** Sends a value to one sink. */
export const sendTo = (sink: Sink<unknown>, value: unknown): Effect.Effect<unknown, unknown> =>
  typeof sink === "function" ? sink(value) : sink.send({ value })

/** The handler, what it sent without waiting, then the sinks: one attempt. */
const attemptOnce = <R>(
  handling: Handling,
  handler: Handler<R>,
  events: ReadonlyArray<Event.Event<any, any>>
): Effect.Effect<unknown, unknown, R> =>
  Effect.suspend(() => {
    const pending: Array<Effect.Effect<unknown, unknown>> = []
    const collector: PendingSends = { add: (completion) => pending.push(completion) }
    return handler(events).pipe(
      // A handler that throws is a failed event like any other, not a defect of the agent.
      Effect.catchDefect((defect) => Effect.fail(defect)),
      Effect.provideService(CurrentPendingSends, collector),
      Effect.tap(() => pending.length === 0 ? Effect.void : Effect.forEach(pending, (done) => done, { discard: true })),
      Effect.tap((out) => {
        const sinks = handling.settings.sinks
        if (out === undefined || sinks.length === 0) return Effect.void
        return Effect.forEach(sinks, (sink) => sendTo(sink, out), { discard: true })
      })
    )
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

/**
 * Handles a unit to its end: acknowledged (handled, skipped or
 * dead-lettered), or failed with {@link EventFailure} and left
 * unacknowledged. Interruption leaves it unacknowledged too.
 */
export const handleUnit = <R>(
  handling: Handling,
  handler: Handler<R>,
  events: ReadonlyArray<Event.Event<any, any>>
): Effect.Effect<void, EventFailure, R> =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    let attempts = 0
    const attempt = Effect.suspend(() => {
      attempts++
      return attemptOnce(handling, handler, events)
    })
    const retry = handling.settings.retry
    const exit = yield* Effect.exit(retry === undefined ? attempt : Effect.retry(attempt, retry))
    if (attempts > 1) handling.stats.retries += attempts - 1
    if (Exit.isSuccess(exit)) {
      handling.stats.handled += events.length
      ackAll(handling, events)
      yield* reply(handling, events, exit.value)
    } else if (Cause.hasInterruptsOnly(exit.cause)) {
      return yield* Effect.interrupt
    } else {
      yield* afterFailure(handling, events, attempts, Cause.squash(exit.cause))
    }
    const elapsed = (yield* Clock.currentTimeMillis) - started
    yield* Metric.update(Metric.withAttributes(stats.processingTime, { agent: handling.name }), elapsed / 1000)
  })

/** An instance of a `forEach` agent: takes units from its queue and handles each to its end. */
export const handlerLoop = <R>(handler: Handler<R>) =>
(
  handling: Handling,
  instance: Instance,
  gate: Gate
): Effect.Effect<void, EventFailure, R> =>
  Effect.gen(function*() {
    const batch = handling.settings.batch
    while (true) {
      const unit = yield* takeUnit(instance, batch)
      if (unit === undefined) return
      instance.current = unit
      yield* handleUnit(handling, handler, unit)
      instance.current = undefined
      gate.release(unit.length)
      handling.stats.inFlight -= unit.length
    }
  })
