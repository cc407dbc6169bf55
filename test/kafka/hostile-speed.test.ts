/**
 * Hostile tests of the promises the performance work touched, on a real
 * broker, written from the README and the public API only: Schema encoding on
 * send and decoding on receive (compared with effect's own Schema results),
 * received bytes and equality, agents in batch mode, `sendSoon` under
 * backpressure and shutdown, and the per-event acknowledgement of streams.
 * Fresh topic and group names per test. Delivery figures are printed as
 * `[delivery] sent=… received=… lost=… duplicated=…`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Admin } from "@platformatic/kafka"
import {
  Cause,
  Deferred,
  Effect,
  Equal,
  Exit,
  Fiber,
  Hash,
  HashSet,
  Layer,
  Result,
  Schedule,
  Schema,
  Scope,
  Stream
} from "effect"
import { Agent, CodecError, Event, Message } from "effect-faust"
import { Kafka, KafkaError, Topic } from "effect-faust/kafka"
import { failureOf, quiet } from "../helpers.ts"
import { committedOffsets, observeCommits } from "./delivery.ts"
import { readRawRecords as readRaw } from "./raw.ts"
import { bootstrapServers, brokerAvailable, eventually, eventuallyEffect, kafkaLayer, unique } from "./setup.ts"

const utf8 = new TextEncoder()
const text = new TextDecoder()

const range = (count: number, from = 0) => Array.from({ length: count }, (_, i) => from + i)

const show = (u: unknown): string => {
  try {
    if (typeof u === "number" && Object.is(u, -0)) return "-0"
    if (typeof u === "number" && !Number.isFinite(u)) return String(u)
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

const ownValue = (u: unknown, key: PropertyKey): unknown => {
  if (typeof u !== "object" || u === null) return undefined
  const descriptor = Object.getOwnPropertyDescriptor(u, key)
  return descriptor !== undefined && "value" in descriptor ? descriptor.value : undefined
}

/** Every way `actual` differs from `expected` (effect's output): Object.is, prototypes, own keys in order. */
const differences = (actual: unknown, expected: unknown, path = "$", out: Array<string> = []): Array<string> => {
  if (typeof expected !== "object" || expected === null) {
    if (!Object.is(actual, expected)) out.push(`${path}: expected ${show(expected)}, got ${show(actual)}`)
    return out
  }
  if (typeof actual !== "object" || actual === null) {
    out.push(`${path}: expected an object, got ${show(actual)}`)
    return out
  }
  if (Object.getPrototypeOf(actual) !== Object.getPrototypeOf(expected)) out.push(`${path}: prototype differs`)
  const expectedKeys = Reflect.ownKeys(expected).map(String)
  const actualKeys = Reflect.ownKeys(actual).map(String)
  if (JSON.stringify(expectedKeys) !== JSON.stringify(actualKeys)) {
    out.push(`${path}: own keys ${JSON.stringify(actualKeys)}, effect gives ${JSON.stringify(expectedKeys)}`)
  }
  for (const key of Reflect.ownKeys(expected)) {
    if (Array.isArray(expected) && key === "length") continue
    differences(ownValue(actual, key), ownValue(expected, key), `${path}[${String(key)}]`, out)
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// 1. Schema encoding on send, decoding on receive
// ---------------------------------------------------------------------------------------------

class Person extends Schema.Class<Person>("Person")({ name: Schema.String, tags: Schema.Array(Schema.String) }) {}

const Odd = Schema.Struct({
  constructor: Schema.String,
  toString: Schema.Number,
  "0": Schema.String,
  "a\"b": Schema.String,
  "line\nbreak": Schema.String,
  "\u2028": Schema.String,
  "ключ😀": Schema.String,
  "": Schema.String
})

const Wire = Schema.Struct({
  id: Schema.Number,
  celsius: Schema.Number,
  tags: Schema.Array(Schema.String),
  kind: Schema.Literal("reading"),
  nothing: Schema.Null,
  odd: Odd,
  when: Schema.NumberFromString,
  person: Person,
  rows: Schema.Array(Schema.Struct({ n: Schema.Number, names: Schema.Array(Schema.String) })),
  choice: Schema.Union([
    Schema.Struct({ t: Schema.Literal("a"), x: Schema.String }),
    Schema.Struct({ t: Schema.Literal("b"), y: Schema.Number })
  ]),
  maybe: Schema.optionalKey(Schema.String),
  nullable: Schema.NullOr(Schema.Number)
})

const WireKey = Schema.Struct({ id: Schema.Number, region: Schema.String })

const odd = () => ({
  "": "empty",
  "ключ😀": "k",
  "\u2028": "ls",
  "line\nbreak": "nl",
  "a\"b": "q",
  "0": "zero",
  toString: 2,
  constructor: "c",
  undeclared: "dropped"
})

/** A class whose instances carry a field the Schema does not declare. */
class Row {
  readonly n: number
  readonly names: Array<string>
  readonly secret = "must not be sent"
  constructor(n: number, names: Array<string>) {
    this.n = n
    this.names = names
  }
}

class WireValue {
  readonly password = "must not be sent"
  readonly id: number
  readonly celsius = -0
  readonly tags = ["t"]
  readonly kind = "reading"
  readonly nothing = null
  readonly odd = odd()
  readonly when = 12.5
  readonly person = new Person({ name: "ada", tags: [] })
  readonly rows = [new Row(1, ["a"])]
  readonly choice = { y: 2, t: "b", x: "dropped" }
  readonly nullable = null
  constructor(id: number) {
    this.id = id
  }
}

const wireValue = (id: number): unknown => ({
  nullable: 3,
  choice: { t: "a", x: "x" },
  rows: [{ names: ["r"], n: -0, extra: true }, new Row(2, [])],
  person: new Person({ name: "grace", tags: ["navy"] }),
  when: -0,
  odd: odd(),
  nothing: null,
  kind: "reading",
  tags: ["a", "b"],
  celsius: 21.5,
  id,
  extra: { not: "declared" }
})

interface SendCase {
  readonly name: string
  readonly value: (id: number) => unknown
}

const sendCases: ReadonlyArray<SendCase> = [
  { name: "undeclared keys, scrambled order, -0, class instances inside", value: wireValue },
  { name: "a class instance as the whole value (with an undeclared password)", value: (id) => new WireValue(id) },
  {
    name: "a proxy of a valid value",
    value: (id) => new Proxy(wireValue(id) as object, { get: (t, k) => Reflect.get(t, k) })
  },
  {
    name: "a frozen value with the optional key present",
    value: (id) => Object.freeze({ ...(wireValue(id) as object), maybe: "here" })
  },
  {
    name: "a plain object where the Schema.Class wants an instance",
    value: (id) => ({ ...(wireValue(id) as object), person: { name: "x", tags: [] } })
  },
  { name: "a wrong nested type", value: (id) => ({ ...(wireValue(id) as object), rows: [{ n: "1", names: [] }] }) },
  { name: "a missing key", value: (id) => ({ ...(wireValue(id) as object), kind: undefined }) },
  { name: "a literal not matching", value: (id) => ({ ...(wireValue(id) as object), choice: { t: "c" } }) },
  { name: "a bigint where a number is", value: (id) => ({ ...(wireValue(id) as object), nullable: 1n }) }
]

/** Values on which effect's own encoder throws (rather than returning an issue). */
const throwingCases: ReadonlyArray<SendCase> = [
  {
    name: "a getter that throws",
    value: (id) =>
      Object.defineProperty(wireValue(id) as object, "tags", {
        enumerable: true,
        get() {
          throw new Error("getter boom")
        }
      })
  },
  {
    name: "a revoked proxy inside",
    value: (id) => {
      const { proxy, revoke } = Proxy.revocable({ n: 1, names: [] }, {})
      revoke()
      return { ...(wireValue(id) as object), rows: [proxy] }
    }
  },
  {
    name: "a proxy whose get trap throws",
    value: (id) =>
      new Proxy(wireValue(id) as object, {
        get: (t, k) => {
          if (k === "celsius") throw new Error("trap boom")
          return Reflect.get(t, k)
        }
      })
  }
]

type EncodeOutcome = { readonly _tag: "encoded"; readonly json: string } | {
  readonly _tag: "refused"
  readonly why: string
}

/** What effect's own Schema gives for the value, then the json codec. */
const effectEncode = (schema: Schema.Top, value: unknown): EncodeOutcome => {
  try {
    const result = Schema.encodeUnknownResult(schema as Schema.Codec<unknown, unknown>)(value)
    if (Result.isFailure(result)) return { _tag: "refused", why: result.failure.message }
    return { _tag: "encoded", json: JSON.stringify(result.success) }
  } catch (thrown) {
    return { _tag: "refused", why: `throws: ${String(thrown)}` }
  }
}

const effectDecodeJson = (schema: Schema.Top, json: string): unknown =>
  Schema.decodeUnknownSync(schema as Schema.Codec<unknown, unknown>)(JSON.parse(json))

describe.skipIf(!brokerAvailable)("hostile: Schema on the wire", () => {
  it.live(
    "send / sendSoon / sendAll write exactly effect's encoding (json of Schema.encodeUnknown), refuse what effect refuses with a typed CodecError, and the stream gives exactly effect's decoding",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-wire")
        const topic = yield* Topic.make({ topics: [name], key: WireKey, value: Wire, keySerializer: "json" })
        const problems: Array<string> = []
        const expectedById = new Map<number, string>()
        const keyById = new Map<number, string>()
        let id = 0
        for (const c of sendCases) {
          for (const method of ["send", "sendSoon", "sendAll"] as const) {
            const thisId = id++
            const key = { region: "eu", id: thisId, extra: "dropped" }
            const value = c.value(thisId)
            const expected = effectEncode(Wire, c.value(thisId))
            const exit = yield* Effect.exit(
              method === "send"
                ? topic.send({ key: key as any, value: value as any })
                : method === "sendSoon"
                ? Effect.flatMap(topic.sendSoon({ key: key as any, value: value as any }), (future) => future.await)
                : topic.sendAll([value as any])
            )
            if (expected._tag === "encoded") {
              if (Exit.isFailure(exit)) {
                problems.push(`${c.name} (${method}): effect encodes it, the topic failed: ${String(failureOf(exit))}`)
              } else {
                expectedById.set(thisId, expected.json)
                if (method !== "sendAll") keyById.set(thisId, JSON.stringify({ id: thisId, region: "eu" }))
              }
            } else if (Exit.isSuccess(exit)) {
              problems.push(`${c.name} (${method}): effect refuses it (${expected.why}), the topic sent it`)
            } else {
              const error = failureOf(exit)
              if (!(error instanceof CodecError)) {
                problems.push(
                  `${c.name} (${method}): expected a typed CodecError, got ${
                    Exit.isFailure(exit) && Cause.hasDies(exit.cause) ? "a defect: " : ""
                  }${String(error)}`
                )
              }
            }
          }
        }
        // what is on the wire, byte for byte
        const raw = yield* readRaw([name], expectedById.size)
        const wireProblems: Array<string> = []
        for (const record of raw) {
          const json = text.decode(record.value!)
          const recordId = (JSON.parse(json) as { id: number }).id
          if (json !== expectedById.get(recordId)) {
            wireProblems.push(`id ${recordId}: wrote ${json}\n  effect gives ${expectedById.get(recordId)}`)
          }
          if (keyById.has(recordId) && text.decode(record.key!) !== keyById.get(recordId)) {
            wireProblems.push(`id ${recordId}: key ${text.decode(record.key!)}, effect gives ${keyById.get(recordId)}`)
          }
          if (json.includes("must not be sent") || json.includes("dropped") || json.includes("declared")) {
            wireProblems.push(`id ${recordId}: an undeclared field reached the wire: ${json}`)
          }
        }
        // what the stream gives back
        const events = yield* topic.events().pipe(
          Stream.take(expectedById.size),
          Stream.runCollect,
          Effect.timeout("30 seconds")
        )
        const decodeProblems: Array<string> = []
        for (const event of events) {
          const json = text.decode(event.message.value as Uint8Array)
          for (const d of differences(event.value, effectDecodeJson(Wire, json))) decodeProblems.push(`value: ${d}`)
          if (event.key !== null) {
            const keyJson = text.decode(event.message.key as Uint8Array)
            for (const d of differences(event.key, effectDecodeJson(WireKey, keyJson))) decodeProblems.push(`key: ${d}`)
          }
          if (!(event.value.person instanceof Person)) decodeProblems.push("person is not a Person instance")
        }
        assert.deepStrictEqual(
          { problems, records: raw.length, wireProblems, decodeProblems },
          { problems: [], records: expectedById.size, wireProblems: [], decodeProblems: [] }
        )
      }).pipe(Effect.provide(kafkaLayer())),
    60_000
  )

  it.live(
    "a value whose getter or proxy trap throws while being encoded: send, sendSoon, sendAll and prepareValue fail with a typed CodecError (not a defect), and nothing is written",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-throwing")
        const topic = yield* Topic.make({ topics: [name], value: Wire })
        const problems: Array<string> = []
        for (const c of throwingCases) {
          for (const method of ["send", "sendSoon", "sendAll", "prepareValue"] as const) {
            const value = c.value(0) as any
            const exit = yield* Effect.exit(
              method === "send"
                ? topic.send({ value })
                : method === "sendSoon"
                ? Effect.flatMap(topic.sendSoon({ value }), (future) => future.await)
                : method === "sendAll"
                ? topic.sendAll([value])
                : topic.prepareValue(value)
            )
            if (Exit.isSuccess(exit)) problems.push(`${c.name} (${method}): succeeded`)
            else if (!(failureOf(exit) instanceof CodecError)) {
              problems.push(
                `${c.name} (${method}): ${Cause.hasDies(exit.cause) ? "a defect" : "an untyped failure"}: ${
                  String(failureOf(exit))
                }`
              )
            }
          }
        }
        // one good record after them: it is the only one on the wire
        yield* topic.send({ value: wireValue(1) as any })
        const raw = yield* readRaw([name], 1)
        assert.deepStrictEqual(problems, [])
        assert.strictEqual((JSON.parse(text.decode(raw[0].value!)) as { id: number }).id, 1)
      }).pipe(Effect.provide(kafkaLayer())),
    60_000
  )

  it.live(
    "an agent whose result for one event cannot be encoded for its sink topic (a throwing getter), onError then \"skip\": that event is skipped, the agent goes on",
    () =>
      Effect.gen(function*() {
        const source = yield* Topic.make({
          topics: [unique("speed-sink-src")],
          key: Schema.String,
          value: Schema.Number
        })
        const sink = yield* Topic.make({
          topics: [unique("speed-sink-out")],
          value: Schema.Struct({ n: Schema.Number })
        })
        yield* sink.maybeDeclare
        yield* produceIds(source, range(10))
        const agent = yield* Agent.forEach("speed-sink", source, (value) =>
          Effect.succeed(
            value === 4
              ? Object.defineProperty({}, "n", {
                enumerable: true,
                get() {
                  throw new Error("getter boom")
                }
              }) as { n: number }
              : { n: value }
          ), { sinks: [sink], onError: { then: "skip" } })
        const exit = yield* agent.run.pipe(Effect.timeout("2 seconds"), Effect.exit)
        const outcome = Exit.isFailure(exit)
          ? Cause.hasDies(exit.cause) ? `died: ${String(failureOf(exit))}` : `failed: ${String(failureOf(exit))}`
          : "running"
        console.log(
          `[wire] agent with an unencodable sink value: ${outcome}; stats ${
            JSON.stringify({ ...agent.stats, processing: undefined })
          }`
        )
        const out = yield* sink.stream().pipe(
          Stream.take(9),
          Stream.runCollect,
          Effect.timeout("20 seconds"),
          Effect.option
        )
        assert.strictEqual(agent.stats.skipped, 1, "the event is skipped")
        assert.strictEqual(agent.stats.handled, 9, "the others are handled")
        assert.isTrue(out._tag === "Some", "the other nine reach the sink")
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "Schema.Number's NaN, Infinity, -Infinity and -0: what send accepts, a reader gets back (or send refuses it, typed) — no record that no reader of the topic can decode",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-nan")
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number, onDecodeError: "skip" })
        const inputs = [NaN, Infinity, -Infinity, -0, 1]
        const sent: Array<number> = []
        const outcomes: Array<string> = []
        for (const value of inputs) {
          const exit = yield* Effect.exit(topic.send({ value }))
          if (Exit.isSuccess(exit)) sent.push(value)
          else {
            const error = failureOf(exit)
            outcomes.push(`${show(value)}: refused with ${error instanceof CodecError ? "CodecError" : String(error)}`)
            assert.instanceOf(error, CodecError, `${String(value)}: refused, typed`)
          }
        }
        // the last value is 1: the reader stops there; anything skipped on the way is a record the
        // topic accepted but cannot read back
        const got = yield* topic.stream().pipe(
          Stream.takeUntil((n) => n === 1),
          Stream.runCollect,
          Effect.timeout("30 seconds")
        )
        const raw = yield* readRaw([name], sent.length)
        console.log(
          `[wire] Schema.Number sends: accepted ${sent.map(show).join(", ")}; ${
            outcomes.join("; ") || "none refused"
          }; ` +
            `on the wire ${raw.map((r) => text.decode(r.value!)).join(", ")}; read back ${
              got.map(show).join(", ")
            }; skipped ${topic.decodeErrorCounts.skipped}`
        )
        assert.strictEqual(topic.decodeErrorCounts.skipped, 0, "every accepted record decodes")
        assert.deepStrictEqual(got.map(show), sent.map((n) => show(Object.is(n, -0) ? 0 : n)))
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "a refused value in the middle of a sendSoon run: only it fails (typed), the records around it are sent once",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-mixed")
        const topic = yield* Topic.make({ topics: [name], value: Schema.Struct({ n: Schema.Finite }) })
        const futures = []
        const refusals: Array<unknown> = []
        for (const n of range(300)) {
          const value = n % 50 === 7 ? { n: NaN } : n % 50 === 9 ? { n: "x" } : { n, extra: n }
          const exit = yield* Effect.exit(topic.sendSoon({ value: value as any }))
          if (Exit.isSuccess(exit)) futures.push([n, exit.value] as const)
          else refusals.push(failureOf(exit))
        }
        const results = yield* Effect.forEach(futures, ([n, future]) =>
          Effect.map(Effect.exit(future.await), (exit) => [n, exit] as const))
        const failedLate = results.filter(([, exit]) =>
          Exit.isFailure(exit)
        )
        // refused ones fail typed either at sendSoon or on their future
        const refusedNs = new Set([...range(300)].filter((n) => n % 50 === 7 || n % 50 === 9))
        for (const error of refusals) assert.instanceOf(error, CodecError)
        for (const [n, exit] of failedLate) {
          assert.isTrue(refusedNs.has(n), `${n} failed but is valid: ${String(failureOf(exit))}`)
          assert.instanceOf(failureOf(exit), CodecError)
        }
        assert.strictEqual(refusals.length + failedLate.length, refusedNs.size, "each refused value fails")
        const raw = yield* readRaw([name], 300 - refusedNs.size)
        const ns = raw.map((r) => (JSON.parse(text.decode(r.value!)) as { n: number }).n)
        assert.deepStrictEqual(ns, range(300).filter((n) => !refusedNs.has(n)), "the others, once, in order")
        assert.isFalse(raw.some((r) => text.decode(r.value!).includes("extra")), "no undeclared key on the wire")
      }).pipe(Effect.provide(kafkaLayer())),
    60_000
  )
})

