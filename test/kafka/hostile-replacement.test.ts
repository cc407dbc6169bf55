/**
 * Hostile tests of the consumer's client-stream replacement (README "A cluster",
 * "When a node dies", rows (a), (a′), (c1) of the Kafka guarantees, and
 * `effect_faust_consumer_streams_replaced_total`), on the single broker. A
 * restart of the broker takes ~14 s, longer than a replacement keeps retrying,
 * so to meet a replacement with a broker that answers again the broker is frozen
 * (SIGSTOP: its port still accepts, nothing answers) until the consumer logs the
 * replacement, then resumed (SIGCONT). Other tests SIGKILL it and restart it.
 * The broker is left running afterwards.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Layer, Logger, Metric, Schedule, Schema, Stream } from "effect"
import { KafkaError, Topic } from "effect-faust/kafka"
import { brokerPid, kafkaUp, killable, killBroker as kill } from "./brokerControl.ts"
import { eventually, replacedMetric, Seen } from "./delivery.ts"
import { kafkaLayer, unique } from "./setup.ts"

const started = Date.now()
const stamp = (what: string) => {
  const line = `[t+${((Date.now() - started) / 1000).toFixed(1)}s] ${what}`
  console.log(line)
}

/** SIGKILL to the broker, then waits until its port is closed. */
const killBroker = Effect.tap(kill, (pid) => Effect.sync(() => stamp(`broker ${pid} killed`)))

/** The consumer's warnings, kept: "reading on with a new fetcher" marks a replacement. */
const makeLog = () => {
  const lines: Array<string> = []
  const layer = Logger.layer([Logger.make((options) => {
    const message = Array.isArray(options.message) ? options.message.map(String).join(" ") : String(options.message)
    lines.push(message)
  })])
  return {
    lines,
    layer,
    get replacements() {
      return lines.filter((line) => line.includes("with a new fetcher")).length
    }
  }
}

/**
 * The client's retries: each client stream gives up about 20 s after the broker
 * went away, longer than a restart of the broker takes (~15 s), so a replacement
 * opened when the broker dies meets it again.
 */
const patient = { requestTimeout: "2 seconds", retries: 3, retryDelay: "200 millis" } as const

/** Retries that keep a client stream on a dead broker for minutes (they nest: metadata inside fetch). */
const stubborn = { requestTimeout: "2 seconds", retries: 20, retryDelay: "1 second" } as const

/** The broker, frozen with SIGSTOP (its port still accepts connections, nothing answers) until SIGCONT. */
const freeze = Effect.sync(() => {
  const pid = brokerPid()
  process.kill(pid, "SIGSTOP")
  stamp(`broker ${pid} frozen`)
  return pid
})
const thaw = (pid: number) =>
  Effect.sync(() => {
    try {
      process.kill(pid, "SIGCONT")
      stamp(`broker ${pid} thawed`)
    } catch {
      // gone already
    }
  })

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i)

/** A producer on its own connection that sends a chunk again until the broker takes it. */
const produce = (name: string, ids: ReadonlyArray<number>, sent: Set<number>) =>
  Effect.gen(function*() {
    const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 3 })
    yield* topic.sendAll(ids).pipe(Effect.retry(Schedule.spaced("500 millis")))
    for (const id of ids) sent.add(id)
  }).pipe(Effect.provide(kafkaLayer({ requestTimeout: "5 seconds" })), Effect.provide(Logger.layer([])))

/** Freezes the broker, waits for the consumer's next replacement, then lets the broker answer again at once. */
const freezeUntilReplaced = (log: ReturnType<typeof makeLog>, before = log.replacements) =>
  Effect.acquireUseRelease(
    freeze,
    () =>
      eventually(() => log.replacements > before, 120_000, "the consumer to replace its client stream", () =>
        log.lines.slice(-3).join(" | ")).pipe(Effect.tap(() =>
          Effect.sync(() =>
            stamp(`replaced (${log.replacements})`)
          )
        )),
    thaw
  )

