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

/** The askers of one process waiting for their replies, by correlation id: shared by every transport. */
export const makeWaiting = () => {
  const waiting = new Map<string, Deferred.Deferred<unknown>>()
  return {
    expect: (correlationId: string) => {
      const deferred = Deferred.makeUnsafe<unknown>()
      waiting.set(correlationId, deferred)
      return { reply: Deferred.await(deferred), cancel: () => waiting.delete(correlationId) }
    },
    /** Hands a reply to its asker; `false` when nobody waits for it any more. */
    complete: (correlationId: string, value: unknown): boolean => {
      const deferred = waiting.get(correlationId)
      if (deferred === undefined) return false
      waiting.delete(correlationId)
      return Deferred.doneUnsafe(deferred, Effect.succeed(value))
    }
  }
}

/** Replies within this process. */
export const makeInMemory = (): Replies => {
  const waiting = makeWaiting()
  const address = `memory:${crypto.randomUUID()}`
  return {
    address,
    expect: waiting.expect,
    send: (to, correlationId, value) => Effect.sync(() => to === address && waiting.complete(correlationId, value))
  }
}

/** The replies transport of the running program. */
export const CurrentReplies = Context.Reference<Replies>("effect-faust/internal/CurrentReplies", {
  defaultValue: makeInMemory
})

const text = (value: Message.HeaderValue): string => typeof value === "string" ? value : new TextDecoder().decode(value)

/** The value of header `name` as text, if the headers hold one of a usable type. */
export const headerText = (headers: Message.Headers, name: string): string | undefined => {
  for (const [key, value] of headers) {
    if (key === name && (typeof value === "string" || value instanceof Uint8Array)) return text(value)
  }
  return undefined
}

/** The correlation id and reply address of a request, if the event is one. */
export const requestOf = (
  headers: Message.Headers
): { readonly correlationId: string; readonly address: string } | undefined => {
  // A header of the wrong type (a null value from a raw producer) is no request.
  const correlationId = headerText(headers, correlationIdHeader)
  if (correlationId === undefined) return undefined
  const address = headerText(headers, replyToHeader)
  return address === undefined ? undefined : { correlationId, address }
}
