/**
 * An agent's instances and how events reach them. One fiber reads the
 * source and routes each event to an instance: by partition (events of one
 * partition in order), by key, or to whichever is free. A gate bounds the
 * events read and not finished, so a slow agent slows its source down
 * instead of buffering without limit.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Hash from "effect/Hash"
import * as Option from "effect/Option"
import type * as Event from "../../Event.ts"
import { withoutStale } from "../acknowledging.ts"
import { EventQueue } from "./eventQueue.ts"
import type { Settings } from "./settings.ts"

/** One instance's queue of events, and the unit it is handling. */
export interface Instance {
  readonly queue: EventQueue
  /** The events being handled right now (not acknowledged yet). */
  current: ReadonlyArray<Event.Event<any, any>> | undefined
  /**
   * Reads the next chunk of the source into the queue, for an instance that
   * reads the source itself; `false` once there is no more to read.
   */
  refill: Effect.Effect<boolean> | undefined
}

/** Queues for `settings.concurrency` instances; one shared queue when the ordering is `"none"`. */
export const makeInstances = (settings: Settings): Effect.Effect<ReadonlyArray<Instance>> =>
  Effect.withFiber((fiber) => {
    const dispatcher = fiber.currentDispatcher
    const shared = settings.ordering === "none" ? new EventQueue(dispatcher) : undefined
    const instances: Array<Instance> = []
    for (let i = 0; i < settings.concurrency; i++) {
      instances.push({ queue: shared ?? new EventQueue(dispatcher), current: undefined, refill: undefined })
    }
    return Effect.succeed(instances)
  })

/** The instance an event goes to. In memory (`byPartition` false) the partition is the key's. */
export const route = (
  instances: ReadonlyArray<Instance>,
  ordering: Settings["ordering"],
  byPartition: boolean,
  event: Event.Event<any, any>
): Instance => {
  if (instances.length === 1 || ordering === "none") return instances[0]
  const hash = ordering === "partition" && byPartition
    ? Hash.string(event.message.topic) ^ event.message.partition
    : Hash.hash(event.key)
  return instances[(hash >>> 0) % instances.length]
}

/** The instance is done with its current unit (handled, skipped or dead-lettered): room for more. */
export const unitDone = (instance: Instance, gate: Gate, stats: { inFlight: number }): void => {
  const count = instance.current?.length ?? 0
  instance.current = undefined
  gate.release(count)
  stats.inFlight -= count
}

/**
 * The events of a unit still to handle: those of a partition revoked since
 * they were read are dropped (their partition's new owner reads them again,
 * and a member never hands out an event of a partition it gave up), and
 * their room released.
 */
export const dropStale = (
  unit: ReadonlyArray<Event.Event<any, any>>,
  stale: ((event: Event.Event<any, any>) => boolean) | undefined,
  gate: Gate,
  stats: { inFlight: number }
): ReadonlyArray<Event.Event<any, any>> => {
  if (stale === undefined) return unit
  const fresh = withoutStale(unit, stale)
  const dropped = unit.length - fresh.length
  if (dropped > 0) {
    gate.release(dropped)
    stats.inFlight -= dropped
  }
  return fresh
}

/**
 * Bounds the events in flight. The reader waits for room before each read;
 * a read may overshoot by what one pull returns.
 */
export class Gate {
  readonly limit: number
  inFlight = 0
  private waiting: Deferred.Deferred<void> | undefined = undefined
  constructor(limit: number) {
    this.limit = limit
  }
  readonly room: Effect.Effect<void> = Effect.suspend(() => {
    if (this.inFlight < this.limit) return Effect.void
    this.waiting ??= Deferred.makeUnsafe<void>()
    return Deferred.await(this.waiting)
  })
  release(count: number): void {
    this.inFlight -= count
    const waiting = this.waiting
    if (waiting !== undefined && this.inFlight < this.limit) {
      // Cleared first: completing it resumes the reader at once, whose next `room` must not find
      // this completed deferred and pass without looking at the count.
      this.waiting = undefined
      Deferred.doneUnsafe(waiting, Effect.void)
    }
  }
}

/**
 * Takes the next unit of an instance: one event, or a batch of up to `size`
 * closed `within` after its first event (a partial batch when the queue
 * ends). `undefined` once the queue has ended and is empty.
 */
export const takeUnit = (
  instance: Instance,
  batch: Settings["batch"]
): Effect.Effect<ReadonlyArray<Event.Event<any, any>> | undefined> => {
  const queue = instance.queue
  const first = queue.poll()
  if (batch === undefined) {
    if (first !== undefined) return Exit.succeed([first])
    return Effect.map(queue.take, (event) => event === undefined ? undefined : [event])
  }
  const refill = instance.refill
  return Effect.gen(function*() {
    let head = first
    if (head === undefined) {
      if (refill !== undefined) {
        // A lone instance reads the source itself until it has a first event.
        while ((head = queue.poll()) === undefined) {
          if (queue.ended || !(yield* refill)) return undefined
        }
      } else {
        head = yield* queue.take
        if (head === undefined) return undefined
      }
    }
    const unit = [head]
    // The window starts at the batch's first event: each wait gets what is left of it.
    const closes = (yield* Clock.currentTimeMillis) + Duration.toMillis(batch.within)
    while (unit.length < batch.size) {
      const ready = queue.poll()
      if (ready !== undefined) {
        unit.push(ready)
        continue
      }
      if (queue.ended) break
      const remaining = closes - (yield* Clock.currentTimeMillis)
      if (remaining <= 0) break
      if (refill !== undefined) {
        const more = yield* Effect.timeoutOption(refill, remaining)
        if (Option.isNone(more) || !more.value) break
        continue
      }
      const next = yield* Effect.timeoutOption(queue.take, remaining)
      if (Option.isNone(next) || next.value === undefined) break
      unit.push(next.value)
    }
    return unit
  })
}
