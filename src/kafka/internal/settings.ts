/**
 * A topic's own settings (what it is besides a channel), resolved and
 * checked from `Topic.make`'s options.
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type { InvalidChannelOptionsError } from "../../Errors.ts"
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

/** Resolves topic options against the app and Kafka settings. @internal */
export const resolveSettings = (
  options: Topic.Options,
  kafka: Kafka["Service"],
  invalid: (option: string, value: unknown, reason: string) => InvalidChannelOptionsError
): Result.Result<TopicSettings, InvalidChannelOptionsError> => {
  const { pattern, topics } = options
  if ((pattern === undefined) === (topics === undefined)) {
    return Result.fail(invalid("topics", topics, "give either topics (names) or a pattern, not both"))
  }
  const names = topics ?? []
  if (pattern === undefined && (names.length === 0 || names.some((name) => !/^[a-zA-Z0-9._-]{1,249}$/.test(name)))) {
    return Result.fail(invalid("topics", topics, "must be one or more names of letters, digits, '.', '_' and '-'"))
  }
  for (const option of ["partitions", "replicas"] as const) {
    const value = options[option]
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
      return Result.fail(invalid(option, value, "must be an integer of at least 1"))
    }
  }
  const retention = options.retention === undefined
    ? undefined
    : Option.getOrUndefined(Duration.fromInput(options.retention))
  if (options.retention !== undefined && retention === undefined) {
    return Result.fail(invalid("retention", options.retention, "must be a Duration"))
  }
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
  return Result.succeed({
    topics: names,
    pattern: regex,
    groupId: options.groupId ?? `${kafka.settings.groupId}.${regex === undefined ? names.join(",") : regex.source}`,
    partitions: options.partitions,
    replicas: options.replicas,
    retention,
    compacting: options.compacting,
    deleting: options.deleting,
    config,
    acks: options.acks ?? true,
    internal: options.internal ?? false,
    options
  })
}