// ---------------------------------------------------------------------------------------------
// 2. Received bytes, equality, mutation
// ---------------------------------------------------------------------------------------------

const bytesOf = (u: unknown): Array<number> => [...(u as Uint8Array)]

describe.skipIf(!brokerAvailable)("hostile: received bytes", () => {
  it.live(
    "key, value and header bytes arrive as Uint8Arrays holding exactly the bytes sent; the event and its message equal (Equal.equals, same Hash) a Message.make / Event.make of the same bytes; two subscribers get equal events",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-bytes")
        const topic = yield* Topic.make({
          topics: [name],
          key: Schema.String,
          value: Schema.String,
          valueSerializer: "raw"
        })
        const binary = new Uint8Array([0, 255, 1, 254, 0xc3, 0x28])
        yield* topic.send({
          key: "k-ü",
          value: "v-😀",
          headers: [["h-text", "t"], ["h-bin", binary], ["h-text", "again"]]
        })
        yield* topic.send({ key: "k2", value: "" + "x".repeat(5000), headers: { only: "one" } })
        const first = yield* topic.events().pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
        const second = yield* topic.events().pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
        const a = yield* Fiber.join(first).pipe(Effect.timeout("30 seconds"))
        const b = yield* Fiber.join(second).pipe(Effect.timeout("30 seconds"))
        const [e0, e1] = a
        const problems: Array<string> = []
        for (const [what, u] of [["key", e0.message.key], ["value", e0.message.value]] as const) {
          if (!(u instanceof Uint8Array)) {
            problems.push(`${what} is not a Uint8Array: ${Object.prototype.toString.call(u)}`)
          }
        }
        assert.deepStrictEqual(bytesOf(e0.message.key), bytesOf(utf8.encode("k-ü")))
        assert.deepStrictEqual(bytesOf(e0.message.value), bytesOf(utf8.encode("v-😀")))
        assert.strictEqual(e0.key, "k-ü")
        assert.strictEqual(e0.value, "v-😀")
        assert.deepStrictEqual(e0.message.headers.map(([n]) => n), ["h-text", "h-bin", "h-text"])
        for (const [n, v] of e0.message.headers) {
          if (!(v instanceof Uint8Array)) {
            problems.push(`header ${n} is not bytes: ${Object.prototype.toString.call(v)}`)
          }
        }
        assert.deepStrictEqual(bytesOf(e0.message.headers[1][1]), [...binary])
        assert.deepStrictEqual(bytesOf(e0.message.headers[0][1]), bytesOf(utf8.encode("t")))
        assert.strictEqual(e0.message.serializedKeySize, utf8.encode("k-ü").byteLength)
        assert.strictEqual(e1.message.serializedValueSize, 5000)
        // a user-built message of the same bytes, in fresh plain Uint8Arrays
        const rebuilt = Message.make({
          topic: e0.message.topic,
          partition: e0.message.partition,
          offset: e0.message.offset,
          timestamp: e0.message.timestamp,
          timestampType: e0.message.timestampType,
          generationId: e0.message.generationId,
          key: new Uint8Array(utf8.encode("k-ü")),
          value: new Uint8Array(utf8.encode("v-😀")),
          headers: [["h-text", utf8.encode("t")], ["h-bin", new Uint8Array(binary)], ["h-text", utf8.encode("again")]]
        })
        if (!Equal.equals(e0.message, rebuilt)) {
          problems.push("the received message does not equal Message.make of the same bytes")
        }
        if (!Equal.equals(rebuilt, e0.message)) {
          problems.push("Message.make of the same bytes does not equal the received message")
        }
        if (Hash.hash(e0.message) !== Hash.hash(rebuilt)) problems.push("equal messages hash differently")
        const rebuiltEvent = Event.make({ key: "k-ü", value: "v-😀", headers: rebuilt.headers, message: rebuilt })
        if (!Equal.equals(e0, rebuiltEvent)) {
          problems.push("the received event does not equal Event.make of the same data")
        }
        if (Hash.hash(e0) !== Hash.hash(rebuiltEvent)) problems.push("equal events hash differently")
        if (!Equal.equals(a[0], b[0]) || !Equal.equals(a[1], b[1])) problems.push("two subscribers' events differ")
        if (Equal.equals(a[0], a[1])) problems.push("two different records are equal")
        if (!HashSet.has(HashSet.fromIterable([a[0].message, a[1].message]), rebuilt)) {
          problems.push("a HashSet of received messages does not find the rebuilt one")
        }
        assert.deepStrictEqual(problems, [])
      }).pipe(Effect.provide(kafkaLayer())),
    60_000
  )

  it.live(
    "bytes held on to stay intact while later fetches arrive: 3 000 records in many fetches, every kept event's key, value and header bytes still those sent",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-hold")
        const topic = yield* Topic.make({
          topics: [name],
          key: Schema.String,
          value: Schema.String,
          valueSerializer: "raw",
          partitions: 2
        })
        const total = 3_000
        const valueFor = (i: number) => `${i}:${"abcdefghij".repeat(1 + (i * 7) % 13)}:${i}`
        const kept: Array<Event.Event<string | null, string>> = []
        const reader = yield* topic.events().pipe(
          Stream.take(total),
          Stream.runForEach((event) => Effect.sync(() => kept.push(event))),
          Effect.forkChild
        )
        // produced in many small runs, so the reader gets many fetches while it holds the earlier ones
        for (let from = 0; from < total; from += 100) {
          yield* Effect.forEach(range(100, from), (i) =>
            topic.sendSoon({ key: `k${i}`, value: valueFor(i), headers: [["i", String(i)]] }), { discard: true })
          yield* Effect.sleep("15 millis")
        }
        yield* Fiber.join(reader).pipe(Effect.timeout("40 seconds"))
        const corrupt: Array<string> = []
        for (const event of kept) {
          const i = Number(event.value.split(":")[0])
          if (text.decode(event.message.value as Uint8Array) !== valueFor(i)) {
            corrupt.push(`value of ${i}`)
          }
          if (text.decode(event.message.key as Uint8Array) !== `k${i}`) {
            corrupt.push(`key of ${i}`)
          }
          if (text.decode(event.message.headers[0][1] as Uint8Array) !== String(i)) {
            corrupt.push(`header of ${i}`)
          }
        }
        const ids = new Set(kept.map((event) =>
          Number(event.value.split(":")[0])
        ))
        console.log(
          `[delivery] held bytes: sent=${total} received=${ids.size} lost=${total - ids.size} duplicated=${
            kept.length - ids.size
          }`
        )
        assert.deepStrictEqual(corrupt.slice(0, 10), [])
        assert.strictEqual(ids.size, total)
      }).pipe(Effect.provide(kafkaLayer())),
    60_000
  )

  it.live(
    "a subscriber that overwrites some events' bytes in place: the other records' bytes, the decoded values and the dead letters (original bytes, non-UTF-8 header names, null header values) are untouched; what the other subscriber sees of the overwritten ones is reported",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-mutate")
        const dlName = unique("speed-mutate-dl")
        const kafka = yield* Kafka.Kafka
        const dead = yield* Topic.make({ topics: [dlName], value: Schema.Unknown, valueSerializer: "raw" })
        const topic = yield* Topic.make({
          topics: [name],
          value: Schema.Struct({ n: Schema.Number }),
          onDecodeError: { deadLetter: dead }
        })
        yield* topic.maybeDeclare
        yield* dead.maybeDeclare
        const strangeName = new Uint8Array([0xff, 0xfe, 0x41])
        const records = range(40).map((i) => {
          const bad = i % 4 === 1
          return {
            topic: name,
            partition: 0,
            key: utf8.encode(`key-${i}`),
            value: bad ? new Uint8Array([0x7b, 0xff, i]) : utf8.encode(JSON.stringify({ n: i })),
            headers: [],
            rawHeaders: [[strangeName, utf8.encode(`h${i}`)], [utf8.encode("nothing"), null]] as const,
            timestamp: Date.now()
          }
        })
        const originals = records.map((r) => ({ key: [...r.key], value: [...r.value] }))
        yield* kafka.produce(records)
        const good = records.length - records.filter((_, i) => i % 4 === 1).length
        // the mutating subscriber reads first, the other one once it is done
        const mutated = yield* Deferred.make<void>()
        const mutator = yield* topic.events().pipe(
          Stream.take(good),
          Stream.runForEach((event) =>
            Effect.sync(() => {
              if (event.value.n % 3 !== 0) return
              ;(event.message.value as Uint8Array).fill(0x30)
              ;(event.message.key as Uint8Array).fill(0x30)
              for (const [, v] of event.message.headers) if (v instanceof Uint8Array) v.fill(0x30)
            })
          ),
          Effect.andThen(Deferred.succeed(mutated, undefined)),
          Effect.forkChild
        )
        const other = yield* topic.events().pipe(
          Stream.take(good),
          Stream.mapEffect((event) => Effect.as(Deferred.await(mutated), event)),
          Stream.runCollect,
          Effect.forkChild
        )
        yield* Fiber.join(mutator).pipe(Effect.timeout("30 seconds"))
        const seenByOther = yield* Fiber.join(other).pipe(Effect.timeout("30 seconds"))
        // Records the first subscriber did not touch must be intact everywhere (no overlapping
        // buffers); for the ones it overwrote, the README calls messages immutable and promises no
        // private copy per subscriber, so what the other one sees is only reported.
        const otherProblems: Array<string> = []
        let sharedOverwritten = 0
        for (const event of seenByOther) {
          const i = event.value.n
          const intact = JSON.stringify(bytesOf(event.message.value)) === JSON.stringify(originals[i].value) &&
            JSON.stringify(bytesOf(event.message.key)) === JSON.stringify(originals[i].key) &&
            text.decode(event.message.headers[0][1] as Uint8Array) === `h${i}`
          if (i % 3 === 0) {
            if (!intact) sharedOverwritten++
          } else if (!intact) otherProblems.push(`record ${i}: bytes changed though nobody wrote to them`)
        }
        const letters = yield* readRaw([dlName], records.length - good)
        const letterProblems: Array<string> = []
        for (const letter of letters) {
          const offset = Number(text.decode(letter.headers.find(([n]) => text.decode(n) === "x-source-offset")![1]!))
          if (JSON.stringify([...letter.value!]) !== JSON.stringify(originals[offset].value)) {
            letterProblems.push(`dl ${offset}: value`)
          }
          if (JSON.stringify([...letter.key!]) !== JSON.stringify(originals[offset].key)) {
            letterProblems.push(`dl ${offset}: key`)
          }
          const strange = letter.headers.find(([n]) => JSON.stringify([...n]) === JSON.stringify([...strangeName]))
          if (strange === undefined || text.decode(strange[1]!) !== `h${offset}`) {
            letterProblems.push(`dl ${offset}: strange header`)
          }
          const nothing = letter.headers.find(([n]) => text.decode(n) === "nothing")
          if (nothing === undefined || nothing[1] !== null) letterProblems.push(`dl ${offset}: null header`)
        }
        const touched = seenByOther.filter((event) => event.value.n % 3 === 0).length
        console.log(
          `[mutation] the first subscriber overwrote the bytes of ${touched} events in place; the second subscriber's events of those records: ${sharedOverwritten} overwritten too (shared bytes), ${
            touched - sharedOverwritten
          } intact`
        )
        assert.deepStrictEqual(letterProblems, [], "dead letters keep the original bytes")
        assert.strictEqual(letters.length, records.length - good)
        assert.deepStrictEqual(seenByOther.map((event) => event.value.n), range(40).filter((i) => i % 4 !== 1))
        assert.deepStrictEqual(otherProblems, [], "records nobody wrote to")
      }).pipe(Effect.provide(kafkaLayer()), Effect.provide(quiet)),
    60_000
  )
})

