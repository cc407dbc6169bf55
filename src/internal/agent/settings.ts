/**
 * An agent's options, validated once when the agent is made.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import type { AgentError } from "../../AgentError.ts"
import type { DeadLetterTarget } from "../../Channel.ts"
import { InvalidChannelOptionsError } from "../../Errors.ts"

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

const isPositiveInteger = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 1

const durationOf = (value: unknown): Duration.Duration | undefined => {
  try {
    const duration = Duration.fromInput(value as Duration.Input)
    return Option.isNone(duration) || Duration.isNegative(duration.value) ? undefined : duration.value
  } catch {
    return undefined
  }
}

/** Checks an agent's options; every failure names the option. */
export const resolve = (
  options: Options<any> | undefined,
  batch: BatchOptions | undefined
): Effect.Effect<Settings, InvalidChannelOptionsError> =>
  Effect.suspend(() => {
    const concurrency = options?.concurrency ?? 1
    if (!isPositiveInteger(concurrency)) return invalid("concurrency", concurrency, "must be an integer of at least 1")
    const ordering = options?.ordering ?? "partition"
    if (!orderings.includes(ordering)) return invalid("ordering", ordering, `must be one of ${orderings.join(", ")}`)
    const sinks = options?.sinks ?? []
    if (!Array.isArray(sinks)) return invalid("sinks", sinks, "must be an array")
    for (const sink of sinks) {
      if (typeof sink !== "function" && typeof (sink as { readonly send?: unknown })?.send !== "function") {
        return invalid("sinks", sink, "each sink must be a function, or have a send method (a channel, topic or agent)")
      }
    }
    const then = options?.onError?.then ?? "fail"
    if (
      then !== "fail" && then !== "skip" &&
      (typeof then !== "object" || then === null || typeof then.deadLetter?.put !== "function")
    ) {
      return invalid("onError.then", then, `must be "fail", "skip" or { deadLetter: a channel or topic }`)
    }
    const shutdownTimeout = durationOf(options?.shutdownTimeout ?? "30 seconds")
    if (shutdownTimeout === undefined) {
      return invalid("shutdownTimeout", options?.shutdownTimeout, "must be a non-negative duration")
    }
    let resolvedBatch: Settings["batch"] = undefined
    if (batch !== undefined) {
      if (!isPositiveInteger(batch.size)) return invalid("batch.size", batch.size, "must be an integer of at least 1")
      const within = durationOf(batch.within)
      if (within === undefined) return invalid("batch.within", batch.within, "must be a non-negative duration")
      resolvedBatch = { size: batch.size, within }
    }
    return Effect.succeed({
      concurrency,
      ordering,
      sinks,
      retry: options?.onError?.retry,
      onError: then,
      restart: options?.restart,
      batch: resolvedBatch,
      shutdownTimeout
    })
  })
