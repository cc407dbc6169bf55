/**
 * An agent's life: one run reads the source and feeds the instances until
 * the source ends, an event fails under the `fail` policy, or the agent is
 * interrupted; then it shuts down gracefully (stop reading, let in-flight
 * events finish within `shutdownTimeout`, acknowledge, leave the source).
 * A failed run is restarted per the `restart` schedule; once the schedule
 * gives up, the agent fails with a typed `AgentError`, logged.
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { AgentError } from "../../AgentError.ts"
import { App } from "../../App.ts"
import type * as Channel from "../../Channel.ts"
import { InvalidChannelOptionsError } from "../../Errors.ts"
import type * as Event from "../../Event.ts"
import { protocolOf } from "../acknowledging.ts"
import type { EventFailure, Handling } from "./handle.ts"
import { Gate, type Instance, makeInstances, route } from "./instances.ts"
import { CurrentReplies } from "./replies.ts"
import type { Settings } from "./settings.ts"
import type * as stats from "./stats.ts"

/** What running needs of an agent. */
export interface Definition<R> {
  readonly name: string
  readonly settings: Settings
  readonly stats: stats.Stats
  readonly source: Effect.Effect<Channel.Channel<any, any, any>, never, R>
  /** Whether an instance can read the source itself (`refill`) when it is the only one. */
  readonly readsItself: boolean
  /** What each instance does: handle units one by one (`forEach`), or run the process stream (`make`). */
  readonly work: (handling: Handling, instance: Instance, gate: Gate) => Effect.Effect<void, EventFailure, R>
}

/** Why a run stopped, besides interruption and the source's end. */
type Stopped =
  | { readonly _tag: "EventFailed"; readonly failure: EventFailure }
  | { readonly _tag: "SourceFailed"; readonly cause: Cause.Cause<unknown> }
  | { readonly _tag: "InstanceDied"; readonly cause: Cause.Cause<unknown> }

interface RunFailure {
  readonly error: AgentError
  /** In memory, the events read and not finished, in order: the next run handles them first. */
  readonly unfinished: ReadonlyArray<Event.Event<any, any>>
}

/** Running agents by app, to refuse a second agent with the same name. */
const running = new WeakMap<object, Set<string>>()
const withoutApp = {}

const claimName = (name: string): Effect.Effect<void, InvalidChannelOptionsError, Scope.Scope> =>
  Effect.flatMap(Effect.serviceOption(App), (app) => {
    const key = Option.isSome(app) ? app.value : withoutApp
    let names = running.get(key)
    if (names === undefined) running.set(key, names = new Set())
    const claimed = names
    if (claimed.has(name)) {
      return Effect.fail(
        new InvalidChannelOptionsError({
          option: "name",
          value: name,
          reason: "an agent with this name is already running in this app"
        })
      )
    }
    return Effect.acquireRelease(Effect.sync(() => claimed.add(name)), () => Effect.sync(() => claimed.delete(name)))
  })

/** Runs the agent until its source ends (success), it is interrupted, or it fails for good. */
export const run = <R>(definition: Definition<R>): Effect.Effect<void, AgentError | InvalidChannelOptionsError, R> =>
  Effect.scoped(Effect.gen(function*() {
    yield* claimName(definition.name)
    const replies = yield* CurrentReplies
    const restart = definition.settings.restart
    const step = restart === undefined ? undefined : yield* Schedule.toStepWithSleep(restart)
    let carried: ReadonlyArray<Event.Event<any, any>> = []
    let restarts = 0
    const stats = definition.stats
    while (true) {
      stats.status = "running"
      const exit = yield* Effect.exit(runOnce(definition, replies, carried, restarts))
      stats.status = Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? "stopped" : "failed"
      if (Exit.isSuccess(exit)) return
      const failure = Cause.findErrorOption(exit.cause)
      if (Option.isNone(failure)) return yield* Effect.failCause(exit.cause as Cause.Cause<never>)
      const { error, unfinished } = failure.value
      carried = unfinished
      if (step !== undefined) stats.status = "restarting"
      const next = step === undefined ? undefined : yield* Effect.exit(step(error))
      if (next !== undefined && Exit.isFailure(next)) stats.status = "failed"
      if (next === undefined || Exit.isFailure(next)) {
        yield* Effect.logError(error.message).pipe(Effect.annotateLogs({ agent: definition.name }))
        return yield* error
      }
      restarts++
      stats.restarts++
      yield* Effect.logWarning(`restarting: ${error.message}`).pipe(Effect.annotateLogs({ agent: definition.name }))
    }
  })).pipe(Effect.onInterrupt(() =>
    Effect.sync(() => {
      definition.stats.status = "stopped"
    })
  ))

