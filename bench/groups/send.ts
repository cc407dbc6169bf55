/**
 * Scenarios 1 and 2: `send` → subscribers' `events()`, against a raw
 * `Queue.offer` → `Stream.fromQueue` (one subscriber) and against `PubSub`
 * with the same number of subscribers.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { CAPACITY, Channel, type Event, run, runWithApp } from "../lib/app.ts"
import { consume, valueFor } from "../lib/consumer.ts"
import { type Case, now, type Pair } from "../lib/harness.ts"

const eventValue = (event: Event.Event<unknown, number>): number => event.value
const identity = (x: number): number => x

/** `Channel.send` (no callback) → `k` subscribers, each running `events()`. */
export const channelSend = (k: number): Case => ({
  label: k === 1 ? "Channel.send → events()" : `Channel.send → ${k}× events()`,
  run: (n, { latency }) =>
    runWithApp(Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const value = valueFor(latency)
      const dones: Array<Deferred.Deferred<void>> = []
      const fibers: Array<Fiber.Fiber<void, unknown>> = []
      let tally: { latencies: Float64Array | undefined } | undefined
      for (let s = 0; s < k; s++) {
        const done = Deferred.makeUnsafe<void>()
        const consumer = consume(channel.events(), n, latency, done, eventValue)
        tally ??= consumer.tally
        dones.push(done)
        fibers.push(yield* Effect.forkChild(consumer.effect))
      }
      while (channel.subscriberCount < k) yield* Effect.yieldNow
      const start = now()
      for (let i = 0; i < n; i++) yield* channel.send({ value: value(i) })
      for (const done of dones) yield* Deferred.await(done)
      const elapsedMs = now() - start
      yield* Fiber.interruptAll(fibers)
      return { elapsedMs, latencies: tally!.latencies }
    }))
})

/** The floor: `Queue.offer` → `Stream.fromQueue`, one consumer. */
export const rawQueue: Case = {
  label: "Queue.offer → Stream.fromQueue",
  run: (n, { latency }) =>
    run(Effect.gen(function*() {
      const queue = yield* Queue.bounded<number>(CAPACITY)
      const value = valueFor(latency)
      const done = Deferred.makeUnsafe<void>()
      const consumer = consume(Stream.fromQueue(queue), n, latency, done, identity)
      const fiber = yield* Effect.forkChild(consumer.effect)
      const start = now()
      for (let i = 0; i < n; i++) yield* Queue.offer(queue, value(i))
      yield* Deferred.await(done)
      const elapsedMs = now() - start
      yield* Fiber.interrupt(fiber)
      return { elapsedMs, latencies: consumer.tally.latencies }
    }))
}

/** `PubSub.publish` → `k` subscriptions, each running `Stream.fromSubscription`. */
export const pubSub = (k: number): Case => ({
  label: k === 1 ? "PubSub.publish → 1 subscriber" : `PubSub.publish → ${k} subscribers`,
  run: (n, { latency }) =>
    run(Effect.gen(function*() {
      const pubsub = yield* PubSub.bounded<number>(CAPACITY)
      const value = valueFor(latency)
      const dones: Array<Deferred.Deferred<void>> = []
      const fibers: Array<Fiber.Fiber<void, unknown>> = []
      let tally: { latencies: Float64Array | undefined } | undefined
      for (let s = 0; s < k; s++) {
        const subscription = yield* PubSub.subscribe(pubsub)
        const done = Deferred.makeUnsafe<void>()
        const consumer = consume(Stream.fromSubscription(subscription), n, latency, done, identity)
        tally ??= consumer.tally
        dones.push(done)
        fibers.push(yield* Effect.forkChild(consumer.effect))
      }
      const start = now()
      for (let i = 0; i < n; i++) yield* PubSub.publish(pubsub, value(i))
      for (const done of dones) yield* Deferred.await(done)
      const elapsedMs = now() - start
      yield* Fiber.interruptAll(fibers)
      return { elapsedMs, latencies: tally!.latencies }
    }))
})

export const single = (n: number): Array<Pair> => [{
  id: "s1-send-1",
  scenario: 1,
  title: "send → 1 subscriber",
  n,
  candidate: channelSend(1),
  baseline: rawQueue,
  extras: [pubSub(1)],
  latency: true,
  target: { ratio: 0.8, text: "≥ 0.8× raw queue" }
}]

export const fanout = (n: number, n16: number): Array<Pair> => [
  {
    id: "s2-send-4",
    scenario: 2,
    title: "send → 4 subscribers",
    n,
    candidate: channelSend(4),
    baseline: pubSub(4),
    latency: true,
    target: { ratio: 3, text: "≥ 3× PubSub" }
  },
  {
    id: "s2-send-16",
    scenario: 2,
    title: "send → 16 subscribers",
    n: n16,
    candidate: channelSend(16),
    baseline: pubSub(16),
    latency: true,
    note: n16 === n ? undefined : `${n16} messages per run (PubSub at 16 subscribers is slow)`
  }
]
