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

/** An input a Schema decoder or encoder refused, with effect's error. */
export class Refused {
  readonly error: Schema.SchemaError
  constructor(error: Schema.SchemaError) {
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

/** The names a struct's plain function cannot read as `input[name]` exactly as effect does. */
const unsafeNames = new Set(["__proto__"])

const isBare = (ast: SchemaAST.AST): boolean =>
  ast.checks === undefined && ast.encoding === undefined && ast.context === undefined

/** The plain function of a schema's AST, or `undefined` when it has none. */
const compile = (ast: SchemaAST.AST): Plain | undefined => {
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
      return compileStruct(ast)
    case "Arrays":
      return compileArray(ast)
    default:
      return undefined
  }
}

const compileStruct = (ast: SchemaAST.Objects): Plain | undefined => {
  if (ast.indexSignatures.length > 0 || ast.encodingChecks !== undefined) return undefined
  const names: Array<string> = []
  const fields: Array<Plain> = []
  for (const property of ast.propertySignatures) {
    if (typeof property.name !== "string" || unsafeNames.has(property.name)) return undefined
    const field = compile(property.type)
    if (field === undefined) return undefined
    names.push(property.name)
    fields.push(field)
  }
  const n = names.length
  return (input) => {
    if (typeof input !== "object" || input === null || Array.isArray(input)) return refused
    const record = input as Record<string, unknown>
    const out: Record<string, unknown> = {}
    for (let i = 0; i < n; i++) {
      const name = names[i]
      // A missing key reads `undefined`, which no plain field accepts.
      const value = fields[i](record[name])
      if (value === refused) return refused
      out[name] = value
    }
    return out
  }
}

/** `Schema.Array(item)`: a new array of the items (tuples go to effect's parser). */
const compileArray = (ast: SchemaAST.Arrays): Plain | undefined => {
  if (ast.elements.length > 0 || ast.rest.length !== 1 || ast.encodingChecks !== undefined) return undefined
  const item = compile(ast.rest[0])
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
    const result = effectRun(input)
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

/** The decoder of a schema (unknown input to its Type), made once per schema. */
export const decoderOf = (schema: Schema.Top): SchemaRunner => {
  let decoder = decoders.get(schema)
  if (decoder === undefined) {
    decoder = withFallback(compile(schema.ast), Schema.decodeUnknownResult(schema as Schema.Codec<unknown, unknown>))
    decoders.set(schema, decoder)
  }
  return decoder
}

/** The encoder of a schema (unknown input to its Encoded side), made once per schema. */
export const encoderOf = (schema: Schema.Top): SchemaRunner => {
  let encoder = encoders.get(schema)
  if (encoder === undefined) {
    encoder = withFallback(compile(schema.ast), Schema.encodeUnknownResult(schema as Schema.Codec<unknown, unknown>))
    encoders.set(schema, encoder)
  }
  return encoder
}

/** Whether a schema runs without effect's parser for accepted input (for tests and the bench). @internal */
export const isPlain = (schema: Schema.Top): boolean => compile(schema.ast) !== undefined
