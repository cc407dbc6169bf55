/**
 * A channel's settings: resolved and checked from `Channel.make`'s options
 * (also for a topic, which is a channel on Kafka), and derived for clones.
 */
import * as Effect from "effect/Effect"
import * as HashSet from "effect/HashSet"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import type { App } from "../App.ts"
import type { Options } from "../Channel.ts"
import * as Codec from "../Codec.ts"
import { InvalidChannelOptionsError } from "../Errors.ts"
import type { TopicPartition } from "../Message.ts"
import * as MessageSchema from "../MessageSchema.ts"
import type { DecodeErrorPolicy, Settings } from "./channel.ts"
import { checkDecodeErrorPolicy, checkMaxsize } from "./channelOptions.ts"

const invalid = (option: string, value: unknown, reason: string) =>
  new InvalidChannelOptionsError({ option, value, reason })

export const resolveSettings = (
  app: App["Service"],
  registry: Codec.Registry,
  options: Options
): Effect.Effect<Settings<any, any>, InvalidChannelOptionsError> =>
  Effect.suspend(() => {
    const messageSchema = options.schema
    const keyType = options.key ?? messageSchema?.key
    const valueType = options.value ?? messageSchema?.value
    for (const [option, schema] of [["key", keyType], ["value", valueType], ["error", options.error]] as const) {
      if (schema !== undefined && !Schema.isSchema(schema)) {
        return Effect.fail(invalid(option, schema, "must be an effect Schema"))
      }
    }
    const keySerializer = options.keySerializer ?? messageSchema?.keySerializer ?? app.config.keySerializer
    const valueSerializer = options.valueSerializer ?? messageSchema?.valueSerializer ?? app.config.valueSerializer
    const keyCodec = Codec.resolve(registry, keySerializer)
    if (Result.isFailure(keyCodec)) return Effect.fail(invalid("keySerializer", keySerializer, keyCodec.failure))
    const valueCodec = Codec.resolve(registry, valueSerializer)
    if (Result.isFailure(valueCodec)) {
      return Effect.fail(invalid("valueSerializer", valueSerializer, valueCodec.failure))
    }
    const maxsize = options.maxsize ?? app.config.streamBufferMaxsize
    const onDecodeError = options.onDecodeError ?? "fail"
    const invalidOption = checkMaxsize(maxsize) ?? checkDecodeErrorPolicy(onDecodeError)
    if (invalidOption !== undefined) return Effect.fail(invalidOption)
    const whenNoSubscribers = options.whenNoSubscribers ?? "buffer"
    if (whenNoSubscribers !== "buffer" && whenNoSubscribers !== "drop" && whenNoSubscribers !== "fail") {
      return Effect.fail(invalid("whenNoSubscribers", whenNoSubscribers, `must be "buffer", "drop" or "fail"`))
    }
    const schema = MessageSchema.make({
      key: keyType,
      value: valueType,
      keySerializer,
      valueSerializer,
      allowEmpty: options.allowEmpty ?? messageSchema?.allowEmpty ?? false
    })
    return Effect.succeed<Settings<any, any>>({
      app,
      label: options.label ?? "Channel<anon>",
      schema,
      keyCodec: keyCodec.success,
      valueCodec: valueCodec.success,
      maxsize,
      activePartitions: options.activePartitions === undefined
        ? undefined
        : HashSet.fromIterable(options.activePartitions),
      onDecodeError: onDecodeError as DecodeErrorPolicy,
      whenNoSubscribers,
      decodeKey: keyType === undefined ? undefined : Schema.decodeUnknownResult(keyType),
      decodeValue: valueType === undefined ? undefined : Schema.decodeUnknownResult(valueType),
      keyBytesAsString: keyType !== undefined && encodesAsString(keyType),
      valueBytesAsString: valueType !== undefined && encodesAsString(valueType),
      spans: options.spans ?? false
    })
  })

/**
 * Faust turns raw bytes into `str` for `str`-typed keys and values; so do we
 * for every Schema whose encoded side is text: strings, string literals,
 * string enums, template literals, and unions of those (nullable or not).
 */
const encodesAsString = (schema: Schema.Top): boolean => isTextAST(SchemaAST.toEncoded(schema.ast), new Set())

const isTextAST = (ast: SchemaAST.AST, seen: Set<SchemaAST.AST>): boolean => {
  if (SchemaAST.isString(ast) || SchemaAST.isTemplateLiteral(ast)) return true
  if (SchemaAST.isLiteral(ast)) return typeof ast.literal === "string"
  if (SchemaAST.isEnum(ast)) return ast.enums.length > 0 && ast.enums.every(([, value]) => typeof value === "string")
  if (SchemaAST.isSuspend(ast)) {
    if (seen.has(ast)) return false
    seen.add(ast)
    return isTextAST(SchemaAST.toEncoded(ast.thunk()), seen)
  }
  if (SchemaAST.isUnion(ast)) {
    let text = false
    for (const member of ast.types) {
      if (SchemaAST.isNull(member) || SchemaAST.isUndefined(member) || SchemaAST.isVoid(member)) continue
      if (!isTextAST(member, seen)) return false
      text = true
    }
    return text
  }
  return false
}

/** What `clone` may change of a channel's settings. */
export interface CloneOverrides {
  readonly maxsize?: number | undefined
  readonly activePartitions?: Iterable<TopicPartition> | undefined
  readonly onDecodeError?: DecodeErrorPolicy | undefined
}

/** The settings of a clone: checked as `Channel.make` checks them. */
export const cloneSettings = <K, V>(
  settings: Settings<K, V>,
  overrides: CloneOverrides | undefined
): Result.Result<Settings<K, V>, InvalidChannelOptionsError> => {
  const maxsize = overrides?.maxsize ?? settings.maxsize
  const invalid = checkMaxsize(maxsize) ?? checkDecodeErrorPolicy(overrides?.onDecodeError ?? settings.onDecodeError)
  if (invalid !== undefined) return Result.fail(invalid)
  if (overrides === undefined) return Result.succeed(settings)
  return Result.succeed({
    ...settings,
    maxsize,
    activePartitions: overrides.activePartitions === undefined
      ? settings.activePartitions
      : HashSet.fromIterable(overrides.activePartitions),
    onDecodeError: overrides.onDecodeError ?? settings.onDecodeError
  })
}
