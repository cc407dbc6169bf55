/**
 * The one consumer every throughput scenario uses, on both sides of each
 * comparison: it pulls the stream in arrays, sums the values (so nothing is
 * optimised away), records send→receive latency when asked, and completes
 * `done` after `n` messages.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { now } from "./harness.ts"

export interface Tally {
  count: number
  sum: number
  readonly latencies: Float64Array | undefined
}

/**
 * Drains `stream` until it has seen `n` elements, then completes `done`
 * (the fiber keeps running until interrupted or the stream ends).
 * `valueOf` reads the number the sender put in (the send time in latency runs).
 */
export const consume = <A, E>(
  stream: Stream.Stream<A, E>,
  n: number,
  latency: boolean,
  done: Deferred.Deferred<void>,
  valueOf: (a: A) => number
): { readonly tally: Tally; readonly effect: Effect.Effect<void, E> } => {
  const tally: Tally = { count: 0, sum: 0, latencies: latency ? new Float64Array(n) : undefined }
  const effect = Stream.runForEachArray(stream, (items) => {
    const lat = tally.latencies
    if (lat !== undefined) {
      const t = now()
      for (let i = 0; i < items.length; i++) {
        const index = tally.count + i
        if (index < n) lat[index] = t - valueOf(items[i])
      }
    } else {
      let sum = tally.sum
      for (let i = 0; i < items.length; i++) sum += valueOf(items[i])
      tally.sum = sum
    }
    tally.count += items.length
    if (tally.count >= n) Deferred.doneUnsafe(done, Effect.void)
    return Effect.void
  })
  return { tally, effect }
}

/** The value a sender puts in message `i`: its index, or the send time in latency runs. */
export const valueFor = (latency: boolean): (i: number) => number => latency ? () => now() : (i) => i
