/**
 * ask/reply between two processes over Kafka (Replies.layer): the asker and
 * the agent each have their own app, Kafka connection and reply topic; the
 * reply travels on the asker's reply topic, matched by correlation id.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Schema } from "effect"
import { Agent, AskTimeoutError } from "effect-faust"
import { Replies, Topic } from "effect-faust/kafka"
import { brokerAvailable, kafkaLayer, unique } from "./setup.ts"

const pricesTopic = (name: string) =>
  Topic.make({ topics: [name], key: Schema.String, value: Schema.String, partitions: 2 })

const pricing = (name: string) =>
  Effect.flatMap(
    pricesTopic(name),
    (topic) =>
      Agent.forEach("pricing", topic, (symbol) => Effect.succeed({ symbol, price: symbol.length * 100 }), {
        concurrency: 4
      })
  )

describe.skipIf(!brokerAvailable)("ask/reply across processes over Kafka", () => {
  it.live(
    "replies come back on the asker's reply topic, matched under concurrency; timeouts are typed",
    () =>
      Effect.gen(function*() {
        const name = unique("prices")
        const agentSide = Layer.mergeAll(Replies.layer).pipe(
          Layer.provideMerge(kafkaLayer({ appId: unique("pricer") }))
        )
        const askerSide = Layer.mergeAll(Replies.layer).pipe(Layer.provideMerge(kafkaLayer({ appId: unique("asker") })))
        // The agent's process: runs the agent until interrupted.
        const running = yield* Effect.forkChild(
          Effect.flatMap(pricing(name), (agent) => agent.run).pipe(
            Effect.provide(agentSide)
          )
        )
        // The asker's process: the same agent definition, not run; only asked.
        const replies = yield* Effect.gen(function*() {
          const agent = yield* pricing(name)
          const symbols = Array.from({ length: 20 }, (_, i) => `S${"x".repeat(i % 5)}${i}`)
          const answers = yield* Effect.forEach(
            symbols,
            (symbol) => agent.ask({ key: symbol, value: symbol, timeout: "60 seconds" }),
            { concurrency: "unbounded" }
          )
          const joined = yield* agent.join(["A", "BB"], { timeout: "60 seconds" })
          return { symbols, answers, joined }
        }).pipe(Effect.provide(askerSide))
        assert.deepStrictEqual(
          replies.answers,
          replies.symbols.map((symbol) => ({ symbol, price: symbol.length * 100 }))
        )
        assert.deepStrictEqual(replies.joined, [{ symbol: "A", price: 100 }, { symbol: "BB", price: 200 }])
        yield* Fiber.interrupt(running)

        // Nobody answers now: the ask times out with the typed error.
        const exit = yield* Effect.exit(
          Effect.flatMap(pricing(name), (agent) => agent.ask({ value: "late", timeout: "2 seconds" })).pipe(
            Effect.provide(askerSide)
          )
        )
        assert.isTrue(Exit.isFailure(exit))
        assert.instanceOf(Cause.squash((exit as Exit.Failure<unknown, unknown>).cause), AskTimeoutError)
      }),
    120_000
  )
})
