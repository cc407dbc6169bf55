/**
 * How an in-memory channel is read: a stream subscribes while it runs, and
 * a subscriber reads the root's no-subscriber buffer first (one event at a
 * time, while it is this subscriber's to read), then the events it held
 * back while the buffer was handed to it, then its own queue.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type { ChannelClosedError } from "../Errors.ts"
import { Wake } from "./channelSubscribers.ts"

/** What reading needs of a subscriber. */
export interface Reader<A> {
  readonly queue: Queue.Queue<A, any>
  readonly root: { drainer: unknown }
  /** The root buffer this subscriber reads first, while it is its reader. */
  drainFrom: Queue.Queue<A, any> | undefined
  /** Events of its own queue taken after it became the buffer's reader: newer than the buffer's. */
  held: Array<A> | undefined
  /** A `Wake` is in its queue. */
  wakeQueued: boolean
  /** It has handed out events already. */
  hasRead: boolean
  /** `takeBatch`, built once. */
  takeBatchEffect: Effect.Effect<ReadonlyArray<A>, any> | undefined
}

/** The events sent from the moment the stream starts, read by a subscriber that joins for the stream's lifetime. */
export const events = <A>(
  channel: { readonly iteratorClone: Effect.Effect<Reader<A> & { readonly onStopIteration: Effect.Effect<void> }> }
): Stream.Stream<A, any> =>
  Stream.unwrap(
    Effect.map(
      Effect.acquireRelease(channel.iteratorClone, (subscriber) => subscriber.onStopIteration),
      // A batch is never empty: `nextBatch` waits for at least one event.
      (subscriber) =>
        Stream.fromPull(
          Effect.succeed(Effect.suspend(() => nextBatch(subscriber)) as Effect.Effect<readonly [A, ...Array<A>], any>)
        )
    )
  )

/** The next batch for a stream: one event of the buffer, or what was held back, or what the queue holds. */
export const nextBatch = <A>(reader: Reader<A>): Effect.Effect<ReadonlyArray<A>, any> => {
  if (reader.drainFrom !== undefined) {
    const taken = Queue.takeUnsafe(reader.drainFrom)
    if (taken !== undefined && Exit.isSuccess(taken)) return Exit.succeed([taken.value])
    stopDraining(reader)
  }
  const held = reader.held
  if (held !== undefined) {
    reader.held = undefined
    return Exit.succeed(held)
  }
  return takeBatch(reader)
}

/** Takes what the queue holds, waiting for at least one event. */
const takeBatch = <A>(reader: Reader<A>): Effect.Effect<ReadonlyArray<A>, any> =>
  reader.takeBatchEffect ??= Effect.flatMap(Queue.takeAll(reader.queue), (events) => afterTakeBatch(reader, events))

const afterTakeBatch = <A>(reader: Reader<A>, events: Array<A>): Effect.Effect<ReadonlyArray<A>, any> => {
  if (reader.wakeQueued) {
    const index = events.indexOf(Wake as A)
    if (index !== -1) {
      events.splice(index, 1)
      reader.wakeQueued = false
    }
  }
  if (reader.drainFrom !== undefined) {
    // It became the buffer's reader while waiting: these are newer than the buffer.
    if (events.length > 0) reader.held = events
    return nextBatch(reader)
  }
  if (events.length === 0) return takeBatch(reader)
  reader.hasRead = true
  return Exit.succeed(events)
}

/** `get`: the next event; once the channel has ended, the `ChannelClosedError` saying so. */
export const get = <A>(
  reader: Reader<A> & { closedError(closedBy: "end"): ChannelClosedError }
): Effect.Effect<A, any> =>
  Effect.catchIf(Effect.suspend(() => takeOne(reader)), Cause.isDone, () => Exit.fail(reader.closedError("end")))

/** `nextBatch` for one event (`get`). */
const takeOne = <A>(reader: Reader<A>): Effect.Effect<A, any> => {
  const from = reader.drainFrom
  if (from !== undefined) {
    const taken = Queue.takeUnsafe(from)
    if (taken !== undefined && Exit.isSuccess(taken)) return taken
    stopDraining(reader)
  }
  const held = reader.held
  if (held !== undefined) {
    const event = held.shift()!
    if (held.length === 0) reader.held = undefined
    return Exit.succeed(event)
  }
  return Effect.flatMap(Queue.take(reader.queue), (event) => {
    if (event === Wake) {
      reader.wakeQueued = false
      return takeOne(reader)
    }
    if (reader.drainFrom !== undefined) {
      reader.held = [event]
      return takeOne(reader)
    }
    reader.hasRead = true
    return Exit.succeed(event)
  })
}

/** It no longer reads the buffer (the buffer is empty, or it left). */
export const stopDraining = <A>(reader: Reader<A>): void => {
  reader.drainFrom = undefined
  if (reader.root.drainer === reader) reader.root.drainer = undefined
}

/** Nothing to read: its queue (a `Wake` aside), what it held back, and its share of the buffer are empty. */
export const isEmpty = <A>(reader: Reader<A>): boolean =>
  Queue.sizeUnsafe(reader.queue) === (reader.wakeQueued ? 1 : 0) && reader.held === undefined &&
  (reader.drainFrom === undefined || Queue.sizeUnsafe(reader.drainFrom) === 0)
