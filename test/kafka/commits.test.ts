/**
 * The commit and rebalance rules of a Topic, against a real broker
 * (`npm run kafka:up`, or KAFKA_BOOTSTRAP_SERVERS): what is committed, when,
 * and what a member delivers around a rebalance. Fresh names per test.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, HashSet, Layer, Metric, Schema, Stream } from "effect"
import { Channel, type Event } from "effect-faust"
import { Kafka, KafkaError, Topic } from "effect-faust/kafka"
import { quiet } from "../helpers.ts"
import { committedOffsets, eventually, eventuallyEffect, groupAssignments, observeCommits, Tally } from "./delivery.ts"
import { brokerAvailable, kafkaLayer, unique } from "./setup.ts"

/** Sends `count` numbers (0, 1, …) to a topic from a producer app of its own. */
const produce = (name: string, count: number, partitions = 1) =>
  Effect.gen(function*() {
    const topic = yield* Topic.make({ topics: [name], value: Schema.Number, partitions })
    yield* topic.sendAll(Array.from({ length: count }, (_, i) => i))
  }).pipe(Effect.provide(kafkaLayer()))

/**
 * A Kafka service whose records for `held` wait until `gate` opens before
 * they reach the send buffer; `flush` waits for them too. It makes "the
 * sends were not answered yet" last as long as a test needs.
 */
const gated = (held: string, gate: Deferred.Deferred<void>) =>
  Layer.effect(
    Kafka.Kafka,
    Effect.gen(function*() {
      const kafka = yield* Kafka.Kafka
      return Kafka.Kafka.of({
        ...kafka,
        publish: (record, onDone) =>
          record.topic === held
            ? Effect.asVoid(Effect.forkDetach(Effect.andThen(Deferred.await(gate), kafka.publish(record, onDone))))
            : kafka.publish(record, onDone),
        flush: Effect.andThen(Effect.andThen(Deferred.await(gate), Effect.yieldNow), kafka.flush)
      })
    })
  )

