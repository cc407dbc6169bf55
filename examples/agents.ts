/**
 * Agents, in memory: four of them, each showing one thing Faust users write
 * agents for.
 *
 * - `orders`: concurrency 4, ordered per key (an account's orders in order,
 *   accounts in parallel).
 * - `payments`: a handler failing on bad input, retried twice, then
 *   dead-lettered with the error in the headers.
 * - `audit`: batches of up to 10 events, or whatever came within 100 ms.
 * - `prices`: ask/reply and `join` — the agent's result goes back to the
 *   asker.
 *
 * Run: npx tsx examples/agents.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Fiber, Layer, Schedule, Schema, Stream } from "effect"
import { Agent, App, Channel } from "effect-faust"

const Order = Schema.Struct({ account: Schema.String, seq: Schema.Number })

const program = Effect.gen(function*() {
  // Concurrency with ordering: 4 instances; the key decides which one, so one account's orders stay in order.
  const orders = yield* Channel.make({ key: Schema.String, value: Order })
  const seen = new Map<string, Array<number>>()
  const orderAgent = yield* Agent.forEach("orders", orders, (order) =>
    Effect.andThen(
      Effect.sleep(`${(order.seq * 7) % 5} millis`),
      Effect.sync(() => seen.set(order.account, [...(seen.get(order.account) ?? []), order.seq]))
    ), { concurrency: 4, ordering: "key" })

  // A failing handler, retried twice and then dead-lettered.
  const payments = yield* Channel.make({ label: "payments", value: Schema.Number })
  const deadLetters = yield* Channel.make({ label: "payments-dead-letters", maxsize: 16 })
  const paymentAgent = yield* Agent.forEach(
    "payments",
    payments,
    (amount) => amount < 0 ? Effect.fail(new Error(`negative amount ${amount}`)) : Effect.void,
    { onError: { retry: Schedule.recurs(2), then: { deadLetter: deadLetters } } }
  )

  // Batches: the handler gets up to 10 values, or what came within 100 ms of the first.
  const audit = yield* Channel.make({ value: Schema.String })
  const batches: Array<ReadonlyArray<string>> = []
  const auditAgent = yield* Agent.forEach("audit", audit, (entries) => Effect.sync(() => batches.push(entries)), {
    batch: { size: 10, within: "100 millis" }
  })

  // ask/reply and join: what the handler returns goes back to the asker.
  const quotes = yield* Channel.make({ value: Schema.String })
  const priceAgent = yield* Agent.forEach("prices", quotes, (symbol) => Effect.succeed(symbol.length * 100))

  return yield* Effect.gen(function*() {
    const letters = yield* Effect.forkChild(Stream.runCollect(Stream.take(deadLetters.events(), 1)))
    for (let seq = 0; seq < 5; seq++) {
      for (const account of ["alice", "bob", "carol"]) yield* orders.send({ key: account, value: { account, seq } })
    }
    yield* payments.send({ value: 40 })
    yield* payments.send({ value: -5 })
    for (let i = 0; i < 23; i++) yield* audit.send({ value: `entry ${i}` })

    const price = yield* priceAgent.ask({ value: "EFCT", timeout: "1 second" })
    const prices = yield* priceAgent.join(["A", "BB", "CCC"], { timeout: "1 second" })
    const [letter] = yield* Fiber.join(letters)
    yield* Effect.sleep("200 millis")

    yield* Console.log("orders per account, in order:")
    for (const [account, seqs] of [...seen].sort()) yield* Console.log(`  ${account.padEnd(6)} ${seqs.join(" ")}`)
    const headers = Object.fromEntries(letter.headers)
    yield* Console.log(
      `payments: ${paymentAgent.stats.handled} handled, ${paymentAgent.stats.deadLettered} dead-lettered ` +
        `(value ${letter.value}, ${headers["x-error-message"]}, after ${headers["x-attempts"]} attempts)`
    )
    yield* Console.log(`audit: batches of ${batches.map((batch) => batch.length).join(", ")}`)
    yield* Console.log(`prices: ask EFCT -> ${price}; join A, BB, CCC -> ${prices.join(", ")}`)
  }).pipe(
    Effect.provide(Layer.mergeAll(
      Agent.layer(orderAgent),
      Agent.layer(paymentAgent),
      Agent.layer(auditAgent),
      Agent.layer(priceAgent)
    ))
  )
})

program.pipe(
  Effect.provide(App.layer({ id: "agents-example" })),
  NodeRuntime.runMain
)
