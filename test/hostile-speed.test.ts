/**
 * Hostile tests of the promises the performance work touched, in memory,
 * written from the README and the public API only.
 *
 * Decoding: a channel decodes a received key / value with its `effect/Schema`
 * (README "Decode errors", `channel.deliver` / `channel.decode`). Whatever the
 * fast path does, the event must hold exactly what effect's own
 * `Schema.decodeUnknownResult` gives for the same input (same output: no
 * undeclared keys, the declared key order, -0 kept, arrays copied, the same
 * prototype), and anything effect refuses (or throws on) must be the typed
 * `KeyDecodeError` / `ValueDecodeError` under the `onDecodeError` policy.
 * Every comparison is made against effect's own result, computed in the test.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Result, Schema } from "effect"
import { Channel, KeyDecodeError, Message, ValueDecodeError } from "effect-faust"
import { AppTest, bytes, quiet } from "./helpers.ts"

// ---------------------------------------------------------------------------------------------
// Comparison with effect's own parser
// ---------------------------------------------------------------------------------------------

const show = (u: unknown): string => {
  try {
    if (typeof u === "number" && Object.is(u, -0)) return "-0"
    if (typeof u === "bigint") return `${u}n`
    if (typeof u === "string") return JSON.stringify(u)
    if (typeof u === "object" && u !== null) return JSON.stringify(u) ?? String(u)
    return String(u)
  } catch {
    return Object.prototype.toString.call(u)
  }
}

/** An own data property's value, without running a getter or a proxy's `get` trap more than effect would. */
const ownValue = (u: unknown, key: PropertyKey): unknown => {
  try {
    if (typeof u !== "object" || u === null) return undefined
    const descriptor = Object.getOwnPropertyDescriptor(u, key)
    return descriptor !== undefined && "value" in descriptor ? descriptor.value : undefined
  } catch {
    return undefined
  }
}

/**
 * Every way `actual` differs from `expected` (effect's output): primitives by `Object.is` (-0,
 * NaN), objects by prototype, own keys in order (holes and undeclared keys included), then each
 * key; where effect made a new object or array instead of returning the input's, the library
 * must not hand out the input's own object either (arrays copied).
 */
const differences = (
  actual: unknown,
  expected: unknown,
  input: unknown,
  expectedInput: unknown = input,
  path = "$",
  out: Array<string> = []
): Array<string> => {
  if (typeof expected !== "object" || expected === null) {
    if (!Object.is(actual, expected)) out.push(`${path}: expected ${show(expected)}, got ${show(actual)}`)
    return out
  }
  if (typeof actual !== "object" || actual === null) {
    out.push(`${path}: expected an object ${show(expected)}, got ${show(actual)}`)
    return out
  }
  if (Object.getPrototypeOf(actual) !== Object.getPrototypeOf(expected)) {
    out.push(`${path}: prototype differs from effect's output`)
  }
  if (Array.isArray(actual) !== Array.isArray(expected)) out.push(`${path}: array-ness differs`)
  const expectedKeys = Reflect.ownKeys(expected).map(String)
  const actualKeys = Reflect.ownKeys(actual).map(String)
  if (JSON.stringify(expectedKeys) !== JSON.stringify(actualKeys)) {
    out.push(`${path}: own keys ${JSON.stringify(actualKeys)}, effect gives ${JSON.stringify(expectedKeys)}`)
  }
  if (input !== undefined && expected !== expectedInput && actual === input) {
    out.push(`${path}: effect returns a new object here, the library handed out the input's own object`)
  }
  for (const key of Reflect.ownKeys(expected)) {
    if (Array.isArray(expected) && key === "length") continue
    differences(
      ownValue(actual, key),
      ownValue(expected, key),
      ownValue(input, key),
      ownValue(expectedInput, key),
      `${path}[${String(key)}]`,
      out
    )
  }
  return out
}

type Outcome =
  | { readonly _tag: "decoded"; readonly value: unknown }
  | { readonly _tag: "refused"; readonly message: string }
  | { readonly _tag: "threw"; readonly thrown: unknown }

/** effect's own answer for the input. */
const effectDecode = (schema: Schema.Top, input: unknown): Outcome => {
  try {
    const result = Schema.decodeUnknownResult(schema as Schema.Codec<unknown, unknown>)(input)
    return Result.isSuccess(result)
      ? { _tag: "decoded", value: result.success }
      : { _tag: "refused", message: result.failure.message }
  } catch (thrown) {
    return { _tag: "threw", thrown }
  }
}

