/**
 * Scenario 3: the batch send API (`sendAll`) → one subscriber's `events()`,
 * against raw `Queue.offerAll` → `Stream.fromQueue`. Both sides send the
 * same batches (built inside the timed loop on both sides).
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { CAPACITY, Channel, type Event, run, runWithApp } from "../lib/app.ts"
import { consume, valueFor } from "../lib/consumer.ts"
import { type Case, now, type Pair } from "../lib/harness.ts"

/** Values per `sendAll` / `offerAll` call (a quarter of the queue capacity). */
export const BATCH = 1024

const makeBatch = (value: (i: number) => number, from: number, n: number): Array<number> => {
  const size = Math.min(BATCH, n - from)
  const batch = new Array<number>(size)
  for (let j = 0; j < size; j++) batch[j] = value(from + j)
  return batch
}

export const channelSendAll: Case = {
  label: `Channel.sendAll(${BATCH}) → events()`,
  run: (n, { latency }) =>
    runWithApp(Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const value = valueFor(latency)
      const done = Deferred.makeUnsafe<void>()
      const consumer = consume(channel.events(), n, latency, done, (e: Event.Event<unknown, number>) => e.value)
      const fiber = yield* Effect.forkChild(consumer.effect)
      while (channel.subscriberCount < 1) yield* Effect.yieldNow
      const start = now()
      for (let i = 0; i < n; i += BATCH) yield* channel.sendAll(makeBatch(value, i, n))
      yield* Deferred.await(done)
      const elapsedMs = now() - start
      yield* Fiber.interrupt(fiber)
      return { elapsedMs, latencies: consumer.tally.latencies }
    }))
}

export const rawOfferAll: Case = {
  label: `Queue.offerAll(${BATCH}) → Stream.fromQueue`,
  run: (n, { latency }) =>
    run(Effect.gen(function*() {
      const queue = yield* Queue.bounded<number>(CAPACITY)
      const value = valueFor(latency)
      const done = Deferred.makeUnsafe<void>()
      const consumer = consume(Stream.fromQueue(queue), n, latency, done, (x: number) => x)
      const fiber = yield* Effect.forkChild(consumer.effect)
      const start = now()
      for (let i = 0; i < n; i += BATCH) yield* Queue.offerAll(queue, makeBatch(value, i, n))
      yield* Deferred.await(done)
      const elapsedMs = now() - start
      yield* Fiber.interrupt(fiber)
      return { elapsedMs, latencies: consumer.tally.latencies }
    }))
}

export const batch = (n: number): Array<Pair> => [{
  id: "s3-send-all",
  scenario: 3,
  title: `sendAll (batches of ${BATCH}) → 1 subscriber`,
  n,
  candidate: channelSendAll,
  baseline: rawOfferAll,
  latency: true,
  target: { ratio: 0.8, text: "≥ 0.8× offerAll" }
}]
