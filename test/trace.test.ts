import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option, Schema, Tracer } from "effect"
import { Agent, Channel, Event, Message } from "effect-faust"
import * as traceContext from "../src/internal/traceContext.ts"
import { AppTest, waitUntil } from "./helpers.ts"
import { memoryTracer } from "./memoryTracer.ts"

const TRACE = "0af7651916cd43dd8448eb211c80319c"
const SPAN = "b7ad6b7169203331"
const VALID = `00-${TRACE}-${SPAN}-01`

const eventWith = (headers: Message.Headers) =>
  Event.make({
    key: null,
    value: 1,
    headers,
    message: Message.make({ topic: "t", partition: 2, offset: 7, timestamp: 0, timestampType: 0, key: null, value: 1 })
  })

const ascii = (text: string) => new TextEncoder().encode(text)

describe("traceparent", () => {
  it("parses a valid header, as text or bytes", () => {
    for (const value of [VALID, ascii(VALID)]) {
      const span = traceContext.parse(value)
      assert.isDefined(span)
      assert.strictEqual(span!._tag, "ExternalSpan")
      assert.strictEqual(span!.traceId, TRACE)
      assert.strictEqual(span!.spanId, SPAN)
      assert.isTrue(span!.sampled)
    }
    assert.isFalse(traceContext.parse(`00-${TRACE}-${SPAN}-00`)!.sampled)
    // Only bit 0 of the flags is "sampled".
    assert.isTrue(traceContext.parse(`00-${TRACE}-${SPAN}-03`)!.sampled)
    assert.isFalse(traceContext.parse(`00-${TRACE}-${SPAN}-02`)!.sampled)
  })

  it("accepts a later version with more fields, and ignores them", () => {
    assert.strictEqual(traceContext.parse(`01-${TRACE}-${SPAN}-01`)?.spanId, SPAN)
    assert.strictEqual(traceContext.parse(`cc-${TRACE}-${SPAN}-01-what-comes-next`)?.traceId, TRACE)
    assert.isUndefined(traceContext.parse(`cc-${TRACE}-${SPAN}-01x`))
  })

  it("ignores hostile and invalid values without throwing", () => {
    const hostile: Array<unknown> = [
      undefined,
      null,
      0,
      {},
      [],
      Symbol("x"),
      "",
      "00",
      VALID.slice(0, 54),
      `${VALID}-`, // version 00 has exactly 4 fields
      `${VALID} `,
      ` ${VALID}`,
      VALID.toUpperCase(),
      `00-${TRACE.toUpperCase()}-${SPAN}-01`,
      `ff-${TRACE}-${SPAN}-01`,
      `0g-${TRACE}-${SPAN}-01`,
      `00-${"0".repeat(32)}-${SPAN}-01`,
      `00-${TRACE}-${"0".repeat(16)}-01`,
      `00_${TRACE}-${SPAN}-01`,
      `00-${TRACE}_${SPAN}-01`,
      `00-${TRACE}-${SPAN}_01`,
      `00-${TRACE}-${SPAN}-0z`,
      `00-${TRACE.slice(1)}x-${SPAN}-01`,
      `00-${TRACE}-${SPAN.slice(0, 15)}\u00e9-01`,
      `00-${TRACE}-${SPAN}-01`.replace("a", "\u0000"),
      "x".repeat(100_000),
      ascii(`00-${TRACE}-${SPAN}-0\u00ff`),
      new Uint8Array(55),
      new Uint8Array(55).fill(0xff),
      new Uint8Array(1_000_000),
      Uint8Array.from([...ascii(VALID.slice(0, 54)), 0x80]),
      // A value whose accessors throw.
      new Proxy(new Uint8Array(55), {
        get() {
          throw new Error("hostile")
        }
      })
    ]
    hostile.forEach((value, index) => assert.isUndefined(traceContext.parse(value), `hostile value #${index}`))
    // Random bytes never throw, whatever they are.
    for (let i = 0; i < 2_000; i++) {
      const bytes = Uint8Array.from({ length: 50 + (i % 10) }, () => Math.floor(Math.random() * 256))
      traceContext.parse(bytes)
      traceContext.parse(String.fromCharCode(...bytes))
    }
  })

  it("formats a span, and reads back what it wrote", () => {
    const span = traceContext.parse(VALID)!
    assert.strictEqual(traceContext.format(span), VALID)
    const unsampled = Tracer.externalSpan({ traceId: TRACE, spanId: SPAN, sampled: false })
    assert.strictEqual(traceContext.format(unsampled), `00-${TRACE}-${SPAN}-00`)
    // A custom tracer's ids that are not W3C ids are not written.
    assert.isUndefined(traceContext.format(Tracer.externalSpan({ traceId: "abc", spanId: SPAN })))
    assert.isUndefined(traceContext.format(Tracer.externalSpan({ traceId: TRACE, spanId: "XYZ0000000000000" })))
  })

  it("Event.traceContext reads the first traceparent header, and ignores an invalid one", () => {
    const remote = Event.traceContext(eventWith([["x", "y"], ["traceparent", ascii(VALID)]]))
    assert.isTrue(Option.isSome(remote))
    assert.strictEqual(Option.getOrThrow(remote).spanId, SPAN)
    assert.isTrue(Option.isNone(Event.traceContext(eventWith([]))))
    assert.isTrue(Option.isNone(Event.traceContext(eventWith([["traceparent", "garbage"]]))))
    assert.isTrue(Option.isNone(Event.traceContext(eventWith([["Traceparent", VALID]]))))
  })

  it.effect("Event.withSpan makes the producer's span the parent", () =>
    Effect.gen(function*() {
      const { spans, tracer } = memoryTracer()
      yield* Effect.void.pipe(
        Event.withSpan(eventWith([["traceparent", VALID]]), "handle", { attributes: { extra: 1 } }),
        Effect.withTracer(tracer)
      )
      assert.strictEqual(spans.length, 1)
      const span = spans[0]
      assert.strictEqual(span.traceId, TRACE)
      assert.strictEqual(Option.getOrThrow(span.parent).spanId, SPAN)
      assert.strictEqual(span.kind, "consumer")
      assert.deepStrictEqual(Object.fromEntries(span.attributes), { topic: "t", partition: 2, offset: 7, extra: 1 })
      assert.strictEqual(span.status._tag, "Ended")
    }))
})