interface Case {
  readonly name: string
  readonly schema: Schema.Top
  /** A fresh input for each side (inputs with state, like counting getters, need their own). */
  readonly input: () => unknown
}

const failureOf = (exit: Exit.Exit<unknown, unknown>): unknown =>
  Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined

const message = (fields: { readonly key?: unknown; readonly value: unknown }) =>
  Message.make({ topic: "raw", partition: 0, offset: 7, timestamp: 0, timestampType: 0, key: null, ...fields })

/**
 * Delivers the input as a message's value (or key) to a fresh subscriber of a fresh channel and
 * compares what comes out with effect's own answer. Returns the differences (empty: same).
 */
const compareDelivered = (c: Case, where: "value" | "key", transport: "loaded" | "json") =>
  Effect.gen(function*() {
    const problems: Array<string> = []
    const effectInput = transport === "json" ? JSON.parse(JSON.stringify(c.input())) : c.input()
    const expected = effectDecode(c.schema, effectInput)
    const channel = yield* Channel.make(
      where === "value"
        ? { value: c.schema as Schema.Codec<unknown, unknown>, onDecodeError: "fail" }
        : {
          key: c.schema as Schema.Codec<unknown, unknown>,
          value: Schema.Number,
          keySerializer: "json",
          onDecodeError: "fail"
        }
    )
    const subscriber = yield* channel.clone({ isIterator: true })
    const raw = c.input()
    const payload = transport === "json" ? bytes(JSON.stringify(raw)) : raw
    const received = where === "value" ? message({ value: payload }) : message({ key: payload, value: 1 })
    // the same input as the channel gets, for the sharing check (effect's own run used another copy)
    const exit = yield* Effect.exit(subscriber.deliver(received))
    if (expected._tag === "decoded") {
      if (Exit.isFailure(exit)) {
        problems.push(
          `${c.name}: effect decodes it to ${show(expected.value)}, the channel failed: ${String(failureOf(exit))}`
        )
        return problems
      }
      const event = yield* subscriber.get({ timeout: "1 second" })
      const got = where === "value" ? event.value : event.key
      const diffs = differences(got, expected.value, transport === "json" ? undefined : raw, effectInput)
      for (const d of diffs) problems.push(`${c.name}: ${d}`)
      // a decoded value is of the channel's type: effect's own guard agrees
      if (!Schema.is(c.schema as Schema.Codec<unknown, unknown>)(got)) {
        problems.push(`${c.name}: the decoded ${where} ${show(got)} is not of the Schema's type`)
      }
    } else {
      const error = failureOf(exit)
      const tag = where === "value" ? "ValueDecodeError" : "KeyDecodeError"
      const klass = where === "value" ? ValueDecodeError : KeyDecodeError
      if (Exit.isSuccess(exit)) {
        const event = yield* subscriber.get({ timeout: "1 second" }).pipe(Effect.option)
        problems.push(
          `${c.name}: effect ${
            expected._tag === "refused" ? `refuses it (${expected.message})` : "throws"
          }, the channel decoded it to ${
            show(event._tag === "Some" ? (where === "value" ? event.value.value : event.value.key) : undefined)
          }`
        )
      } else if (!(error instanceof klass)) {
        problems.push(`${c.name}: expected a typed ${tag}, got ${String(error)}`)
      } else if (expected._tag === "refused" && !error.message.endsWith(expected.message)) {
        problems.push(
          `${c.name}: the ${tag} does not carry effect's own error: ${error.message} vs ${expected.message}`
        )
      }
    }
    return problems
  })

// ---------------------------------------------------------------------------------------------
// Schemas and inputs
// ---------------------------------------------------------------------------------------------

const Reading = Schema.Struct({
  sensor: Schema.String,
  celsius: Schema.Number,
  tags: Schema.Array(Schema.String),
  ok: Schema.Boolean,
  kind: Schema.Literal("reading"),
  zero: Schema.Literal(0),
  nothing: Schema.Null,
  nested: Schema.Struct({ id: Schema.Number, names: Schema.Array(Schema.Struct({ n: Schema.String })) })
})

const validReading = () => ({
  nested: { names: [{ n: "x", extra: true }, { n: "y" }], id: -0, more: 1 },
  zero: 0,
  extra: "undeclared",
  nothing: null,
  kind: "reading",
  ok: false,
  tags: ["a", "b"],
  celsius: -0,
  sensor: "s-1"
})

