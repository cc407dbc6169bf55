/**
 * Kills and restarts the project's single broker for the tests of a broker
 * that dies (`npm run kafka:up` started it; its pid is in .kafka/kafka.pid).
 * The Kafka project of vitest.config.ts runs its files one at a time, so no
 * other Kafka test sees the broker go down.
 */
import { Effect, Schedule, Schema } from "effect"
import { Topic } from "effect-faust/kafka"
import { execFile } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { reachable } from "./reachable.ts"
import { bootstrapServers, brokerAvailable, kafkaLayer, unique } from "./setup.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const pidFile = `${process.env.KAFKA_DIR ?? `${root}.kafka`}/kafka.pid`

/** Only the broker our scripts started (its pid file, its listener) can be killed and started again. */
export const killable = brokerAvailable && bootstrapServers === "127.0.0.1:9092" && existsSync(pidFile)

/** The running broker's pid. */
export const brokerPid = (): number => Number(readFileSync(pidFile, "utf8").trim())

const upScript = Effect.callback<void, Error>((resume) => {
  execFile(
    "bash",
    [`${root}scripts/kafka/up.sh`],
    { cwd: root, timeout: 180_000 },
    (error, _stdout, stderr) =>
      resume(error ? Effect.fail(new Error(`kafka:up failed: ${stderr || error.message}`)) : Effect.void)
  )
})

/**
 * A record sent to a new topic and answered: a broker that restarted answers
 * metadata before it leads new partitions, and the test files after this one
 * need it ready.
 */
const ready = Effect.gen(function*() {
  const topic = yield* Topic.make({ topics: [unique("ready")], value: Schema.Number })
  yield* topic.send({ value: 1 })
}).pipe(
  Effect.provide(kafkaLayer({ requestTimeout: "5 seconds" })),
  Effect.retry(Schedule.spaced("500 millis")),
  Effect.timeout("90 seconds")
)

/** `npm run kafka:up` (starts the broker unless it runs), then waits until it takes a record on a new topic. */
export const kafkaUp = Effect.andThen(upScript, ready)

/** SIGKILL to the broker, then waits until its port is closed; returns its pid. */
export const killBroker = Effect.gen(function*() {
  const pid = brokerPid()
  process.kill(pid, "SIGKILL")
  yield* Effect.suspend(function loop(): Effect.Effect<void> {
    return Effect.flatMap(
      Effect.promise(() => reachable(bootstrapServers)),
      (up) => up ? Effect.andThen(Effect.sleep("100 millis"), loop) : Effect.void
    )
  }).pipe(Effect.timeout("30 seconds"))
  return pid
})
