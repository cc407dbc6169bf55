import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Result } from "effect"
import { Codec, CodecError, InvalidChannelOptionsError } from "effect-faust"

const readCodecs = Effect.gen(function*() {
  return yield* Codec.Codecs
})
const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: unknown) => new TextDecoder().decode(data as Uint8Array)

describe("Codec", () => {
  it("raw passes bytes through and encodes strings as UTF-8", () => {
    const data = new Uint8Array([0, 255, 7])
    assert.strictEqual(Codec.raw.dumps(data), data)
    assert.deepStrictEqual(Codec.raw.dumps("héllo"), bytes("héllo"))
    assert.strictEqual(Codec.raw.loads(data), data)
    assert.throws(() => Codec.raw.dumps(42))
  })

  it("json round-trips values and rejects invalid UTF-8 and invalid JSON", () => {
    const value = { a: [1, "two", null], b: { c: true } }
    assert.deepStrictEqual(Codec.json.loads(Codec.json.dumps(value)), value)
    assert.strictEqual(text(Codec.json.dumps({ x: 1 })), "{\"x\":1}")
    assert.throws(() => Codec.json.loads(bytes("{not json")))
    assert.throws(() => Codec.json.loads(new Uint8Array([0xff, 0xfe])))
    assert.throws(() => Codec.json.dumps(undefined))
  })

  it("json refuses the numbers JSON cannot hold (written as null, they would not decode back), keeps real nulls", () => {
    for (const bad of [NaN, Infinity, -Infinity, { a: { b: [1, NaN] } }, [null, Infinity]]) {
      assert.throws(() => Codec.json.dumps(bad), /JSON has no such number/)
    }
    assert.strictEqual(text(Codec.json.dumps({ a: null, b: [null, -0, 1.5] })), "{\"a\":null,\"b\":[null,0,1.5]}")
    // toJSON first, as JSON.stringify does: a NaN it leaves out is no problem
    assert.strictEqual(text(Codec.json.dumps({ toJSON: () => null, x: NaN })), "null")
  })

  it("binary is base64 and rejects non-base64 payloads", () => {
    const encoded = Codec.binary.dumps(bytes("hi!"))
    assert.strictEqual(text(encoded), "aGkh")
    assert.deepStrictEqual(Codec.binary.loads(encoded), bytes("hi!"))
    assert.throws(() => Codec.binary.loads(bytes("not base64!")))
    assert.throws(() => Codec.binary.loads(bytes("abc")))
  })

  it("compose applies the first codec, then the second, and loads in reverse", () => {
    const codec = Codec.compose(Codec.json, Codec.binary)
    assert.strictEqual(codec.name, "json|binary")
    const encoded = codec.dumps({ n: 1 })
    assert.strictEqual(text(encoded), Buffer.from("{\"n\":1}").toString("base64"))
    assert.deepStrictEqual(codec.loads(encoded), { n: 1 })
    assert.throws(() => Codec.compose(Codec.json, Codec.json).loads(bytes("1")))
  })

  it.effect("dumps and loads fail with a typed CodecError naming the codec", () =>
    Effect.gen(function*() {
      const bad = yield* Effect.flip(Codec.loads(Codec.json, bytes("{")))
      assert.instanceOf(bad, CodecError)
      assert.strictEqual(bad.codec, "json")
      assert.strictEqual(bad.operation, "loads")
      assert.match(bad.message, /codec "json" failed to loads/)
      const badDump = yield* Effect.flip(Codec.dumps(Codec.raw, 1))
      assert.strictEqual(badDump.operation, "dumps")
      assert.deepStrictEqual(yield* Codec.loads(Codec.json, bytes("[1]")), [1])
      assert.deepStrictEqual(yield* Codec.dumps(Codec.raw, "a"), bytes("a"))
    }))

  it("resolve finds names, composes a|b, passes codecs through and explains unknown names", () => {
    assert.strictEqual(Result.getOrThrow(Codec.resolve(Codec.builtins, "json")), Codec.json)
    assert.strictEqual(Result.getOrThrow(Codec.resolve(Codec.builtins, Codec.raw)), Codec.raw)
    assert.strictEqual(Result.getOrThrow(Codec.resolve(Codec.builtins, "json|binary")).name, "json|binary")
    const unknown = Codec.resolve(Codec.builtins, "json|avro")
    assert.isTrue(Result.isFailure(unknown))
    if (Result.isFailure(unknown)) assert.match(unknown.failure, /unknown serializer "avro"/)
  })

  it("make builds a codec recognised by isCodec", () => {
    const upper = Codec.make({ name: "upper", dumps: (v) => bytes(String(v).toUpperCase()), loads: text })
    assert.isTrue(Codec.isCodec(upper))
    assert.isFalse(Codec.isCodec({ name: "x" }))
    assert.strictEqual(upper.loads(upper.dumps("abc")), "ABC")
  })

  it.effect("Codecs defaults to the built-ins and Codecs.layer adds user codecs", () =>
    Effect.gen(function*() {
      const registry = yield* Codec.Codecs
      assert.deepStrictEqual([...registry.keys()].sort(), ["binary", "json", "raw"])
      const upper = Codec.make({ name: "upper", dumps: (v) => bytes(String(v).toUpperCase()), loads: text })
      const withUpper = yield* Effect.provide(readCodecs, Codec.Codecs.layer({ upper }))
      assert.strictEqual(withUpper.get("upper"), upper)
      assert.strictEqual(withUpper.get("json"), Codec.json)
      const composed = Result.getOrThrow(Codec.resolve(withUpper, "upper|binary"))
      assert.strictEqual(composed.loads(composed.dumps("ok")), "OK")
    }))

  it.effect("Codecs.layer rejects names with | and values that are not codecs", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.provide(readCodecs, Codec.Codecs.layer({ "a|b": Codec.json })))
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(
        Effect.provide(readCodecs, Codec.Codecs.layer({ bad: { name: "bad" } as unknown as Codec.Codec }))
      )
      assert.instanceOf(error, InvalidChannelOptionsError)
      assert.strictEqual(error.option, "codecs")
    }))
})
