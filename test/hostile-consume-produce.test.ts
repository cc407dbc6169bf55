/**
 * Hostile tests of consuming and producing in memory, from the README and the
 * public API only: events (message, equality, JSON, inspection) on every path,
 * an app's own createEvent, decode errors under each policy, agents (single
 * and batch mode, concurrency, ordering "none", failures, stops) and sendAll.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Equal, Exit, Fiber, Hash, Layer, Schedule, Schema, Stream } from "effect"
import { Agent, AgentError, App, Channel, Event, KeyDecodeError, Message, ValueDecodeError } from "effect-faust"
import { inspect } from "node:util"
import { bytes, failureOf, quiet, rebuildEvent, waitUntil } from "./helpers.ts"

const range = (count: number, from = 0) => Array.from({ length: count }, (_, i) => from + i)

const AppLive = App.layer({ id: "hostile-cp", streamBufferMaxsize: 64 })

/** Gives up instead of spinning forever. */
const waitFor = (condition: () => boolean, what: () => string, turns = 200_000): Effect.Effect<void> =>
  Effect.suspend(function loop(left: number = turns): Effect.Effect<void> {
    if (condition()) return Effect.void
    if (left === 0) return Effect.die(new Error(`gave up waiting: ${what()}`))
    return Effect.andThen(Effect.yieldNow, () => loop(left - 1))
  })

const settle = Effect.forEach(range(200), () => Effect.yieldNow, { discard: true })

// ---------------------------------------------------------------------------------------------
// 1. Events
// ---------------------------------------------------------------------------------------------

/** How a received event differs from an Event.make of the same parts. */
const eventProblems = (event: Event.Event<any, any>, label: string): Array<string> => {
  const problems: Array<string> = []
  const p = (s: string) => problems.push(`${label}: ${s}`)
  try {
    if (!Event.isEvent(event)) p("not an Event")
    if (event.message !== event.message) p("event.message read twice gives two objects")
    const rebuilt = rebuildEvent(event)
    if (!Equal.equals(event, rebuilt) || !Equal.equals(rebuilt, event)) p("not Equal.equals to Event.make of its parts")
    if (Hash.hash(event) !== Hash.hash(rebuilt)) p("hash differs from Event.make of its parts")
    if (!Equal.equals(event.headers, event.message.headers)) p("headers differ from message.headers")
    const json = JSON.stringify(event)
    const expected = JSON.stringify(rebuilt)
    if (json !== expected) {
      p(`JSON.stringify differs from Event.make's:\n      got      ${json}\n      Event.make ${expected}`)
    }
    const shown = inspect(event, { depth: 6, colors: false })
    if (!/message/.test(shown)) p(`inspect does not show the message: ${shown.replace(/\s+/g, " ")}`)
  } catch (thrown) {
    p(`threw ${String(thrown)}`)
  }
  return problems
}