const oddNames = Schema.Struct({
  constructor: Schema.String,
  toString: Schema.Number,
  hasOwnProperty: Schema.Boolean,
  valueOf: Schema.String,
  "0": Schema.String,
  "1": Schema.Number,
  "a\"b": Schema.String,
  "a'b": Schema.String,
  "a\\b": Schema.String,
  "line\nbreak": Schema.String,
  "\u2028": Schema.String,
  "ключ": Schema.String,
  "😀": Schema.String,
  "": Schema.String,
  " ": Schema.String,
  "a.b": Schema.String,
  "${x}": Schema.String,
  "`": Schema.String,
  "*/": Schema.String,
  "__defineGetter__": Schema.String
})

const validOdd = () => ({
  "1": 1,
  "0": "zero",
  toString: 2,
  constructor: "c",
  hasOwnProperty: true,
  valueOf: "v",
  "a\"b": "q",
  "a'b": "s",
  "a\\b": "bs",
  "line\nbreak": "nl",
  "\u2028": "ls",
  "ключ": "k",
  "😀": "e",
  "": "empty",
  " ": "space",
  "a.b": "dot",
  "${x}": "tpl",
  "`": "bt",
  "*/": "cm",
  "__defineGetter__": "dg",
  undeclared: 1
})

const ProtoKey = Schema.Struct({ a: Schema.String, ["__proto__"]: Schema.Struct({ n: Schema.Number }) })

const Point = Schema.Struct({ a: Schema.String, n: Schema.Number })

class PointClass {
  readonly a: string
  readonly n: number
  readonly secret = "not declared"
  constructor(a: string, n: number) {
    this.a = a
    this.n = n
  }
}

class WithGetters {
  get a() {
    return "from a getter"
  }
  get n() {
    return 1
  }
}

class MyArray extends Array<number> {}

const throwingGetter = () =>
  Object.defineProperty({ n: 1 }, "a", {
    enumerable: true,
    get() {
      throw new Error("getter boom")
    }
  })

/** A getter that answers a string the first time it is read, then a number. */
const flipFlop = () => {
  let reads = 0
  return Object.defineProperty({ n: 1 }, "a", {
    enumerable: true,
    get() {
      return reads++ === 0 ? "first" : 42
    }
  })
}

const revokedProxy = () => {
  const { proxy, revoke } = Proxy.revocable({ a: "x", n: 1 }, {})
  revoke()
  return proxy
}

