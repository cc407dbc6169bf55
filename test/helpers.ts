import { Effect, Logger } from "effect"
import { App, Event, Message } from "effect-faust"

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

/** An `Event.make` of the same parts as `event`, its message a `Message.make` of the same fields. */
export const rebuildEvent = (event: Event.Event<any, any>): Event.Event<any, any> => {
  const m = event.message
  return Event.make({
    key: event.key,
    value: event.value,
    headers: event.headers,
    message: Message.make({
      topic: m.topic,
      partition: m.partition,
      offset: m.offset,
      timestamp: m.timestamp,
      timestampType: m.timestampType,
      headers: m.headers,
      key: m.key,
      value: m.value,
      generationId: m.generationId
    })
  })
}
