/**
 * The broker is killed with SIGKILL mid-stream and restarted, while a
 * producer and a consumer keep going. Needs the broker `npm run kafka:up`
 * started (its pid is in .kafka/kafka.pid); it is left running afterwards.
 * The Kafka project of vitest.config.ts runs its files one at a time, so no
 * other Kafka test sees the broker go down.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Logger, Schedule, Schema, Stream } from "effect"
import { KafkaError, Topic } from "effect-faust/kafka"
import { quiet } from "../helpers.ts"
import { kafkaUp, killable, killBroker } from "./brokerControl.ts"
import { eventually, Tally } from "./delivery.ts"
import { kafkaLayer, unique } from "./setup.ts"

describe.skipIf(!killable)("Kafka delivery when the broker dies", () => {
  it.live(
    "(a) the broker is killed with SIGKILL mid-stream and restarted: nothing the broker acknowledged is lost",
    () =>
      Effect.gen(function*() {
        const name = unique("killed")
        const total = 30_000
        const tally = new Tally()
        let sendFailures = 0
        let consumerRestarts = 0
        // The producer sends chunks of 500 about ten times a second; a chunk that fails (the
        // broker is down) is sent again until the broker takes it.
        const producer = Effect.gen(function*() {
          const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 3 })
          for (let from = 0; from < total; from += 500) {
            const ids = Array.from({ length: 500 }, (_, i) => from + i)
            yield* topic.sendAll(ids).pipe(
              Effect.tapError(() => Effect.sync(() => sendFailures++)),
              Effect.retry(Schedule.spaced("500 millis"))
            )
            for (const id of ids) tally.sent.add(id)
            yield* Effect.sleep("100 millis")
          }
        }).pipe(Effect.provide(kafkaLayer({ requestTimeout: "5 seconds" })))
        // The consumer handles each event; when its stream fails (the broker is down) it starts again.
        const consumer = Effect.gen(function*() {
          const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 3 })
          yield* topic.events().pipe(
            Stream.runForEach((event) =>
              Effect.sync(() => tally.receive(event.value, event.message.partition, event.message.offset))
            ),
            Effect.tapError(() => Effect.sync(() => consumerRestarts++)),
            Effect.retry(Schedule.spaced("1 second"))
          )
        }).pipe(Effect.provide(kafkaLayer({ requestTimeout: "5 seconds" })))
        const consuming = yield* Effect.forkChild(consumer)
        const producing = yield* Effect.forkChild(producer)
        yield* eventually(() => tally.received >= 8_000, 120_000, "8000 received before the kill")
        const killedAt = tally.received
        const pid = yield* killBroker
        yield* Effect.sleep("2 seconds")
        const restarted = yield* Effect.timed(kafkaUp)
        yield* Fiber.join(producing)
        yield* eventually(
          () => tally.complete,
          180_000,
          "every acknowledged event",
          () => JSON.stringify({ ...tally.counts(), sendFailures, consumerRestarts })
        )
        yield* Fiber.interrupt(consuming)
        console.log(
          `[delivery] (a) broker ${pid} killed after ${killedAt} received, back after ${
            Duration.toSeconds(restarted[0]).toFixed(1)
          } s; failed sends retried: ${sendFailures}, consumer restarts: ${consumerRestarts}`
        )
        const counts = tally.report("(a) broker killed with SIGKILL mid-stream and restarted")
        assert.strictEqual(counts.sent, total)
        assert.strictEqual(counts.lost, 0)
        // duplicates are allowed and counted: the consumer reads again what it handled after its
        // last commit, and a chunk sent again after an unanswered request may be in the log twice
      }).pipe(
        Effect.provide(quiet),
        // other test files use the broker: it runs again whatever happened
        Effect.ensuring(Effect.ignore(kafkaUp))
      ),
    420_000
  )

  it.live(
    "(a′) the broker stays down: the consumer replaces its failed client stream once, then the stream fails with KafkaError (no endless replacing, no hang)",
    () =>
      Effect.gen(function*() {
        const name = unique("down")
        const replaced: Array<string> = []
        const keepReplacements = Logger.layer([Logger.make((options) => {
          const message = String(options.message)
          if (message.includes("with a new fetcher")) replaced.push(message)
        })])
        const layer = kafkaLayer({ requestTimeout: "2 seconds", retries: 3, retryDelay: "200 millis" })
        let received = 0
        const consuming = yield* Effect.gen(function*() {
          const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 3 })
          yield* topic.sendAll(Array.from({ length: 300 }, (_, i) => i))
          yield* topic.events().pipe(Stream.runForEach(() => Effect.sync(() => received++)))
        }).pipe(Effect.provide(layer), Effect.provide(keepReplacements), Effect.forkChild)
        yield* eventually(() => received === 300, 60_000, "300 received before the kill")
        yield* killBroker
        const [took, exit] = yield* Effect.timed(
          Fiber.await(consuming).pipe(Effect.timeout("150 seconds"), Effect.ensuring(Effect.ignore(kafkaUp)))
        )
        console.log(
          `[delivery] (a′) broker down: the stream failed ${
            Duration.toSeconds(took).toFixed(1)
          } s after the kill, after ${replaced.length} replacement(s)`
        )
        assert.isTrue(Exit.isFailure(exit), "the stream fails")
        const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
        assert.instanceOf(error, KafkaError)
        assert.strictEqual((error as KafkaError).operation, "consume")
        assert.include((error as KafkaError).message, "127.0.0.1:9092")
        assert.strictEqual(replaced.length, 1)
      }).pipe(
        Effect.provide(quiet),
        Effect.ensuring(Effect.ignore(kafkaUp))
      ),
    300_000
  )
})