// ---------------------------------------------------------------------------------------------
// 3. Agents in batch mode on a topic, concurrency 1
// ---------------------------------------------------------------------------------------------

/** Sends the ids (key `k<id % keys>`) with sendSoon and waits for every acknowledgement. */
const produceIds = (topic: Topic.Topic<string, number>, ids: ReadonlyArray<number>, keys = 16) =>
  Effect.gen(function*() {
    const futures = yield* Effect.forEach(ids, (id) => topic.sendSoon({ key: `k${id % keys}`, value: id }))
    yield* Effect.forEach(futures, (future) => future.await, { discard: true })
  })

/** Watches the group's commits: none may cover an offset not yet finished. */
const commitGuard = (groupId: string) => {
  const finished = new Map<number, Set<number>>()
  const violations: Array<string> = []
  const stop = observeCommits(groupId, (partition, offset) => {
    const done = finished.get(partition) ?? new Set()
    for (let o = 0; o < offset; o++) {
      if (!done.has(o)) {
        violations.push(`partition ${partition} committed ${offset} before offset ${o} finished`)
        break
      }
    }
  })
  return {
    finish: (partition: number, offset: number) => {
      const done = finished.get(partition) ?? new Set()
      done.add(offset)
      finished.set(partition, done)
    },
    violations,
    stop
  }
}

/** Ids handled, with where they came from; prints the delivery line. */
class Seen {
  readonly sent = new Set<number>()
  readonly deliveries = new Map<number, Array<string>>()
  receive(id: number, partition: number, offset: number) {
    const places = this.deliveries.get(id)
    if (places === undefined) this.deliveries.set(id, [`${partition}/${offset}`])
    else places.push(`${partition}/${offset}`)
  }
  get complete() {
    for (const id of this.sent) if (!this.deliveries.has(id)) return false
    return true
  }
  report(test: string) {
    let lost = 0
    for (const id of this.sent) if (!this.deliveries.has(id)) lost++
    let duplicated = 0
    for (const places of this.deliveries.values()) duplicated += places.length - 1
    const counts = { sent: this.sent.size, received: this.deliveries.size, lost, duplicated }
    console.log(
      `[delivery] ${test}: sent=${counts.sent} received=${counts.received} lost=${counts.lost} duplicated=${counts.duplicated}`
    )
    return counts
  }
}

const sumCommitted = (groupId: string, name: string) =>
  Effect.map(committedOffsets(groupId, name), (committed) => [...committed.values()].reduce((a, b) => a + b, 0))

