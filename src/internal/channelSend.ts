/**
 * How an in-memory channel sends: `put` and `putAll` offer events to every
 * subscriber or apply the no-subscriber policy; `send`, `sendAll` and
 * `publishMessage` build the events and their metadata; `asFutureMessage`
 * and `sendSoon` as far as a channel without a broker supports them.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import { defaultCreateEvent } from "../App.ts"
import type { AsFutureMessageOptions, SendOptions } from "../Channel.ts"
import {
  type ChannelClosedError,
  NoSubscribersError,
  NotATopicError,
  PublishInterruptedError,
  UnsupportedOperationError
} from "../Errors.ts"
import type * as Event from "../Event.ts"
import type * as FutureMessage from "../FutureMessage.ts"
import * as Message from "../Message.ts"
import * as RecordMetadata from "../RecordMetadata.ts"
import type { Root, Settings } from "./channel.ts"
import * as fanOut from "./fanOut.ts"
import { fromSendOptions } from "./futureMessage.ts"
import { anonTopic, currentTimeMillis, sentExit } from "./sendClock.ts"
import { SentEvent } from "./sentEvent.ts"
import * as traceContext from "./traceContext.ts"

/** What sending needs of a channel instance. */
export interface Sender<K, V> {
  readonly label: string
  readonly settings: Settings<K, V>
  readonly root: Root
  readonly spanOptions: { readonly attributes: Record<string, unknown> }
  /** `putAll` on this instance, made once: a send waiting for room runs it again when every subscriber left. */
  readonly retryPutAll: (events: ReadonlyArray<Event.Event<K, V>>) => Effect.Effect<void, FutureMessage.PublishError>
  closedError(): ChannelClosedError
}

const noHeaders: Message.Headers = []

/**
 * Offers an event to every subscriber at once, or applies the
 * no-subscriber policy. While any subscriber's queue is full (or earlier
 * sends wait), it waits without offering to anyone (see `fanOut.ts`).
 */
export const put = <K, V>(
  sender: Sender<K, V>,
  event: Event.Event<K, V>
): Effect.Effect<void, FutureMessage.PublishError> => {
  const root = sender.root
  if (root.closed !== undefined) return Exit.fail(sender.closedError())
  const subscribers = root.subscribers
  if (subscribers.length === 0) return putAllWithoutSubscribers(sender, [event])
  if (root.waitingForSubscribers.length === 0) {
    if (subscribers.length === 1) {
      const queue = subscribers[0].queue
      if (Queue.offerUnsafe(queue, event) || queue.state._tag !== "Open") {
        root.stats.sent++
        return Exit.void
      }
    } else if (fanOut.roomIn(subscribers) > 0) {
      fanOut.offerToAll(subscribers, event)
      root.stats.sent++
      return Exit.void
    }
  }
  return fanOut.waitForRoom(root, [event], false, sender.retryPutAll)
}

/**
 * Offers events, in order, to every subscriber. Where they do not all fit,
 * they go in prefixes as room appears, each prefix to every subscriber:
 * interrupted, it leaves every subscriber with the same prefix.
 */
export const putAll = <K, V>(
  sender: Sender<K, V>,
  events: ReadonlyArray<Event.Event<K, V>>
): Effect.Effect<void, FutureMessage.PublishError> => {
  const root = sender.root
  if (root.closed !== undefined) return Exit.fail(sender.closedError())
  if (events.length === 0) return Exit.void
  const subscribers = root.subscribers
  if (subscribers.length === 0) return putAllWithoutSubscribers(sender, events)
  if (root.waitingForSubscribers.length === 0 && fanOut.roomIn(subscribers) >= events.length) {
    fanOut.offerAllToAll(subscribers, events)
    root.stats.sent += events.length
    return Exit.void
  }
  return fanOut.waitForRoom(root, events, false, sender.retryPutAll)
}

const putAllWithoutSubscribers = <K, V>(
  sender: Sender<K, V>,
  events: ReadonlyArray<Event.Event<K, V>>
): Effect.Effect<void, FutureMessage.PublishError> => {
  const root = sender.root
  switch (sender.settings.whenNoSubscribers) {
    case "drop":
      root.stats.sent += events.length
      root.stats.dropped += events.length
      return Exit.void
    case "fail":
      return Exit.fail(new NoSubscribersError({ channel: sender.label }))
    case "buffer": {
      if (root.waitingForBuffer.length === 0 && fanOut.roomOf(root.buffer) >= events.length) {
        fanOut.offerAllToAll(root.bufferTarget, events)
        root.stats.sent += events.length
        return Exit.void
      }
      return fanOut.waitForRoom(root, events, true, sender.retryPutAll)
    }
  }
}

export const send = <K, V>(
  sender: Sender<K, V>,
  options: SendOptions<K, V>
): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> =>
  sender.settings.spans
    ? Effect.withSpan(sendUntraced(sender, options), "Channel.send", sender.spanOptions)
    : sendUntraced(sender, options)