describe("hostile: in-memory events", () => {
  it.effect(
    "events(), two subscribers, Agent.forEach single and batch: each event equals Event.make of its parts, its message is stable, and JSON / inspect show key, value, headers and message (as Event.make's do), no internal fields",
    () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({ key: Schema.String, value: Schema.Number })
        const problems: Array<string> = []
        const a = yield* channel.events().pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
        const b = yield* channel.events().pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
        yield* waitUntil(() => channel.subscriberCount === 2)
        yield* channel.send({ key: "k", value: 1, headers: [["h", "v"], ["b", new Uint8Array([0, 255])]] })
        yield* channel.send({ value: 2, timestamp: 1234 })
        yield* channel.send({ key: "k3", value: 3, headers: { r: "x" } })
        const [ea, eb] = yield* Effect.all([Fiber.join(a), Fiber.join(b)])
        ea.forEach((e, i) => problems.push(...eventProblems(e, `events A#${i}`)))
        eb.forEach((e, i) => problems.push(...eventProblems(e, `events B#${i}`)))
        const single: Array<Event.Event<any, any>> = []
        const agent = yield* Agent.forEach("ev-single", channel, (_v, e) => Effect.sync(() => void single.push(e)))
        const f1 = yield* Effect.forkChild(agent.run)
        yield* waitUntil(() => channel.subscriberCount === 1)
        yield* channel.send({ key: "k", value: 4, headers: [["h", "v"]] })
        yield* waitFor(() => single.length === 1, () => "agent event")
        yield* Fiber.interrupt(f1)
        const batch: Array<Event.Event<any, any>> = []
        const batchAgent = yield* Agent.forEach(
          "ev-batch",
          channel,
          (_v, es) => Effect.sync(() => void batch.push(...es)),
          { batch: { size: 2, within: "1 second" } }
        )
        const f2 = yield* Effect.forkChild(batchAgent.run)
        yield* waitUntil(() => channel.subscriberCount === 1)
        yield* channel.sendAll([5, 6])
        yield* waitFor(() => batch.length === 2, () => "batch events")
        yield* Fiber.interrupt(f2)
        single.forEach((e, i) => problems.push(...eventProblems(e, `agent#${i}`)))
        batch.forEach((e, i) => problems.push(...eventProblems(e, `batch#${i}`)))
        assert.deepStrictEqual(problems, [])
      }).pipe(Effect.provide(AppLive))
  )

  it.effect(
    "an app with its own createEvent: events(), two subscribers, agents (single and batch) get the events it made, once per sent event",
    () =>
      Effect.gen(function*() {
        const made: Array<Event.Event<any, any>> = []
        const CustomApp = Layer.effect(
          App.App,
          Effect.map(App.make({ id: "custom-create" }), (app) =>
            App.App.of({
              ...app,
              createEvent: (key, value, headers, message) => {
                const event = Event.make({ key, value, headers, message })
                made.push(event)
                return event
              }
            }))
        )
        yield* Effect.gen(function*() {
          const channel = yield* Channel.make({ key: Schema.String, value: Schema.Number })
          const a = yield* channel.events().pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
          const b = yield* channel.events().pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
          yield* waitUntil(() => channel.subscriberCount === 2)
          yield* channel.send({ key: "a", value: 0 })
          yield* channel.sendAll([1, 2])
          const [ea, eb] = yield* Effect.all([Fiber.join(a), Fiber.join(b)])
          const problems: Array<string> = []
          for (const e of [...ea, ...eb]) {
            if (!made.includes(e)) problems.push(`events: ${e.value} not made by createEvent`)
          }
          const single: Array<Event.Event<any, any>> = []
          const agent = yield* Agent.forEach("ce-single", channel, (_v, e) => Effect.sync(() => void single.push(e)), {
            concurrency: 2,
            ordering: "none"
          })
          const f1 = yield* Effect.forkChild(agent.run)
          yield* waitUntil(() => channel.subscriberCount === 1)
          yield* channel.send({ key: "b", value: 3 })
          yield* channel.sendAll([4, 5])
          yield* waitFor(() => single.length === 3, () => `single ${single.length}`)
          yield* Fiber.interrupt(f1)
          for (const e of single) if (!made.includes(e)) problems.push(`agent: ${e.value} not made by createEvent`)
          const batch: Array<Event.Event<any, any>> = []
          const batchAgent = yield* Agent.forEach("ce-batch", channel, (_v, es) =>
            Effect.sync(() =>
              void batch.push(...es)
            ), {
            batch: { size: 3, within: "1 second" }
          })
          const f2 = yield* Effect.forkChild(batchAgent.run)
          yield* waitUntil(() =>
            channel.subscriberCount === 1
          )
          yield* channel.sendAll([6, 7, 8])
          yield* waitFor(() => batch.length === 3, () => `batch ${batch.length}`)
          yield* Fiber.interrupt(f2)
          for (const e of batch) if (!made.includes(e)) problems.push(`batch: ${e.value} not made by createEvent`)
          assert.deepStrictEqual(problems, [])
          assert.deepStrictEqual(single.map((e) => e.value).sort(), [3, 4, 5])
          assert.deepStrictEqual(batch.map((e) => e.value), [6, 7, 8])
        }).pipe(Effect.provide(CustomApp))
      })
  )
})

// ---------------------------------------------------------------------------------------------
// 2. Decode errors
// ---------------------------------------------------------------------------------------------

const Order = Schema.Struct({ id: Schema.Number })

/** good, bad JSON, good, wrong schema, good, empty value, good, bad key, good: as a consumer would deliver them. */
const mixedRun = (): Array<{ readonly message: Message.Message; readonly bad: "value" | "key" | undefined }> => {
  const headers: Message.Headers = [["trace", "t"], ["bin", new Uint8Array([0, 255])]]
  const at = (offset: number, key: unknown, value: unknown) =>
    Message.make({
      topic: "orders",
      partition: 3,
      offset,
      timestamp: 1000 + offset,
      timestampType: 0,
      key,
      value,
      headers
    })
  return [
    { message: at(10, bytes("1"), bytes("{\"id\":0}")), bad: undefined },
    { message: at(11, bytes("2"), bytes("{not json")), bad: "value" },
    { message: at(12, bytes("3"), bytes("{\"id\":2}")), bad: undefined },
    { message: at(13, bytes("4"), bytes("{\"id\":\"x\"}")), bad: "value" },
    { message: at(14, bytes("5"), bytes("{\"id\":4}")), bad: undefined },
    { message: at(15, bytes("6"), new Uint8Array(0)), bad: "value" },
    { message: at(16, bytes("7"), bytes("{\"id\":6}")), bad: undefined },
    { message: at(17, bytes("{oops"), bytes("{\"id\":7}")), bad: "key" },
    { message: at(18, bytes("9"), bytes("{\"id\":8}")), bad: undefined }
  ]
}

