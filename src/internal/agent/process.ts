/**
 * An instance of a `make` agent: Faust's async-iterator agent body. The
 * process reads a stream of values and emits results; each result goes to
 * the sinks and to the asker of the event it was emitted for (the one read
 * last). An event is done (acknowledged) when the process reads the next
 * one, or ends, after what it emitted for it went through the sinks: Faust's
 * rule. If the process fails, the failure policy applies to the event it was
 * on (`fail` stops the agent; `skip` and `deadLetter` go on with a fresh
 * process from the next event).
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import type * as Event from "../../Event.ts"
import { CurrentPendingSends } from "../acknowledging.ts"
import {
  ackAll,
  afterFailure,
  awaitPending,
  EventFailure,
  type Handling,
  makePendingList,
  reply,
  sendTo
} from "./handle.ts"
import { dropStale, type Gate, type Instance, takeUnit, unitDone } from "./instances.ts"

/** The user's process: values in (arrays of them in batch mode), results out. */
export type Process<R> = (values: Stream.Stream<any>) => Stream.Stream<unknown, unknown, R>

export const processLoop = <R>(process: Process<R>) =>
(
  handling: Handling,
  instance: Instance,
  gate: Gate
): Effect.Effect<void, EventFailure, R> =>
  Effect.gen(function*() {
    const batch = handling.settings.batch
    let ended = false
    const finishCurrent = (): void => {
      const unit = instance.current
      if (unit === undefined) return
      handling.stats.handled += unit.length
      ackAll(handling, unit)
      unitDone(instance, gate, handling.stats)
    }
    /** The next unit, without the events of partitions revoked since they were read. */
    const takeFresh: Effect.Effect<readonly [any], Cause.Done> = Effect.flatMap(takeUnit(instance, batch), (unit) => {
      if (unit === undefined) {
        ended = true
        return Cause.done()
      }
      const fresh = dropStale(unit, handling.stale, gate, handling.stats)
      if (fresh.length === 0) return takeFresh
      instance.current = fresh
      return Effect.succeed([batch === undefined ? fresh[0].value : fresh.map((event) => event.value)] as const)
    })
    const pending = makePendingList()
    // A send that was refused fails this stream: the process fails on the event that made it.
    const values: Stream.Stream<any> = Stream.fromPull(Effect.succeed(
      Effect.suspend(() => {
        // The event read last is done once what it sent without waiting is answered.
        const finished = pending.list.length === 0
          ? Effect.sync(finishCurrent)
          : Effect.andThen(awaitPending(pending), Effect.sync(finishCurrent))
        return Effect.andThen(finished, takeFresh)
      })
    )) as Stream.Stream<any>
    const emit = (out: unknown): Effect.Effect<void, unknown> =>
      Effect.suspend(() => {
        const unit: ReadonlyArray<Event.Event<any, any>> = instance.current ?? []
        return Effect.andThen(
          Effect.forEach(handling.settings.sinks, (sink) => sendTo(sink, out), { discard: true }),
          reply(handling, unit, out)
        )
      })
    while (!ended) {
      const before = handling.stats.handled + handling.stats.failed
      const exit = yield* Effect.exit(
        Stream.runForEach(Stream.suspend(() => process(values)), emit).pipe(
          Effect.catchDefect((defect) => Effect.fail(defect)),
          Effect.andThen(awaitPending(pending)),
          Effect.provideService(CurrentPendingSends, pending)
        )
      )
      if (Exit.isSuccess(exit)) {
        finishCurrent()
        if (ended) return
        // A process that stops before its input ends leaves the rest to a fresh one; one that
        // read nothing would leave it to nobody.
        if (handling.stats.handled + handling.stats.failed === before) {
          return yield* Effect.fail(
            new EventFailure([], 0, new Error("the process ended without reading its input"))
          )
        }
        continue
      }
      if (Cause.hasInterruptsOnly(exit.cause)) return yield* Effect.interrupt
      const unit = instance.current ?? []
      // Failed before reading an event: no event to skip or dead-letter, the agent fails.
      if (unit.length === 0) return yield* Effect.fail(new EventFailure([], 1, Cause.squash(exit.cause)))
      yield* afterFailure(handling, unit, 1, Cause.squash(exit.cause))
      unitDone(instance, gate, handling.stats)
    }
  })
