/**
 * Shared by the Kafka test files: where the broker is, whether it answers,
 * and layers with fresh ids so that reruns never collide.
 */
import { Admin } from "@platformatic/kafka"
import { Effect, Layer } from "effect"
import { App } from "effect-faust"
import { Kafka, type Topic } from "effect-faust/kafka"
import { execFileSync } from "node:child_process"
import { reachable } from "./reachable.ts"

/** The broker the suite uses: `KAFKA_BOOTSTRAP_SERVERS`, else the one `npm run kafka:up` starts. */
export const bootstrapServers = process.env.KAFKA_BOOTSTRAP_SERVERS ?? "127.0.0.1:9092"

/** Whether a broker answers; when none does, the suite is skipped with one line saying how to start one. */
export const brokerAvailable = await reachable(bootstrapServers.split(",")[0].trim())

if (!brokerAvailable) {
  console.warn(
    `Kafka suite skipped: no broker at ${bootstrapServers} — start one with \`npm run kafka:up\` or point KAFKA_BOOTSTRAP_SERVERS at one.`
  )
}

/** Whether kcat is installed (Debian package `kcat`). */
export const kcatAvailable = (() => {
  try {
    execFileSync("kcat", ["-V"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

let counter = 0

/** A name no earlier run used: topics and groups are never shared between tests or runs. */
export const unique = (prefix: string): string =>
  `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 6)}`

/** An app and its Kafka connection with fast commits and rebalances, for one test. */
export const kafkaLayer = (options?: Partial<Kafka.Options> & { readonly appId?: string }) =>
  Kafka.layer({
    bootstrapServers,
    commitInterval: "100 millis",
    sessionTimeout: "6 seconds",
    heartbeatInterval: "500 millis",
    maxWaitTime: "100 millis",
    topicPartitions: 1,
    ...options
  }).pipe(Layer.provideMerge(App.layer({ id: options?.appId ?? unique("app"), streamBufferMaxsize: 64 })))

/** Waits (polling) until `condition` holds, failing after `millis`. */
export const eventually = (condition: () => boolean, millis = 20_000) =>
  Effect.suspend(function loop(): Effect.Effect<void> {
    return condition() ? Effect.void : Effect.andThen(Effect.sleep("20 millis"), loop)
  }).pipe(Effect.timeout(millis))

/** Polls an effectful condition until it holds, failing after `millis`. */
export const eventuallyEffect = <E, R>(condition: Effect.Effect<boolean, E, R>, millis = 20_000) =>
  Effect.suspend(function loop(): Effect.Effect<void, E, R> {
    return Effect.flatMap(condition, (holds) => holds ? Effect.void : Effect.andThen(Effect.sleep("50 millis"), loop))
  }).pipe(Effect.timeout(millis))

const utf8 = new TextEncoder()

/** Raw records straight to partition 0, with no codec: what another client would write. */
export const produceRaw = (topic: string, values: ReadonlyArray<string>, keys?: ReadonlyArray<string | null>) =>
  Effect.gen(function*() {
    const kafka = yield* Kafka.Kafka
    return yield* kafka.produce(values.map((value, i) => ({
      topic,
      partition: 0,
      key: keys?.[i] == null ? null : utf8.encode(keys[i]!),
      value: utf8.encode(value),
      headers: [["origin", "raw"]],
      timestamp: Date.now()
    })))
  })

/** The offset the topic's group committed on partition 0 (-1 if none), read by an admin client. */
export const committedOffset = (topic: Topic.Topic<any, any>) =>
  Effect.promise(async () => {
    const admin = new Admin({ clientId: unique("admin"), bootstrapBrokers: [bootstrapServers] })
    try {
      const [group] = await admin.listConsumerGroupOffsets({ groups: [topic.groupId] })
      const partition = group.topics.find((t) => t.name === topic.topics[0])?.partitions.find((p) =>
        p.partitionIndex === 0
      )
      return partition === undefined ? -1 : Number(partition.committedOffset)
    } finally {
      await admin.close()
    }
  })