const KeyNumber = Schema.Number

describe("hostile: in-memory decode errors", () => {
  it.live(
    "\"skip\": a run with bad JSON, a wrong schema, an empty value and a bad key in the middle: the good ones in order, each bad one counted, deliver never fails",
    () =>
      Effect.gen(function*() {
        const channel = yield* Channel.make({
          key: KeyNumber,
          keySerializer: "json",
          value: Order,
          onDecodeError: "skip"
        })
        const exits = yield* Effect.forEach(mixedRun(), ({ message }) => Effect.exit(channel.deliver(message)))
        const got = yield* Effect.forEach(range(5), () => channel.get({ timeout: "1 second" }))
        assert.deepStrictEqual(exits.filter(Exit.isFailure).map(failureOf), [])
        assert.deepStrictEqual(got.map((e) => e.value.id), [0, 2, 4, 6, 8])
        assert.deepStrictEqual(got.map((e) => e.message.offset), [10, 12, 14, 16, 18])
        assert.isTrue(yield* channel.empty)
        assert.deepStrictEqual(channel.decodeErrorCounts, { failed: 0, skipped: 4, deadLettered: 0 })
      }).pipe(Effect.provide(AppLive), Effect.provide(quiet))
  )

  it.live(
    "\"fail\": deliver of each bad message fails with the typed error whose received is that message (offset, partition, bytes, headers); the reader gets what was buffered, then the error",
    () =>
      Effect.gen(function*() {
        const run = mixedRun()
        const problems: Array<string> = []
        for (const [i, entry] of run.entries()) {
          if (entry.bad === undefined) continue
          const channel = yield* Channel.make({ key: KeyNumber, keySerializer: "json", value: Order })
          const subscriber = yield* channel.clone({ isIterator: true })
          const reader = yield* subscriber.events().pipe(Stream.runCollect, Effect.exit, Effect.forkChild)
          yield* settle
          // the good one before it reaches the subscriber through send; the bad one is delivered
          yield* channel.send({ key: i, value: { id: i - 1 } })
          yield* channel.deliver(run[i - 1].message)
          const exit = yield* Effect.exit(channel.deliver(entry.message))
          const error = failureOf(exit)
          const Expected = entry.bad === "key" ? KeyDecodeError : ValueDecodeError
          if (!(error instanceof Expected)) problems.push(`#${i}: deliver gave ${String(error)}`)
          else {
            const received = error.received as Message.Message
            if (!Equal.equals(received, entry.message)) problems.push(`#${i}: received ${inspect(received)}`)
            if (received.offset !== entry.message.offset || received.partition !== 3) {
              problems.push(`#${i}: received at ${received.partition}@${received.offset}`)
            }
            if (received.headers.length !== 2) problems.push(`#${i}: received headers ${inspect(received.headers)}`)
            const json = JSON.stringify(error)
            if (!json.includes("\"offset\":" + entry.message.offset)) {
              problems.push(`#${i}: JSON lacks the offset: ${json}`)
            }
          }
          const readerExit = yield* Fiber.join(reader)
          if (!Exit.isSuccess(readerExit) && !(failureOf(readerExit) instanceof Expected)) {
            problems.push(`#${i}: reader failed with ${String(failureOf(readerExit))}`)
          }
          if (Exit.isSuccess(readerExit)) problems.push(`#${i}: reader ended without the error`)
          const buffered = yield* Effect.exit(channel.get({ timeout: "1 second" }))
          if (!Exit.isSuccess(buffered) || buffered.value.message.offset !== run[i - 1].message.offset) {
            problems.push(`#${i}: the good message delivered before it: ${String(failureOf(buffered))}`)
          }
          if (channel.decodeErrorCounts.failed !== 1) {
            problems.push(`#${i}: counts ${JSON.stringify(channel.decodeErrorCounts)}`)
          }
        }
        assert.deepStrictEqual(problems, [])
      }).pipe(Effect.provide(AppLive), Effect.provide(quiet))
  )

  it.live(
    "dead letter: each bad message reaches the dead-letter channel in order with its raw key, value and headers plus x-decode-error headers; the good ones reach the reader in order",
    () =>
      Effect.gen(function*() {
        const dead = yield* Channel.make({})
        const channel = yield* Channel.make({
          key: KeyNumber,
          keySerializer: "json",
          value: Order,
          onDecodeError: { deadLetter: dead }
        })
        const deadReader = yield* dead.events().pipe(Stream.take(4), Stream.runCollect, Effect.forkChild)
        yield* waitUntil(() => dead.subscriberCount === 1)
        const run = mixedRun()
        const exits = yield* Effect.forEach(run, ({ message }) => Effect.exit(channel.deliver(message)))
        assert.deepStrictEqual(exits.filter(Exit.isFailure).map(failureOf), [])
        const good = yield* Effect.forEach(range(5), () => channel.get({ timeout: "1 second" }))
        const letters = yield* Fiber.join(deadReader)
        assert.deepStrictEqual(good.map((e) => e.value.id), [0, 2, 4, 6, 8])
        const bad = run.filter((r) => r.bad !== undefined)
        const problems: Array<string> = []
        letters.forEach((letter, i) => {
          const original = bad[i].message
          if (!Equal.equals(letter.key, original.key)) problems.push(`#${i}: key ${inspect(letter.key)}`)
          if (!Equal.equals(letter.value, original.value)) problems.push(`#${i}: value ${inspect(letter.value)}`)
          const names = letter.headers.map(([n]) => n)
          for (const h of ["trace", "bin", "x-decode-error", "x-decode-error-message", "x-source-channel"]) {
            if (!names.includes(h)) problems.push(`#${i}: no ${h} header (${names.join(",")})`)
          }
          const bin = letter.headers.find(([n]) => n === "bin")?.[1]
          if (!Equal.equals(bin, new Uint8Array([0, 255]))) problems.push(`#${i}: bin header ${inspect(bin)}`)
        })
        assert.deepStrictEqual(problems, [])
        assert.deepStrictEqual(channel.decodeErrorCounts, { failed: 0, skipped: 0, deadLettered: 4 })
      }).pipe(Effect.provide(AppLive), Effect.provide(quiet))
  )
})

