/**
 * Scenario 8: agents. `Agent.forEach` at concurrency 1 against the same
 * handler as a hand-written `Stream.runForEach` over the channel's events;
 * and `Agent.forEach` at concurrency 8 with a 1 ms asynchronous handler
 * against the ideal (8 events per millisecond).
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { Agent, type App, Channel, runWithApp } from "../lib/app.ts"
import { type Case, now, type Pair } from "../lib/harness.ts"

/** The handler both sides of the concurrency-1 pair run: it sums, so nothing is optimised away. */
const summing = (n: number, done: Deferred.Deferred<void>) => {
  const tally = { count: 0, sum: 0 }
  const handle = (value: number) =>
    Effect.sync(() => {
      tally.sum += value
      if (++tally.count === n) Deferred.doneUnsafe(done, Effect.void)
    })
  return { tally, handle }
}

/**
 * One timed run, the same on every side: a channel, a reader started by
 * `start` (it completes `done` after `n` events), then `n` sends timed until
 * `done`.
 */
const timed = (
  n: number,
  start: (
    channel: Channel.Channel<unknown, number>,
    done: Deferred.Deferred<void>
  ) => Effect.Effect<Effect.Effect<unknown, unknown>, unknown, App.App>
) =>
  runWithApp(Effect.gen(function*() {
    const channel = yield* Channel.make({ value: Schema.Number })
    const done = Deferred.makeUnsafe<void>()
    const fiber = yield* Effect.forkChild(yield* start(channel, done))
    while (channel.subscriberCount < 1) yield* Effect.yieldNow
    const started = now()
    for (let i = 0; i < n; i++) yield* channel.send({ value: i })
    yield* Deferred.await(done)
    const elapsedMs = now() - started
    yield* Fiber.interrupt(fiber)
    return { elapsedMs }
  }))

export const agentForEach: Case = {
  label: "Agent.forEach, concurrency 1",
  run: (n) =>
    timed(
      n,
      (channel, done) => Effect.map(Agent.forEach("bench", channel, summing(n, done).handle), (agent) => agent.run)
    )
}

export const handWritten: Case = {
  label: "Stream.runForEach(channel.events(), handler)",
  run: (n) =>
    timed(n, (channel, done) => {
      const { handle } = summing(n, done)
      return Effect.succeed(Stream.runForEach(channel.events(), (event) => handle(event.value)))
    })
}

const CONCURRENCY = 8

/** A 1 ms asynchronous handler completing `done` after `n` events. */
const sleeping = (n: number, done: Deferred.Deferred<void>) => {
  let count = 0
  return () =>
    Effect.andThen(
      Effect.sleep(1),
      Effect.sync(() => {
        if (++count === n) Deferred.doneUnsafe(done, Effect.void)
      })
    )
}

export const agentConcurrent: Case = {
  label: `Agent.forEach, concurrency ${CONCURRENCY}, 1 ms async handler`,
  run: (n) =>
    timed(n, (channel, done) =>
      Effect.map(
        Agent.forEach("bench-concurrent", channel, sleeping(n, done), { concurrency: CONCURRENCY, ordering: "none" }),
        (agent) => agent.run
      ))
}

export const handWrittenConcurrent: Case = {
  label: `Stream.mapEffect(channel.events(), 1 ms handler, { concurrency: ${CONCURRENCY} })`,
  run: (n) =>
    timed(n, (channel, done) =>
      Effect.succeed(
        channel.events().pipe(
          Stream.mapEffect(sleeping(n, done), { concurrency: CONCURRENCY, unordered: true }),
          Stream.runDrain
        )
      ))
}

/** The ideal: 8 handlers of exactly 1 ms each, never idle. */
export const ideal: Case = {
  label: `ideal: ${CONCURRENCY} events per millisecond`,
  run: (n) => Promise.resolve({ elapsedMs: n / CONCURRENCY })
}

export const agent = (n: number, events: number): Array<Pair> => [
  {
    id: "s8-agent-1",
    scenario: 8,
    title: "Agent.forEach, concurrency 1",
    n,
    candidate: agentForEach,
    baseline: handWritten,
    latency: false,
    target: { ratio: 0.9, text: "≥ 0.9× hand-written" }
  },
  {
    id: "s8-agent-8",
    scenario: 8,
    title: `Agent.forEach, concurrency ${CONCURRENCY}, 1 ms handler (n=${events})`,
    n: events,
    candidate: agentConcurrent,
    baseline: ideal,
    extras: [handWrittenConcurrent],
    note: "a 1 ms sleep is a Node timer, which fires after 1 ms or later: the hand-written extra shows the floor",
    latency: false,
    target: { ratio: 0.9, text: "≥ 0.9× ideal" }
  }
]
