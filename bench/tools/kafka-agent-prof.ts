/**
 * Profiles the Kafka consume path through an agent in batch mode: fills a
 * fresh topic with N keyed JSON records (raw client), then reads them with
 * `Agent.forEach({ batch })` and prints the rate.
 *
 * Usage: npx node --conditions=source --cpu-prof --cpu-prof-dir=DIR bench/tools/kafka-agent-prof.ts [N]
 */
import { Admin, ProduceAcks, Producer } from "@platformatic/kafka"
import { Deferred, Effect, Fiber, Layer, Schema } from "effect"
import { Agent, App } from "effect-faust"
import { Kafka, Topic } from "effect-faust/kafka"

const n = Number(process.argv[2] ?? 200_000)
const servers = process.env.KAFKA_BOOTSTRAP_SERVERS ?? "127.0.0.1:9092"
const name = `prof-${Date.now().toString(36)}`
const Value = Schema.Struct({ id: Schema.Number, qty: Schema.Number })

const admin = new Admin({ clientId: "prof", bootstrapBrokers: [servers] })
await admin.createTopics({ topics: [name], partitions: 1, replicas: 1 })
await admin.close()
const producer = new Producer({ clientId: "prof", bootstrapBrokers: [servers], acks: ProduceAcks.ALL })
for (let i = 0; i < n; i += 1000) {
  const messages = []
  for (let j = i; j < Math.min(n, i + 1000); j++) {
    messages.push({
      topic: name,
      key: Buffer.from(JSON.stringify(`k${j}`)),
      value: Buffer.from(JSON.stringify({ id: j, qty: 1 }))
    })
  }
  await producer.send({ messages })
}
await producer.close()

const program = Effect.gen(function*() {
  const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Value, partitions: 1 })
  let start = 0
  let count = 0
  const done = Deferred.makeUnsafe<void>()
  const agent = yield* Agent.forEach("prof", topic, (values) =>
    Effect.sync(() => {
      if (count === 0) start = performance.now()
      count += values.length
      if (count >= n) Deferred.doneUnsafe(done, Effect.void)
    }), { batch: { size: 1000, within: "100 millis" } })
  const fiber = yield* Effect.forkChild(agent.run)
  yield* Deferred.await(done)
  const elapsed = performance.now() - start
  yield* Fiber.interrupt(fiber)
  console.log(`${n} records in ${elapsed.toFixed(0)} ms: ${(n / elapsed).toFixed(0)} k/s`)
}).pipe(
  Effect.provide(Kafka.layer({ bootstrapServers: servers }).pipe(Layer.provideMerge(App.layer({ id: name }))))
)
await Effect.runPromise(program)