describe.skipIf(!brokerAvailable)("hostile: agents in batch mode on a topic", () => {
  it.live(
    "bursts with quiet gaps: batches of at most the size, a partial batch closes about `within` after its first event (not before, not much later), every event once, no commit past an unfinished event, inFlight back to 0",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-batch-bursts")
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number, partitions: 3 })
        yield* topic.maybeDeclare
        const guard = commitGuard(topic.groupId)
        const seen = new Seen()
        const batches: Array<{ readonly size: number; readonly at: number }> = []
        const agent = yield* Agent.forEach("speed-batch-bursts", topic, (values, events) =>
          Effect.gen(function*() {
            batches.push({ size: values.length, at: Date.now() })
            yield* Effect.sleep(`${Math.floor(Math.random() * 20)} millis`)
            events.forEach((event, i) => {
              seen.receive(values[i], event.message.partition, event.message.offset)
              guard.finish(event.message.partition, event.message.offset)
            })
          }), { batch: { size: 7, within: "400 millis" } })
        const fiber = yield* Effect.forkChild(agent.run)
        // a backlog first, then small bursts separated by quiet gaps longer than the window
        const backlog = range(500)
        for (const id of backlog) seen.sent.add(id)
        yield* produceIds(topic, backlog)
        yield* eventually(() => seen.complete, 30_000)
        const timings: Array<{ readonly size: number; readonly delay: number }> = []
        let next = 500
        for (const burst of [3, 1, 5]) {
          const ids = range(burst, next)
          next += burst
          for (const id of ids) seen.sent.add(id)
          const before = batches.length
          const sentAt = Date.now()
          yield* produceIds(topic, ids, 1) // one key: one partition, so one partial batch
          yield* eventually(() => seen.complete, 10_000)
          const mine = batches.slice(before)
          timings.push({ size: mine.reduce((a, b) => a + b.size, 0), delay: mine[0].at - sentAt })
          assert.strictEqual(mine.length, 1, `the burst of ${burst} is one batch: ${JSON.stringify(mine)}`)
        }
        yield* Fiber.interrupt(fiber)
        guard.stop()
        const counts = seen.report("agent batch (size 7, within 400 ms), bursts with quiet gaps")
        console.log(`[batch] partial batches: ${JSON.stringify(timings)}`)
        assert.deepStrictEqual(guard.violations, [])
        assert.strictEqual(counts.lost, 0)
        assert.strictEqual(counts.duplicated, 0)
        assert.isAtMost(Math.max(...batches.map((b) => b.size)), 7)
        for (const t of timings) {
          assert.isAtLeast(t.delay, 390, `a partial batch of ${t.size} waits for the window`)
          assert.isAtMost(t.delay, 400 + 1_500, `a partial batch of ${t.size} closes within the window (plus a fetch)`)
        }
        assert.strictEqual(agent.stats.inFlight, 0)
        assert.strictEqual(agent.stats.handled, next)
        assert.strictEqual(yield* sumCommitted(topic.groupId, name), next, "everything handled is committed")
      }).pipe(Effect.provide(kafkaLayer({ commitInterval: "50 millis" }))),
    60_000
  )

  for (const how of ["interrupting agent.run", "closing Agent.layer"] as const) {
    it.live(
      `stopped mid-batch by ${how}: the running batch finishes, the partial batch is handled, both are committed; a new agent of the group goes on from there — nothing lost, nothing handled twice`,
      () =>
        Effect.gen(function*() {
          const name = unique("speed-batch-stop")
          const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number, partitions: 2 })
          const guard = commitGuard(topic.groupId)
          const seen = new Seen()
          // more than an agent reads ahead (256 in flight plus one read of up to 1024), so the
          // second agent has work left
          const ids = range(4_000)
          for (const id of ids) seen.sent.add(id)
          yield* produceIds(topic, ids)
          const inBatch = yield* Deferred.make<void>()
          const finishedBatches: Array<number> = []
          let started = 0
          // the first agent's window is long, so what it read past its last full batch is a partial
          // batch at the stop; the second one's is short, so its last batch closes soon
          const makeAgent = (agentName: string, slow: boolean) =>
            Agent.forEach(agentName, topic, (values, events) =>
              Effect.gen(function*() {
                started++
                if (slow) yield* Effect.sleep("2 millis")
                if (slow && started === 3) {
                  yield* Deferred.succeed(inBatch, undefined)
                  yield* Effect.sleep("700 millis") // the stop arrives while this batch runs
                }
                events.forEach((event, i) => {
                  seen.receive(values[i], event.message.partition, event.message.offset)
                  guard.finish(event.message.partition, event.message.offset)
                })
                finishedBatches.push(values.length)
              }), { batch: { size: 40, within: slow ? "30 seconds" : "200 millis" } })
          const first = yield* makeAgent("speed-batch-stop-1", true)
          if (how === "interrupting agent.run") {
            const fiber = yield* Effect.forkChild(first.run)
            yield* Deferred.await(inBatch)
            const stoppedAt = Date.now()
            yield* Fiber.interrupt(fiber).pipe(Effect.timeout("20 seconds"))
            assert.isAtLeast(Date.now() - stoppedAt, 500, "the stop waited for the running batch")
          } else {
            const scope = yield* Scope.make()
            yield* Layer.buildWithScope(Agent.layer(first), scope)
            yield* Deferred.await(inBatch)
            yield* Scope.close(scope, Exit.void).pipe(Effect.timeout("20 seconds"))
          }
          const handledByFirst = new Set(seen.deliveries.keys())
          const firstBatches = [...finishedBatches]
          assert.strictEqual(first.stats.inFlight, 0, "nothing left in flight")
          // what the first agent handled is committed: a second agent starts right after it
          const committedAfterFirst = yield* sumCommitted(topic.groupId, name)
          assert.strictEqual(committedAfterFirst, handledByFirst.size, "the stop committed exactly what was handled")
          const second = yield* makeAgent("speed-batch-stop-2", false)
          const fiber2 = yield* Effect.forkChild(second.run)
          yield* eventually(() => seen.complete, 30_000)
          yield* Fiber.interrupt(fiber2)
          guard.stop()
          const counts = seen.report(`agent batch stopped mid-batch by ${how}, then a second agent`)
          console.log(
            `[batch] first agent handled ${handledByFirst.size} in ${firstBatches.length} batches (the last ${
              firstBatches.at(-1)
            })`
          )
          assert.deepStrictEqual(guard.violations, [])
          assert.strictEqual(counts.lost, 0)
          assert.strictEqual(counts.duplicated, 0, "a graceful stop leaves nothing handled and uncommitted")
          assert.strictEqual(second.stats.inFlight, 0)
          assert.strictEqual(yield* sumCommitted(topic.groupId, name), ids.length)
        }).pipe(Effect.provide(kafkaLayer({ commitInterval: "5 seconds" })), Effect.provide(quiet)),
      60_000
    )
  }

  it.live(
    "a partial batch waiting for its window when the agent stops is handled and committed at once (the stop does not wait for the window)",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-batch-partial")
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number })
        const seen = new Seen()
        const sizes: Array<number> = []
        const ids = range(45)
        for (const id of ids) seen.sent.add(id)
        yield* produceIds(topic, ids)
        const agent = yield* Agent.forEach("speed-batch-partial", topic, (values, events) =>
          Effect.sync(() => {
            sizes.push(values.length)
            events.forEach((e, i) => seen.receive(values[i], e.message.partition, e.message.offset))
          }), { batch: { size: 40, within: "30 seconds" } })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* eventually(() => sizes.length === 1, 20_000)
        yield* Effect.sleep("300 millis") // the other 5 are read and wait for the window
        assert.deepStrictEqual(sizes, [40])
        const stoppedAt = Date.now()
        yield* Fiber.interrupt(fiber).pipe(Effect.timeout("10 seconds"))
        const took = Date.now() - stoppedAt
        const counts = seen.report("agent batch, partial batch at stop")
        assert.deepStrictEqual(sizes, [40, 5])
        assert.isBelow(took, 5_000, "the stop does not wait for the 30 s window")
        assert.strictEqual(counts.lost, 0)
        assert.strictEqual(agent.stats.inFlight, 0)
        assert.strictEqual(yield* sumCommitted(topic.groupId, name), 45)
      }).pipe(Effect.provide(kafkaLayer({ commitInterval: "5 seconds" }))),
    60_000
  )

  it.live(
    "a batch failing on its first attempt, retried (onError.retry): every event handled once, the retries counted, no commit past the batch while it is retried",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-batch-retry")
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number, partitions: 2 })
        const guard = commitGuard(topic.groupId)
        const seen = new Seen()
        const ids = range(1_000)
        for (const id of ids) seen.sent.add(id)
        yield* produceIds(topic, ids)
        const failedOnce = new Set<number>()
        let failingBatches = 0
        const agent = yield* Agent.forEach("speed-batch-retry", topic, (values, events) =>
          Effect.gen(function*() {
            const trigger = values.find((v) => v % 97 === 0 && !failedOnce.has(v))
            if (trigger !== undefined) {
              failedOnce.add(trigger)
              failingBatches++
              return yield* Effect.fail(new Error(`batch with ${trigger} fails once`))
            }
            events.forEach((e, i) => {
              seen.receive(values[i], e.message.partition, e.message.offset)
              guard.finish(e.message.partition, e.message.offset)
            })
          }), { batch: { size: 30, within: "100 millis" }, onError: { retry: Schedule.recurs(3) } })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* eventually(() => seen.complete, 30_000)
        yield* eventuallyEffect(Effect.map(sumCommitted(topic.groupId, name), (n) => n === ids.length), 10_000)
        yield* Fiber.interrupt(fiber)
        guard.stop()
        const counts = seen.report("agent batch, each batch with a multiple of 97 failing once, retried")
        assert.deepStrictEqual(guard.violations, [])
        assert.strictEqual(counts.lost, 0)
        assert.strictEqual(counts.duplicated, 0)
        assert.strictEqual(agent.stats.retries, failingBatches)
        assert.strictEqual(agent.stats.handled, ids.length)
        assert.strictEqual(agent.stats.failed, 0)
        assert.strictEqual(agent.stats.inFlight, 0)
      }).pipe(Effect.provide(kafkaLayer({ commitInterval: "50 millis" })), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "a batch that keeps failing, then \"skip\": the whole batch is skipped (counted per event), the rest handled, all committed",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-batch-skip")
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number })
        const guard = commitGuard(topic.groupId)
        const seen = new Seen()
        const ids = range(500)
        for (const id of ids) seen.sent.add(id)
        yield* produceIds(topic, ids)
        const skippedIds = new Set<number>()
        const attempts = new Map<string, number>()
        const agent = yield* Agent.forEach("speed-batch-skip", topic, (values, events) =>
          Effect.gen(function*() {
            if (values.includes(13) || values.includes(250)) {
              const key = values.join(",")
              const attempt = (attempts.get(key) ?? 0) + 1
              attempts.set(key, attempt)
              if (attempt === 2) {
                // the last attempt: what the policy does next finishes these events
                values.forEach((v) => skippedIds.add(v))
                events.forEach((e) => guard.finish(e.message.partition, e.message.offset))
              }
              return yield* Effect.fail(new Error("always"))
            }
            events.forEach((e, i) => {
              seen.receive(values[i], e.message.partition, e.message.offset)
              guard.finish(e.message.partition, e.message.offset)
            })
          }), { batch: { size: 20, within: "100 millis" }, onError: { retry: Schedule.recurs(1), then: "skip" } })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* eventually(() => seen.deliveries.size + skippedIds.size >= ids.length, 30_000)
        yield* eventuallyEffect(Effect.map(sumCommitted(topic.groupId, name), (n) => n === ids.length), 10_000)
        yield* Fiber.interrupt(fiber)
        guard.stop()
        for (const id of skippedIds) seen.receive(id, -1, -1)
        const counts = seen.report("agent batch, two batches failing for good, skipped")
        assert.deepStrictEqual(guard.violations, [])
        assert.strictEqual(counts.lost, 0)
        assert.strictEqual(counts.duplicated, 0)
        assert.isTrue(skippedIds.has(13) && skippedIds.has(250))
        assert.strictEqual(agent.stats.skipped, skippedIds.size, "skipped counts each event of the batch")
        assert.strictEqual(agent.stats.handled + agent.stats.skipped, ids.length)
        assert.strictEqual(agent.stats.inFlight, 0)
      }).pipe(Effect.provide(kafkaLayer({ commitInterval: "50 millis" })), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "a batch that keeps failing, then deadLetter: every event of the batch is dead-lettered with its original bytes and x-* headers, the rest handled, all committed",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-batch-dl")
        const dlName = unique("speed-batch-dl-out")
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number })
        const dead = yield* Topic.make({ topics: [dlName], keySerializer: "raw", valueSerializer: "raw" })
        yield* dead.maybeDeclare
        const seen = new Seen()
        const ids = range(300)
        for (const id of ids) seen.sent.add(id)
        yield* produceIds(topic, ids)
        const failingOffsets = new Set<number>()
        const agent = yield* Agent.forEach("speed-batch-dl", topic, (values, events) =>
          Effect.gen(function*() {
            if (values.includes(77)) {
              events.forEach((e) => failingOffsets.add(e.message.offset))
              return yield* Effect.fail(new Error("refused"))
            }
            events.forEach((e, i) => seen.receive(values[i], e.message.partition, e.message.offset))
          }), { batch: { size: 25, within: "100 millis" }, onError: { then: { deadLetter: dead } } })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* eventually(() => seen.deliveries.size + failingOffsets.size >= ids.length, 30_000)
        yield* eventuallyEffect(Effect.map(sumCommitted(topic.groupId, name), (n) => n === ids.length), 10_000)
        yield* Fiber.interrupt(fiber)
        const letters = yield* readRaw([dlName], failingOffsets.size)
        const sources = new Map((yield* readRaw([name], ids.length)).map((r) => [r.offset, r]))
        const problems: Array<string> = []
        for (const letter of letters) {
          const header = (n: string) => {
            const found = letter.headers.find(([name]) => text.decode(name) === n)
            return found?.[1] == null ? undefined : text.decode(found[1])
          }
          const offset = Number(header("x-source-offset"))
          if (!failingOffsets.has(offset)) problems.push(`dead letter of offset ${offset}, which did not fail`)
          const original = sources.get(offset)!
          if (JSON.stringify([...letter.value!]) !== JSON.stringify([...original.value!])) {
            problems.push(`${offset}: value`)
          }
          if (JSON.stringify([...letter.key!]) !== JSON.stringify([...original.key!])) problems.push(`${offset}: key`)
          if (header("x-agent") !== "speed-batch-dl") problems.push(`${offset}: x-agent ${header("x-agent")}`)
          if (header("x-error-message") !== "refused") {
            problems.push(`${offset}: x-error-message ${header("x-error-message")}`)
          }
          if (header("x-source-topic") !== name) problems.push(`${offset}: x-source-topic`)
          seen.receive(Number(text.decode(original.value!)), 0, offset)
        }
        const counts = seen.report("agent batch, one batch failing, dead-lettered")
        assert.deepStrictEqual(problems, [])
        assert.strictEqual(letters.length, failingOffsets.size, "one dead letter per event of the failed batch")
        assert.strictEqual(agent.stats.deadLettered, failingOffsets.size)
        assert.strictEqual(counts.lost, 0)
        assert.strictEqual(counts.duplicated, 0)
        assert.strictEqual(agent.stats.inFlight, 0)
      }).pipe(Effect.provide(kafkaLayer({ commitInterval: "50 millis" })), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "a batch failing once with then: \"fail\" and a restart schedule: the agent restarts, reads the batch again from the committed offset; nothing lost, duplicates only of what was not committed at the failure",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-batch-restart")
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number, partitions: 2 })
        const guard = commitGuard(topic.groupId)
        const seen = new Seen()
        const ids = range(1_000)
        for (const id of ids) seen.sent.add(id)
        yield* produceIds(topic, ids)
        let failed = false
        let committedAtFailure = -1
        const agent = yield* Agent.forEach("speed-batch-restart", topic, (values, events) =>
          Effect.gen(function*() {
            if (!failed && values.includes(600)) {
              failed = true
              return yield* Effect.fail(new Error("once"))
            }
            events.forEach((e, i) => {
              seen.receive(values[i], e.message.partition, e.message.offset)
              guard.finish(e.message.partition, e.message.offset)
            })
          }), { batch: { size: 30, within: "100 millis" }, restart: Schedule.recurs(3) })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* eventually(() => failed, 30_000)
        committedAtFailure = yield* sumCommitted(topic.groupId, name)
        yield* eventually(() => seen.complete, 30_000)
        yield* eventuallyEffect(Effect.map(sumCommitted(topic.groupId, name), (n) => n === ids.length), 10_000)
        yield* Fiber.interrupt(fiber)
        guard.stop()
        const counts = seen.report("agent batch, a batch failing once, agent restarted")
        console.log(`[batch] restarts ${agent.stats.restarts}, committed when it failed ~${committedAtFailure}`)
        assert.deepStrictEqual(guard.violations, [])
        assert.strictEqual(counts.lost, 0)
        assert.strictEqual(agent.stats.restarts, 1)
        assert.isAtMost(counts.duplicated, ids.length - committedAtFailure, "only what was not committed is read again")
        assert.strictEqual(agent.stats.inFlight, 0)
      }).pipe(Effect.provide(kafkaLayer({ commitInterval: "50 millis" })), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "a batch failing with then: \"fail\" and no restart: agent.run fails with AgentError, the failed batch is never committed, inFlight back to 0, and the next agent reads it",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-batch-fail")
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number })
        const guard = commitGuard(topic.groupId)
        const ids = range(200)
        yield* produceIds(topic, ids)
        const failingOffsets: Array<number> = []
        const agent = yield* Agent.forEach("speed-batch-fail", topic, (values, events) =>
          Effect.gen(function*() {
            if (values.includes(120)) {
              events.forEach((e) => failingOffsets.push(e.message.offset))
              return yield* Effect.fail(new Error("for good"))
            }
            events.forEach((e) => guard.finish(e.message.partition, e.message.offset))
          }), { batch: { size: 15, within: "100 millis" } })
        const exit = yield* agent.run.pipe(Effect.timeout("30 seconds"), Effect.exit)
        const error = failureOf(exit)
        assert.instanceOf(error, Agent.AgentError)
        assert.strictEqual(agent.stats.inFlight, 0, "inFlight back to 0 after the failure")
        const committed = yield* committedOffsets(topic.groupId, name)
        assert.isAtMost(committed.get(0) ?? 0, Math.min(...failingOffsets), "never past the failed batch")
        guard.stop()
        assert.deepStrictEqual(guard.violations, [])
        // the next run reads from the failed batch on
        const again: Array<number> = []
        const next = yield* Agent.forEach("speed-batch-fail-2", topic, (values) =>
          Effect.sync(() =>
            again.push(...values)
          ), {
          batch: { size: 15, within: "100 millis" }
        })
        const fiber = yield* Effect.forkChild(next.run)
        yield* eventually(() =>
          again.includes(199), 30_000)
        yield* Fiber.interrupt(fiber)
        assert.isTrue(again.includes(120), "the failed event is read again")
        assert.strictEqual(again[0], committed.get(0) ?? 0, "from the committed offset")
      }).pipe(Effect.provide(kafkaLayer({ commitInterval: "50 millis" })), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "the source ending (topic.end) while a partial batch waits: agent.run completes, the partial batch is handled and committed",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-batch-end")
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number })
        const sizes: Array<number> = []
        yield* produceIds(topic, range(47))
        const agent = yield* Agent.forEach("speed-batch-end", topic, (values) =>
          Effect.sync(() =>
            sizes.push(values.length)
          ), {
          batch: { size: 20, within: "30 seconds" }
        })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* eventually(() =>
          sizes.length === 2, 20_000)
        yield* Effect.sleep("300 millis")
        yield* topic.end
        const exit = yield* Fiber.await(fiber).pipe(Effect.timeout("10 seconds"))
        console.log(`[batch] after topic.end: run ${exit._tag}, batches ${JSON.stringify(sizes)}`)
        assert.isTrue(Exit.isSuccess(exit), `agent.run ends normally: ${String(failureOf(exit))}`)
        assert.deepStrictEqual(sizes, [20, 20, 7])
        assert.strictEqual(agent.stats.inFlight, 0)
        assert.strictEqual(yield* sumCommitted(topic.groupId, name), 47)
      }).pipe(Effect.provide(kafkaLayer({ commitInterval: "5 seconds" }))),
    60_000
  )

  it.live(
    "stopped while a failing batch waits in its retry schedule, with a short shutdownTimeout: the stop is bounded, the batch is left unacknowledged (never committed), inFlight back to 0, and the next agent reads it",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-batch-stuck-retry")
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number })
        yield* produceIds(topic, range(100))
        const firstOffsets: Array<number> = []
        let attempts = 0
        const agent = yield* Agent.forEach("speed-batch-stuck-retry", topic, (values, events) =>
          Effect.gen(function*() {
            if (values.includes(50)) {
              attempts++
              if (firstOffsets.length === 0) events.forEach((e) => firstOffsets.push(e.message.offset))
              return yield* Effect.fail(new Error("not yet"))
            }
          }), {
          batch: { size: 10, within: "100 millis" },
          onError: { retry: Schedule.spaced("3 seconds"), then: "skip" },
          shutdownTimeout: "500 millis"
        })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* eventually(() => attempts >= 1, 20_000)
        yield* Effect.sleep("200 millis")
        const stoppedAt = Date.now()
        yield* Fiber.interrupt(fiber).pipe(Effect.timeout("10 seconds"))
        const took = Date.now() - stoppedAt
        console.log(
          `[batch] stop during a retry wait took ${took} ms; attempts ${attempts}; stats ${
            JSON.stringify({ ...agent.stats, processing: undefined })
          }`
        )
        assert.isBelow(took, 3_000, "the stop is bounded by shutdownTimeout, not the retry schedule")
        assert.strictEqual(agent.stats.inFlight, 0, "inFlight back to 0")
        const committed = yield* committedOf(topic)
        assert.strictEqual(committed, Math.min(...firstOffsets), "committed up to the failing batch, not past it")
        const again = yield* topic.stream().pipe(Stream.take(1), Stream.runCollect, Effect.timeout("20 seconds"))
        assert.deepStrictEqual(again, [Math.min(...firstOffsets)], "the failing batch is read again")
      }).pipe(Effect.provide(kafkaLayer({ commitInterval: "50 millis" })), Effect.provide(quiet)),
    60_000
  )

  it.live(
    "a second member joining mid-stream (a rebalance while a batch is in the handler): nothing lost, no commit past an unfinished event, and the first member hands its handler no more than the batch it was in of the partitions it gave up",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-batch-rebalance")
        const groupId = unique("speed-rebalance-group")
        const t1 = yield* Topic.make({
          topics: [name],
          key: Schema.String,
          value: Schema.Number,
          partitions: 4,
          groupId
        })
        const t2 = yield* Topic.make({
          topics: [name],
          key: Schema.String,
          value: Schema.Number,
          partitions: 4,
          groupId
        })
        const guard = commitGuard(groupId)
        const seen = new Seen()
        const ids = range(3_000)
        for (const id of ids) seen.sent.add(id)
        yield* produceIds(t1, ids, 64)
        // README: on a rebalance a member "drops what it buffered of the partitions it gave up and
        // never hands one of their events out; an event already in a handler finishes there".
        const notOwned = [0, 0]
        const secondStarted = new Set<number>()
        let afterNewOwner = 0
        const owns = (topic: typeof t1, partition: number) =>
          topic.activePartitions !== undefined &&
          HashSet.some(topic.activePartitions, (tp) => tp.partition === partition)
        const make = (topic: typeof t1, index: number) =>
          Agent.forEach(`speed-rebalance-${index}`, topic, (values, events) =>
            Effect.gen(function*() {
              for (const e of events) {
                if (!owns(topic, e.message.partition)) notOwned[index]++
                const p = e.message.partition
                if (index === 1 && !secondStarted.has(p)) secondStarted.add(p)
                if (index === 0 && secondStarted.has(p)) afterNewOwner++
              }
              yield* Effect.sleep("15 millis")
              events.forEach((e, i) => {
                seen.receive(values[i], e.message.partition, e.message.offset)
                guard.finish(e.message.partition, e.message.offset)
              })
            }), { batch: { size: 20, within: "100 millis" } })
        const a1 = yield* make(t1, 0)
        const f1 = yield* Effect.forkChild(a1.run)
        yield* eventually(() => seen.deliveries.size >= 300, 20_000)
        const a2 = yield* make(t2, 1)
        const f2 = yield* Effect.forkChild(a2.run)
        yield* eventually(() => seen.complete, 50_000)
        yield* Fiber.interrupt(f1)
        yield* Fiber.interrupt(f2)
        guard.stop()
        const counts = seen.report("two batch agents, the second joining mid-stream (rebalance)")
        console.log(
          `[batch] events handed to a handler of a member that did not own their partition: ${
            JSON.stringify(notOwned)
          }; handled by the first member after the new owner had started on the same partition: ${afterNewOwner}`
        )
        assert.deepStrictEqual(guard.violations, [])
        assert.strictEqual(counts.lost, 0)
        assert.strictEqual(a1.stats.inFlight + a2.stats.inFlight, 0)
        assert.isAtMost(
          notOwned[0] + notOwned[1],
          2 * 20,
          "events of partitions the member gave up, handed to its handler after the revoke (one batch in the handler, one being gathered at most)"
        )
      }).pipe(Effect.provide(kafkaLayer({ commitInterval: "50 millis" }))),
    60_000
  )

  it.live(
    "the source ended right as the agent starts (topic.end before run, and just after forking it): run ends normally, no defect, no hang",
    () =>
      Effect.gen(function*() {
        const outcomes: Array<string> = []
        for (const when of ["before run", "right after fork", "after a yield"] as const) {
          const topic = yield* Topic.make({
            topics: [unique("speed-end-early")],
            key: Schema.String,
            value: Schema.Number
          })
          yield* produceIds(topic, range(5))
          const agent = yield* Agent.forEach(`speed-end-early-${when}`, topic, () => Effect.void, {
            batch: { size: 3, within: "50 millis" }
          })
          if (when === "before run") yield* topic.end
          const fiber = yield* Effect.forkChild(agent.run)
          if (when === "right after fork") yield* topic.end
          if (when === "after a yield") {
            yield* Effect.yieldNow
            yield* topic.end
          }
          const exit = yield* Fiber.await(fiber).pipe(Effect.timeout("10 seconds"), Effect.exit)
          const inner = Exit.isSuccess(exit) ? exit.value : undefined
          outcomes.push(
            `${when}: ${
              Exit.isFailure(exit) ?
                `hung or failed: ${String(failureOf(exit))}` :
                inner !== undefined && Exit.isFailure(inner)
                ? `${Cause.hasDies(inner.cause) ? "defect" : "failure"}: ${String(failureOf(inner))}`
                : "ended"
            }; inFlight ${agent.stats.inFlight}`
          )
        }
        assert.deepStrictEqual(outcomes, [
          "before run: ended; inFlight 0",
          "right after fork: ended; inFlight 0",
          "after a yield: ended; inFlight 0"
        ])
      }).pipe(Effect.provide(kafkaLayer())),
    60_000
  )

  it.live(
    "two agents on one topic value (two subscribers): each handles every event once; commits wait for the slower one",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-batch-two")
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number, partitions: 2 })
        const fast = new Seen()
        const slow = new Seen()
        const slowFinished = new Map<number, Set<number>>()
        const violations: Array<string> = []
        const stop = observeCommits(topic.groupId, (partition, offset) => {
          const done = slowFinished.get(partition) ?? new Set()
          for (let o = 0; o < offset; o++) {
            if (!done.has(o)) {
              violations.push(`partition ${partition} committed ${offset} before the slow agent finished ${o}`)
              break
            }
          }
        })
        const ids = range(400)
        for (const id of ids) {
          fast.sent.add(id)
          slow.sent.add(id)
        }
        const a = yield* Agent.forEach("speed-two-fast", topic, (values, events) =>
          Effect.sync(() =>
            events.forEach((e, i) =>
              fast.receive(values[i], e.message.partition, e.message.offset)
            )
          ), {
          batch: { size: 50, within: "100 millis" }
        })
        const b = yield* Agent.forEach("speed-two-slow", topic, (values, events) =>
          Effect.gen(function*() {
            yield* Effect.sleep("40 millis")
            events.forEach((e, i) => {
              slow.receive(values[i], e.message.partition, e.message.offset)
              const done = slowFinished.get(e.message.partition) ?? new Set()
              done.add(e.message.offset)
              slowFinished.set(e.message.partition, done)
            })
          }), { batch: { size: 10, within: "100 millis" } })
        const fa = yield* Effect.forkChild(a.run)
        const fb = yield* Effect.forkChild(b.run)
        yield* produceIds(topic, ids)
        yield* eventually(() => fast.complete && slow.complete, 40_000)
        yield* Fiber.interrupt(fa)
        yield* Fiber.interrupt(fb)
        stop()
        const countsFast = fast.report("two agents on one topic value: the fast one")
        const countsSlow = slow.report("two agents on one topic value: the slow one")
        assert.deepStrictEqual(violations, [])
        assert.strictEqual(countsFast.lost + countsSlow.lost, 0)
        assert.strictEqual(countsFast.duplicated + countsSlow.duplicated, 0)
        assert.strictEqual(yield* sumCommitted(topic.groupId, name), ids.length)
      }).pipe(Effect.provide(kafkaLayer({ commitInterval: "50 millis" }))),
    60_000
  )

  it.live(
    "two agents on two Topic.make of one name and group (two members): the partitions are split and every event is handled once",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-batch-members")
        const groupId = unique("speed-group")
        const t1 = yield* Topic.make({
          topics: [name],
          key: Schema.String,
          value: Schema.Number,
          partitions: 4,
          groupId
        })
        const t2 = yield* Topic.make({
          topics: [name],
          key: Schema.String,
          value: Schema.Number,
          partitions: 4,
          groupId
        })
        yield* t1.maybeDeclare
        const seen = new Seen()
        const byAgent = [0, 0]
        const make = (topic: typeof t1, index: number) =>
          Agent.forEach(`speed-member-${index}`, topic, (values, events) =>
            Effect.sync(() => {
              byAgent[index] += values.length
              events.forEach((e, i) => seen.receive(values[i], e.message.partition, e.message.offset))
            }), { batch: { size: 25, within: "100 millis" } })
        const a1 = yield* make(t1, 0)
        const a2 = yield* make(t2, 1)
        const f1 = yield* Effect.forkChild(a1.run)
        const f2 = yield* Effect.forkChild(a2.run)
        yield* eventually(
          () => [t1, t2].every((t) => t.activePartitions !== undefined && HashSet.size(t.activePartitions) === 2),
          30_000
        )
        const ids = range(800)
        for (const id of ids) seen.sent.add(id)
        yield* produceIds(t1, ids, 64)
        yield* eventually(() => seen.complete, 30_000)
        yield* Fiber.interrupt(f1)
        yield* Fiber.interrupt(f2)
        const counts = seen.report("two batch agents, two members of one group")
        console.log(`[batch] split between the members: ${JSON.stringify(byAgent)}`)
        assert.strictEqual(counts.lost, 0)
        assert.strictEqual(counts.duplicated, 0)
        assert.isAbove(byAgent[0], 0)
        assert.isAbove(byAgent[1], 0)
        assert.strictEqual(a1.stats.inFlight + a2.stats.inFlight, 0)
      }).pipe(Effect.provide(kafkaLayer({ commitInterval: "50 millis" }))),
    60_000
  )
})