const cases: ReadonlyArray<Case> = [
  // plain structs
  { name: "Reading: undeclared keys, scrambled key order, -0", schema: Reading, input: validReading },
  {
    name: "Reading: a nested element of the wrong type",
    schema: Reading,
    input: () => ({ ...validReading(), nested: { id: 1, names: [{ n: "x" }, { n: 2 }] } })
  },
  { name: "Reading: a missing key", schema: Reading, input: () => ({ ...validReading(), tags: undefined }) },
  { name: "Reading: the literal wrong", schema: Reading, input: () => ({ ...validReading(), kind: "Reading" }) },
  { name: "Reading: zero literal given -0", schema: Reading, input: () => ({ ...validReading(), zero: -0 }) },
  { name: "Reading: null where a Struct is", schema: Reading, input: () => ({ ...validReading(), nested: null }) },
  { name: "Reading: an array for the struct", schema: Reading, input: () => [validReading()] },
  // numbers
  { name: "Number: NaN", schema: Schema.Struct({ n: Schema.Number }), input: () => ({ n: NaN }) },
  { name: "Number: Infinity", schema: Schema.Struct({ n: Schema.Number }), input: () => ({ n: Infinity }) },
  { name: "Number: -Infinity", schema: Schema.Struct({ n: Schema.Number }), input: () => ({ n: -Infinity }) },
  { name: "Number: a numeric string", schema: Schema.Struct({ n: Schema.Number }), input: () => ({ n: "1" }) },
  { name: "Number: a bigint", schema: Schema.Struct({ n: Schema.Number }), input: () => ({ n: 1n }) },
  { name: "Number: a boxed number", schema: Schema.Struct({ n: Schema.Number }), input: () => ({ n: new Number(1) }) },
  { name: "Finite: NaN", schema: Schema.Struct({ n: Schema.Finite }), input: () => ({ n: NaN }) },
  { name: "Int: 1.5", schema: Schema.Struct({ n: Schema.Int }), input: () => ({ n: 1.5 }) },
  { name: "top-level Number: -0", schema: Schema.Number, input: () => -0 },
  { name: "top-level Number: NaN", schema: Schema.Number, input: () => NaN },
  { name: "top-level Number: -Infinity", schema: Schema.Number, input: () => -Infinity },
  // literals and null
  {
    name: "Literals: a member",
    schema: Schema.Struct({ l: Schema.Literals(["a", 1, true]) }),
    input: () => ({ l: 1 })
  },
  {
    name: "Literals: not a member",
    schema: Schema.Struct({ l: Schema.Literals(["a", 1, true]) }),
    input: () => ({ l: "1" })
  },
  { name: "Literal true given 1", schema: Schema.Struct({ l: Schema.Literal(true) }), input: () => ({ l: 1 }) },
  { name: "Null given undefined", schema: Schema.Struct({ z: Schema.Null }), input: () => ({ z: undefined }) },
  { name: "Null given a missing key", schema: Schema.Struct({ z: Schema.Null }), input: () => ({}) },
  {
    name: "NullOr(String) given null",
    schema: Schema.Struct({ z: Schema.NullOr(Schema.String) }),
    input: () => ({ z: null })
  },
  // arrays
  { name: "Array: copied, -0 kept", schema: Schema.Array(Schema.Number), input: () => [1, -0, NaN, Infinity] },
  { name: "Array: sparse", schema: Schema.Array(Schema.Number), input: () => [1, , 3] }, // eslint-disable-line no-sparse-arrays
  {
    name: "Array: an undeclared property",
    schema: Schema.Array(Schema.Number),
    input: () => Object.assign([1, 2], { extra: 1 })
  },
  { name: "Array: a subclass instance", schema: Schema.Array(Schema.Number), input: () => MyArray.from([1, 2]) },
  { name: "Array: a typed array", schema: Schema.Array(Schema.Number), input: () => new Float64Array([1, 2]) },
  { name: "Array: an array-like", schema: Schema.Array(Schema.Number), input: () => ({ length: 1, 0: 1 }) },
  {
    name: "nested arrays of structs: each copied, undeclared keys dropped",
    schema: Schema.Struct({ rows: Schema.Array(Schema.Array(Point)) }),
    input: () => ({ rows: [[{ n: 1, a: "x", z: 0 }], [], [{ a: "y", n: -0 }]], extra: [] })
  },
  // odd field names
  { name: "odd field names, all present", schema: oddNames, input: validOdd },
  { name: "odd field names, one wrong (\\u2028)", schema: oddNames, input: () => ({ ...validOdd(), "\u2028": 1 }) },
  {
    name: "odd field names, constructor missing (inherited Object.prototype.constructor must not count)",
    schema: oddNames,
    input: () => {
      const { constructor: _, ...rest } = validOdd()
      return rest
    }
  },
  {
    name: "toString missing: Object.prototype.toString must not count",
    schema: Schema.Struct({ toString: Schema.Unknown }),
    input: () => ({})
  },
  {
    name: "a __proto__ field given as an own key (as JSON.parse makes it)",
    schema: ProtoKey,
    input: () => JSON.parse("{\"a\":\"x\",\"__proto__\":{\"n\":1,\"evil\":true}}")
  },
  {
    name: "a __proto__ field missing: the input's real prototype must not count",
    schema: ProtoKey,
    input: () => Object.assign(Object.create({ n: 1 }), { a: "x" })
  },
  {
    name: "an own __proto__ key in the input does not reach a struct without it",
    schema: Point,
    input: () => JSON.parse("{\"a\":\"x\",\"n\":1,\"__proto__\":{\"polluted\":true}}")
  },
  // inherited and polluted inputs
  { name: "fields inherited from the input's prototype", schema: Point, input: () => Object.create({ a: "x", n: 1 }) },
  {
    name: "a null-prototype object",
    schema: Point,
    input: () => Object.assign(Object.create(null), { a: "x", n: 1, extra: 2 })
  },
  // class instances
  { name: "a class instance with an undeclared field", schema: Point, input: () => new PointClass("x", 1) },
  { name: "a class instance whose fields are prototype getters", schema: Point, input: () => new WithGetters() },
  { name: "a Date", schema: Point, input: () => new Date(0) },
  { name: "a Map", schema: Point, input: () => new Map<string, unknown>([["a", "x"], ["n", 1]]) },
  // getters, proxies
  { name: "a getter that throws", schema: Point, input: throwingGetter },
  { name: "a getter that answers differently on each read", schema: Point, input: flipFlop },
  {
    name: "a proxy with a get trap",
    schema: Point,
    input: () => new Proxy({ a: "x", n: 1, z: 2 }, { get: (t, k) => Reflect.get(t, k) })
  },
  {
    name: "a proxy whose get trap lies about a field",
    schema: Point,
    input: () => new Proxy({ a: "x", n: 1 }, { get: (t, k) => (k === "n" ? "not a number" : Reflect.get(t, k)) })
  },
  {
    name: "a proxy whose has trap says no",
    schema: Point,
    input: () => new Proxy({ a: "x", n: 1 }, { has: () => false })
  },
  {
    name: "a proxy whose ownKeys trap adds a key",
    schema: Point,
    input: () =>
      new Proxy({ a: "x", n: 1 }, {
        ownKeys: (t) => [...Reflect.ownKeys(t), "ghost"],
        getOwnPropertyDescriptor: (t, k) =>
          k === "ghost"
            ? { value: 1, enumerable: true, configurable: true, writable: true }
            : Reflect.getOwnPropertyDescriptor(t, k)
      })
  },
  {
    name: "a proxy whose every trap throws (nested: Message.make itself cannot hold one)",
    schema: Schema.Struct({ inner: Point }),
    input: () => ({
      inner: new Proxy({}, {
        get: () => {
          throw new Error("trap")
        },
        has: () => {
          throw new Error("trap")
        },
        ownKeys: () => {
          throw new Error("trap")
        },
        getOwnPropertyDescriptor: () => {
          throw new Error("trap")
        },
        getPrototypeOf: () => {
          throw new Error("trap")
        }
      })
    })
  },
  {
    name: "a revoked proxy (nested: Message.make itself cannot hold one)",
    schema: Schema.Struct({ inner: Point }),
    input: () => ({ inner: revokedProxy() })
  },
  { name: "a symbol key on the input", schema: Point, input: () => ({ a: "x", n: 1, [Symbol("s")]: 1 }) },
  {
    name: "a non-enumerable own field",
    schema: Point,
    input: () => Object.defineProperty({ n: 1 }, "a", { value: "x", enumerable: false })
  },
  { name: "a frozen input", schema: Point, input: () => Object.freeze({ n: 1, a: "x", z: 0 }) },
  // present with undefined versus absent
  { name: "Undefined field absent", schema: Schema.Struct({ a: Schema.Undefined }), input: () => ({}) },
  { name: "Undefined field present", schema: Schema.Struct({ a: Schema.Undefined }), input: () => ({ a: undefined }) },
  { name: "Unknown field absent", schema: Schema.Struct({ a: Schema.Unknown }), input: () => ({}) },
  { name: "Any field absent", schema: Schema.Struct({ a: Schema.Any }), input: () => ({}) },
  {
    name: "UndefinedOr(String) field absent",
    schema: Schema.Struct({ a: Schema.UndefinedOr(Schema.String) }),
    input: () => ({})
  },
  { name: "Array(Undefined) given a hole", schema: Schema.Array(Schema.Undefined), input: () => [, undefined] }, // eslint-disable-line no-sparse-arrays
  { name: "an array proxy", schema: Schema.Array(Schema.Number), input: () => new Proxy([1, 2], {}) },
  // not plain: must still be effect's result
  {
    name: "optionalKey absent",
    schema: Schema.Struct({ a: Schema.optionalKey(Schema.String), n: Schema.Number }),
    input: () => ({ n: 1 })
  },
  {
    name: "optionalKey given undefined",
    schema: Schema.Struct({ a: Schema.optionalKey(Schema.String) }),
    input: () => ({ a: undefined })
  },
  {
    name: "optional given undefined",
    schema: Schema.Struct({ a: Schema.optional(Schema.String) }),
    input: () => ({ a: undefined })
  },
  {
    name: "Record: undeclared keys are its keys",
    schema: Schema.Record(Schema.String, Schema.Number),
    input: () => ({ b: 1, a: -0 })
  },
  { name: "Tuple: one too many", schema: Schema.Tuple([Schema.String]), input: () => ["a", "b"] },
  {
    name: "Union of structs: the second member",
    schema: Schema.Union([
      Schema.Struct({ t: Schema.Literal("a"), x: Schema.String }),
      Schema.Struct({ t: Schema.Literal("b"), y: Schema.Number })
    ]),
    input: () => ({ y: 1, t: "b", x: 1 })
  },
  {
    name: "a transformation (NumberFromString)",
    schema: Schema.Struct({ n: Schema.NumberFromString }),
    input: () => ({ n: "-0" })
  },
  {
    name: "a check (minLength)",
    schema: Schema.Struct({ s: Schema.String.check(Schema.isMinLength(2)) }),
    input: () => ({ s: "a" })
  },
  {
    name: "Unknown keeps the input's object",
    schema: Schema.Struct({ u: Schema.Unknown, n: Schema.Number }),
    input: () => ({ n: 1, u: { deep: [1] } })
  },
  {
    name: "a Schema.Class value",
    schema: (() => {
      class Person extends Schema.Class<Person>("Person")({ name: Schema.String }) {}
      return Person
    })(),
    input: () => ({ name: "ada", age: 36 })
  }
]

