import { assert } from "@effect/vitest"
import { Cause, Deferred, Effect, Equal, Exit, Logger } from "effect"
import { App, Event, type FutureMessage, Message, type RecordMetadata } from "effect-faust"

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

/** Why an exit failed (its error, else its defect or interruption), or `undefined` for a success. */
export const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Cause.squash(exit.cause) as E : undefined

/** The same metadata, however it is compared or serialized. */
export const assertSameMetadata = (
  a: RecordMetadata.RecordMetadata,
  b: RecordMetadata.RecordMetadata,
  label: string
) => {
  assert.isTrue(Equal.equals(a, b), `${label}: Equal.equals`)
  assert.deepStrictEqual(a, b, `${label}: deepStrictEqual`)
  assert.strictEqual(JSON.stringify(a), JSON.stringify(b), `${label}: JSON`)
}

/**
 * A FutureMessage the library did not make (the public API has no way to
 * make one), with the type id copied from one it did; `calls` counts its
 * completions.
 */
export const handWritten = <K, V>(
  template: FutureMessage.FutureMessage<any, any>,
  message: FutureMessage.PendingMessage<K, V>
) =>
  Effect.gen(function*() {
    let typeId: string | symbol | undefined
    for (let proto: any = template; proto !== null && typeId === undefined; proto = Object.getPrototypeOf(proto)) {
      typeId = [...Object.getOwnPropertyNames(proto), ...Object.getOwnPropertySymbols(proto)].find((k) =>
        String(k).includes("FutureMessage")
      )
    }
    assert.isDefined(typeId, "the FutureMessage type id")
    const deferred = yield* Deferred.make<RecordMetadata.RecordMetadata, FutureMessage.FutureError>()
    const calls = { succeed: 0, fail: 0 }
    const future = {
      [typeId as any]: (template as any)[typeId as any],
      message,
      await: Deferred.await(deferred),
      get isDone() {
        return Deferred.isDoneUnsafe(deferred)
      },
      succeed: (metadata: RecordMetadata.RecordMetadata) => {
        calls.succeed++
        return Deferred.succeed(deferred, metadata)
      },
      fail: (error: FutureMessage.FutureError) => {
        calls.fail++
        return Deferred.fail(deferred, error)
      }
    } as unknown as FutureMessage.FutureMessage<K, V>
    return { calls, future }
  })
