/**
 * An agent in a process of its own, for agent.test.ts:
 * `agent-process.ts batch|each <topic> <groupId>` runs an agent on the topic
 * through `Agent.layer` under `NodeRuntime.runMain` (SIGTERM stops it
 * gracefully: in-flight events finish, are acknowledged and committed, and
 * the consumer leaves its group). Everything it reports goes to stdout,
 * written synchronously, so a SIGKILL loses no line written before it:
 *
 * - `batch`: batches of up to 20 events (closed 100 ms after their first),
 *   2 instances. A batch writes `B <n> <id>:<partition>:<offset> …` when its
 *   handler starts and, after 40 ms of work, `E <id> <partition> <offset>`
 *   per event then `F <n>`, in one write: a SIGKILL between the two lands in
 *   the middle of the batch.
 * - `each`: one event at a time per instance, 4 instances, 0–3 ms of work,
 *   then `E <id> <partition> <offset>`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Random, Schema } from "effect"
import { Agent } from "effect-faust"
import { Topic } from "effect-faust/kafka"
import { writeSync } from "node:fs"
import { quiet } from "../helpers.ts"
import { kafkaLayer } from "./setup.ts"

const [mode, name, groupId] = process.argv.slice(2)

const write = (text: string) => writeSync(1, text)

let batches = 0

const agent = Effect.gen(function*() {
  const topic = yield* Topic.make({ topics: [name], value: Schema.Number })
  if (mode === "batch") {
    return yield* Agent.forEach("batch-agent", topic, (_values, events) =>
      Effect.gen(function*() {
        const n = batches++
        write(`B ${n} ${events.map((e) => `${e.value}:${e.message.partition}:${e.message.offset}`).join(" ")}\n`)
        yield* Effect.sleep(40)
        write(
          events.map((e) => `E ${e.value} ${e.message.partition} ${e.message.offset}\n`).join("") + `F ${n}\n`
        )
      }), { concurrency: 2, batch: { size: 20, within: "100 millis" } })
  }
  return yield* Agent.forEach("each-agent", topic, (value, event) =>
    Effect.gen(function*() {
      yield* Effect.sleep(yield* Random.nextIntBetween(0, 3))
      write(`E ${value} ${event.message.partition} ${event.message.offset}\n`)
    }), { concurrency: 4 })
})

Layer.launch(Agent.layer(agent)).pipe(
  Effect.provide(kafkaLayer({ groupId, commitInterval: "200 millis", sessionTimeout: "3 seconds" })),
  Effect.provide(quiet),
  NodeRuntime.runMain
)