/** Sends to one partition through a connection of its own (built in the test's scope), again until the broker takes it. */
const Producing = {
  make: (name: string) =>
    Effect.gen(function*() {
      const context = yield* Layer.build(kafkaLayer({ requestTimeout: "30 seconds" }))
      const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 3 }).pipe(
        Effect.provideContext(context)
      )
      return {
        sendTo: (partition: number, id: number) =>
          topic.send({ value: id, partition }).pipe(
            Effect.retry(Schedule.spaced("500 millis")),
            Effect.asVoid,
            Effect.provide(Logger.layer([]))
          )
      }
    })
}

describe.skipIf(!killable)("hostile: client streams replaced when the broker dies and comes back", () => {
  it.live(
    "two subscribers of one topic: neither sees a failure, nothing skipped, nothing twice in one generation; the metric counts the replacement",
    () => {
      const log = makeLog()
      return Effect.gen(function*() {
        const name = unique("two-subs")
        const label = unique("two-subs-label")
        const sent = new Set<number>()
        const a = new Seen("subscriber A")
        const b = new Seen("subscriber B")
        yield* produce(name, range(0, 300), sent)
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 3, label })
        yield* topic.registerMetrics
        const fa = yield* topic.events().pipe(
          Stream.runForEach((e) => Effect.sync(() => a.receive(e))),
          Effect.forkChild
        )
        const fb = yield* topic.events().pipe(
          Stream.runForEach((e) => Effect.sync(() => b.receive(e))),
          Effect.forkChild
        )
        yield* eventually(() => a.has(sent) && b.has(sent), 60_000, "300 read by both before the kill")
        yield* freezeUntilReplaced(log)
        yield* produce(name, range(300, 300), sent)
        yield* eventually(
          () => (a.has(sent) && b.has(sent)) || fa.pollUnsafe() !== undefined || fb.pollUnsafe() !== undefined,
          90_000,
          "both subscribers to read all 600 (or one to fail)",
          () => `A ${a.deliveries.size}, B ${b.deliveries.size}; ${log.lines.slice(-3).join(" | ")}`
        )
        const exitA = fa.pollUnsafe()
        const exitB = fb.pollUnsafe()
        const metric = yield* replacedMetric(label)
        console.log(`[delivery] two subscribers: replacements logged ${log.replacements}, metric ${metric}`)
        const ra = a.report("two subscribers across a replacement", sent)
        const rb = b.report("two subscribers across a replacement", sent)
        assert.isUndefined(
          exitA,
          `subscriber A ended: ${exitA && Exit.isFailure(exitA) ? Cause.pretty(exitA.cause) : ""}`
        )
        assert.isUndefined(
          exitB,
          `subscriber B ended: ${exitB && Exit.isFailure(exitB) ? Cause.pretty(exitB.cause) : ""}`
        )
        assert.strictEqual(ra.lost, 0)
        assert.strictEqual(rb.lost, 0)
        assert.strictEqual(ra.sameGeneration, 0)
        assert.strictEqual(rb.sameGeneration, 0)
        assert.isAtLeast(log.replacements, 1)
        assert.strictEqual(metric, log.replacements, "the metric counts each logged replacement")
        yield* Fiber.interrupt(fa)
        yield* Fiber.interrupt(fb)
      }).pipe(
        Effect.scoped,
        Effect.provide(Layer.succeed(Metric.MetricRegistry, new Map())),
        Effect.provide(kafkaLayer(patient)),
        Effect.provide(log.layer),
        Effect.ensuring(Effect.ignore(kafkaUp))
      )
    },
    180_000
  )

  it.live(
    "the broker stays down: every subscriber of the topic (two events() streams and a Topic.noack stream) fails with KafkaError naming the broker, none hangs",
    () => {
      const log = makeLog()
      return Effect.gen(function*() {
        const name = unique("down-many")
        const sent = new Set<number>()
        const seen = [new Seen("stream 1"), new Seen("stream 2"), new Seen("noack stream")]
        yield* produce(name, range(0, 200), sent)
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 3 })
        const fibers = [
          yield* topic.events().pipe(Stream.runForEach((e) => Effect.sync(() => seen[0].receive(e))), Effect.forkChild),
          yield* topic.events().pipe(Stream.runForEach((e) => Effect.sync(() => seen[1].receive(e))), Effect.forkChild),
          yield* Topic.noack(topic).pipe(
            Stream.runForEach((e) => Effect.andThen(Effect.sync(() => seen[2].receive(e)), Topic.ack(e))),
            Effect.forkChild
          )
        ]
        yield* eventually(() => seen.every((s) => s.has(sent)), 60_000, "200 read by all three before the kill")
        yield* killBroker
        const killedAt = Date.now()
        const exits = yield* Effect.forEach(fibers, (fiber) =>
          Fiber.await(fiber).pipe(
            Effect.timeoutOrElse({ duration: "120 seconds", orElse: () => Effect.succeed("hung" as const) })
          ))
        const took = ((Date.now() - killedAt) / 1000).toFixed(1)
        const described = exits.map((exit) =>
          exit === "hung"
            ? "hung 120 s"
            : Exit.isSuccess(exit)
            ? "ended successfully"
            : String(Cause.squash(exit.cause))
        )
        console.log(
          `[delivery] broker down, three subscribers: sent=${sent.size} received=${
            seen.map((s) => s.deliveries.size).join("/")
          } lost=${seen.map((s) => sent.size - s.deliveries.size).join("/")} duplicated=${
            seen.map((s) => s.count - s.deliveries.size).join("/")
          }; after ${took} s: ${described.join(" | ")}; replacements logged ${log.replacements}`
        )
        for (const [i, exit] of exits.entries()) {
          assert.notStrictEqual(exit, "hung", `subscriber ${i} hung`)
          if (exit === "hung") continue
          assert.isTrue(Exit.isFailure(exit), `subscriber ${i} fails`)
          const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
          assert.instanceOf(error, KafkaError, `subscriber ${i}: ${String(error)}`)
          assert.include((error as KafkaError).message, "127.0.0.1:9092")
        }
        assert.isAtMost(log.replacements, 1, "one replacement at most (the consumer is shared)")
      }).pipe(
        Effect.scoped,
        Effect.provide(kafkaLayer(patient)),
        Effect.provide(log.layer),
        Effect.ensuring(Effect.ignore(kafkaUp))
      )
    },
    240_000
  )

  it.live(
    "interrupting a consumer while the broker is down returns promptly, and closing the Kafka layer too (no hang while the client still retries)",
    () => {
      const log = makeLog()
      return Effect.gen(function*() {
        const name = unique("interrupt-down")
        const sent = new Set<number>()
        const seen = new Seen("consumer")
        yield* produce(name, range(0, 100), sent)
        let interruptTook = -1
        let closeTook = -1
        const closing = yield* Effect.gen(function*() {
          const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 3 })
          const fiber = yield* topic.events().pipe(
            Stream.runForEach((e) => Effect.sync(() => seen.receive(e))),
            Effect.forkChild
          )
          yield* eventually(() => seen.has(sent), 60_000, "100 read before the kill")
          yield* killBroker
          yield* Effect.sleep("3 seconds") // the client is now retrying its fetch
          const from = Date.now()
          const interrupting = yield* Effect.forkDetach(Fiber.interrupt(fiber))
          const done = yield* Fiber.await(interrupting).pipe(
            Effect.timeoutOrElse({ duration: "30 seconds", orElse: () => Effect.succeed("hung" as const) })
          )
          if (done !== "hung") interruptTook = Date.now() - from
          stamp(`interrupt: ${done === "hung" ? "still waiting after 30 s" : `${interruptTook} ms`}`)
          if (done === "hung") {
            // the broker comes back: does the interruption complete then?
            yield* kafkaUp
            const late = yield* Fiber.await(interrupting).pipe(
              Effect.timeoutOrElse({ duration: "30 seconds", orElse: () => Effect.succeed("hung" as const) })
            )
            stamp(
              `interrupt after the broker came back: ${
                late === "hung" ? "still waiting" : `done ${Date.now() - from} ms after it began`
              }`
            )
          }
        }).pipe(
          Effect.provide(kafkaLayer(stubborn)),
          Effect.provide(log.layer),
          Effect.timed,
          Effect.forkChild
        )
        const closed = yield* Fiber.await(closing).pipe(
          Effect.timeoutOrElse({ duration: "150 seconds", orElse: () => Effect.succeed("hung" as const) })
        )
        if (closed !== "hung" && Exit.isSuccess(closed)) closeTook = Duration.toMillis(closed.value[0])
        console.log(
          `[delivery] interrupted while the broker is down: sent=${sent.size} received=${seen.deliveries.size} lost=${
            sent.size - seen.deliveries.size
          } duplicated=${seen.count - seen.deliveries.size}; Fiber.interrupt ${
            interruptTook === -1
              ? "still waiting 30 s after it began (the broker still down)"
              : `returned in ${interruptTook} ms`
          }; the whole scope ${closed === "hung" ? "still open" : `closed after ${closeTook} ms`}`
        )
        assert.notStrictEqual(
          interruptTook,
          -1,
          "Fiber.interrupt of the consuming fiber returned within 30 s while the broker was down"
        )
        assert.isBelow(interruptTook, 30_000)
        assert.notStrictEqual(closed, "hung", "the Kafka layer closed")
        if (closed === "hung") yield* Fiber.interrupt(closing).pipe(Effect.timeout("1 second"), Effect.ignore)
      }).pipe(Effect.ensuring(Effect.ignore(kafkaUp)))
    },
    240_000
  )

  it.live(
    "autoOffsetReset latest, a new group that has committed nothing: records produced while the broker was frozen (answered after the replacement opened) are not skipped",
    () => {
      const log = makeLog()
      return Effect.gen(function*() {
        const name = unique("latest")
        const label = unique("latest-label")
        const sent = new Set<number>()
        const seen = new Seen("latest consumer")
        // the topic exists, with a record before the group starts (not expected: "latest")
        yield* produce(name, [-1], new Set())
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions: 3, label })
        yield* topic.registerMetrics
        const fiber = yield* topic.events().pipe(
          Stream.runForEach((e) => Effect.sync(() => seen.receive(e))),
          Effect.forkChild
        )
        // probes to partition 0 only, until the consumer reads one: it is assigned and reading
        const probes = yield* Producing.make(name)
        let probe = 100_000
        yield* Effect.suspend(() => probes.sendTo(0, probe++)).pipe(
          Effect.andThen(Effect.sleep("300 millis")),
          Effect.repeat({ until: () => seen.count > 0 }),
          Effect.timeout("60 seconds")
        )
        stamp(`reading (probe ${[...seen.deliveries.keys()].join(",")}); freezing the broker`)
        const pid = yield* freeze
        // sent while the broker is frozen: the requests wait in its socket until it runs again
        const producing = yield* Effect.forkChild(
          Effect.forEach(range(0, 90), (id) => probes.sendTo(id % 3, id), {
            concurrency: 90,
            discard: true
          }).pipe(Effect.andThen(Effect.sync(() => range(0, 90).forEach((id) => sent.add(id)))))
        )
        yield* eventually(
          () => log.replacements > 0,
          120_000,
          "the consumer to replace its client stream",
          () => log.lines.slice(-3).join(" | ")
        ).pipe(Effect.ensuring(thaw(pid)))
        yield* Fiber.join(producing)
        yield* eventually(
          () => seen.has(sent) || fiber.pollUnsafe() !== undefined,
          60_000,
          "the 90 records (or the stream to fail)",
          () => `${seen.deliveries.size} received`
        ).pipe(Effect.catchDefect(() => Effect.void))
        const exit = fiber.pollUnsafe()
        const metric = yield* replacedMetric(label)
        const r = seen.report(
          `latest, records sent during the outage (replacements ${log.replacements}, metric ${metric})`,
          sent
        )
        const missing = range(0, 90).filter((id) => !seen.deliveries.has(id))
        if (missing.length > 0) {
          console.log(
            `[delivery] latest: missing by partition ${
              [0, 1, 2].map((p) => missing.filter((id) => id % 3 === p).length).join("/")
            }`
          )
        }
        assert.isUndefined(
          exit,
          `the stream ended: ${exit && Exit.isFailure(exit) ? String(Cause.squash(exit.cause)) : ""}`
        )
        assert.strictEqual(r.lost, 0, "nothing skipped")
        assert.strictEqual(r.sameGeneration, 0)
        assert.strictEqual(metric, log.replacements)
        yield* Fiber.interrupt(fiber)
      }).pipe(
        Effect.scoped,
        Effect.provide(Layer.succeed(Metric.MetricRegistry, new Map())),
        Effect.provide(kafkaLayer({ ...patient, autoOffsetReset: "latest" })),
        Effect.provide(log.layer),
        Effect.ensuring(Effect.ignore(kafkaUp))
      )
    },
    240_000
  )
})