/** Inputs that survive JSON (what a JSON-encoded record on the wire can hold). */
const jsonCases: ReadonlyArray<Case> = [
  { name: "json: Reading", schema: Reading, input: validReading },
  { name: "json: odd field names", schema: oddNames, input: validOdd },
  {
    name: "json: a __proto__ field on the wire",
    schema: ProtoKey,
    input: () => JSON.parse("{\"a\":\"x\",\"__proto__\":{\"n\":1,\"evil\":true}}")
  },
  {
    name: "json: an own __proto__ key on the wire, struct without it",
    schema: Point,
    input: () => JSON.parse("{\"a\":\"x\",\"n\":1,\"__proto__\":{\"polluted\":true}}")
  },
  { name: "json: a wrong nested type", schema: Reading, input: () => ({ ...validReading(), ok: "yes" }) },
  { name: "json: arrays of arrays", schema: Schema.Array(Schema.Array(Schema.Number)), input: () => [[1], [], [2, 3]] },
  { name: "json: keys with unicode escapes", schema: oddNames, input: () => ({ ...validOdd(), "😀": "\u0000\ud83d" }) }
]

// ---------------------------------------------------------------------------------------------

const run = <A, E>(effect: Effect.Effect<A, E, any>) => effect.pipe(Effect.provide(AppTest), Effect.provide(quiet))

