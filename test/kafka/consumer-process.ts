/**
 * A consumer in a process of its own, for the crash test in faults.test.ts:
 * `tsx consumer-process.ts <topic> <groupId>` reads the topic (acknowledged on
 * the next pull, committed every 200 millis) and writes `id partition offset`
 * per handled event to stdout, synchronously, so a SIGKILL loses no line
 * written before it.
 */
import { Effect, Schema, Stream } from "effect"
import { Topic } from "effect-faust/kafka"
import { writeSync } from "node:fs"
import { kafkaLayer } from "./setup.ts"

const [name, groupId] = process.argv.slice(2)

const program = Effect.gen(function*() {
  const topic = yield* Topic.make({ topics: [name], value: Schema.Number })
  yield* topic.events().pipe(
    Stream.runForEach((event) =>
      Effect.andThen(
        Effect.sleep(1), // a millisecond of work per event: the kill lands mid-stream
        Effect.sync(() => writeSync(1, `${event.value} ${event.message.partition} ${event.message.offset}\n`))
      )
    )
  )
}).pipe(Effect.provide(kafkaLayer({ groupId, commitInterval: "200 millis", sessionTimeout: "3 seconds" })))

Effect.runFork(program)
