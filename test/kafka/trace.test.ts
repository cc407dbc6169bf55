/**
 * Trace context through a real broker (`npm run kafka:up`): a producer
 * program with a tracer of its own sends inside spans; consumer programs
 * (another app, another group, another tracer) continue the trace — the
 * agent's `agent <name>` span and `Event.withSpan` have the producer's span
 * as parent, in the producer's trace.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option, Schema, Stream, Tracer } from "effect"
import { Agent, Event } from "effect-faust"
import { Topic } from "effect-faust/kafka"
import { memoryTracer } from "../memoryTracer.ts"
import { brokerAvailable, eventually, kafkaLayer, unique } from "./setup.ts"

/** What the producer did: the span of each value (none for the last). */
interface Produced {
  readonly spans: Map<number, Tracer.Span>
}

/**
 * Sends 1 with `send`, 2 with `sendSoon`, 3 with `sendAll`, each in a span of
 * its own; 4 with `send` outside any span; 5 with `send` in a span but its own
 * `traceparent` header (kept as given).
 */
const produce = (name: string) => {
  const { tracer } = memoryTracer()
  return Effect.gen(function*() {
    const topic = yield* Topic.make({ topics: [name], value: Schema.Number })
    const spans = new Map<number, Tracer.Span>()
    const inSpan = (value: number, effect: Effect.Effect<unknown, unknown>) =>
      Effect.gen(function*() {
        spans.set(value, yield* Effect.currentSpan)
        yield* effect
      }).pipe(Effect.withSpan(`produce ${value}`))
    yield* inSpan(1, topic.send({ value: 1 }))
    yield* inSpan(2, Effect.flatMap(topic.sendSoon({ value: 2 }), (future) => future.await))
    yield* inSpan(3, topic.sendAll([3]))
    yield* topic.send({ value: 4 })
    yield* inSpan(5, topic.send({ value: 5, headers: [["traceparent", OWN]] }))
    return { spans } satisfies Produced
  }).pipe(Effect.withTracer(tracer), Effect.provide(kafkaLayer()))
}

const OWN = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

/** Checks that the handling span of each value continues the producer's span. */
const assertContinued = (produced: Produced, handling: Map<number, Tracer.Span | undefined>, name: string) => {
  for (const value of [1, 2, 3]) {
    const producer = produced.spans.get(value)!
    const span = handling.get(value)
    assert.isDefined(span, `value ${value} handled in a span`)
    assert.strictEqual(span!.name, name)
    assert.strictEqual(span!.kind, "consumer")
    assert.strictEqual(span!.traceId, producer.traceId, `value ${value}: the producer's trace`)
    const parent = Option.getOrThrow(span!.parent)
    assert.strictEqual(parent._tag, "ExternalSpan")
    assert.strictEqual(parent.spanId, producer.spanId, `value ${value}: the producer's span is the parent`)
    assert.isTrue(parent.sampled)
  }
  // A traceparent the sender gave is kept as it was.
  assert.strictEqual(handling.get(5)?.traceId, "0af7651916cd43dd8448eb211c80319c")
  assert.strictEqual(Option.getOrThrow(handling.get(5)!.parent).spanId, "b7ad6b7169203331")
}

const currentSpanOrUndefined = Effect.map(Effect.option(Effect.currentSpan), Option.getOrUndefined)

describe.skipIf(!brokerAvailable)("trace context through Kafka", () => {
  it.live(
    "an agent of another program handles each event in a child span of the producer's",
    () =>
      Effect.gen(function*() {
        const name = unique("trace-agent")
        const produced = yield* produce(name)
        const { spans, tracer } = memoryTracer()
        const handling = new Map<number, Tracer.Span | undefined>()
        yield* Effect.gen(function*() {
          const topic = yield* Topic.make({ topics: [name], value: Schema.Number })
          const agent = yield* Agent.forEach("traced", topic, (value) =>
            Effect.map(currentSpanOrUndefined, (span) => {
              handling.set(value, span)
            }))
          const fiber = yield* Effect.forkChild(agent.run)
          yield* eventually(() => handling.size >= 5, 30_000)
          yield* Fiber.interrupt(fiber)
        }).pipe(Effect.withTracer(tracer), Effect.provide(kafkaLayer()))
        assertContinued(produced, handling, "agent traced")
        // No traceparent: the agent makes no span.
        assert.notStrictEqual(handling.get(4)?.name, "agent traced")
        const agentSpan = handling.get(1)!
        assert.strictEqual(agentSpan.attributes.get("agent"), "traced")
        assert.strictEqual(agentSpan.attributes.get("topic"), name)
        assert.strictEqual(agentSpan.attributes.get("partition"), 0)
        assert.strictEqual(agentSpan.attributes.get("offset"), 0)
        assert.strictEqual(agentSpan.status._tag, "Ended")
        // The producer's spans live in the producer's tracer only: the consumer made just its own.
        assert.isTrue(spans.every((span) => span.name === "agent traced"))
      }).pipe(Effect.scoped),
    60_000
  )

  it.live("topic.events() with Event.withSpan continues the trace too", () =>
    Effect.gen(function*() {
      const name = unique("trace-stream")
      const produced = yield* produce(name)
      const { tracer } = memoryTracer()
      const handling = new Map<number, Tracer.Span | undefined>()
      const headers = new Map<number, string | undefined>()
      yield* Effect.gen(function*() {
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number })
        yield* topic.events().pipe(
          Stream.take(5),
          Stream.runForEach((event) =>
            Effect.map(currentSpanOrUndefined, (span) => {
              handling.set(event.value, span)
              const header = event.headers.find(([key]) => key === "traceparent")?.[1]
              headers.set(
                event.value,
                header === undefined ? undefined : new TextDecoder().decode(header as Uint8Array)
              )
            }).pipe(Event.withSpan(event, "handle"))
          )
        )
      }).pipe(Effect.withTracer(tracer), Effect.provide(kafkaLayer()))
      assertContinued(produced, handling, "handle")
      // Without traceparent, Event.withSpan still makes its span (a root one here).
      assert.strictEqual(handling.get(4)?.name, "handle")
      assert.isTrue(Option.isNone(handling.get(4)!.parent))
      // What is on the wire: the W3C header, sampled.
      const one = produced.spans.get(1)!
      assert.strictEqual(headers.get(1), `00-${one.traceId}-${one.spanId}-01`)
      assert.isUndefined(headers.get(4))
      assert.strictEqual(headers.get(5), OWN)
    }), 60_000)
})
