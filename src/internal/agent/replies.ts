/**
 * Faust's request/reply: an `ask` sends its request with a correlation id
 * and the address its reply should go to, in the record's headers; the
 * agent sends what it produced for that event back to that address. The
 * default transport is this process's memory; a transport that carries
 * replies between processes replaces it through {@link CurrentReplies}.
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Message from "../../Message.ts"

/** The header carrying an ask's correlation id. */
export const correlationIdHeader = "x-correlation-id"
/** The header carrying the address the reply goes to. */
export const replyToHeader = "x-reply-to"

/** Where replies are awaited and how they are sent. */
export interface Replies {
  /** The address askers of this process give. */
  readonly address: string
  /** Waits for the reply to `correlationId` until `cancel` (the asker gave up). */
  readonly expect: (correlationId: string) => {
    readonly reply: Effect.Effect<unknown>
    readonly cancel: () => void
  }
  /** Sends a reply; `false` when nobody waits for it any more (it is dropped). */
  readonly send: (address: string, correlationId: string, value: unknown) => Effect.Effect<boolean, unknown>
}

/** Replies within this process: a map from correlation id to the asker's deferred. */
export const makeInMemory = (): Replies => {
  const waiting = new Map<string, Deferred.Deferred<unknown>>()
  const address = `memory:${crypto.randomUUID()}`
  return {
    address,
    expect: (correlationId) => {
      const deferred = Deferred.makeUnsafe<unknown>()
      waiting.set(correlationId, deferred)
      return { reply: Deferred.await(deferred), cancel: () => waiting.delete(correlationId) }
    },
    send: (to, correlationId, value) =>
      Effect.sync(() => {
        const deferred = to === address ? waiting.get(correlationId) : undefined
        if (deferred === undefined) return false
        waiting.delete(correlationId)
        return Deferred.doneUnsafe(deferred, Effect.succeed(value))
      })
  }
}

/** The replies transport of the running program. */
export const CurrentReplies = Context.Reference<Replies>("effect-faust/internal/CurrentReplies", {
  defaultValue: makeInMemory
})

const text = (value: Message.HeaderValue): string => typeof value === "string" ? value : new TextDecoder().decode(value)

/** The correlation id and reply address of a request, if the event is one. */
export const requestOf = (
  headers: Message.Headers
): { readonly correlationId: string; readonly address: string } | undefined => {
  let correlationId: string | undefined
  let address: string | undefined
  for (const [name, value] of headers) {
    // A header of the wrong type (a null value from a raw producer) is no request.
    if (typeof value !== "string" && !(value instanceof Uint8Array)) continue
    if (name === correlationIdHeader) correlationId = text(value)
    else if (name === replyToHeader) address = text(value)
  }
  return correlationId === undefined || address === undefined ? undefined : { correlationId, address }
}
