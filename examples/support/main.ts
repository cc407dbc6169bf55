/**
 * How the examples run their main effect: a typed error (a broker that cannot
 * be reached, a bad option) prints as one line, its message, and the process
 * exits 1; a defect is reported in full, as `NodeRuntime.runMain` does.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect } from "effect"

export const runExample = <A, E>(name: string, main: Effect.Effect<A, E>): void =>
  main.pipe(
    Effect.tapCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.void
      const error = Cause.findErrorOption(cause)
      return error._tag === "Some" && !Cause.hasDies(cause)
        ? Console.error(`${name}: ${(error.value as { readonly message?: unknown }).message ?? String(error.value)}`)
        : Console.error(Cause.pretty(cause))
    }),
    NodeRuntime.runMain({ disableErrorReporting: true })
  )