// ---------------------------------------------------------------------------------------------
// 4. sendSoon: backpressure, shutdown, a wrapped Kafka service
// ---------------------------------------------------------------------------------------------

/** The log end offset of partition 0: how many records the topic stored. */
const logEnd = (name: string) =>
  Effect.promise(async () => {
    const admin = new Admin({ clientId: unique("admin"), bootstrapBrokers: [bootstrapServers] })
    try {
      const listed = await admin.listOffsets({
        topics: [{ name, partitions: [{ partitionIndex: 0, timestamp: -1n }] }]
      })
      return Number(listed.find((topic) => topic.name === name)!.partitions[0].offset)
    } finally {
      await admin.close()
    }
  })

type FutureOf = Effect.Success<ReturnType<Topic.Topic<never, number>["sendSoon"]>>

/** Each value's count on the wire, read by the raw client. */
const wireCounts = (name: string, expected: number) =>
  Effect.map(readRaw([name], expected), (records) => {
    const counts = new Map<number, number>()
    for (const record of records) {
      const value = Number(text.decode(record.value!))
      counts.set(value, (counts.get(value) ?? 0) + 1)
    }
    return { records, counts }
  })

describe.skipIf(!brokerAvailable)("hostile: sendSoon under backpressure and shutdown", () => {
  it.live(
    "bufferMaxsize 8, maxBatchSize 4: 6 000 sendSoon calls from one fiber and 2 000 from 40 concurrent fibers all complete; every record on the broker once, each fiber's records in its order",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-soon-bp")
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number })
        yield* topic.maybeDeclare
        const sequential = yield* Effect.forEach(range(6_000), (value) => topic.sendSoon({ value })).pipe(
          Effect.timeout("40 seconds")
        )
        const concurrent = yield* Effect.forEach(
          range(40),
          (fiber) => Effect.forEach(range(50), (i) => topic.sendSoon({ value: 100_000 + fiber * 1000 + i })),
          { concurrency: "unbounded" }
        ).pipe(Effect.timeout("40 seconds"))
        const all = [...sequential, ...concurrent.flat()]
        const exits = yield* Effect.forEach(all, (future) => Effect.exit(future.await)).pipe(
          Effect.timeout("40 seconds")
        )
        const failures = exits.filter(Exit.isFailure)
        const { counts, records } = yield* wireCounts(name, all.length)
        const lost = all.length - counts.size
        const duplicated = records.length - counts.size
        console.log(
          `[delivery] sendSoon with bufferMaxsize 8: sent=${all.length} received=${counts.size} lost=${lost} duplicated=${duplicated}`
        )
        assert.strictEqual(
          failures.length,
          0,
          `failed futures: ${failures.slice(0, 3).map((e) => String(failureOf(e)))}`
        )
        assert.strictEqual(lost, 0)
        assert.strictEqual(duplicated, 0)
        const order = records.map((r) => Number(text.decode(r.value!)))
        assert.deepStrictEqual(order.filter((v) => v < 100_000), range(6_000), "one fiber's records in its order")
        for (const fiber of range(40)) {
          const mine = order.filter((v) => v >= 100_000 + fiber * 1000 && v < 100_000 + fiber * 1000 + 1000)
          assert.deepStrictEqual(mine, range(50, 100_000 + fiber * 1000), `fiber ${fiber}'s records in its order`)
        }
        // every future's metadata names a distinct offset
        const offsets = new Set(exits.map((exit) => Exit.isSuccess(exit) ? exit.value.offset : -1))
        assert.strictEqual(offsets.size, all.length)
      }).pipe(Effect.provide(kafkaLayer({ bufferMaxsize: 8, maxBatchSize: 4 }))),
    60_000
  )

  it.live(
    "one fiber interleaving sendSoon, send, sendAll and publishMessage (and topics, keys): every record in call order per partition",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-order")
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number })
        const keyed = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number })
        const futures: Array<FutureOf> = []
        let next = 0
        for (let round = 0; round < 300; round++) {
          switch (round % 5) {
            case 0:
              futures.push(yield* topic.sendSoon({ value: next++ }))
              futures.push(yield* topic.sendSoon({ value: next++ }))
              break
            case 1:
              yield* topic.send({ value: next++ })
              break
            case 2:
              yield* topic.sendAll([next++, next++, next++])
              break
            case 3: {
              const future = yield* topic.asFutureMessage({ value: next++ })
              yield* topic.publishMessage(future)
              break
            }
            case 4:
              futures.push(yield* keyed.sendSoon({ key: `k${round}`, value: next++ }))
              break
          }
        }
        yield* Effect.forEach(futures, (future) => future.await, { discard: true })
        const raw = yield* readRaw([name], next)
        const order = raw.map((r) => Number(text.decode(r.value!)))
        console.log(
          `[delivery] interleaved sends: sent=${next} received=${new Set(order).size} lost=${
            next - new Set(order).size
          } duplicated=${order.length - new Set(order).size}`
        )
        assert.deepStrictEqual(order, range(next))
      }).pipe(Effect.provide(kafkaLayer())),
    60_000
  )

  it.live(
    "sendSoon (the buffer's fast path) and send agree record for record: the key's partition (murmur2), an explicit partition, the timestamp, headers given as pairs, as a record and as bytes",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-agree")
        const topic = yield* Topic.make({ topics: [name], key: Schema.String, value: Schema.Number, partitions: 8 })
        const binary = new Uint8Array([0, 255, 128])
        const placed = new Map<string, Array<number>>()
        const metas: Array<string> = []
        for (let i = 0; i < 120; i++) {
          const key = `key-${i % 40}`
          const headers = i % 3 === 0
            ? [["a", "1"], ["b", binary]] as const
            : i % 3 === 1
            ? { a: "1", b: binary }
            : undefined
          const options = {
            key,
            value: i,
            timestamp: 1_600_000_000_000 + i,
            ...(headers === undefined ? {} : { headers }),
            ...(i % 10 === 9 ? { partition: 5 } : {})
          }
          const meta = i % 2 === 0
            ? yield* topic.send(options)
            : yield* Effect.flatMap(topic.sendSoon(options), (future) => future.await)
          metas.push(`${i}:${meta.partition}`)
          if (i % 10 !== 9) placed.set(key, [...(placed.get(key) ?? []), meta.partition])
        }
        const problems: Array<string> = []
        for (const [key, partitions] of placed) {
          if (new Set(partitions).size !== 1) problems.push(`${key} went to partitions ${JSON.stringify(partitions)}`)
        }
        const raw = yield* readRaw([name], 120)
        for (const record of raw) {
          const i = Number(text.decode(record.value!))
          if (i % 10 === 9 && record.partition !== 5) {
            problems.push(`${i}: explicit partition 5, went to ${record.partition}`)
          }
          const headers = record.headers.map(([n, v]) => [text.decode(n), v === null ? null : [...v]])
          const expected = i % 3 === 2 ? [] : [["a", [...utf8.encode("1")]], ["b", [...binary]]]
          if (JSON.stringify(headers) !== JSON.stringify(expected)) {
            problems.push(`${i}: headers ${JSON.stringify(headers)}`)
          }
          if (text.decode(record.key!) !== `key-${i % 40}`) problems.push(`${i}: key`)
        }
        const events = yield* topic.events().pipe(Stream.take(120), Stream.runCollect, Effect.timeout("20 seconds"))
        for (const event of events) {
          if (event.message.timestamp !== 1_600_000_000_000 + event.value) {
            problems.push(`${event.value}: timestamp ${event.message.timestamp}`)
          }
        }
        assert.deepStrictEqual(problems, [])
      }).pipe(Effect.provide(kafkaLayer())),
    60_000
  )

  it.live(
    "sendSoon, send and sendAll after the Kafka layer closed: each fails with a typed KafkaError at once or through its future — never hangs",
    () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(kafkaLayer(), scope)
        const topic = yield* Topic.make({ topics: [unique("speed-closed")], value: Schema.Number }).pipe(
          Effect.provide(context)
        )
        yield* topic.send({ value: 1 })
        yield* Scope.close(scope, Exit.void)
        const outcomes: Array<string> = []
        const soon = yield* Effect.exit(
          Effect.flatMap(topic.sendSoon({ value: 2 }), (future) => future.await).pipe(Effect.timeout("10 seconds"))
        )
        const send = yield* Effect.exit(topic.send({ value: 3 }).pipe(Effect.timeout("10 seconds")))
        const all = yield* Effect.exit(topic.sendAll([4, 5]).pipe(Effect.timeout("10 seconds")))
        const tries: Array<readonly [string, Exit.Exit<unknown, unknown>]> = [["sendSoon", soon], ["send", send], [
          "sendAll",
          all
        ]]
        for (const [what, exit] of tries) {
          const error = failureOf(exit)
          outcomes.push(
            `${what}: ${
              Exit.isSuccess(exit) ? "succeeded" : error instanceof KafkaError ? "KafkaError" : String(error)
            }`
          )
        }
        assert.deepStrictEqual(outcomes, ["sendSoon: KafkaError", "send: KafkaError", "sendAll: KafkaError"])
      }),
    30_000
  )

  it.live(
    "the Kafka layer closing while 40 fibers are in the middle of sendSoon runs (bufferMaxsize 8): every call returns or fails typed, every future completes, what succeeded is on the broker once",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-closing")
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(kafkaLayer({ bufferMaxsize: 8, maxBatchSize: 4 }), scope)
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number }).pipe(Effect.provide(context))
        yield* topic.maybeDeclare
        const succeeded = new Set<number>()
        const failedTyped: Array<string> = []
        const untyped: Array<string> = []
        const record = (value: number, exit: Exit.Exit<unknown, unknown>) => {
          if (Exit.isSuccess(exit)) succeeded.add(value)
          else {
            const error = failureOf(exit)
            if (error instanceof KafkaError) failedTyped.push(error.message)
            else untyped.push(String(error))
          }
        }
        const futures: Array<readonly [number, FutureOf]> = []
        const senders = yield* Effect.forEach(range(40), (fiber) =>
          Effect.forkChild(Effect.forEach(range(200), (i) => {
            const value = fiber * 1000 + i
            return Effect.exit(topic.sendSoon({ value })).pipe(
              Effect.map((exit) => Exit.isSuccess(exit) ? futures.push([value, exit.value]) : record(value, exit))
            )
          }, { discard: true })))
        yield* Effect.sleep("150 millis")
        yield* Scope.close(scope, Exit.void).pipe(Effect.timeout("30 seconds"))
        const joined = yield* Effect.forEach(senders, (fiber) => Effect.exit(Fiber.join(fiber))).pipe(
          Effect.timeout("20 seconds"),
          Effect.exit
        )
        assert.isTrue(Exit.isSuccess(joined), "no sendSoon call hangs after the layer closed")
        // every future returned settles (all awaited together, 20 s in all)
        yield* Effect.forEach(
          futures,
          ([value, future]) => Effect.map(Effect.exit(future.await), (done) => record(value, done)),
          { concurrency: "unbounded", discard: true }
        ).pipe(Effect.timeout("20 seconds"), Effect.ignore)
        const settled = succeeded.size + failedTyped.length + untyped.length
        const { counts, records } = yield* wireCounts(name, succeeded.size)
        let lost = 0
        for (const value of succeeded) if (!counts.has(value)) lost++
        console.log(
          `[delivery] sendSoon across the layer's close: sent=${succeeded.size} received=${counts.size} lost=${lost} duplicated=${
            records.length - counts.size
          } (failed typed ${failedTyped.length}, untyped ${untyped.length}, unsettled ${40 * 200 - settled})`
        )
        assert.strictEqual(settled, 40 * 200, "every call and future settled")
        assert.deepStrictEqual(untyped.slice(0, 3), [], "failures are typed")
        assert.strictEqual(lost, 0, "a future that succeeded is on the broker")
        assert.strictEqual(records.length, counts.size, "nothing written twice")
        assert.strictEqual(yield* logEnd(name), succeeded.size, "no record written whose future failed")
      }),
    60_000
  )

  it.live(
    "a Kafka service whose publish is wrapped: sendSoon, send and sendAll all go through the wrapper (every record, with what it changes), and its refusals fail the right futures",
    () =>
      Effect.gen(function*() {
        const name = unique("speed-wrapped")
        const kafka = yield* Kafka.Kafka
        const seenByWrapper: Array<number> = []
        const wrapped = Kafka.Kafka.of({
          ...kafka,
          publish: (record, onDone) => {
            const value = Number(text.decode(record.value!))
            seenByWrapper.push(value)
            if (value % 500 === 499) {
              // the wrapper refuses this one: its future must fail, typed
              return onDone(
                Exit.fail(
                  new KafkaError({ operation: "produce", topic: record.topic, cause: "refused by the wrapper" })
                )
              )
            }
            return kafka.publish({ ...record, headers: [...record.headers, ["wrapped", "yes"]] }, onDone)
          }
        })
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number }).pipe(
          Effect.provideService(Kafka.Kafka, wrapped)
        )
        yield* topic.maybeDeclare
        const futures = yield* Effect.forEach(range(2_000), (value) => topic.sendSoon({ value }))
        const exits = yield* Effect.forEach(futures, (future) => Effect.exit(future.await)).pipe(
          Effect.timeout("30 seconds")
        )
        const sendExits = yield* Effect.forEach(range(10, 2_000), (value) => Effect.exit(topic.send({ value })))
        const allExit = yield* Effect.exit(topic.sendAll(range(100, 3_000)))
        const refused = exits.filter((_, i) => i % 500 === 499)
        const accepted = exits.filter((_, i) => i % 500 !== 499)
        assert.isTrue(refused.every((exit) => failureOf(exit) instanceof KafkaError), "refused futures fail typed")
        assert.isTrue(accepted.every(Exit.isSuccess), "the others succeed")
        assert.isTrue(sendExits.every(Exit.isSuccess))
        assert.isTrue(Exit.isSuccess(allExit))
        const expected = [...range(2_000), ...range(10, 2_000), ...range(100, 3_000)]
        assert.deepStrictEqual(seenByWrapper, expected, "the wrapper saw every record, in order")
        const onWire = expected.filter((v) => v % 500 !== 499)
        const raw = yield* readRaw([name], onWire.length)
        console.log(
          `[delivery] wrapped publish: sent=${onWire.length} received=${raw.length} lost=${
            onWire.length - raw.length
          } duplicated=0`
        )
        assert.strictEqual(raw.length, onWire.length)
        assert.isTrue(
          raw.every((r) =>
            r.headers.some(([n, v]) => text.decode(n) === "wrapped" && v !== null && text.decode(v) === "yes")
          ),
          "every record carries the wrapper's header"
        )
      }).pipe(Effect.provide(kafkaLayer())),
    60_000
  )
})

