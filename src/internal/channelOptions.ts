/**
 * A channel's options as one Schema, shared by `Channel.make`, `clone` and a
 * topic's channel side: it checks the options a channel ends up with (given,
 * or taken from its message schema and its app), and resolves its
 * serializers to codecs.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Struct from "effect/Struct"
import type { NoSubscribersPolicy } from "../Channel.ts"
import type * as MessageSchema from "../MessageSchema.ts"
import type { DecodeErrorPolicy } from "./channel.ts"
import { TypeId } from "./channelTypeId.ts"
import * as optionsSchema from "./optionsSchema.ts"

const aSchema = optionsSchema.rule((u): u is MessageSchema.Any => Schema.isSchema(u), "must be an effect Schema")

const isDecodeErrorPolicy = (policy: unknown): policy is DecodeErrorPolicy =>
  policy === "fail" || policy === "skip" ||
  (typeof policy === "object" && policy !== null && "deadLetter" in policy &&
    typeof policy.deadLetter === "object" && policy.deadLetter !== null && TypeId in policy.deadLetter)

const isNoSubscribersPolicy = (policy: unknown): policy is NoSubscribersPolicy =>
  policy === "buffer" || policy === "drop" || policy === "fail"

/**
 * The options of a channel as it is made (each rule in the order it is
 * checked): `key`, `value` and `error` are Schemas when given, the
 * serializers name codecs of the registry, `maxsize` is an integer of at
 * least 1, `onDecodeError` (default `"fail"`) and `whenNoSubscribers`
 * (default `"buffer"`) are one of their policies.
 *
 * @internal
 */
export const ChannelOptionsSchema = Schema.Struct({
  key: Schema.optional(aSchema),
  value: Schema.optional(aSchema),
  error: Schema.optional(aSchema),
  keySerializer: optionsSchema.Serializer,
  valueSerializer: optionsSchema.Serializer,
  maxsize: optionsSchema.integerOfAtLeast(1),
  onDecodeError: optionsSchema.rule(isDecodeErrorPolicy, `must be "fail", "skip" or { deadLetter: <a Channel> }`)
    .pipe(Schema.withDecodingDefault(Effect.succeed("fail"))),
  whenNoSubscribers: optionsSchema.rule(isNoSubscribersPolicy, `must be "buffer", "drop" or "fail"`)
    .pipe(Schema.withDecodingDefault(Effect.succeed("buffer")))
})

/**
 * Decodes a channel's options with {@link ChannelOptionsSchema}.
 *
 * @internal
 */
export const decodeChannelOptions = optionsSchema.decode(ChannelOptionsSchema)

/**
 * What a clone may change that is checked: the same rules as
 * {@link ChannelOptionsSchema}'s.
 *
 * @internal
 */
export const decodeCloneOptions = optionsSchema.decodeResult(
  ChannelOptionsSchema.mapFields(Struct.pick(["maxsize", "onDecodeError"]))
)
