/**
 * Deriving a topic (Faust's `Topic.derive`): a new topic from this one's
 * options, with names prefixed or suffixed and options overridden.
 */
import * as Effect from "effect/Effect"
import { InvalidChannelOptionsError } from "../../Errors.ts"
import type * as Topic from "../Topic.ts"
import type { TopicSettings } from "./settings.ts"
import type { TopicContext, TopicImpl } from "./topic.ts"

export const derive = (
  topic: { readonly settings: TopicSettings; readonly context: TopicContext },
  options: Topic.DeriveOptions | undefined
): Effect.Effect<TopicImpl<any, any, any>, InvalidChannelOptionsError> => {
  const { prefix = "", suffix = "", ...overrides } = options ?? {}
  // The label is derived from the names again, unless the overrides set one.
  const { label: _label, ...inherited } = topic.settings.options
  const merged: Topic.Options = { ...inherited, ...overrides }
  if (merged.pattern === undefined) {
    return topic.context.make({ ...merged, topics: (merged.topics ?? []).map((name) => `${prefix}${name}${suffix}`) })
  }
  if (prefix.length > 0 || suffix.length > 0) {
    return Effect.fail(
      new InvalidChannelOptionsError({
        option: prefix.length > 0 ? "prefix" : "suffix",
        value: prefix || suffix,
        reason: "a topic subscribed by pattern has no names to add it to"
      })
    )
  }
  return topic.context.make(merged)
}