// ---------------------------------------------------------------------------------------------
// 5. stream(), items(), events(): acknowledged when the next one is pulled
// ---------------------------------------------------------------------------------------------

type Kind = "stream" | "items" | "events" | "noack+ack"

/** A new stream of the kind, each element turned into the value (the value is the offset). */
const valuesOf = (topic: Topic.Topic<string, number>, kind: Kind): Stream.Stream<number, unknown> =>
  kind === "stream"
    ? topic.stream()
    : kind === "items"
    ? Stream.map(topic.items(), ([, value]) => value)
    : kind === "events"
    ? Stream.map(topic.events(), (event) => event.value)
    : Stream.mapEffect(Topic.noack(topic), (event) => Effect.as(Topic.ack(event), event.value))

/** A topic of one partition holding 0 … count-1 at offsets 0 … count-1. */
const numbered = (count: number, options?: { readonly groupId?: string }) =>
  Effect.gen(function*() {
    const topic = yield* Topic.make({
      topics: [unique("speed-num")],
      key: Schema.String,
      value: Schema.Number,
      ...options
    })
    yield* produceIds(topic, range(count))
    return topic
  })

const committedOf = (topic: Topic.Topic<any, any>) =>
  Effect.map(committedOffsets(topic.groupId, topic.topics[0]), (committed) => committed.get(0) ?? 0)