// ---------------------------------------------------------------------------------------------
// 3. Agents in memory
// ---------------------------------------------------------------------------------------------

/** Handled values: each count and order. */
class Handled {
  readonly order: Array<number> = []
  readonly counts = new Map<number, number>()
  add(value: number) {
    this.order.push(value)
    this.counts.set(value, (this.counts.get(value) ?? 0) + 1)
  }
  twice(): Array<number> {
    return [...this.counts].filter(([, n]) => n > 1).map(([v]) => v)
  }
  missing(values: ReadonlyArray<number>): Array<number> {
    return values.filter((v) => !this.counts.has(v))
  }
  report(label: string, sent: number) {
    const received = this.counts.size
    const duplicated = this.order.length - received
    console.log(
      `[delivery] ${label}: sent=${sent} received=${received} lost=${sent - received} duplicated=${duplicated}`
    )
  }
}

const numbers = (maxsize = 64) => Channel.make({ key: Schema.String, value: Schema.Number, maxsize })

describe("hostile: in-memory agents", () => {
  for (const concurrency of [1, 4, 16]) {
    it.live(
      `concurrency ${concurrency}, ordering "none": 20 000 values offered at once (sendAll) are each handled exactly once`,
      () =>
        Effect.gen(function*() {
          const channel = yield* numbers()
          const handled = new Handled()
          const agent = yield* Agent.forEach(`burst-${concurrency}`, channel, (value) =>
            Effect.andThen(
              value % 7 === 0 ? Effect.yieldNow : Effect.void,
              Effect.sync(() => handled.add(value))
            ), {
            concurrency,
            ordering: "none"
          })
          const fiber = yield* Effect.forkChild(agent.run)
          yield* waitUntil(() => channel.subscriberCount === 1)
          const values = range(20_000)
          yield* channel.sendAll(values)
          yield* waitFor(() => handled.counts.size === values.length, () => `handled ${handled.counts.size}`).pipe(
            Effect.timeoutOrElse({ duration: "20 seconds", orElse: () => Effect.void })
          )
          yield* Fiber.interrupt(fiber)
          handled.report(`burst c${concurrency}`, values.length)
          assert.deepStrictEqual(handled.missing(values).slice(0, 10), [])
          assert.deepStrictEqual(handled.twice(), [])
          if (concurrency === 1) assert.deepStrictEqual(handled.order, values)
        }).pipe(Effect.provide(AppLive)),
      30_000
    )
  }

  it.live(
    "concurrency 4, ordering \"none\": one handler blocked does not hold the other 99 queued events (the free instances take them)",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers()
        const release = yield* Deferred.make<void>()
        const handled = new Handled()
        const agent = yield* Agent.forEach("blocked-one", channel, (value) =>
          Effect.andThen(
            value === 0 ? Deferred.await(release) : Effect.void,
            Effect.sync(() => handled.add(value))
          ), {
          concurrency: 4,
          ordering: "none"
        })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* waitUntil(() => channel.subscriberCount === 1)
        yield* channel.sendAll(range(100))
        const exit = yield* Effect.exit(
          Effect.suspend(function loop(): Effect.Effect<void> {
            return handled.counts.size >= 99 ? Effect.void : Effect.andThen(Effect.sleep("5 millis"), loop)
          }).pipe(Effect.timeout("5 seconds"))
        )
        const whileBlocked = handled.counts.size
        yield* Deferred.succeed(release, void 0)
        yield* waitFor(() => handled.counts.size === 100, () => `handled ${handled.counts.size}`)
        yield* Fiber.interrupt(fiber)
        assert.isTrue(Exit.isSuccess(exit), `only ${whileBlocked} of 99 handled while one instance was blocked`)
        assert.deepStrictEqual(handled.twice(), [])
      }).pipe(Effect.provide(AppLive)),
    30_000
  )

  for (const [how, batch] of [["sendAll", false], ["send", false], ["sendAll", true], ["send", true]] as const) {
    for (const n of [2, 5, 8]) {
      it.live(
        `concurrency 8, ordering "none"${
          batch ? ", batches of 1" : ""
        }: ${n} events offered at once by ${how} to idle instances are all in flight together (a barrier of ${n} handlers passes)`,
        () =>
          Effect.gen(function*() {
            const channel = yield* numbers()
            let arrived = 0
            const handled = new Handled()
            const barrier = (values: ReadonlyArray<number>) =>
              Effect.gen(function*() {
                arrived++
                yield* Effect.suspend(function loop(): Effect.Effect<void> {
                  return arrived >= n ? Effect.void : Effect.andThen(Effect.sleep("1 millis"), loop)
                }).pipe(Effect.timeout("2 seconds"))
                for (const v of values) handled.add(v)
              })
            const agent = batch
              ? yield* Agent.forEach(`barrier-b-${how}-${n}`, channel, (vs) => barrier(vs), {
                concurrency: 8,
                ordering: "none",
                batch: { size: 1, within: "1 second" }
              })
              : yield* Agent.forEach(`barrier-${how}-${n}`, channel, (v) => barrier([v]), {
                concurrency: 8,
                ordering: "none"
              })
            const fiber = yield* Effect.forkChild(Effect.exit(agent.run))
            yield* waitUntil(() => channel.subscriberCount === 1)
            yield* Effect.sleep("20 millis")
            if (how === "sendAll") yield* channel.sendAll(range(n))
            else for (const v of range(n)) yield* channel.send({ key: `k${v}`, value: v })
            yield* Effect.suspend(function loop(): Effect.Effect<void> {
              return handled.counts.size >= n || fiber.pollUnsafe() !== undefined
                ? Effect.void
                : Effect.andThen(Effect.sleep("5 millis"), loop)
            }).pipe(Effect.timeout("5 seconds"), Effect.ignore)
            const stopped = fiber.pollUnsafe()
            yield* Fiber.interrupt(fiber)
            assert.isUndefined(stopped, `the agent stopped: only ${arrived} of ${n} reached the barrier together`)
            assert.strictEqual(handled.counts.size, n, `only ${arrived} of ${n} reached the barrier together`)
          }).pipe(Effect.provide(AppLive), Effect.provide(quiet)),
        30_000
      )
    }
  }

  for (const batch of [false, true]) {
    it.live(
      `concurrency 8, ordering "none"${
        batch ? ", batches of 2" : ""
      }: a burst with every handler slow keeps all 8 instances busy (in flight reaches 8)`,
      () =>
        Effect.gen(function*() {
          const channel = yield* numbers()
          let inFlight = 0
          let peak = 0
          const handled = new Handled()
          const work = (values: ReadonlyArray<number>) =>
            Effect.gen(function*() {
              inFlight++
              peak = Math.max(peak, inFlight)
              yield* Effect.sleep("30 millis")
              inFlight--
              for (const v of values) handled.add(v)
            })
          const agent = batch
            ? yield* Agent.forEach("busy-batch", channel, (values) => work(values), {
              concurrency: 8,
              ordering: "none",
              batch: { size: 2, within: "5 millis" }
            })
            : yield* Agent.forEach("busy", channel, (value) => work([value]), { concurrency: 8, ordering: "none" })
          const fiber = yield* Effect.forkChild(agent.run)
          yield* waitUntil(() => channel.subscriberCount === 1)
          yield* channel.sendAll(range(160))
          yield* waitFor(() => handled.counts.size === 160, () => `handled ${handled.counts.size}`, 10_000_000)
          yield* Fiber.interrupt(fiber)
          assert.deepStrictEqual(handled.twice(), [])
          assert.strictEqual(peak, 8, `at most ${peak} handlers ran at once`)
        }).pipe(Effect.provide(AppLive)),
      30_000
    )
  }

  it.live(
    "ordering \"partition\" (the key decides) with concurrency 4: values of each key in order, each once",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers()
        const byKey = new Map<string, Array<number>>()
        const handled = new Handled()
        const agent = yield* Agent.forEach("per-key", channel, (value, event) =>
          Effect.andThen(
            Effect.sleep(value % 3 === 0 ? "1 millis" : "0 millis"),
            Effect.sync(() => {
              handled.add(value)
              const list = byKey.get(event.key!) ?? []
              list.push(value)
              byKey.set(event.key!, list)
            })
          ), { concurrency: 4 })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* waitUntil(() => channel.subscriberCount === 1)
        const values = range(600)
        yield* Effect.forEach(values, (v) => channel.send({ key: `k${v % 10}`, value: v }), { discard: true })
        yield* waitFor(
          () => handled.counts.size === values.length,
          () => `handled ${handled.counts.size}`,
          10_000_000
        )
        yield* Fiber.interrupt(fiber)
        for (const [key, list] of byKey) {
          assert.deepStrictEqual(list, [...list].sort((a, b) => a - b), `key ${key} out of order`)
        }
        assert.deepStrictEqual(handled.twice(), [])
      }).pipe(Effect.provide(AppLive)),
    30_000
  )

  for (const mode of ["single", "batch"] as const) {
    it.live(
      `${mode}: onError retry twice then "skip", every 10th value always failing, concurrency 3 ordering "none": each good value handled once, each bad one tried 3 times and skipped`,
      () =>
        Effect.gen(function*() {
          const channel = yield* numbers()
          const handled = new Handled()
          const attempts = new Map<number, number>()
          const handle = (values: ReadonlyArray<number>) =>
            Effect.suspend(() => {
              for (const v of values) attempts.set(v, (attempts.get(v) ?? 0) + 1)
              if (values.some((v) => v % 10 === 3)) return Effect.fail("boom")
              for (const v of values) handled.add(v)
              return Effect.void
            })
          const options = {
            concurrency: 3,
            ordering: "none" as const,
            onError: { retry: Schedule.recurs(2), then: "skip" as const }
          }
          const agent = mode === "batch"
            ? yield* Agent.forEach("retry-skip-b", channel, (vs) => handle(vs), {
              ...options,
              batch: { size: 1, within: "5 millis" }
            })
            : yield* Agent.forEach("retry-skip", channel, (v) => handle([v]), options)
          const fiber = yield* Effect.forkChild(agent.run)
          yield* waitUntil(() => channel.subscriberCount === 1)
          const values = range(200)
          yield* channel.sendAll(values)
          yield* waitFor(() => agent.stats.skipped === 20 && handled.counts.size === 180, () =>
            `skipped ${agent.stats.skipped} handled ${handled.counts.size}`, 10_000_000)
          yield* Fiber.interrupt(fiber)
          assert.deepStrictEqual(handled.twice(), [])
          const bad = values.filter((v) =>
            v % 10 === 3
          )
          assert.deepStrictEqual(bad.map((v) => attempts.get(v)), bad.map(() => 3))
          assert.deepStrictEqual(
            values.filter((v) => v % 10 !== 3).map((v) => attempts.get(v)).filter((n) => n !== 1),
            []
          )
        }).pipe(Effect.provide(AppLive), Effect.provide(quiet)),
      30_000
    )
  }

  it.live(
    "onError dead letter: the failing values reach the dead-letter channel in order with x-error, x-agent and x-attempts; the others handled once",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers()
        const dead = yield* Channel.make({ key: Schema.String, value: Schema.Number })
        const letters = yield* dead.events().pipe(Stream.take(10), Stream.runCollect, Effect.forkChild)
        yield* waitUntil(() => dead.subscriberCount === 1)
        const handled = new Handled()
        const agent = yield* Agent.forEach("dl", channel, (value) =>
          value % 10 === 3 ? Effect.fail(new Error(`bad ${value}`)) : Effect.sync(() =>
            handled.add(value)
          ), {
          onError: { retry: Schedule.recurs(1), then: { deadLetter: dead } }
        })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* waitUntil(() =>
          channel.subscriberCount === 1
        )
        yield* Effect.forEach(range(100), (v) => channel.send({ key: `k${v}`, value: v, headers: [["h", `v${v}`]] }), {
          discard: true
        })
        const got = yield* Fiber.join(letters)
        yield* waitFor(() => handled.counts.size === 90, () => `handled ${handled.counts.size}`, 10_000_000)
        yield* Fiber.interrupt(fiber)
        assert.deepStrictEqual(got.map((e) => e.value), range(10).map((i) => i * 10 + 3))
        for (const e of got) {
          const headers = new Map(
            e.headers.map(([n, v]) => [n, typeof v === "string" ? v : new TextDecoder().decode(v)])
          )
          assert.strictEqual(e.key, `k${e.value}`)
          assert.strictEqual(headers.get("h"), `v${e.value}`)
          assert.strictEqual(headers.get("x-agent"), "dl")
          assert.strictEqual(headers.get("x-attempts"), "2")
          assert.include(headers.get("x-error-message") ?? "", `bad ${e.value}`)
        }
        assert.deepStrictEqual(handled.twice(), [])
      }).pipe(Effect.provide(AppLive), Effect.provide(quiet)),
    30_000
  )

  for (const mode of ["single", "batch"] as const) {
    it.live(
      `${mode}, concurrency 4 ordering "none": a handler failing once (then "fail", restart) is handled again after the restart; every value handled successfully exactly once`,
      () =>
        Effect.gen(function*() {
          const channel = yield* numbers()
          const handled = new Handled()
          let failed = false
          const handle = (values: ReadonlyArray<number>) =>
            Effect.suspend(() => {
              if (!failed && values.includes(50)) {
                failed = true
                return Effect.fail("once")
              }
              return Effect.andThen(Effect.sleep("1 millis"), Effect.sync(() => values.forEach((v) => handled.add(v))))
            })
          const options = { concurrency: 4, ordering: "none" as const, restart: Schedule.recurs(3) }
          const agent = mode === "batch"
            ? yield* Agent.forEach("restart-b", channel, (vs) => handle(vs), {
              ...options,
              batch: { size: 5, within: "5 millis" }
            })
            : yield* Agent.forEach("restart", channel, (v) => handle([v]), options)
          const fiber = yield* Effect.forkChild(Effect.exit(agent.run))
          yield* waitUntil(() => channel.subscriberCount === 1)
          const values = range(300)
          yield* channel.sendAll(values)
          yield* waitFor(() => handled.counts.size === 300 || fiber.pollUnsafe() !== undefined, () =>
            `handled ${handled.counts.size}`, 10_000_000)
          const early = fiber.pollUnsafe()
          yield* Fiber.interrupt(fiber)
          handled.report(`restart ${mode}`, values.length)
          assert.isUndefined(early, `the agent stopped: ${early === undefined ? "" : String(failureOf(early as any))}`)
          assert.isTrue(failed)
          assert.strictEqual(agent.stats.restarts, 1)
          assert.deepStrictEqual(handled.missing(values), [])
          assert.deepStrictEqual(handled.twice(), [])
        }).pipe(Effect.provide(AppLive), Effect.provide(quiet)),
      30_000
    )
  }

  it.live(
    "a failing handler without restart: agent.run fails with AgentError naming the value's channel; no event after it is acknowledged twice, none handled twice",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers()
        const handled = new Handled()
        const agent = yield* Agent.forEach("no-restart", channel, (value) =>
          value === 5 ? Effect.fail("five") : Effect.sync(() =>
            handled.add(value)
          ))
        const fiber = yield* Effect.forkChild(Effect.exit(agent.run))
        yield* waitUntil(() => channel.subscriberCount === 1)
        yield* channel.sendAll(range(10))
        const exit = yield* Fiber.join(fiber).pipe(Effect.timeout("5 seconds"))
        const error = failureOf(exit)
        assert.instanceOf(error, AgentError)
        assert.deepStrictEqual(handled.order, [0, 1, 2, 3, 4])
      }).pipe(Effect.provide(AppLive), Effect.provide(quiet)),
    30_000
  )

  it.live(
    "batch of 10 within 10 s, 25 values then interrupted: the two full batches and the partial one of 5 are each handled once",
    () =>
      Effect.gen(function*() {
        const channel = yield* numbers()
        const batches: Array<ReadonlyArray<number>> = []
        const agent = yield* Agent.forEach("stop-mid-batch", channel, (values) =>
          Effect.sync(() =>
            void batches.push(values)
          ), {
          batch: { size: 10, within: "10 seconds" }
        })
        const fiber = yield* Effect.forkChild(agent.run)
        yield* waitUntil(() =>
          channel.subscriberCount === 1
        )
        yield* channel.sendAll(range(25))
        yield* waitFor(() => batches.length === 2, () => `batches ${batches.length}`, 10_000_000)
        yield* Effect.sleep("50 millis")
        yield* Fiber.interrupt(fiber).pipe(Effect.timeout("5 seconds"))
        assert.deepStrictEqual(batches, [range(10), range(10, 10), range(5, 20)])
      }).pipe(Effect.provide(AppLive)),
    30_000
  )

  for (const concurrency of [1, 3]) {
    it.live(
      `the source ends (channel.end) with a partial batch, concurrency ${concurrency}: run completes, every value handled once`,
      () =>
        Effect.gen(function*() {
          const channel = yield* numbers()
          const handled = new Handled()
          const agent = yield* Agent.forEach("ends", channel, (values) =>
            Effect.sync(() =>
              values.forEach((v) => handled.add(v))
            ), {
            batch: { size: 7, within: "10 seconds" },
            concurrency,
            ordering: "none"
          })
          const fiber = yield* Effect.forkChild(agent.run)
          yield* waitUntil(() =>
            channel.subscriberCount === 1
          )
          yield* channel.sendAll(range(103))
          yield* channel.end
          const exit = yield* Fiber.await(fiber).pipe(Effect.timeout("5 seconds"))
          assert.isTrue(Exit.isSuccess(exit), String(failureOf(exit)))
          handled.report(`ends c${concurrency}`, 103)
          assert.deepStrictEqual(handled.missing(range(103)), [])
          assert.deepStrictEqual(handled.twice(), [])
          if (concurrency === 1) assert.deepStrictEqual(handled.order, range(103))
        }).pipe(Effect.provide(AppLive)),
      30_000
    )
  }

  it.live(
    "Agent.make (single and batch): every value reaches the process once, in order; the source ending ends the run",
    () =>
      Effect.gen(function*() {
        for (const batch of [false, true]) {
          const channel = yield* numbers()
          const seen: Array<number> = []
          const agent = batch
            ? yield* Agent.make("make-b", channel, (values) => Stream.map(values, (vs) => void seen.push(...vs)), {
              batch: { size: 4, within: "5 millis" }
            })
            : yield* Agent.make("make-s", channel, (values) => Stream.map(values, (v) => void seen.push(v)))
          const fiber = yield* Effect.forkChild(agent.run)
          yield* waitUntil(() => channel.subscriberCount === 1)
          yield* channel.sendAll(range(1000))
          yield* channel.end
          const exit = yield* Fiber.await(fiber).pipe(Effect.timeout("5 seconds"))
          assert.isTrue(Exit.isSuccess(exit), String(failureOf(exit)))
          assert.deepStrictEqual(seen, range(1000), batch ? "batch" : "single")
        }
      }).pipe(Effect.provide(AppLive)),
    30_000
  )
})

