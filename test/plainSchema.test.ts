/**
 * The plain decoders and encoders (src/internal/plainSchema.ts) must give
 * exactly what effect's own parser gives: the same output for what they
 * accept, effect's own error for the rest.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import * as fc from "fast-check"
import { decoderOf, encoderOf, isPlain, makeRunner, Refused, type SchemaRunner } from "../src/internal/plainSchema.ts"

/** A runner's answer as a Result, to compare with effect's. */
const run = (runner: SchemaRunner, input: unknown): Result.Result<unknown, Schema.SchemaError> => {
  const output = runner(input)
  return output instanceof Refused ? Result.fail(output.error as Schema.SchemaError) : Result.succeed(output)
}

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

const plainSchemas = {
  string: Schema.String,
  number: Schema.Number,
  boolean: Schema.Boolean,
  literal: Schema.Literal("a"),
  numbers: Schema.Array(Schema.Number),
  reading: Reading,
  withPrototypeNames: Schema.Struct({ constructor: Schema.String, toString: Schema.Number })
} as const

const otherSchemas = {
  finite: Schema.Finite,
  optional: Schema.Struct({ a: Schema.optionalKey(Schema.String) }),
  checked: Schema.String.check(Schema.isMinLength(2)),
  union: Schema.Union([Schema.String, Schema.Number]),
  transformed: Schema.NumberFromString,
  record: Schema.Record(Schema.String, Schema.Number),
  tuple: Schema.Tuple([Schema.String]),
  nestedOptional: Schema.Struct({ inner: Schema.Struct({ a: Schema.optional(Schema.Number) }) }),
  protoKey: Schema.Struct({ ["__proto__"]: Schema.String })
} as const

/** Mostly a valid value, sometimes anything at all. */
const mostly = <A>(valid: fc.Arbitrary<A>): fc.Arbitrary<unknown> =>
  fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: fc.anything({ withBigInt: true }), weight: 1 })

/** Inputs near each schema: valid ones, near misses, and anything at all. */
const readingLike = fc.record({
  sensor: mostly(fc.string()),
  celsius: mostly(fc.oneof(fc.double(), fc.constant(-0))),
  tags: mostly(fc.array(mostly(fc.string()))),
  ok: mostly(fc.boolean()),
  kind: mostly(fc.constant("reading")),
  zero: mostly(fc.oneof(fc.constant(0), fc.constant(-0))),
  nothing: mostly(fc.constant(null)),
  nested: mostly(fc.record({
    id: mostly(fc.oneof(fc.double(), fc.bigInt())),
    names: mostly(fc.array(mostly(fc.record({ n: mostly(fc.string()) }))))
  })),
  extra: fc.anything()
}, { requiredKeys: ["sensor", "celsius", "tags", "ok", "kind", "zero", "nothing", "nested"] })

const input: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ withNullPrototype: true, withSparseArray: true, withBoxedValues: true, withBigInt: true }),
  readingLike,
  mostly(fc.string()),
  mostly(fc.oneof(fc.double(), fc.integer({ min: -2, max: 2 }), fc.bigInt(), fc.boolean(), fc.constant("a"))),
  fc.array(mostly(fc.oneof(fc.double(), fc.bigInt())), { maxLength: 5 }),
  fc.sparseArray(fc.double()),
  fc.record({ constructor: mostly(fc.string()), toString: mostly(fc.double()) }, { requiredKeys: [] })
)

/** Both results side by side: outputs compared deeply, errors by their message. */
const same = (
  actual: Result.Result<unknown, Schema.SchemaError>,
  expected: Result.Result<unknown, Schema.SchemaError>
) => {
  if (Result.isSuccess(expected)) {
    assert.isTrue(Result.isSuccess(actual), "effect's parser accepts it, so must the plain one")
    if (Result.isSuccess(actual)) {
      assert.deepStrictEqual(actual.success, expected.success)
      assert.deepStrictEqual(Object.keys(actual.success as object ?? {}), Object.keys(expected.success as object ?? {}))
    }
  } else {
    assert.isTrue(Result.isFailure(actual), "effect's parser refuses it, so must the plain one")
    if (Result.isFailure(actual)) assert.strictEqual(String(actual.failure), String(expected.failure))
  }
}

