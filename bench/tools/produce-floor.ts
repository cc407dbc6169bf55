/**
 * What `Topic.sendSoon × N, then every future awaited` (the Kafka produce
 * pair) costs by its shape alone, in CPU per record, no broker needed: one
 * effect per call handing back a future (the topic's own future class),
 * every future kept until the end, completed as the send buffer completes
 * it, then awaited. No encoding, no record, no buffer, no client. The raw
 * client's whole produce loop (encoding included) costs ~2.1–2.4 µs per
 * record in the Kafka pairs, so this floor alone bounds `sendSoon`'s ratio
 * (see `bench/README.md`, fourth pass).
 *
 *   node --expose-gc bench/tools/produce-floor.ts 300000 7
 *
 * Arguments: records per round, rounds.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { fromSendOptions } from "../../src/internal/futureMessage.ts"

const [nArg = "300000", roundsArg = "7"] = process.argv.slice(2)
const n = Number(nArg)
const rounds = Number(roundsArg)
const gc = (globalThis as { gc?: () => void }).gc

const median = (values: Array<number>) => [...values].sort((a, b) => a - b)[values.length >> 1]

/** CPU per record (µs) of `run` over `rounds` rounds, after a forced GC each (with --expose-gc). */
const measure = async (label: string, run: () => Promise<void>) => {
  const perRecord: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    gc?.()
    const cpu = process.cpuUsage()
    await run()
    const used = process.cpuUsage(cpu)
    perRecord.push((used.user + used.system) / n)
  }
  console.log(
    `${label}: ${median(perRecord).toFixed(2)} µs CPU per record (median of ${rounds}; ${
      perRecord.map((x) => x.toFixed(2)).join(" ")
    })`
  )
}

const channel = { label: "floor" }
const valueOf = (i: number) => ({ id: i, user: `user-${i % 97}`, qty: i % 10, ok: (i & 1) === 0 })

const sendSoonShape = () =>
  Effect.runPromise(Effect.gen(function*() {
    const futures = new Array<ReturnType<typeof fromSendOptions<string, ReturnType<typeof valueOf>>>>(n)
    for (let i = 0; i < n; i++) {
      futures[i] = yield* Effect.withFiber(() =>
        Exit.succeed(
          fromSendOptions<string, ReturnType<typeof valueOf>>(channel, { key: `k${i % 1000}`, value: valueOf(i) })
        )
      )
    }
    for (let i = 0; i < n; i++) futures[i].sentTo("floor", 0, i, 1_700_000_000_000)
    for (let i = 0; i < n; i++) yield* futures[i].await
  }))

await measure("sendSoon shape (an effect and a future per record, all kept, then awaited)", sendSoonShape)
