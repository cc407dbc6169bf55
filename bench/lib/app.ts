/** The library under test, and how the bench runs programs that need its App. */
import * as Effect from "effect/Effect"
import { App } from "../../src/index.ts"

export * from "../../src/index.ts"

/** Faust's default `stream_buffer_maxsize`, used for every queue on both sides. */
export const CAPACITY = 4096

const appLayer = App.layer({ id: "bench", streamBufferMaxsize: CAPACITY })

/** Runs a program that needs the App (and a Scope) as a promise. */
export const runWithApp = <A, E>(effect: Effect.Effect<A, E, App.App | import("effect/Scope").Scope>): Promise<A> =>
  Effect.runPromise(Effect.scoped(effect).pipe(Effect.provide(appLayer)) as Effect.Effect<A, E>)

/** Runs a plain program (baselines) with a Scope. */
export const run = <A, E>(effect: Effect.Effect<A, E, import("effect/Scope").Scope>): Promise<A> =>
  Effect.runPromise(Effect.scoped(effect))
