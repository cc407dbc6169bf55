/**
 * Decoding and encoding with a Schema, fast for the plain shapes records
 * mostly have. Effect's parser costs ~0.3 µs to check that a key is a string
 * and ~0.7 µs for a struct of four primitive fields, more than the JSON
 * parse of the same record, so a topic would spend most of its time there.
 * A schema made only of strings, numbers, booleans, null, literals, and arrays and
 * structs of them (no checks, no transformations, no optional keys, no index
 * signatures) is compiled here into one plain function; its output is what
 * effect's parser gives (the declared keys in declared order, nothing else).
 * Any other schema, and any input the plain function does not accept, goes
 * through effect's parser, so every error is effect's own.
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"

/**
 * An input a Schema decoder or encoder refused, with effect's error (or what
 * effect's parser threw: a getter or a proxy trap that throws).
 */
export class Refused {
  readonly error: unknown
  constructor(error: unknown) {
    this.error = error
  }
}

/**
 * A Schema decoder or encoder: the output, or {@link Refused} (no `Result`
 * per call: this runs once per key and value of every record).
 */
export type SchemaRunner = (input: unknown) => unknown

/** Returned by a plain function for an input it does not accept. */
const refused: unique symbol = Symbol("refused")

type Plain = (input: unknown) => unknown

const isBare = (ast: SchemaAST.AST): boolean =>
  ast.checks === undefined && ast.encoding === undefined && ast.context === undefined

/**
 * The plain function of a schema's AST, or `undefined` when it has none;
 * `generate: false` builds structs as loops only (what happens where code
 * cannot be generated).
 */
const compile = (ast: SchemaAST.AST, generate: boolean): Plain | undefined => {
  if (!isBare(ast)) return undefined
  switch (ast._tag) {
    case "String":
      return (input) => typeof input === "string" ? input : refused
    case "Number":
      return (input) => typeof input === "number" ? input : refused
    case "Boolean":
      return (input) => typeof input === "boolean" ? input : refused
    case "Null":
      return (input) => input === null ? input : refused
    case "Literal": {
      const literal = ast.literal
      // effect's parser hands back the input when it is `===` the literal (so -0 for 0).
      return (input) => input === literal ? input : refused
    }
    case "Objects":
      return compileStruct(ast, generate)
    case "Arrays":
      return compileArray(ast, generate)
    default:
      return undefined
  }
}

/** The fields a struct's generated function checks inline, by the `typeof` they need. */
const inlineKinds: Partial<Record<SchemaAST.AST["_tag"], string>> = {
  String: "string",
  Number: "number",
  Boolean: "boolean"
}

const compileStruct = (ast: SchemaAST.Objects, generate: boolean): Plain | undefined => {
  if (ast.indexSignatures.length > 0 || ast.encodingChecks !== undefined) return undefined
  const names: Array<string> = []
  const fields: Array<Plain> = []
  const kinds: Array<string | undefined> = []
  for (const property of ast.propertySignatures) {
    // effect's parser reads an own `__proto__` key specially: its parser handles such a struct.
    if (typeof property.name !== "string" || property.name === "__proto__") return undefined
    const field = compile(property.type, generate)
    if (field === undefined) return undefined
    names.push(property.name)
    fields.push(field)
    kinds.push(inlineKinds[property.type._tag])
  }
  return (generate ? generateStruct(names, fields, kinds) : undefined) ?? structOf(names, fields)
}

/** A struct's function as a loop over its fields. */
const structOf = (names: ReadonlyArray<string>, fields: ReadonlyArray<Plain>): Plain => {
  const n = names.length
  return (input) => {
    if (typeof input !== "object" || input === null || Array.isArray(input)) return refused
    const record = input as Record<string, unknown>
    const out: Record<string, unknown> = {}
    for (let i = 0; i < n; i++) {
      const name = names[i]
      // `in`, as effect's parser checks a key (a proxy's `has` may say no to a key `get` answers).
      if (!(name in record)) return refused
      const value = fields[i](record[name])
      if (value === refused) return refused
      out[name] = value
    }
    return out
  }
}

/**
 * A struct's function as generated code: the fields read once each, the
 * primitive ones checked inline, the output built as one object literal (one
 * shape, no property added one by one): ~9 ns for four fields against ~85 ns
 * for the loop. `undefined` where code cannot be generated
 * (`--disallow-code-generation-from-strings`); the loop does the same then.
 */