describe("trace context in memory", () => {
  const numbers = Channel.make({ value: Schema.Number, maxsize: 64 })

  it.effect("send inside a span writes traceparent only when a tracer is installed", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const { spans, tracer } = memoryTracer()
      // No tracer: nothing added.
      yield* channel.send({ value: 1 }).pipe(Effect.withSpan("untraced"))
      // A tracer but no span: nothing added.
      yield* channel.send({ value: 2 }).pipe(Effect.withTracer(tracer))
      // A span and a tracer.
      yield* channel.send({ value: 3 }).pipe(Effect.withSpan("produce"), Effect.withTracer(tracer))
      // The sender's own traceparent wins.
      yield* channel.send({ value: 4, headers: { traceparent: VALID } }).pipe(
        Effect.withSpan("produce"),
        Effect.withTracer(tracer)
      )
      const [e1, e2, e3, e4] = [yield* channel.get(), yield* channel.get(), yield* channel.get(), yield* channel.get()]
      assert.deepStrictEqual(e1.headers, [])
      assert.deepStrictEqual(e2.headers, [])
      const produce = spans.find((span) => span.name === "produce")!
      assert.deepStrictEqual(e3.headers, [["traceparent", `00-${produce.traceId}-${produce.spanId}-01`]])
      assert.deepStrictEqual(e4.headers, [["traceparent", VALID]])
    }).pipe(Effect.provide(AppTest)))

  const { spans, tracer } = memoryTracer()
  it.effect("an agent handles an event in a child span of the producer's; a batch links them", () =>
    Effect.gen(function*() {
      const channel = yield* numbers
      const batches = yield* numbers
      let handled = 0
      const single = yield* Agent.forEach("traced", channel, () =>
        Effect.sync(() => {
          handled++
        }))
      const batched = yield* Agent.forEach("batched", batches, (values) =>
        Effect.sync(() => {
          handled += values.length
        }), { batch: { size: 2, within: "1 hour" } })
      const fibers = [yield* Effect.forkChild(single.run), yield* Effect.forkChild(batched.run)]
      yield* channel.send({ value: 1 }).pipe(Effect.withSpan("produce-1"))
      yield* batches.send({ value: 2 }).pipe(Effect.withSpan("produce-2"))
      yield* batches.send({ value: 3 }).pipe(Effect.withSpan("produce-3"))
      yield* waitUntil(() => handled >= 3)
      yield* channel.end
      yield* batches.end
      yield* Fiber.joinAll(fibers)
      const byName = (name: string) => spans.find((span) => span.name === name)!
      const agentSpan = byName("agent traced")
      const producer = byName("produce-1")
      assert.strictEqual(agentSpan.traceId, producer.traceId)
      assert.strictEqual(Option.getOrThrow(agentSpan.parent).spanId, producer.spanId)
      assert.strictEqual(agentSpan.kind, "consumer")
      assert.strictEqual(agentSpan.attributes.get("agent"), "traced")
      const batchSpan = byName("agent batched")
      assert.isTrue(Option.isNone(batchSpan.parent))
      assert.deepStrictEqual(
        batchSpan.links.map((link) => link.span.spanId),
        [byName("produce-2").spanId, byName("produce-3").spanId]
      )
      assert.strictEqual(batchSpan.attributes.get("events"), 2)
    }).pipe(Effect.provide(AppTest), Effect.withTracer(tracer)))
})
