/**
 * Orders on a real Kafka broker: the same Channel interface, backed by a
 * Topic. `send` returns where the broker stored the record, `sendSoon`
 * batches, the stream reads through a consumer group, and an undecodable
 * record written by another client goes to a dead-letter topic.
 *
 * Run: npm run kafka:up
 *      KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 npx tsx examples/kafka-orders.ts
 * Without KAFKA_BOOTSTRAP_SERVERS it says so and exits.
 */
import { Console, Deferred, Effect, Layer, Schema, Stream } from "effect"
import { App } from "effect-faust"
import { Kafka, Topic } from "effect-faust/kafka"
import { runExample } from "./support/main.ts"

const Order = Schema.Struct({ id: Schema.String, qty: Schema.Number })

// Fresh names each run, so that the example always starts from an empty topic.
const run = Date.now().toString(36)

const program = Effect.gen(function*() {
  const deadLetters = yield* Topic.make({ topics: [`orders-dlq-${run}`], valueSerializer: "raw" })
  const orders = yield* Topic.make({
    topics: [`orders-${run}`],
    key: Schema.String,
    value: Order,
    partitions: 3,
    onDecodeError: { deadLetter: deadLetters }
  })

  for (const id of ["o-1", "o-2", "o-3"]) {
    const metadata = yield* orders.send({ key: id, value: { id, qty: 1 }, headers: { source: "example" } })
    yield* Console.log(`send ${id} -> ${metadata.topic}[${metadata.partition}]@${metadata.offset}`)
  }
  const futures = yield* Effect.forEach(
    ["o-4", "o-5", "o-6"],
    (id) => orders.sendSoon({ key: id, value: { id, qty: 2 } })
  )
  for (const future of futures) {
    const metadata = yield* future.await
    yield* Console.log(`sendSoon ${future.message.key} -> [${metadata.partition}]@${metadata.offset}`)
  }

  // Another client writes bytes that are not an Order.
  const kafka = yield* Kafka.Kafka
  yield* kafka.produce([{
    topic: orders.topics[0],
    partition: 0,
    key: null,
    value: new TextEncoder().encode("not json"),
    headers: [],
    timestamp: Date.now()
  }])

  // The six orders may all come before the bad record (partitions are read side by side), so the
  // reader does not stop at six: it goes on in a child fiber, interrupted when this program ends,
  // and so reaches the bad record for the dead letter read below.
  type OrderEvent = Stream.Success<ReturnType<typeof orders.events>>
  const sixOrders = yield* Deferred.make<ReadonlyArray<OrderEvent>>()
  const seen: Array<OrderEvent> = []
  yield* orders.events().pipe(
    Stream.runForEach((event) => {
      seen.push(event)
      return seen.length === 6 ? Deferred.succeed(sixOrders, seen.slice()) : Effect.void
    }),
    Effect.forkChild
  )
  const received = yield* Deferred.await(sixOrders)
  for (const event of received) {
    yield* Console.log(
      `stream ${event.key} qty=${event.value.qty} from [${event.message.partition}]@${event.message.offset}`
    )
  }
  const [letter] = yield* deadLetters.events().pipe(Stream.take(1), Stream.runCollect)
  const error = letter.headers.find(([name]) => name === "x-decode-error")?.[1]
  yield* Console.log(
    `dead letter: ${new TextDecoder().decode(letter.value as Uint8Array)} (${
      typeof error === "string" ? error : new TextDecoder().decode(error)
    })`
  )
  yield* Console.log(`decode errors: ${JSON.stringify(orders.decodeErrorCounts)}`)
})

const main = Effect.gen(function*() {
  if (process.env.KAFKA_BOOTSTRAP_SERVERS === undefined) {
    return yield* Console.log(
      "kafka-orders: set KAFKA_BOOTSTRAP_SERVERS (npm run kafka:up starts a broker on 127.0.0.1:9092)"
    )
  }
  yield* program.pipe(
    Effect.provide(Kafka.layerConfig().pipe(Layer.provideMerge(App.layer({ id: `kafka-orders-${run}` }))))
  )
})

runExample("kafka-orders", main)