describe("plain schemas", () => {
  it("are compiled for strings, numbers, booleans, null, literals, arrays and structs of them", () => {
    for (const [name, schema] of Object.entries(plainSchemas)) assert.isTrue(isPlain(schema), name)
  })

  it("are not compiled for checks, transformations, optional keys, unions, records, tuples or __proto__", () => {
    for (const [name, schema] of Object.entries(otherSchemas)) assert.isFalse(isPlain(schema), name)
  })

  it("decode and encode exactly as effect's parser does, for any input", () => {
    for (const schema of [...Object.values(plainSchemas), ...Object.values(otherSchemas)]) {
      const decode = decoderOf(schema)
      const encode = encoderOf(schema)
      // as where code cannot be generated: structs as loops
      const decodeLoop = makeRunner(schema, "decode", false)
      const encodeLoop = makeRunner(schema, "encode", false)
      const effectDecode = Schema.decodeUnknownResult(schema as Schema.Codec<unknown, unknown>)
      const effectEncode = Schema.encodeUnknownResult(schema as Schema.Codec<unknown, unknown>)
      fc.assert(
        fc.property(input, (u) => {
          same(run(decode, u), effectDecode(u))
          same(run(encode, u), effectEncode(u))
          same(run(decodeLoop, u), effectDecode(u))
          same(run(encodeLoop, u), effectEncode(u))
        }),
        { numRuns: 500 }
      )
    }
  })

  it("keep -0, drop undeclared keys, copy arrays, and keep the declared key order (generated or not)", () => {
    for (const decode of [decoderOf(Reading), makeRunner(Reading, "decode", false)]) keepsShape(decode)
  })

  it("generate code that cannot be injected through field names", () => {
    const odd = Schema.Struct({
      ["a\"] = 1; globalThis.injected = true; [\""]: Schema.String,
      ["\u2028"]: Schema.Number,
      ["0"]: Schema.Boolean,
      ["constructor"]: Schema.String
    })
    const input = { ["a\"] = 1; globalThis.injected = true; [\""]: "x", ["\u2028"]: 1, ["0"]: true, constructor: "c" }
    same(run(decoderOf(odd), input), Schema.decodeUnknownResult(odd)(input))
    assert.isUndefined((globalThis as { injected?: unknown }).injected)
  })

  const keepsShape = (decode: SchemaRunner) => {
    const raw = {
      extra: 1,
      nested: { names: [{ n: "x", more: true }], id: 2 },
      zero: -0,
      nothing: null,
      kind: "reading",
      ok: true,
      tags: ["a"],
      celsius: -0,
      sensor: "s"
    }
    const decoded = decode(raw)
    assert.isFalse(decoded instanceof Refused)
    const value = decoded as typeof Reading.Type
    assert.deepStrictEqual(Object.keys(value), ["sensor", "celsius", "tags", "ok", "kind", "zero", "nothing", "nested"])
    assert.isTrue(Object.is(value.celsius, -0) && Object.is(value.zero, -0))
    assert.notStrictEqual(value.tags, raw.tags)
    assert.deepStrictEqual(value.nested, { id: 2, names: [{ n: "x" }] })
  }

  it("never throw: a getter that throws is refused with what effect's parser made of it", () => {
    const hostile = Object.defineProperty({}, "a", {
      enumerable: true,
      get() {
        throw new Error("boom")
      }
    })
    const schema = Schema.Struct({ a: Schema.String })
    let effectOutcome: unknown
    try {
      const result = Schema.decodeUnknownResult(schema)(hostile)
      effectOutcome = Result.isSuccess(result) ? "success" : String(result.failure)
    } catch (thrown) {
      effectOutcome = String(thrown)
    }
    for (const decode of [decoderOf(schema), makeRunner(schema, "decode", false)]) {
      const output = decode(hostile)
      assert.instanceOf(output, Refused)
      assert.strictEqual(String((output as Refused).error), effectOutcome)
    }
  })

  it("are made once per schema", () => {
    assert.strictEqual(decoderOf(Reading), decoderOf(Reading))
    assert.strictEqual(encoderOf(Reading), encoderOf(Reading))
  })
})
