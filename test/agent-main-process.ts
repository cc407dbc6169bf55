/**
 * A program whose agent fails for good, for agent-main.test.ts:
 * `agent-main-process.ts layer|run` runs an in-memory agent under
 * `NodeRuntime.runMain`, through `Agent.layer` + `Layer.launch` or its plain
 * `run`. The agent has no restart schedule and fails on the event 3, so the
 * process must exit non-zero with the `AgentError` on stderr. (effect's
 * default logger writes to stdout; like a service would, this program sends
 * its logs to stderr with `References.LogToStderr`.)
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, References, Schema } from "effect"
import { Agent, App, Channel } from "effect-faust"

class Refused extends Schema.TaggedError<Refused>()("Refused", { value: Schema.Number }) {}

const mode = process.argv[2]

const agentOn = Effect.gen(function*() {
  const orders = yield* Channel.make({ value: Schema.Number })
  // buffered until the agent subscribes
  yield* Effect.forEach([1, 2, 3, 4], (value) => orders.send({ value }), { discard: true })
  return yield* Agent.forEach("failing-main", orders, (value) =>
    value === 3
      ? Effect.fail(new Refused({ value }))
      : Effect.void)
})

const program = mode === "layer"
  ? Layer.launch(Agent.layer(agentOn))
  : Effect.flatMap(agentOn, (agent) => agent.run)

program.pipe(
  Effect.provide(App.layer({ id: "agent-main" })),
  Effect.provideService(References.LogToStderr, true),
  NodeRuntime.runMain
)