describe("decoding on deliver is exactly effect's Schema", () => {
  for (const c of cases) {
    it.effect(`value, already loaded — ${c.name}`, () =>
      run(Effect.gen(function*() {
        const problems = yield* compareDelivered(c, "value", "loaded")
        assert.deepStrictEqual(problems, [])
      })))
  }

  for (const c of cases.filter((c) => !c.name.startsWith("top-level"))) {
    it.effect(`key, already loaded — ${c.name}`, () =>
      run(Effect.gen(function*() {
        const problems = yield* compareDelivered(c, "key", "loaded")
        assert.deepStrictEqual(problems, [])
      })))
  }

  for (const c of jsonCases) {
    it.effect(`value, JSON bytes — ${c.name}`, () =>
      run(Effect.gen(function*() {
        const problems = yield* compareDelivered(c, "value", "json")
        assert.deepStrictEqual(problems, [])
      })))
    it.effect(`key, JSON bytes — ${c.name}`, () =>
      run(Effect.gen(function*() {
        const problems = yield* compareDelivered(c, "key", "json")
        assert.deepStrictEqual(problems, [])
      })))
  }

  it.effect("JSON numbers on the wire: -0, 1e400 (Infinity) and -1e400 decode as effect decodes JSON.parse's result", () =>
    run(Effect.gen(function*() {
      const text = "{\"a\":-0,\"b\":1e400,\"c\":-1e400,\"d\":0.1}"
      const schema = Schema.Struct({ a: Schema.Number, b: Schema.Number, c: Schema.Number, d: Schema.Number })
      const expected = effectDecode(schema, JSON.parse(text))
      const channel = yield* Channel.make({ value: schema })
      const subscriber = yield* channel.clone({ isIterator: true })
      yield* subscriber.deliver(message({ value: bytes(text) }))
      const event = yield* subscriber.get()
      assert.strictEqual(expected._tag, "decoded")
      assert.deepStrictEqual(
        differences(event.value, expected._tag === "decoded" ? expected.value : undefined, undefined),
        []
      )
    })))

  it.effect("prototype pollution: a field the input lacks is not read from a polluted Object.prototype", () =>
    run(Effect.gen(function*() {
      const schema = Schema.Struct({ a: Schema.String, pollutedQty: Schema.Number })
      const optionalSchema = Schema.Struct({ a: Schema.String, pollutedQty: Schema.optionalKey(Schema.Number) })
      const channel = yield* Channel.make({ value: schema, onDecodeError: "skip" })
      const optional = yield* Channel.make({ value: optionalSchema, onDecodeError: "skip" })
      const sub = yield* channel.clone({ isIterator: true })
      const optSub = yield* optional.clone({ isIterator: true })
      const proto = Object.prototype as Record<string, unknown>
      let expected: Outcome
      let expectedOptional: Outcome
      proto.pollutedQty = 5
      try {
        expected = effectDecode(schema, { a: "x" })
        expectedOptional = effectDecode(optionalSchema, { a: "x" })
        yield* sub.deliver(message({ value: { a: "x" } }))
        yield* optSub.deliver(message({ value: { a: "x" } }))
      } finally {
        delete proto.pollutedQty
      }
      const got = yield* sub.get({ timeout: "100 millis" }).pipe(Effect.option)
      const gotOptional = yield* optSub.get({ timeout: "100 millis" }).pipe(Effect.option)
      // what effect does, the channel does (decoded with the same output, or refused: skipped)
      assert.strictEqual(got._tag === "Some" ? "decoded" : "refused", expected._tag, "required field")
      if (got._tag === "Some" && expected._tag === "decoded") {
        assert.deepStrictEqual(differences(got.value.value, expected.value, undefined), [])
      }
      assert.strictEqual(gotOptional._tag === "Some" ? "decoded" : "refused", expectedOptional._tag, "optional field")
      if (gotOptional._tag === "Some" && expectedOptional._tag === "decoded") {
        assert.deepStrictEqual(differences(gotOptional.value.value, expectedOptional.value, undefined), [])
      }
    })))

  it.effect("decoding does not mutate the input: the received message's value is untouched (a dead letter or a retry sees it as it came)", () =>
    run(Effect.gen(function*() {
      const input = validReading()
      const snapshot = structuredClone(input)
      const channel = yield* Channel.make({ value: Reading })
      const sub = yield* channel.clone({ isIterator: true })
      yield* sub.deliver(message({ value: input }))
      const event = yield* sub.get()
      assert.deepStrictEqual(input, snapshot)
      assert.strictEqual(event.message.value, input, "the message holds what was received") // mutating the decoded value does not reach the received one
      ;(event.value.tags as Array<string>).push("mutated")
      ;(event.value.nested.names as Array<{ n: string }>)[0].n = "mutated"
      assert.deepStrictEqual(input, snapshot)
    })))
})

