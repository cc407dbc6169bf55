/**
 * Replies to `agent.ask` across processes, over Kafka (Faust's reply topic).
 *
 * By default an `ask` is answered within its process. With this layer, the
 * process reads its own reply topic, `<app id>-replies-<8 hex>` (one
 * partition, one hour of retention; Faust also gives each app instance a
 * reply topic of its own), names it in the `x-reply-to` header of every ask,
 * and an agent in any process that has this layer sends its reply there,
 * matched by the `x-correlation-id` header. Replies are JSON: what the
 * agent's handler returns must be JSON-serialisable.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { App } from "../App.ts"
import type { InvalidChannelOptionsError } from "../Errors.ts"
import {
  correlationIdHeader,
  CurrentReplies,
  headerText,
  makeInMemory,
  makeWaiting,
  type Replies
} from "../internal/agent/replies.ts"
import { Kafka } from "./Kafka.ts"
import * as Topic from "./Topic.ts"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const make: Effect.Effect<Replies, InvalidChannelOptionsError, App | Kafka | Scope.Scope> = Effect.gen(function*() {
  const app = yield* App
  const kafka = yield* Kafka
  const address = `${Topic.topicNameFor(app.id)}-replies-${crypto.randomUUID().slice(0, 8)}`
  const waiting = makeWaiting()
  const inProcess = makeInMemory()
  const topic = yield* Topic.make({
    topics: [address],
    value: Schema.Unknown,
    valueSerializer: "raw",
    partitions: 1,
    retention: "1 hour",
    groupId: address
  })
  yield* Effect.forkScoped(
    Stream.runForEach(topic.events(), (event) =>
      Effect.sync(() => {
        const correlationId = headerText(event.headers, correlationIdHeader)
        if (correlationId === undefined) return
        let value: unknown
        try {
          value = JSON.parse(decoder.decode(event.value as Uint8Array))
        } catch {
          value = undefined
        }
        waiting.complete(correlationId, value)
      }))
  )
  return {
    address,
    expect: waiting.expect,
    send: (to, correlationId, value) =>
      to.startsWith("memory:")
        ? inProcess.send(to, correlationId, value)
        : Effect.suspend(() =>
          // A value JSON cannot hold (a bigint, a cycle) fails this reply, not the agent.
          Effect.as(
            kafka.produce([{
              topic: to,
              partition: 0,
              key: null,
              value: encoder.encode(JSON.stringify(value ?? null)),
              headers: [[correlationIdHeader, correlationId]],
              timestamp: Date.now()
            }]),
            true
          )
        )
  }
})

/**
 * Carries the replies of `agent.ask` over Kafka: every `ask` made by this
 * process names its reply topic, and every agent of this process sends the
 * reply to the topic the request names. Provide it beside the Kafka layer, to
 * the askers and to the agents.
 *
 * **Example**
 *
 * ```ts
 * import { Effect, Layer, Schema } from "effect"
 * import { Agent, App } from "effect-faust"
 * import { Kafka, Replies, Topic } from "effect-faust/kafka"
 *
 * const program = Effect.gen(function*() {
 *   const prices = yield* Topic.make({ topics: ["prices"], value: Schema.String })
 *   const agent = yield* Agent.forEach("price", prices, (symbol) => Effect.succeed(symbol.length))
 *   yield* Effect.forkChild(agent.run)
 *   return yield* agent.ask({ value: "EFCT", timeout: "10 seconds" })
 * }).pipe(
 *   Effect.provide(Replies.layer),
 *   Effect.provide(Kafka.layer({ bootstrapServers: "127.0.0.1:9092" }).pipe(
 *     Layer.provideMerge(App.layer({ id: "pricing" }))
 *   ))
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer: Layer.Layer<never, InvalidChannelOptionsError, App | Kafka> = Layer.effect(CurrentReplies, make)