const sendUntraced = <K, V>(
  sender: Sender<K, V>,
  options: SendOptions<K, V>
): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> => {
  if (options.callback !== undefined) {
    return Effect.flatMap(
      asFutureMessage(sender, options as AsFutureMessageOptions<K, V>),
      (future) => publishMessage(sender, future)
    ) as Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError>
  }
  return Effect.withFiber((fiber) => {
    const timestamp = options.timestamp ?? currentTimeMillis(fiber)
    const partition = options.partition ?? -1
    const event = eventFor(
      sender,
      options.key ?? null,
      options.value,
      options.headers,
      partition,
      timestamp,
      traceContext.current(fiber)
    )
    const sent = sentExit(partition, timestamp)
    const result = put(sender, event)
    return result === Exit.void ? sent : Effect.as(result, sent.value)
  })
}

/** Sends every value in order; waits only while a subscriber queue is full. */
export const sendAll = <K, V>(
  sender: Sender<K, V>,
  values: Iterable<V>
): Effect.Effect<void, FutureMessage.PublishError> =>
  Effect.withFiber((fiber) => {
    const timestamp = currentTimeMillis(fiber)
    if (sender.settings.app.createEvent !== defaultCreateEvent || !Array.isArray(values)) {
      const events: Array<Event.Event<K, V>> = []
      for (const value of values) events.push(eventFor(sender, null, value, undefined, -1, timestamp))
      return putAll(sender, events)
    }
    // An array of values, default events: one loop without the iterator protocol or per-value checks.
    const list = values as ReadonlyArray<V>
    const events = new Array<Event.Event<K, V>>(list.length)
    for (let i = 0; i < list.length; i++) events[i] = new SentEvent(null, list[i], noHeaders, -1, timestamp)
    return putAll(sender, events)
  })

/**
 * The event of a send: a `SentEvent`, or what the app's `createEvent` makes
 * of it. `traceparent` (the sending span's, see `traceContext.current`) is
 * added to the headers unless they name one, as a Kafka record carries it.
 */
const eventFor = <K, V>(
  sender: Sender<K, V>,
  key: K | null,
  value: V,
  headers: Message.OpenHeaders | undefined,
  partition: number,
  timestamp: number,
  traceparent?: string | undefined
): Event.Event<K, V> => {
  let list = headers === undefined ? noHeaders : Message.headersToList(headers)
  if (traceparent !== undefined && !traceContext.hasHeader(headers)) {
    list = [...list, [traceContext.TRACEPARENT, traceparent]]
  }
  const event = new SentEvent(key, value, list, partition, timestamp)
  const createEvent = sender.settings.app.createEvent
  return createEvent === defaultCreateEvent ? event : createEvent(key, value, list, event.message)
}

/** Publishes a future's message: a put, then the future completes, then its callback runs. */
export const publishMessage = <K, V>(
  sender: Sender<K, V>,
  future: FutureMessage.FutureMessage<K, V>
): Effect.Effect<RecordMetadata.RecordMetadata, FutureMessage.PublishError> =>
  Effect.withFiber((fiber) => {
    const pending = future.message
    const timestamp = pending.timestamp ?? currentTimeMillis(fiber)
    const partition = pending.partition ?? -1
    const event = eventFor(
      sender,
      pending.key,
      pending.value,
      pending.headers,
      partition,
      timestamp,
      traceContext.current(fiber)
    )
    const metadata = RecordMetadata.make({
      topic: pending.topic ?? anonTopic,
      partition,
      offset: -1,
      timestamp,
      timestampType: 1
    })
    return put(sender, event).pipe(
      Effect.tapError((error) => future.fail(error)),
      // A put is all or nothing: interrupted before it completed, the message reached no one.
      Effect.onInterrupt(() => future.fail(new PublishInterruptedError({ channel: sender.label }))),
      Effect.andThen(future.succeed(metadata)),
      Effect.andThen(() => {
        const after = pending.callback?.(future)
        return after === undefined ? Effect.void : after
      }),
      Effect.as(metadata)
    )
  })

/** A future of `channel`; eager partitioning needs a topic's partitions. */
export const asFutureMessage = <K, V>(
  channel: { readonly label: string },
  options: AsFutureMessageOptions<K, V>
): Effect.Effect<FutureMessage.FutureMessage<K, V>, NotATopicError> => {
  if (options.eagerPartitioning === true) {
    return Exit.fail(
      new NotATopicError({ channel: channel.label, operation: "asFutureMessage({ eagerPartitioning: true })" })
    )
  }
  return Effect.sync(() => fromSendOptions(channel, options))
}

/** In memory there is no send buffer to add a message to. */
export const sendSoon = (label: string): Effect.Effect<never, UnsupportedOperationError> =>
  Exit.fail(
    new UnsupportedOperationError({
      channel: label,
      operation: "sendSoon",
      reason: "in-memory channels have no send buffer; use send, or a Topic"
    })
  )
