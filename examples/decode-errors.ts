/**
 * Decode errors, three ways: `fail` (Faust's default: the readers get a typed
 * error), `skip` (log, count, go on) and `deadLetter` (set the raw message
 * aside on another channel).
 *
 * Run: npx tsx examples/decode-errors.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Schema } from "effect"
import { App, Channel, Message } from "effect-faust"

const Reading = Schema.Struct({ sensor: Schema.String, celsius: Schema.Number })

const encoder = new TextEncoder()
let offset = 0
/** A message as a consumer would deliver it: raw bytes. */
const incoming = (payload: string | Uint8Array) =>
  Message.make({
    topic: "readings",
    partition: 0,
    offset: offset++,
    timestamp: Date.now(),
    timestampType: 0,
    key: null,
    value: typeof payload === "string" ? encoder.encode(payload) : payload
  })

const inputs = [
  incoming("{\"sensor\":\"a\",\"celsius\":21.5}"),
  incoming(new Uint8Array([0xde, 0xad, 0xbe, 0xef])), // not UTF-8 at all
  incoming("{\"sensor\":\"b\",\"celsius\":\"warm\"}"), // JSON, wrong shape
  incoming("{\"sensor\":\"c\",\"celsius\":19}")
]

const program = Effect.gen(function*() {
  yield* Console.log("== onDecodeError: \"fail\" (default)")
  const failing = yield* Channel.make({ label: "readings/fail", value: Reading })
  for (const message of inputs) {
    const result = yield* Effect.result(failing.deliver(message))
    if (result._tag === "Failure") {
      yield* Console.log(`  offset ${message.offset}: ${result.failure._tag}: ${result.failure.message}`)
      break
    }
    yield* Console.log(`  offset ${message.offset}: delivered`)
  }
  const first = yield* failing.get()
  yield* Console.log(`  readers still get what came before: ${JSON.stringify(first.value)}`)
  const thrown = yield* Effect.flip(failing.get())
  yield* Console.log(`  ...then the error: ${thrown._tag}`)

  yield* Console.log("== onDecodeError: \"skip\"")
  const skipping = yield* Channel.make({ label: "readings/skip", value: Reading, onDecodeError: "skip" })
  yield* Effect.forEach(inputs, (message) => skipping.deliver(message), { discard: true })
  yield* Console.log(`  skipped ${skipping.decodeErrorCounts.skipped}`)
  for (let i = 0; i < 2; i++) yield* Console.log(`  got ${JSON.stringify((yield* skipping.get()).value)}`)

  yield* Console.log("== onDecodeError: { deadLetter }")
  const deadLetters = yield* Channel.make({ label: "readings/dead-letters" })
  const routed = yield* Channel.make({
    label: "readings/dlq",
    value: Reading,
    onDecodeError: { deadLetter: deadLetters }
  })
  yield* Effect.forEach(inputs, (message) => routed.deliver(message), { discard: true })
  yield* Console.log(`  dead-lettered ${routed.decodeErrorCounts.deadLettered}`)
  for (let i = 0; i < 2; i++) {
    const dead = yield* deadLetters.get()
    const reason = dead.headers.find(([name]) => name === "x-decode-error-message")?.[1]
    yield* Console.log(`  dead letter offset ${dead.message.offset}: ${reason}`)
  }
}).pipe(Effect.provide(App.layer({ id: "decode-errors" })))

program.pipe(NodeRuntime.runMain)
