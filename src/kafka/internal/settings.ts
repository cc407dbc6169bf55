/**
 * A topic's own settings (what it is besides a channel), resolved and
 * checked from `Topic.make`'s options.
 */
import * as Duration from "effect/Duration"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type { InvalidChannelOptionsError } from "../../Errors.ts"
import * as optionsSchema from "../../internal/optionsSchema.ts"
import type { Kafka } from "../Kafka.ts"
import type * as Topic from "../Topic.ts"

/** What a topic is besides a channel (its properties), resolved from its options. @internal */
export interface TopicSettings extends
  Pick<
    Topic.Topic<unknown, unknown, never>,
    | "topics"
    | "pattern"
    | "groupId"
    | "partitions"
    | "replicas"
    | "retention"
    | "compacting"
    | "deleting"
    | "config"
    | "acks"
    | "internal"
  >
{
  /** The options the topic was made from: `derive` starts from them. */
  readonly options: Topic.Options
}

const isTopicNames = (u: unknown): boolean =>
  Array.isArray(u) && u.length > 0 &&
  u.every((name) => typeof name === "string" && /^[a-zA-Z0-9._-]{1,249}$/.test(name) && name !== "." && name !== "..")

/** A pattern as a string must compile; a `RegExp` is one already. */
const isPattern = (u: unknown): u is RegExp | string => {
  if (u instanceof RegExp) return true
  if (typeof u !== "string") return false
  try {
    new RegExp(u)
    return true
  } catch {
    return false
  }
}

const isConfig = (u: unknown): u is Readonly<Record<string, string | number | boolean>> =>
  typeof u === "object" && u !== null && !Array.isArray(u) &&
  Object.values(u).every((value) => ["string", "number", "boolean"].includes(typeof value))

const flag = optionsSchema.rule((u): u is boolean => typeof u === "boolean", "must be true or false")

/**
 * A topic's own options as one Schema (its channel options are checked by
 * the channel's): either `topics` (valid Kafka names) or a `pattern`,
 * `partitions` and `replicas` integers of at least 1, `retention` a
 * `Duration` input (decoded to a `Duration`).
 *
 * @internal
 */
export const TopicOptionsSchema = Schema.Struct({
  topics: Schema.optional(optionsSchema.unchecked<ReadonlyArray<string>>()),
  pattern: Schema.optional(optionsSchema.rule(isPattern, "must be a RegExp, or a string that compiles to one")),
  partitions: Schema.optional(
    optionsSchema.integerOfAtLeast(1).pipe(
      Schema.check(Schema.makeFilter((n: number) => n <= 2_147_483_647, { message: "must be at most 2147483647" }))
    )
  ),
  replicas: Schema.optional(optionsSchema.integerOfAtLeast(1)),
  retention: Schema.optional(optionsSchema.DurationInput),
  groupId: Schema.optional(optionsSchema.rule(
    (u): u is string => typeof u === "string" && u.length > 0,
    "must be a non-empty string"
  )),
  compacting: Schema.optional(flag),
  deleting: Schema.optional(flag),
  acks: Schema.optional(flag),
  internal: Schema.optional(flag),
  config: Schema.optional(optionsSchema.rule(isConfig, "must be an object of strings, numbers and booleans"))
}).check(
  Schema.makeFilter(({ pattern, topics }) =>
    (pattern === undefined) === (topics === undefined)
      ? { path: ["topics"], issue: "give either topics (names) or a pattern, not both" }
      : undefined
  ),
  Schema.makeFilter(({ pattern, topics }) =>
    pattern === undefined && !isTopicNames(topics)
      ? { path: ["topics"], issue: "must be one or more names of letters, digits, '.', '_' and '-'" }
      : undefined
  )
)

const decodeOptions = optionsSchema.decodeResult(TopicOptionsSchema)

/** Resolves topic options against the app and Kafka settings. @internal */
export const resolveSettings = (
  options: Topic.Options,
  kafka: Kafka["Service"]
): Result.Result<TopicSettings, InvalidChannelOptionsError> =>
  Result.map(decodeOptions(options), ({ partitions, pattern, replicas, retention, topics = [] }) => {
    const config: Record<string, string> = {}
    if (retention !== undefined) config["retention.ms"] = String(Duration.toMillis(retention))
    const policies = [
      options.compacting === true ? "compact" : undefined,
      options.deleting === true ? "delete" : undefined
    ]
      .filter((policy) => policy !== undefined)
    if (policies.length > 0) config["cleanup.policy"] = policies.join(",")
    for (const [name, value] of Object.entries(options.config ?? {})) config[name] = String(value)
    const regex = pattern === undefined ? undefined : typeof pattern === "string" ? new RegExp(pattern) : pattern
    return {
      topics,
      pattern: regex,
      groupId: options.groupId ?? `${kafka.settings.groupId}.${regex === undefined ? topics.join(",") : regex.source}`,
      partitions,
      replicas,
      retention,
      compacting: options.compacting,
      deleting: options.deleting,
      config,
      acks: options.acks ?? true,
      internal: options.internal ?? false,
      options
    }
  })