// ---------------------------------------------------------------------------------------------
// 5. sendAll in memory
// ---------------------------------------------------------------------------------------------

describe("hostile: in-memory sendAll", () => {
  it.live("sendAll of 0 values returns at once and sends nothing; of many, each subscriber gets them in order", () =>
    Effect.gen(function*() {
      const channel = yield* numbers(8)
      const a = yield* channel.stream().pipe(Stream.take(300), Stream.runCollect, Effect.forkChild)
      const b = yield* channel.stream().pipe(Stream.take(300), Stream.runCollect, Effect.forkChild)
      yield* waitUntil(() => channel.subscriberCount === 2)
      yield* channel.sendAll([]).pipe(Effect.timeout("1 second"))
      yield* channel.sendAll(new Set(range(100)))
      yield* channel.sendAll((function*() {
        for (const v of range(200, 100)) yield v
      })())
      assert.deepStrictEqual(yield* Fiber.join(a), range(300))
      assert.deepStrictEqual(yield* Fiber.join(b), range(300))
    }).pipe(Effect.provide(AppLive)))

  it.live("concurrent sendAll calls from 20 fibers: each fiber's values in order at every subscriber, none lost or doubled", () =>
    Effect.gen(function*() {
      const channel = yield* numbers(16)
      const total = 20 * 500
      const readers = yield* Effect.forEach(
        range(2),
        () => channel.stream().pipe(Stream.take(total), Stream.runCollect, Effect.forkChild)
      )
      yield* waitUntil(() => channel.subscriberCount === 2)
      yield* Effect.forEach(range(20), (f) => channel.sendAll(range(500, f * 500)), {
        concurrency: "unbounded",
        discard: true
      })
      for (const reader of readers) {
        const got = yield* Fiber.join(reader)
        assert.strictEqual(new Set(got).size, total)
        for (const f of range(20)) {
          const mine = got.filter((v) => Math.floor(v / 500) === f)
          assert.deepStrictEqual(mine, range(500, f * 500))
        }
      }
    }).pipe(Effect.provide(AppLive)))
})