/** The bound on events read and not finished: enough to keep every instance busy. */
const inFlightLimit = (settings: Settings): number =>
  Math.max(256, settings.concurrency * (settings.batch?.size ?? 1) * 2)

const runOnce = <R>(
  definition: Definition<R>,
  replies: Handling["replies"],
  carried: ReadonlyArray<Event.Event<any, any>>,
  restarts: number
): Effect.Effect<void, RunFailure, R> =>
  Effect.gen(function*() {
    const { settings, stats } = definition
    const channel = yield* definition.source
    const protocol = protocolOf<any, any, any>(channel)
    const handling: Handling = {
      name: definition.name,
      source: channel.label,
      settings,
      stats,
      ack: protocol?.ack,
      stale: protocol?.stale,
      replies
    }
    const instances = yield* makeInstances(settings)
    const gate = new Gate(inFlightLimit(settings))
    const stop = Deferred.makeUnsafe<void, Stopped>()
    const sourceScope = yield* Scope.make()
    const byPartition = protocol !== undefined
    stats.inFlight = 0
    const dispatch = (event: Event.Event<any, any>): void => {
      gate.inFlight++
      stats.inFlight++
      route(instances, settings.ordering, byPartition, event).queue.offer(event)
    }
    for (const event of carried) dispatch(event)

    const context = yield* Effect.context<R>()
    const events = protocol === undefined ? channel.events() : protocol.events()
    const pull = yield* Scope.provide(Stream.toPull(events), sourceScope)
    /** Reads a chunk and routes it, in one step: an interruption never drops an event read. */
    const readChunk = Effect.uninterruptibleMask((restore) =>
      Effect.map(restore(pull), (chunk) => {
        for (const event of chunk) dispatch(event)
      })
    )
    const sourceStopped = (cause: Cause.Cause<unknown>): Effect.Effect<void> => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.void
      if (!Cause.isDone(Cause.squash(cause))) {
        return Effect.sync(() => Deferred.doneUnsafe(stop, Effect.fail({ _tag: "SourceFailed", cause })))
      }
      // The source ended: the instances finish what they were given, then the run succeeds.
      endInstances()
      // A lone instance reading the source itself can see it end while the instances start.
      return Deferred.await(instancesStarted).pipe(
        Effect.andThen(Effect.suspend(() => Fiber.awaitAll(instanceFibers))),
        Effect.andThen(Effect.sync(() => Deferred.doneUnsafe(stop, Effect.void)))
      )
    }
    const instanceFibers: Array<Fiber.Fiber<void, never>> = []
    const instancesStarted = Deferred.makeUnsafe<void>()
    const endInstances = () => {
      for (const instance of instances) instance.queue.end()
    }

    // One instance that reads in order reads the source itself when its queue is empty: no
    // reader fiber, no hop between fibers. Stopping wins the race against a pull in progress.
    // In batch mode only on a topic: it reads ahead into its own queue, and what the agent did
    // not read is read again; in memory the reader fiber reads ahead, so a stop mid-batch still
    // handles what was sent before it.
    const stopping = Deferred.makeUnsafe<void>()
    if (definition.readsItself && settings.concurrency === 1 && (settings.batch === undefined || byPartition)) {
      instances[0].refill = Effect.suspend(() =>
        Deferred.isDoneUnsafe(stopping) ? Effect.succeed(false) : Effect.raceFirst(
          Effect.as(readChunk, true),
          Effect.as(Deferred.await(stopping), false)
        )
      ).pipe(
        Effect.catchCause((cause) => Effect.as(Effect.forkDetach(sourceStopped(cause)), false))
      )
    }

    for (const instance of instances) {
      instanceFibers.push(
        Effect.runForkWith(context)(
          definition.work(handling, instance, gate).pipe(
            Effect.catchCause((cause) =>
              Effect.sync(() => {
                if (Cause.hasInterruptsOnly(cause)) return
                const failure = Cause.findErrorOption(cause)
                // Anything else that ends an instance (a defect of the agent's own) stops the run, never silently.
                Deferred.doneUnsafe(
                  stop,
                  Effect.fail(
                    Option.isSome(failure) && !Cause.hasDies(cause)
                      ? { _tag: "EventFailed", failure: failure.value }
                      : { _tag: "InstanceDied", cause }
                  )
                )
              })
            )
          )
        )
      )
    }
    Deferred.doneUnsafe(instancesStarted, Effect.void)

    const reader = instances[0].refill !== undefined ? undefined : Effect.runForkWith(context)(
      Effect.gen(function*() {
        while (true) {
          yield* gate.room
          yield* readChunk
        }
      }).pipe(Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : sourceStopped(exit.cause)))
    )

    let unfinished: Array<Event.Event<any, any>> = []
    const shutdown = Effect.gen(function*() {
      Deferred.doneUnsafe(stopping, Effect.void)
      if (reader !== undefined) yield* Fiber.interrupt(reader)
      endInstances()
      const finished = yield* Effect.timeoutOption(Fiber.awaitAll(instanceFibers), settings.shutdownTimeout)
      if (Option.isNone(finished)) {
        yield* Effect.logWarning(
          `in-flight events did not finish within the shutdown timeout; they are left unacknowledged`
        ).pipe(Effect.annotateLogs({ agent: definition.name }))
        yield* Effect.forEach(instanceFibers, Fiber.interrupt, { discard: true })
      }
      unfinished = collectUnfinished(instances)
      stats.inFlight = 0
      yield* Scope.close(sourceScope, Exit.void)
    })

    const stopped = yield* Effect.exit(Effect.onExit(Deferred.await(stop), () => shutdown))
    if (Exit.isSuccess(stopped)) return
    const reason = Cause.findErrorOption(stopped.cause)
    if (Option.isNone(reason)) return yield* Effect.failCause(stopped.cause as Cause.Cause<never>)
    const error = toAgentError(definition.name, channel.label, byPartition, reason.value, restarts)
    // Kafka reads unacknowledged events again by itself; in memory the next run gets them.
    return yield* Effect.fail<RunFailure>({ error, unfinished: byPartition ? [] : unfinished })
  })

const collectUnfinished = (instances: ReadonlyArray<Instance>): Array<Event.Event<any, any>> => {
  const unfinished: Array<Event.Event<any, any>> = []
  for (const instance of instances) {
    if (instance.current !== undefined) unfinished.push(...instance.current)
    instance.current = undefined
  }
  // A shared queue (ordering "none") is drained once: the first drain empties it.
  for (const instance of instances) for (const event of instance.queue.drain()) unfinished.push(event)
  return unfinished
}

const toAgentError = (
  agent: string,
  channel: string,
  onKafka: boolean,
  stopped: Stopped,
  restarts: number
): AgentError => {
  if (stopped._tag !== "EventFailed") {
    return new AgentError({ agent, channel, attempts: 0, restarts, cause: Cause.squash(stopped.cause) })
  }
  const { attempts, cause, events } = stopped.failure
  const message = events[0]?.message
  return new AgentError({
    agent,
    channel,
    ...(onKafka && message !== undefined
      ? { topic: message.topic, partition: message.partition, offset: message.offset }
      : {}),
    attempts,
    restarts,
    cause
  })
}