describe.skipIf(!brokerAvailable)("Topic commit rules", () => {
  it.live(
    "noack + Stream.mapEffect with concurrency: out-of-order completion never commits past an unfinished event",
    () =>
      Effect.gen(function*() {
        const name = unique("concurrent")
        yield* produce(name, 20)
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number })
        const latches = Array.from({ length: 20 }, () => Deferred.makeUnsafe<void>())
        const started = new Set<number>()
        const finished = new Set<number>()
        /** The offset a commit may reach: just past the longest finished prefix. */
        const bound = () => {
          let i = 0
          while (finished.has(i)) i++
          return i
        }
        const commits: Array<number> = []
        const violations: Array<string> = []
        const stop = observeCommits(topic.groupId, (_, offset) => {
          commits.push(offset)
          if (offset > bound()) violations.push(`committed ${offset} while only 0..${bound() - 1} had finished`)
        })
        const handling = yield* Topic.noack(topic).pipe(
          Stream.mapEffect((event) =>
            Effect.gen(function*() {
              started.add(event.value)
              yield* Deferred.await(latches[event.value])
              finished.add(event.value)
              yield* Topic.ack(event)
            }), { concurrency: 20 }),
          Stream.runDrain,
          Effect.forkChild
        )
        yield* eventually(() => started.size === 20, 30_000, "20 events in flight at once")
        const order = [5, 3, 19, 0, 1, 2, 10, 4, 7, 6, 8, 9, 12, 11, 18, 17, 16, 15, 14, 13]
        for (const i of order) {
          const before = bound()
          yield* Deferred.succeed(latches[i], undefined)
          yield* eventually(() => finished.has(i))
          // whenever the finished prefix grows, a commit reaches it
          if (bound() !== before) yield* eventually(() => commits.includes(bound()), 30_000, `a commit of ${bound()}`)
        }
        stop()
        yield* Fiber.interrupt(handling)
        assert.deepStrictEqual(violations, [])
        assert.strictEqual(Math.max(...commits), 20)
        // commits move forward only, each to a finished prefix (5, 3 and 19 finish first, then 0: the first commit is 1)
        assert.deepStrictEqual([...new Set(commits)], [1, 2, 4, 6, 8, 9, 11, 13, 20])
      }).pipe(Effect.provide(kafkaLayer())),
    60_000
  )

  it.live("noack: a failed event is not acknowledged; the next stream starts at it", () =>
    Effect.gen(function*() {
      const name = unique("noack-fail")
      yield* produce(name, 6)
      const topic = yield* Topic.make({ topics: [name], value: Schema.Number })
      const handled: Array<number> = []
      const error = yield* Topic.noack(topic).pipe(
        Stream.mapEffect((event) =>
          event.value === 2
            ? Effect.fail("boom" as const)
            : Effect.andThen(Effect.sync(() => handled.push(event.value)), Topic.ack(event))
        ),
        Stream.runDrain,
        Effect.flip
      )
      assert.strictEqual(error, "boom")
      assert.deepStrictEqual(handled, [0, 1])
      assert.deepStrictEqual(yield* committedOffsets(topic.groupId, name), new Map([[0, 2]]))
      // noack never acknowledges by itself: a stream that ends leaves its events to be read again
      assert.deepStrictEqual(
        yield* Topic.noack(topic).pipe(Stream.take(2), Stream.map((e) => e.value), Stream.runCollect),
        [2, 3]
      )
      assert.deepStrictEqual(yield* topic.stream().pipe(Stream.take(4), Stream.runCollect), [2, 3, 4, 5])
      // on an in-memory channel, noack is its events
      const memory = yield* Channel.make({ value: Schema.Number })
      const reading = yield* Topic.noack(memory).pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
      yield* eventually(() => memory.subscriberCount === 1)
      yield* memory.send({ value: 7 })
      assert.deepStrictEqual((yield* Fiber.join(reading)).map((event) => event.value), [7])
    }).pipe(Effect.provide(kafkaLayer())), 60_000)

  it.live("commits on shutdown and on revoke, with no periodic commit", () =>
    Effect.gen(function*() {
      const name = unique("no-periodic")
      const groupId = unique("group")
      yield* produce(name, 10, 2)
      // shutdown: the stream ends after 3 events, which acknowledges them; the session commits as it closes
      const first = yield* Effect.gen(function*() {
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number })
        const events = yield* topic.events().pipe(Stream.take(3), Stream.runCollect)
        return events.map((event) => [event.message.partition, event.message.offset] as const)
      }).pipe(Effect.provide(kafkaLayer({ groupId, commitInterval: "1 hour" })))
      const expected = new Map<number, number>()
      for (const [partition, offset] of first) {
        expected.set(partition, Math.max(expected.get(partition) ?? 0, offset + 1))
      }
      assert.deepStrictEqual(yield* committedOffsets(`${groupId}.${name}`, name), expected)
      // revoke: a member holding acknowledged events commits them when a second member joins
      const gate = yield* Deferred.make<void>()
      const seen: Array<Event.Event<unknown, number>> = []
      const member = (wait: boolean, ready: Deferred.Deferred<Topic.Topic<unknown, number>>) =>
        Effect.gen(function*() {
          const topic = yield* Topic.make({ topics: [name], value: Schema.Number })
          yield* Deferred.succeed(ready, topic)
          yield* topic.events().pipe(
            Stream.runForEach((event) =>
              Effect.suspend(() => {
                if (!wait) return Effect.void
                seen.push(event)
                return seen.length === 4 ? Deferred.await(gate) : Effect.void
              })
            )
          )
        }).pipe(Effect.provide(kafkaLayer({ groupId, commitInterval: "1 hour" })))
      const readyA = yield* Deferred.make<Topic.Topic<unknown, number>>()
      const a = yield* Effect.forkChild(member(true, readyA))
      yield* eventually(() => seen.length === 4, 30_000, "the first member to hold its 4th event")
      const before = yield* committedOffsets(`${groupId}.${name}`, name)
      assert.deepStrictEqual(before, expected, "nothing committed while the member runs")
      const readyB = yield* Deferred.make<Topic.Topic<unknown, number>>()
      const b = yield* Effect.forkChild(member(false, readyB))
      // the first 3 it held are acknowledged (the 4th is being handled): the rebalance commits them
      const acknowledged = new Map(expected)
      for (const event of seen.slice(0, 3)) {
        const { offset, partition } = event.message
        acknowledged.set(partition, Math.max(acknowledged.get(partition) ?? 0, offset + 1))
      }
      const committed = (offsets: Map<number, number>) =>
        [...acknowledged].every(([partition, offset]) => (offsets.get(partition) ?? 0) >= offset)
      yield* eventuallyEffect(
        Effect.map(committedOffsets(`${groupId}.${name}`, name), committed),
        60_000,
        "the revoke commit"
      )
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.interrupt(a)
      yield* Fiber.interrupt(b)
    }), 90_000)

  it.live(
    "sendSoon: the buffer is flushed before the commit that covers the events that produced the sends",
    () =>
      Effect.gen(function*() {
        const sourceName = unique("source")
        const sinkName = unique("sink")
        yield* produce(sourceName, 5)
        const gate = yield* Deferred.make<void>()
        const timeline: Array<string> = []
        const handled = yield* Effect.gen(function*() {
          const source = yield* Topic.make({ topics: [sourceName], value: Schema.Number })
          const sink = yield* Topic.make({ topics: [sinkName], value: Schema.Number })
          yield* sink.maybeDeclare
          const stop = observeCommits(source.groupId, (_, offset) => timeline.push(`commit:${offset}`))
          let handled = 0
          const fiber = yield* source.events().pipe(
            Stream.runForEach((event) =>
              Effect.andThen(
                sink.sendSoon({
                  value: event.value,
                  callback: () => Effect.sync(() => timeline.push(`sent:${event.value}`))
                }),
                Effect.sync(() => handled++)
              )
            ),
            Effect.forkChild
          )
          yield* eventually(() => handled === 5)
          // all 5 are acknowledged (the stream pulled again after the 5th): with commits every 100 millis,
          // none may be committed while their sends are unanswered
          yield* Effect.sleep("1 second")
          assert.deepStrictEqual(timeline, [])
          yield* Deferred.succeed(gate, undefined)
          yield* eventually(() => timeline.includes("commit:5"))
          stop()
          yield* Fiber.interrupt(fiber)
          return handled
        }).pipe(Effect.provide(gated(sinkName, gate)), Effect.provide(kafkaLayer()))
        assert.strictEqual(handled, 5)
        const firstCommit = timeline.findIndex((entry) => entry.startsWith("commit:"))
        for (let value = 0; value < 5; value++) {
          const sent = timeline.indexOf(`sent:${value}`)
          assert.isTrue(sent !== -1 && sent < firstCommit, `sent:${value} before the commit: ${timeline.join(" ")}`)
        }
      }),
    60_000
  )

  it.live(
    "sendSoon: a record the broker refuses stops the commits; the stream fails with KafkaError and the next one reads those events again",
    () =>
      Effect.gen(function*() {
        const sourceName = unique("source")
        const sinkName = unique("refused")
        const groupId = unique("group")
        yield* produce(sourceName, 3)
        const refusing = Layer.effect(
          Kafka.Kafka,
          Effect.gen(function*() {
            const kafka = yield* Kafka.Kafka
            return Kafka.Kafka.of({
              ...kafka,
              publish: (record, onDone) =>
                record.topic === sinkName
                  ? onDone(
                    Exit.fail(new KafkaError({ operation: "produce", topic: sinkName, cause: new Error("refused") }))
                  )
                  : kafka.publish(record, onDone)
            })
          })
        )
        const handled: Array<number> = []
        const error = yield* Effect.gen(function*() {
          const source = yield* Topic.make({ topics: [sourceName], value: Schema.Number })
          const sink = yield* Topic.make({ topics: [sinkName], value: Schema.Number })
          return yield* source.events().pipe(
            Stream.runForEach((event) =>
              Effect.andThen(sink.sendSoon({ value: event.value }), Effect.sync(() => handled.push(event.value)))
            ),
            Effect.flip
          )
        }).pipe(Effect.provide(refusing), Effect.provide(kafkaLayer({ groupId })), Effect.provide(quiet))
        assert.deepStrictEqual(handled, [0, 1, 2])
        assert.instanceOf(error, KafkaError)
        assert.strictEqual((error as KafkaError).operation, "commit")
        assert.include(error.message, "sendSoon")
        assert.deepStrictEqual(yield* committedOffsets(`${groupId}.${sourceName}`, sourceName), new Map())
        const again = yield* Effect.gen(function*() {
          const source = yield* Topic.make({ topics: [sourceName], value: Schema.Number })
          return yield* source.stream().pipe(Stream.take(3), Stream.runCollect)
        }).pipe(Effect.provide(kafkaLayer({ groupId })))
        assert.deepStrictEqual(again, [0, 1, 2])
      }),
    60_000
  )

  it.live(
    "rebalance: what was buffered for a revoked partition is dropped; nothing of a partition no longer owned is delivered; activePartitions equals the assignment",
    () =>
      Effect.gen(function*() {
        const name = unique("revoked")
        const groupId = unique("group")
        yield* produce(name, 400, 2)
        const tally = new Tally()
        for (let i = 0; i < 400; i++) tally.sent.add(i)
        const foreign: Array<string> = []
        const gate = yield* Deferred.make<void>()
        const member = (index: number, ready: Deferred.Deferred<Topic.Topic<unknown, number>>) =>
          Effect.gen(function*() {
            const topic = yield* Topic.make({ topics: [name], value: Schema.Number, maxsize: 8 })
            yield* Deferred.succeed(ready, topic)
            let first = true
            yield* topic.events().pipe(
              Stream.runForEach((event) =>
                Effect.gen(function*() {
                  // the first member's first event waits for the rebalance; every later one must be its own
                  if (index === 0 && first) {
                    first = false
                    tally.receive(event.value, event.message.partition, event.message.offset)
                    return yield* Deferred.await(gate)
                  }
                  const owned = topic.activePartitions
                  if (owned === undefined || !HashSet.has(owned, event.message.tp)) {
                    foreign.push(`member ${index} got ${event.message.partition}/${event.message.offset}`)
                  }
                  tally.receive(event.value, event.message.partition, event.message.offset)
                })
              )
            )
          }).pipe(Effect.provide(kafkaLayer({ groupId })))
        const readyA = yield* Deferred.make<Topic.Topic<unknown, number>>()
        const a = yield* Effect.forkChild(member(0, readyA))
        const topicA = yield* Deferred.await(readyA)
        // its subscriber queue fills with events of both partitions while it waits
        yield* eventually(() =>
          tally.count === 1 && topicA.activePartitions !== undefined && HashSet.size(topicA.activePartitions) === 2
        )
        const readyB = yield* Deferred.make<Topic.Topic<unknown, number>>()
        const b = yield* Effect.forkChild(member(1, readyB))
        const topicB = yield* Deferred.await(readyB)
        const sizes = () =>
          [topicA.activePartitions, topicB.activePartitions].map((s) => s === undefined ? 0 : HashSet.size(s))
        yield* eventually(() => sizes()[0] === 1 && sizes()[1] === 1, 60_000, "the partitions to split")
        yield* Deferred.succeed(gate, undefined)
        yield* eventually(() => tally.complete, 60_000, "every event", () =>
          JSON.stringify({ ...tally.counts(), foreign: foreign.length }))
        const members = [topicA, topicB].map((topic) =>
          [...topic.activePartitions!].map((tp) =>
            tp.partition
          ).sort()
        )
        assert.sameDeepMembers(yield* groupAssignments(`${groupId}.${name}`, name), members)
        // the second member leaves: the first one is assigned both
        yield* Fiber.interrupt(b)
        yield* eventually(() => sizes()[0] === 2, 60_000, "the first member to get both partitions")
        assert.deepStrictEqual(yield* groupAssignments(`${groupId}.${name}`, name), [[0, 1]])
        yield* Fiber.interrupt(a)
        const counts = tally.report("rebalance with a full subscriber queue")
        assert.deepStrictEqual(foreign, [])
        assert.strictEqual(counts.lost, 0)
      }),
    120_000
  )

  it.live(
    "metrics: acknowledged, committed, committed offset and consumer lag per partition",
    () =>
      Effect.gen(function*() {
        const name = unique("lag")
        yield* produce(name, 10)
        const topic = yield* Topic.make({ topics: [name], value: Schema.Number, label: "lagged" })
        yield* topic.registerMetrics
        const gate = yield* Deferred.make<void>()
        let handled = 0
        const fiber = yield* Topic.noack(topic).pipe(
          Stream.runForEach((event) =>
            Effect.gen(function*() {
              if (handled === 10) yield* Deferred.await(gate)
              handled++
              yield* Topic.ack(event)
            })
          ),
          Effect.forkChild
        )
        const read = (id: string, partition?: string) =>
          Effect.map(Metric.snapshot, (snapshots) => {
            const found = snapshots.find((s) =>
              s.id === id && s.attributes?.channel === "lagged" &&
              (partition === undefined || s.attributes?.partition === partition)
            )
            return found === undefined
              ? undefined
              : "count" in found.state
              ? Number(found.state.count)
              : Number((found.state as any).value)
          })
        const until = (id: string, expected: number, partition?: string) =>
          Effect.suspend(function loop(): Effect.Effect<void> {
            return Effect.flatMap(
              read(id, partition),
              (value) => value === expected ? Effect.void : Effect.andThen(Effect.sleep("50 millis"), loop)
            )
          }).pipe(Effect.timeout("30 seconds"))
        yield* until("effect_faust_acknowledged_total", 10)
        yield* until("effect_faust_committed_total", 10)
        yield* until("effect_faust_committed_offset", 10, "0")
        yield* until("effect_faust_consumer_lag", 0, "0")
        // 5 more arrive; the handler holds the first of them: the lag is 5
        yield* produce(name, 5)
        yield* until("effect_faust_consumer_lag", 5, "0")
        yield* Deferred.succeed(gate, undefined)
        yield* until("effect_faust_consumer_lag", 0, "0")
        assert.strictEqual(yield* read("effect_faust_committed_total"), 15)
        assert.strictEqual(yield* read("effect_faust_acknowledged_total"), 15)
        yield* Fiber.interrupt(fiber)
        // the partition series leave with the assignment
        assert.isUndefined(yield* read("effect_faust_consumer_lag", "0"))
      }).pipe(
        Effect.scoped,
        Effect.provide(Layer.succeed(Metric.MetricRegistry, new Map())),
        Effect.provide(kafkaLayer())
      ),
    60_000
  )
})