describe("the decode-error policy gets every refusal, typed", () => {
  // The lying-`has` proxy is left out: effect refuses it, the channel decodes it (the parity test
  // above reports that); here every input is one both refuse.
  const refused: ReadonlyArray<Case> = cases.filter((c) =>
    effectDecode(c.schema, c.input())._tag !== "decoded" && !c.name.includes("has trap")
  )

  it.effect(`skip: each of the ${refused.length} refused inputs is skipped and counted, the good one after them arrives`, () =>
    run(Effect.gen(function*() {
      for (const c of refused) {
        const channel = yield* Channel.make({
          value: c.schema as Schema.Codec<unknown, unknown>,
          onDecodeError: "skip"
        })
        const sub = yield* channel.clone({ isIterator: true })
        const exit = yield* Effect.exit(sub.deliver(message({ value: c.input() })))
        assert.isTrue(Exit.isSuccess(exit), `${c.name}: skip never fails deliver (${String(failureOf(exit))})`)
        assert.strictEqual(channel.decodeErrorCounts.skipped, 1, `${c.name}: counted`)
        assert.isTrue(yield* sub.empty, `${c.name}: nothing delivered`)
      }
    })))

  it.effect("deadLetter: each refused input goes to the dead-letter channel as received (the same value, key and offset)", () =>
    run(Effect.gen(function*() {
      const dead = yield* Channel.make({ label: "dead" })
      const deadSub = yield* dead.clone({ isIterator: true, maxsize: 1000 })
      for (const c of refused) {
        const channel = yield* Channel.make({
          value: c.schema as Schema.Codec<unknown, unknown>,
          onDecodeError: { deadLetter: dead }
        })
        const sub = yield* channel.clone({ isIterator: true })
        const input = c.input()
        const exit = yield* Effect.exit(sub.deliver(message({ value: input, key: bytes("k") })))
        assert.isTrue(
          Exit.isSuccess(exit),
          `${c.name}: dead-lettering never fails deliver (${String(failureOf(exit))})`
        )
        const letter = yield* deadSub.get({ timeout: "1 second" })
        assert.strictEqual(letter.message.value, input, `${c.name}: the original value`)
        assert.deepStrictEqual([...(letter.message.key as Uint8Array)], [...bytes("k")], `${c.name}: the original key`)
        assert.isTrue(
          letter.headers.some(([name]) => name === "x-decode-error"),
          `${c.name}: x-decode-error header`
        )
      }
    })))

  it.effect("fail: a refused value fails deliver and the readers with ValueDecodeError carrying the received message", () =>
    run(Effect.gen(function*() {
      for (const c of refused) {
        const channel = yield* Channel.make({ value: c.schema as Schema.Codec<unknown, unknown> })
        const sub = yield* channel.clone({ isIterator: true })
        const input = c.input()
        const received = message({ value: input })
        const error = failureOf(yield* Effect.exit(sub.deliver(received)))
        assert.instanceOf(error, ValueDecodeError, c.name)
        assert.strictEqual((error as ValueDecodeError).received, received, `${c.name}: the message as received`)
        const read = failureOf(yield* Effect.exit(sub.get({ timeout: "1 second" })))
        assert.instanceOf(read, ValueDecodeError, `${c.name}: the reader gets it too`)
        // the error's text is printable whatever the input
        assert.isString(String(error))
        assert.isString(JSON.stringify(error))
      }
    })))
})