const generateStruct = (
  names: ReadonlyArray<string>,
  fields: ReadonlyArray<Plain>,
  kinds: ReadonlyArray<string | undefined>
): Plain | undefined => {
  const body = ["if (typeof input !== \"object\" || input === null || Array.isArray(input)) return refused"]
  const out: Array<string> = []
  for (let i = 0; i < names.length; i++) {
    const key = JSON.stringify(names[i])
    const kind = kinds[i]
    body.push(`if (!(${key} in input)) return refused`, `const v${i} = input[${key}]`)
    if (kind !== undefined) {
      body.push(`if (typeof v${i} !== "${kind}") return refused`)
      out.push(`${key}: v${i}`)
    } else {
      body.push(`const w${i} = fields[${i}](v${i})`, `if (w${i} === refused) return refused`)
      out.push(`${key}: w${i}`)
    }
  }
  body.push(`return { ${out.join(", ")} }`)
  try {
    return new Function("refused", "fields", `return (input) => {\n${body.join("\n")}\n}`)(refused, fields) as Plain
  } catch {
    return undefined
  }
}

/** `Schema.Array(item)`: a new array of the items (tuples go to effect's parser). */
const compileArray = (ast: SchemaAST.Arrays, generate: boolean): Plain | undefined => {
  if (ast.elements.length > 0 || ast.rest.length !== 1 || ast.encodingChecks !== undefined) return undefined
  const item = compile(ast.rest[0], generate)
  if (item === undefined) return undefined
  return (input) => {
    if (!Array.isArray(input)) return refused
    const n = input.length
    const out = new Array<unknown>(n)
    for (let i = 0; i < n; i++) {
      // A hole reads `undefined`, which no plain item accepts.
      const value = item(input[i])
      if (value === refused) return refused
      out[i] = value
    }
    return out
  }
}

const withFallback = (
  plain: Plain | undefined,
  effectRun: (input: unknown) => Result.Result<unknown, Schema.SchemaError>
): SchemaRunner => {
  const full = (input: unknown): unknown => {
    let result: Result.Result<unknown, Schema.SchemaError>
    try {
      result = effectRun(input)
    } catch (thrown) {
      // Nothing escapes as a defect: a recursive Schema overflowing the stack, an input whose
      // getter or proxy trap throws, a transformation that throws.
      return new Refused(thrown)
    }
    return Result.isSuccess(result) ? result.success : new Refused(result.failure)
  }
  if (plain === undefined) return full
  return (input) => {
    let output: unknown
    try {
      output = plain(input)
    } catch {
      // a getter that throws: effect's parser reports it its own way
      return full(input)
    }
    return output === refused ? full(input) : output
  }
}

const decoders = new WeakMap<object, SchemaRunner>()
const encoders = new WeakMap<object, SchemaRunner>()

/**
 * A decoder or encoder of a schema, made anew; `generate: false` as where
 * code cannot be generated. @internal
 */
export const makeRunner = (schema: Schema.Top, direction: "decode" | "encode", generate = true): SchemaRunner => {
  const codec = schema as Schema.Codec<unknown, unknown>
  const effectRun = direction === "decode" ? Schema.decodeUnknownResult(codec) : Schema.encodeUnknownResult(codec)
  return withFallback(compile(schema.ast, generate), effectRun)
}

/** The decoder of a schema (unknown input to its Type), made once per schema. */
export const decoderOf = (schema: Schema.Top): SchemaRunner => {
  let decoder = decoders.get(schema)
  if (decoder === undefined) {
    decoder = makeRunner(schema, "decode")
    decoders.set(schema, decoder)
  }
  return decoder
}

/** The encoder of a schema (unknown input to its Encoded side), made once per schema. */
export const encoderOf = (schema: Schema.Top): SchemaRunner => {
  let encoder = encoders.get(schema)
  if (encoder === undefined) {
    encoder = makeRunner(schema, "encode")
    encoders.set(schema, encoder)
  }
  return encoder
}

/** Whether a schema runs without effect's parser for accepted input (for tests and the bench). @internal */
export const isPlain = (schema: Schema.Top): boolean => compile(schema.ast, true) !== undefined