describe.skipIf(!brokerAvailable)("hostile: acknowledged when the next one is pulled", () => {
  for (const kind of ["stream", "items", "events", "noack+ack"] as const) {
    it.live(
      `${kind}: Stream.take(n) then a new stream of the group, again and again — each starts exactly at the next event (nothing skipped, nothing read twice, nothing committed that was not handed out)`,
      () =>
        Effect.gen(function*() {
          const topic = yield* numbered(120)
          const takes = [1, 3, 7, 1, 2, 30, 5, 1, 11]
          const read: Array<number> = []
          const problems: Array<string> = []
          for (const n of takes) {
            const got = yield* valuesOf(topic, kind).pipe(
              Stream.take(n),
              Stream.runCollect,
              Effect.timeout("20 seconds")
            )
            if (got[0] !== read.length) problems.push(`a stream after ${read.length} read started at ${got[0]}`)
            read.push(...got)
            const committed = yield* committedOf(topic)
            if (committed !== read.length) problems.push(`after ${read.length} read, committed ${committed}`)
          }
          const total = takes.reduce((a, b) => a + b, 0)
          console.log(
            `[delivery] ${kind} with take(n) restarts: sent=${total} received=${new Set(read).size} lost=${
              total - new Set(read).size
            } duplicated=${read.length - new Set(read).size}`
          )
          assert.deepStrictEqual(problems, [])
          assert.deepStrictEqual(read, range(total))
        }).pipe(Effect.provide(kafkaLayer())),
      60_000
    )
  }

  for (const kind of ["stream", "items", "events"] as const) {
    for (const how of ["fails", "is interrupted"] as const) {
      it.live(
        `${kind}: a handler that ${
          how === "fails" ? "fails" : "is interrupted"
        } on event 37 leaves exactly 0–36 acknowledged; the next stream starts at 37`,
        () =>
          Effect.gen(function*() {
            const topic = yield* numbered(80)
            const handled: Array<number> = []
            const stuck = yield* Deferred.make<void>()
            const run = valuesOf(topic, kind).pipe(
              Stream.runForEach((value) =>
                value === 37
                  ? how === "fails"
                    ? Effect.fail(new Error("handler failed on 37"))
                    : Effect.andThen(Deferred.succeed(stuck, undefined), Effect.never)
                  : Effect.sync(() => handled.push(value))
              )
            )
            if (how === "fails") {
              const exit = yield* Effect.exit(run.pipe(Effect.timeout("20 seconds")))
              assert.isTrue(Exit.isFailure(exit))
            } else {
              const fiber = yield* Effect.forkChild(run)
              yield* Deferred.await(stuck).pipe(Effect.timeout("20 seconds"))
              yield* Effect.sleep("300 millis") // commits every 100 ms: the ones before 37 land
              yield* Fiber.interrupt(fiber)
            }
            assert.deepStrictEqual(handled, range(37))
            assert.strictEqual(yield* committedOf(topic), 37, "committed up to the failed event, not past it")
            const next = yield* valuesOf(topic, kind).pipe(
              Stream.take(5),
              Stream.runCollect,
              Effect.timeout("20 seconds")
            )
            assert.deepStrictEqual(next, [37, 38, 39, 40, 41])
          }).pipe(Effect.provide(kafkaLayer())),
        60_000
      )
    }
  }

  it.live(
    "Stream.takeWhile / runHead / takeUntil on stream() and items(): the commit follows what was pulled, nothing past it",
    () =>
      Effect.gen(function*() {
        const topic = yield* numbered(60)
        const problems: Array<string> = []
        // takeWhile pulls 10 to see it fails the predicate: 0–9 handed on, 10 pulled but not handed on
        const firstTen = yield* topic.stream().pipe(
          Stream.takeWhile((v) => v < 10),
          Stream.runCollect,
          Effect.timeout("20 seconds")
        )
        const afterTakeWhile = yield* committedOf(topic)
        const head = yield* topic.items().pipe(Stream.runHead, Effect.timeout("20 seconds"))
        const afterHead = yield* committedOf(topic)
        const headValue = head._tag === "Some" ? head.value[1] : -1
        const untilFive = yield* topic.stream().pipe(
          Stream.takeUntil((v) => v === headValue + 6),
          Stream.runCollect,
          Effect.timeout("20 seconds")
        )
        const afterUntil = yield* committedOf(topic)
        console.log(
          `[ack] takeWhile(<10) read ${JSON.stringify(firstTen)} committed ${afterTakeWhile}; runHead ${
            JSON.stringify(head)
          } committed ${afterHead}; takeUntil read ${JSON.stringify(untilFive)} committed ${afterUntil}`
        )
        // takeWhile pulls 10 to test it, then ends the stream successfully. The README acknowledges
        // the current event "when the stream ends successfully", so 11 follows the letter of it —
        // though 10 never reached the code after takeWhile and is then never read by this group
        // again. Either 10 or 11 is accepted here; which one is printed above.
        if (afterTakeWhile !== 10 && afterTakeWhile !== 11) problems.push(`takeWhile: committed ${afterTakeWhile}`)
        if (headValue !== afterTakeWhile) problems.push(`runHead read ${headValue}, expected ${afterTakeWhile}`)
        if (afterHead !== headValue + 1) problems.push(`runHead: committed ${afterHead}, expected ${headValue + 1}`)
        if (untilFive[0] !== afterHead) problems.push(`takeUntil started at ${untilFive[0]}`)
        if (afterUntil !== untilFive.at(-1)! + 1) problems.push(`takeUntil: committed ${afterUntil}`)
        assert.deepStrictEqual(problems, [])
      }).pipe(Effect.provide(kafkaLayer())),
    60_000
  )

  it.live(
    "several subscribers of one topic value (streams and an iterator clone): each gets every event; a stuck one holds the commit back; when it leaves, the others carry the commit on",
    () =>
      Effect.gen(function*() {
        const topic = yield* numbered(50)
        const fast: Array<number> = []
        const slow: Array<number> = []
        const stuckAt = yield* Deferred.make<void>()
        const fastFiber = yield* topic.stream().pipe(
          Stream.runForEach((v) => Effect.sync(() => fast.push(v))),
          Effect.forkChild
        )
        const slowFiber = yield* topic.items().pipe(
          Stream.runForEach(([, v]) =>
            v === 5
              ? Effect.andThen(Deferred.succeed(stuckAt, undefined), Effect.never)
              : Effect.sync(() => slow.push(v))
          ),
          Effect.forkChild
        )
        const clone = yield* topic.clone({ isIterator: true, maxsize: 100 })
        yield* eventually(() => fast.length === 50, 20_000)
        yield* Deferred.await(stuckAt)
        yield* Effect.sleep("500 millis")
        assert.strictEqual(yield* committedOf(topic), 0, "the clone has acknowledged nothing yet")
        const cloneEvents: Array<Event.Event<string | null, number>> = []
        for (let i = 0; i < 50; i++) cloneEvents.push(yield* clone.get({ timeout: "5 seconds" }))
        assert.deepStrictEqual(cloneEvents.map((e) => e.value), range(50), "the clone got every event")
        yield* Effect.forEach(cloneEvents, Topic.ack)
        yield* eventuallyEffect(Effect.map(committedOf(topic), (c) => c === 5), 10_000)
        yield* Effect.sleep("300 millis")
        assert.strictEqual(yield* committedOf(topic), 5, "the stuck subscriber holds event 5")
        yield* Fiber.interrupt(slowFiber)
        yield* eventuallyEffect(Effect.map(committedOf(topic), (c) => c === 50), 10_000)
        // the remaining subscribers go on: new records reach both and are committed
        yield* produceIds(topic, range(10, 50))
        yield* eventually(() => fast.length === 60, 20_000)
        const more: Array<number> = []
        for (let i = 0; i < 10; i++) {
          const event = yield* clone.get({ timeout: "5 seconds" })
          more.push(event.value)
          yield* Topic.ack(event)
        }
        assert.deepStrictEqual(more, range(10, 50))
        yield* eventuallyEffect(Effect.map(committedOf(topic), (c) => c === 60), 10_000)
        yield* clone.onStopIteration
        yield* Fiber.interrupt(fastFiber)
        assert.deepStrictEqual(fast, [...range(50), ...range(10, 50)])
      }).pipe(Effect.provide(kafkaLayer())),
    60_000
  )

  it.live(
    "Topic.noack: a subscriber holding one unacknowledged event holds the commit; when it leaves while another stream continues, the commit moves on; a noack stream that is the last to leave leaves its unacknowledged events to be read again",
    () =>
      Effect.gen(function*() {
        const topic = yield* numbered(40)
        const manual: Array<number> = []
        const auto: Array<number> = []
        const manualFiber = yield* Topic.noack(topic).pipe(
          Stream.runForEach((event) =>
            Effect.andThen(
              Effect.sync(() => manual.push(event.value)),
              event.value === 3 ? Effect.void : Topic.ack(event)
            )
          ),
          Effect.forkChild
        )
        const autoFiber = yield* topic.stream().pipe(
          Stream.runForEach((v) => Effect.sync(() => auto.push(v))),
          Effect.forkChild
        )
        yield* eventually(() => manual.length === 40 && auto.length === 40, 20_000)
        yield* Effect.sleep("500 millis")
        assert.strictEqual(yield* committedOf(topic), 3, "event 3 is not acknowledged by the noack subscriber")
        yield* Fiber.interrupt(manualFiber)
        yield* eventuallyEffect(Effect.map(committedOf(topic), (c) => c === 40), 10_000)
        yield* produceIds(topic, range(5, 100))
        yield* eventually(() => auto.length === 45, 20_000)
        yield* eventuallyEffect(Effect.map(committedOf(topic), (c) => c === 45), 10_000)
        yield* Fiber.interrupt(autoFiber)
        // alone now: a noack stream acknowledging nothing past 101 leaves 102–104 to be read again
        yield* produceIds(topic, range(5, 200))
        const alone = yield* Topic.noack(topic).pipe(
          Stream.take(5),
          Stream.mapEffect((event) =>
            Effect.as(event.value <= 201 ? Topic.ack(event) : Effect.succeed(false), event.value)
          ),
          Stream.runCollect,
          Effect.timeout("20 seconds")
        )
        assert.deepStrictEqual(alone, range(5, 200))
        assert.strictEqual(yield* committedOf(topic), 47, "offsets 45 and 46 acknowledged, 47 on not")
        const again = yield* topic.stream().pipe(Stream.take(3), Stream.runCollect, Effect.timeout("20 seconds"))
        assert.deepStrictEqual(again, [202, 203, 204])
      }).pipe(Effect.provide(kafkaLayer())),
    60_000
  )
})
