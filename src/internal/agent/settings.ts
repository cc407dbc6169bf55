/**
 * An agent's options, validated once when the agent is made.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type { AgentError } from "../../AgentError.ts"
import type { DeadLetterTarget } from "../../Channel.ts"
import { InvalidChannelOptionsError } from "../../Errors.ts"
import * as optionsSchema from "../optionsSchema.ts"

/** Where an agent's emitted values go: a channel, a topic, an agent (anything with `send`), or a function. */
export type Sink<Out> =
  | { readonly send: (options: { readonly value: Out }) => Effect.Effect<unknown, unknown> }
  | ((value: Out) => Effect.Effect<unknown, unknown>)

/** What happens to an event whose handling failed after its retries. */
export type FailurePolicy = "fail" | "skip" | { readonly deadLetter: DeadLetterTarget }

/** How events are spread over an agent's instances. */
export type Ordering = "partition" | "key" | "none"

/** An agent's options as given. */
export interface Options<Out> {
  readonly concurrency?: number | undefined
  readonly ordering?: Ordering | undefined
  /** Each gets what the handler returns, `undefined` excepted. */
  readonly sinks?: ReadonlyArray<Sink<Exclude<Out, undefined>>> | undefined
  readonly onError?: {
    readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
    readonly then?: FailurePolicy | undefined
  } | undefined
  readonly restart?: Schedule.Schedule<unknown, AgentError> | undefined
  readonly shutdownTimeout?: Duration.Input | undefined
}

/** A batch: at most `size` events, closed `within` after its first one. */
export interface BatchOptions {
  readonly size: number
  readonly within: Duration.Input
}

/** An agent's options, checked, with defaults. */
export interface Settings {
  readonly concurrency: number
  readonly ordering: Ordering
  readonly sinks: ReadonlyArray<Sink<unknown>>
  readonly retry: Schedule.Schedule<unknown, unknown> | undefined
  readonly onError: FailurePolicy
  readonly restart: Schedule.Schedule<unknown, AgentError> | undefined
  readonly batch: { readonly size: number; readonly within: Duration.Duration } | undefined
  readonly shutdownTimeout: Duration.Duration
}

const orderings: ReadonlyArray<string> = ["partition", "key", "none"]

const invalid = (option: string, value: unknown, reason: string) =>
  Effect.fail(new InvalidChannelOptionsError({ option, value, reason }))

/** An upper bound on instances: each has a queue and a fiber. */
const maxConcurrency = 100_000

const isPositiveInteger = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 1

const orDefault = <A>(value: A | undefined, fallback: A): A => value === undefined ? fallback : value

/** Checks an agent's options; every failure names the option. Options that throw when read are invalid. */
export const resolve = (
  options: (Options<any> & { readonly batch?: BatchOptions | undefined }) | undefined
): Effect.Effect<Settings, InvalidChannelOptionsError> =>
  Effect.suspend(() => check(options, options?.batch)).pipe(
    Effect.catchDefect((cause) => Effect.fail(optionsSchema.unreadable("options", cause)))
  )

const check = (
  options: Options<any> | undefined,
  batch: BatchOptions | undefined
): Effect.Effect<Settings, InvalidChannelOptionsError> => {
  const concurrency = orDefault(options?.concurrency, 1)
  if (!isPositiveInteger(concurrency) || concurrency > maxConcurrency) {
    return invalid("concurrency", concurrency, `must be an integer from 1 to ${maxConcurrency}`)
  }
  const ordering = orDefault<unknown>(options?.ordering, "partition")
  if (!orderings.includes(ordering as string)) {
    return invalid("ordering", ordering, `must be one of ${orderings.join(", ")}`)
  }
  const sinks = orDefault<unknown>(options?.sinks, [])
  if (!Array.isArray(sinks)) return invalid("sinks", sinks, "must be an array")
  for (const sink of sinks) {
    if (typeof sink !== "function" && typeof (sink as { readonly send?: unknown })?.send !== "function") {
      return invalid("sinks", sink, "each sink must be a function, or have a send method (a channel, topic or agent)")
    }
  }
  const onError = orDefault<unknown>(options?.onError, {})
  if (typeof onError !== "object" || onError === null) {
    return invalid("onError", onError, "must be an object: { retry?: Schedule, then?: ... }")
  }
  const { retry, then = "fail" } = onError as NonNullable<Options<any>["onError"]>
  if (retry !== undefined && !Schedule.isSchedule(retry)) return invalid("onError.retry", retry, "must be a Schedule")
  if (
    then !== "fail" && then !== "skip" &&
    (typeof then !== "object" || then === null || typeof then.deadLetter?.put !== "function")
  ) {
    return invalid("onError.then", then, `must be "fail", "skip" or { deadLetter: a channel or topic }`)
  }
  const restart = options?.restart
  if (restart !== undefined && !Schedule.isSchedule(restart)) return invalid("restart", restart, "must be a Schedule")
  const shutdownTimeout = optionsSchema.durationOf(orDefault<unknown>(options?.shutdownTimeout, "30 seconds"))
  if (shutdownTimeout === undefined) {
    return invalid("shutdownTimeout", options?.shutdownTimeout, "must be a non-negative duration")
  }
  let resolvedBatch: Settings["batch"] = undefined
  if (batch !== undefined) {
    if (!isPositiveInteger(batch.size)) return invalid("batch.size", batch.size, "must be an integer of at least 1")
    const within = optionsSchema.durationOf(batch.within)
    if (within === undefined) return invalid("batch.within", batch.within, "must be a non-negative duration")
    resolvedBatch = { size: batch.size, within }
  }
  return Effect.succeed({
    concurrency,
    ordering: ordering as Ordering,
    sinks: sinks as ReadonlyArray<Sink<unknown>>,
    retry,
    onError: then,
    restart,
    batch: resolvedBatch,
    shutdownTimeout
  })
}