describe("raw bytes become text for text Schemas, as effect then decodes the text", () => {
  const textSchemas: ReadonlyArray<readonly [string, Schema.Top, string]> = [
    ["String", Schema.String, "héllo\u0000😀"],
    ["Literal", Schema.Literal("é"), "é"],
    ["Literal, other text", Schema.Literal("é"), "e"],
    ["Literals", Schema.Literals(["a", "b"]), "b"],
    ["TemplateLiteral", Schema.TemplateLiteral(["order-", Schema.String]), "order-7"],
    ["TemplateLiteral, no match", Schema.TemplateLiteral(["order-", Schema.String]), "item-7"],
    ["brand", Schema.String.pipe(Schema.brand("Id")), "id-1"],
    ["NullOr(String)", Schema.NullOr(Schema.String), "x"],
    ["Union(Literal, String)", Schema.Union([Schema.Literal("a"), Schema.String]), "zz"],
    ["Enum", Schema.Enum({ A: "a", B: "b" }), "b"],
    ["checked String", Schema.String.check(Schema.isMaxLength(2)), "abc"]
  ]
  for (const [name, schema, input] of textSchemas) {
    for (const where of ["key", "value"] as const) {
      it.effect(`${where}: ${name} from raw bytes`, () =>
        run(Effect.gen(function*() {
          const expected = effectDecode(schema, input)
          const channel = yield* Channel.make(
            where === "key"
              ? { key: schema as Schema.Codec<unknown, unknown>, value: Schema.Number, keySerializer: "raw" }
              : { value: schema as Schema.Codec<unknown, unknown>, valueSerializer: "raw" }
          )
          const sub = yield* channel.clone({ isIterator: true })
          const received = where === "key"
            ? message({ key: bytes(input), value: 1 })
            : message({ value: bytes(input) })
          const exit = yield* Effect.exit(sub.deliver(received))
          if (expected._tag === "decoded") {
            assert.isTrue(Exit.isSuccess(exit), `effect decodes ${JSON.stringify(input)}: ${String(failureOf(exit))}`)
            const event = yield* sub.get()
            assert.deepStrictEqual(
              differences(where === "key" ? event.key : event.value, expected.value, undefined),
              []
            )
          } else {
            const error = failureOf(exit)
            assert.instanceOf(
              error,
              (where === "key" ? KeyDecodeError : ValueDecodeError) as new(...args: Array<any>) => Error
            )
            if (expected._tag === "refused") assert.isTrue((error as Error).message.endsWith(expected.message))
          }
        })))
    }
  }
})
