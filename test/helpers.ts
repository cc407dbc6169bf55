import { Effect, Logger } from "effect"
import { App, Message } from "effect-faust"

/** The app every channel test runs in. */
export const AppTest = App.layer({ id: "test-app", streamBufferMaxsize: 16 })

/** Silences the decode-error logs that policy tests produce on purpose. */
export const quiet = Logger.layer([])

const encoder = new TextEncoder()

export const bytes = (text: string): Uint8Array => encoder.encode(text)

/** A raw message as a consumer would deliver it. */
export const rawMessage = (value: unknown, key: unknown = null, offset = 0): Message.Message =>
  Message.make({ topic: "raw", partition: 0, offset, timestamp: 0, timestampType: 0, key, value })

/** Yields until `condition` holds, so tests wait for fibers without sleeping. */
export const waitUntil = (condition: () => boolean): Effect.Effect<void> =>
  Effect.suspend(function loop(): Effect.Effect<void> {
    return condition() ? Effect.void : Effect.andThen(Effect.yieldNow, loop)
  })
