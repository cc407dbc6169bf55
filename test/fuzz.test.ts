import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Queue, Schema } from "effect"
import { Channel, ChannelClosedError, KeyDecodeError, Message, ValueDecodeError } from "effect-faust"
import * as fc from "fast-check"
import { AppTest, quiet } from "./helpers.ts"

const Reading = Schema.Struct({
  sensor: Schema.String,
  celsius: Schema.Number,
  at: Schema.Number,
  tags: Schema.Array(Schema.String),
  ok: Schema.Boolean
})

const encoder = new TextEncoder()

/** Raw payloads: random bytes, random JSON, near-miss readings, valid readings, empty values. */
const payload: fc.Arbitrary<Uint8Array | null> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.json().map((text) => encoder.encode(text)),
  fc.record({
    sensor: fc.oneof(fc.string(), fc.integer()),
    celsius: fc.oneof(fc.double(), fc.string()),
    at: fc.integer(),
    tags: fc.array(fc.oneof(fc.string(), fc.boolean())),
    ok: fc.boolean()
  }, { requiredKeys: [] }).map((value) => encoder.encode(JSON.stringify(value))),
  fc.record({
    sensor: fc.string(),
    celsius: fc.double({ noNaN: true, noDefaultInfinity: true }),
    at: fc.integer(),
    tags: fc.array(fc.string()),
    ok: fc.boolean()
  }).map((value) => encoder.encode(JSON.stringify(value))),
  fc.constant(null),
  fc.constant(new Uint8Array(0))
)
const key: fc.Arbitrary<Uint8Array | null> = fc.oneof(fc.constant(null), fc.uint8Array({ maxLength: 8 }))

const batches = fc.array(fc.tuple(key, payload), { minLength: 1_000, maxLength: 1_000 })
const RUNS = 100 // 100 batches of 1 000: 10^5 inputs per policy

type Policy = "fail" | "skip" | "deadLetter"

/**
 * Delivers a batch to a fresh channel and accounts for every input: decoded
 * (and readable), skipped, dead-lettered or failed with a typed error.
 * A defect or a hang (over 10 s) fails the property.
 */
const deliverBatch = (policy: Policy, inputs: ReadonlyArray<readonly [Uint8Array | null, Uint8Array | null]>) =>
  Effect.gen(function*() {
    const deadLetters = yield* Channel.make({ label: "dlq", maxsize: inputs.length })
    const channel = yield* Channel.make({
      key: Schema.String,
      value: Reading,
      maxsize: inputs.length,
      onDecodeError: policy === "deadLetter" ? { deadLetter: deadLetters } : policy
    })
    let decoded = 0
    let failedTyped = 0
    for (let offset = 0; offset < inputs.length; offset++) {
      const [rawKey, rawValue] = inputs[offset]
      const message = Message.make({
        topic: "fuzz",
        partition: 0,
        offset,
        timestamp: 0,
        timestampType: 0,
        key: rawKey,
        value: rawValue
      })
      const exit = yield* Effect.exit(channel.deliver(message))
      if (Exit.isSuccess(exit)) continue
      const error = Cause.squash(exit.cause)
      assert.isTrue(
        error instanceof KeyDecodeError || error instanceof ValueDecodeError || error instanceof ChannelClosedError,
        `untyped failure: ${String(error)}`
      )
      failedTyped++
    }
    decoded = Queue.sizeUnsafe(channel.queue)
    const counts = channel.decodeErrorCounts
    if (policy === "fail") {
      assert.strictEqual(decoded + failedTyped, inputs.length)
    } else {
      assert.strictEqual(failedTyped, 0)
      assert.strictEqual(decoded + counts.skipped + counts.deadLettered, inputs.length)
      assert.strictEqual(Queue.sizeUnsafe(deadLetters.queue), counts.deadLettered)
    }
    for (let i = 0; i < decoded; i++) {
      const event = yield* channel.get()
      assert.isTrue(Schema.is(Reading)(event.value))
    }
    return { decoded, skipped: counts.skipped, deadLettered: counts.deadLettered, failed: failedTyped }
  }).pipe(Effect.timeout("10 seconds"), Effect.provide([AppTest, quiet]))

describe("fuzzing deliver (fast-check, 10^5 inputs per policy)", () => {
  for (const policy of ["fail", "skip", "deadLetter"] as const) {
    it.live(
      `onDecodeError: ${policy} — never a defect, never a hang, every input accounted for`,
      () =>
        Effect.gen(function*() {
          const totals = { decoded: 0, skipped: 0, deadLettered: 0, failed: 0 }
          yield* Effect.promise(() =>
            fc.assert(
              fc.asyncProperty(batches, (inputs) =>
                Effect.runPromise(Effect.map(deliverBatch(policy, inputs), (result) => {
                  totals.decoded += result.decoded
                  totals.skipped += result.skipped
                  totals.deadLettered += result.deadLettered
                  totals.failed += result.failed
                }))),
              { numRuns: RUNS }
            )
          )
          const accounted = totals.decoded + totals.skipped + totals.deadLettered + totals.failed
          assert.strictEqual(accounted, RUNS * 1_000)
          assert.isAbove(totals.decoded, 0, "some inputs decode")
          if (policy === "skip") assert.isAbove(totals.skipped, 0)
          if (policy === "deadLetter") assert.isAbove(totals.deadLettered, 0)
          if (policy === "fail") assert.isAbove(totals.failed, 0)
        }),
      120_000
    )
  }
})
