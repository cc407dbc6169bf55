/**
 * Heap per idle subscriber and per buffered event: `process.memoryUsage()
 * .heapUsed` after a forced GC, before and after creating many of them,
 * divided by how many. Needs `--expose-gc`.
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { CAPACITY, Channel, run, runWithApp } from "../lib/app.ts"
import { gc, progress } from "../lib/harness.ts"

export interface MemoryCase {
  readonly label: string
  readonly bytes: number
  readonly count: number
}

export interface MemoryResult {
  readonly id: string
  readonly title: string
  readonly candidate: MemoryCase
  readonly baseline: MemoryCase
  readonly extras: ReadonlyArray<MemoryCase>
  readonly target?: { readonly bytes: number; readonly text: string; readonly met: boolean } | undefined
  readonly note?: string | undefined
}

/** Holds what is being measured, so nothing is collected before it is weighed. */
const held: { value: unknown } = { value: undefined }

const heap = (): number => {
  gc()
  return process.memoryUsage().heapUsed
}

/** Records `before` inside the program, after its fixed setup (channel, queue, pubsub) exists. */
const resetBefore = (set: (value: number) => void) => Effect.sync(() => set(heap()))

export const memory = async (subscribers: number, fibers: number, events: number): Promise<Array<MemoryResult>> => {
  let before = 0
  const setBefore = (value: number) => (before = value)
  const measureIn = (
    label: string,
    count: number,
    body: (count: number) => Effect.Effect<unknown, unknown, any>,
    withApp: boolean
  ) => {
    let bytes = NaN
    return (async () => {
      for (let pass = 0; pass < 2; pass++) {
        const program = Effect.gen(function*() {
          // Held in a module variable while measured, then dropped, so nothing of this pass
          // survives into the next one (a fiber's result can outlive the fiber for a while).
          held.value = yield* body(count)
          const after = heap()
          bytes = (after - before) / count
          held.value = undefined
        })
        await (withApp ? runWithApp(program as any) : run(program as any))
      }
      progress(`memory: ${label}: ${bytes.toFixed(0)} B each (n=${count})`)
      return { label, bytes, count }
    })()
  }

  // ---- idle subscribers -------------------------------------------------------------------
  const channelClone = await measureIn(
    "Channel iterator clone (the subscriber itself)",
    subscribers,
    (k) =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ value: Schema.Number })
        yield* resetBefore(setBefore)
        const clones = []
        for (let i = 0; i < k; i++) clones.push(yield* channel.clone({ isIterator: true }))
        return clones
      }),
    true
  )

  const channelFiber = await measureIn("Channel events() running in a fiber", fibers, (k) =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* resetBefore(setBefore)
      const running: Array<Fiber.Fiber<void, unknown>> = []
      for (let i = 0; i < k; i++) running.push(yield* Effect.forkChild(Stream.runDrain(channel.events())))
      while (channel.subscriberCount < k) yield* Effect.yieldNow
      yield* Effect.yieldNow
      return running
    }), true)

  const pubsubSubscription = await measureIn(
    "PubSub.subscribe (the subscription itself)",
    subscribers,
    (k) =>
      Effect.gen(function*() {
        const pubsub = yield* PubSub.bounded<number>(CAPACITY)
        yield* resetBefore(setBefore)
        const subs = []
        for (let i = 0; i < k; i++) subs.push(yield* PubSub.subscribe(pubsub))
        return subs
      }),
    false
  )

  const pubsubFiber = await measureIn(
    "PubSub Stream.fromPubSub running in a fiber",
    fibers,
    (k) =>
      Effect.gen(function*() {
        const pubsub = yield* PubSub.bounded<number>(CAPACITY)
        yield* resetBefore(setBefore)
        const running: Array<Fiber.Fiber<void, unknown>> = []
        for (let i = 0; i < k; i++) running.push(yield* Effect.forkChild(Stream.runDrain(Stream.fromPubSub(pubsub))))
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow
        return running
      }),
    false
  )

  const rawQueue = await measureIn(
    "Queue.bounded(4096) (one per subscriber)",
    subscribers,
    (k) =>
      Effect.gen(function*() {
        yield* resetBefore(setBefore)
        const queues = []
        for (let i = 0; i < k; i++) queues.push(yield* Queue.bounded<number>(CAPACITY))
        return queues
      }),
    false
  )

  const rawQueueFiber = await measureIn(
    "Queue + Stream.fromQueue running in a fiber",
    fibers,
    (k) =>
      Effect.gen(function*() {
        yield* resetBefore(setBefore)
        const running: Array<Fiber.Fiber<void, unknown>> = []
        for (let i = 0; i < k; i++) {
          const queue = yield* Queue.bounded<number>(CAPACITY)
          running.push(yield* Effect.forkChild(Stream.runDrain(Stream.fromQueue(queue))))
        }
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow
        return running
      }),
    false
  )

  // ---- buffered events --------------------------------------------------------------------
  const channelBuffered = await measureIn(
    "Channel.send, buffered in a subscriber queue",
    events,
    (m) =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ value: Schema.Number, maxsize: m + 16 })
        const subscriber = yield* channel.clone({ isIterator: true })
        yield* resetBefore(setBefore)
        for (let i = 0; i < m; i++) yield* channel.send({ value: i })
        if (Queue.sizeUnsafe(subscriber.queue) !== m) throw new Error("not all events buffered")
        return subscriber
      }),
    true
  )

  const channelSendAllBuffered = await measureIn(
    "Channel.sendAll, buffered in a subscriber queue",
    events,
    (m) =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ value: Schema.Number, maxsize: m + 16 })
        const subscriber = yield* channel.clone({ isIterator: true })
        const values = Array.from({ length: m }, (_, i) => i)
        yield* resetBefore(setBefore)
        yield* channel.sendAll(values)
        if (Queue.sizeUnsafe(subscriber.queue) !== m) throw new Error("not all events buffered")
        return [subscriber, values]
      }),
    true
  )

  const queueBuffered = await measureIn("Queue.offer, buffered", events, (m) =>
    Effect.gen(function*() {
      const queue = yield* Queue.bounded<number>(m + 16)
      yield* resetBefore(setBefore)
      for (let i = 0; i < m; i++) yield* Queue.offer(queue, i)
      return queue
    }), false)

  return [
    {
      id: "mem-idle-subscriber",
      title: "heap per idle subscriber",
      candidate: channelClone,
      baseline: pubsubSubscription,
      extras: [rawQueue],
      target: { bytes: 2048, text: "≤ 2 KiB", met: channelClone.bytes <= 2048 }
    },
    {
      id: "mem-idle-subscriber-fiber",
      title: "heap per idle subscriber, with its fiber and stream",
      candidate: channelFiber,
      baseline: pubsubFiber,
      extras: [rawQueueFiber],
      target: { bytes: 2048, text: "≤ 2 KiB", met: channelFiber.bytes <= 2048 }
    },
    {
      id: "mem-buffered-event",
      title: "heap per buffered event",
      candidate: channelBuffered,
      baseline: queueBuffered,
      extras: [channelSendAllBuffered],
      note: "values are small integers; the channel side holds an Event, its Message and TopicPartition"
    }
  ]
}
