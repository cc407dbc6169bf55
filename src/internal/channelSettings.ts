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
import type { InvalidChannelOptionsError } from "../Errors.ts"
import type { TopicPartition } from "../Message.ts"
import * as MessageSchema from "../MessageSchema.ts"
import type { DecodeErrorPolicy, Settings } from "./channel.ts"
import { decodeChannelOptions, decodeCloneOptions } from "./channelOptions.ts"
import * as optionsSchema from "./optionsSchema.ts"
import { decoderOf } from "./plainSchema.ts"

export const resolveSettings = (
  app: App["Service"],
  registry: Codec.Registry,
  options: Options
): Effect.Effect<Settings<any, any>, InvalidChannelOptionsError> =>
  Effect.suspend(() => {
    const messageSchema = options.schema
    const keySerializer = options.keySerializer ?? messageSchema?.keySerializer ?? app.config.keySerializer
    const valueSerializer = options.valueSerializer ?? messageSchema?.valueSerializer ?? app.config.valueSerializer
    return decodeChannelOptions({
      key: options.key ?? messageSchema?.key,
      value: options.value ?? messageSchema?.value,
      error: options.error,
      keySerializer,
      valueSerializer,
      maxsize: options.maxsize ?? app.config.streamBufferMaxsize,
      onDecodeError: options.onDecodeError,
      whenNoSubscribers: options.whenNoSubscribers
    }).pipe(
      Effect.provideService(Codec.Codecs, registry),
      Effect.map((checked): Settings<any, any> => ({
        app,
        label: options.label ?? "Channel<anon>",
        schema: MessageSchema.make({
          key: checked.key,
          value: checked.value,
          keySerializer,
          valueSerializer,
          allowEmpty: options.allowEmpty ?? messageSchema?.allowEmpty ?? false
        }),
        keyCodec: checked.keySerializer.codec,
        valueCodec: checked.valueSerializer.codec,
        maxsize: checked.maxsize,
        activePartitions: options.activePartitions === undefined
          ? undefined
          : HashSet.fromIterable(options.activePartitions),
        onDecodeError: checked.onDecodeError,
        whenNoSubscribers: checked.whenNoSubscribers,
        decodeKey: checked.key === undefined ? undefined : decoderOf(checked.key),
        decodeValue: checked.value === undefined ? undefined : decoderOf(checked.value),
        keyBytesAsString: checked.key !== undefined && encodesAsString(checked.key),
        valueBytesAsString: checked.value !== undefined && encodesAsString(checked.value),
        spans: options.spans ?? false
      }))
    )
  }).pipe(Effect.catchDefect((cause) => Effect.fail(optionsSchema.unreadable("options", cause))))

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
  if (overrides === undefined) return Result.succeed(settings)
  return Result.map(
    decodeCloneOptions({
      maxsize: overrides.maxsize ?? settings.maxsize,
      onDecodeError: overrides.onDecodeError ?? settings.onDecodeError
    }),
    ({ maxsize, onDecodeError }) => ({
      ...settings,
      maxsize,
      activePartitions: overrides.activePartitions === undefined
        ? settings.activePartitions
        : HashSet.fromIterable(overrides.activePartitions),
      onDecodeError
    })
  )
}
