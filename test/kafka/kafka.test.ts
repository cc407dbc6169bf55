/**
 * The Kafka layer and the parts of Topic that need no broker: options,
 * configuration, names, encoding, and failing fast when no broker answers.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Layer, Metric, Queue, Schema, Stream } from "effect"
import { App, Channel, Codec, type Event, InvalidChannelOptionsError, Message, NotATopicError } from "effect-faust"
import { Kafka, KafkaError, layerChannels, Topic } from "effect-faust/kafka"
import { quiet } from "../helpers.ts"

const AppTest = App.layer({ id: "kafka-unit" })
const utf8 = new TextEncoder()
const text = new TextDecoder()

/** A Kafka layer pointed at a closed port: every broker call fails, quickly. */
const Unreachable = Kafka.layer({
  bootstrapServers: "127.0.0.1:1",
  retries: 1,
  retryDelay: "20 millis",
  connectTimeout: "500 millis"
}).pipe(Layer.provideMerge(AppTest))

const config = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnvRecord(env))

describe("Kafka layer", () => {
  it.effect("applies Faust's defaults; client and group ids default to the app id", () =>
    Effect.gen(function*() {
      const { settings } = yield* Kafka.Kafka
      assert.deepStrictEqual(settings.bootstrapServers, ["b1:9092", "b2:9093"])
      assert.strictEqual(settings.clientId, "kafka-unit")
      assert.strictEqual(settings.groupId, "kafka-unit")
      assert.strictEqual(settings.commitInterval, 2_800)
      assert.strictEqual(settings.autoOffsetReset, "earliest")
      assert.strictEqual(settings.topicPartitions, 8)
      assert.strictEqual(settings.topicAllowDeclare, true)
      assert.strictEqual(settings.rebalanceTimeout, settings.sessionTimeout)
    }).pipe(Effect.provide(Kafka.layer({ bootstrapServers: "b1:9092, b2:9093" }).pipe(Layer.provide(AppTest)))))

  it.effect("rejects invalid options with InvalidChannelOptionsError naming the option", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Kafka.Options, string]> = [
        [{ bootstrapServers: "" }, "kafka.bootstrapServers"],
        [{ bootstrapServers: "no-port" }, "kafka.bootstrapServers"],
        [{ bootstrapServers: "h:1", commitInterval: "soon" as Duration.Input }, "kafka.commitInterval"],
        [{ bootstrapServers: "h:1", retries: -1 }, "kafka.retries"],
        [{ bootstrapServers: "h:1", topicPartitions: 0 }, "kafka.topicPartitions"],
        [{ bootstrapServers: "h:1", topicPartitions: 2 ** 31 }, "kafka.topicPartitions"],
        [{ bootstrapServers: "h:1", consumerMaxFetchSize: 0 }, "kafka.consumerMaxFetchSize"],
        // Kafka's fetch request carries it in 32 bits.
        [{ bootstrapServers: "h:1", consumerMaxFetchSize: 2 ** 31 }, "kafka.consumerMaxFetchSize"],
        [{ bootstrapServers: "h:1", heartbeatInterval: "1 minute" }, "kafka.heartbeatInterval"],
        [{ bootstrapServers: "h:1", autoOffsetReset: "middle" as "latest" }, "kafka.autoOffsetReset"]
      ]
      for (const [options, option] of cases) {
        const error = yield* Effect.flip(Kafka.resolve(options, "app"))
        assert.instanceOf(error, InvalidChannelOptionsError)
        assert.strictEqual(error.option, option)
      }
      const exit = yield* Effect.exit(
        Layer.build(Kafka.layer({ bootstrapServers: "" })).pipe(Effect.scoped, Effect.provide(AppTest))
      )
      assert.isTrue(Exit.isFailure(exit))
    }))

  it.effect("layerConfig reads KAFKA_* settings; overrides win", () =>
    Effect.gen(function*() {
      const { settings } = yield* Kafka.Kafka
      assert.deepStrictEqual(settings.bootstrapServers, ["k1:9092", "k2:9092"])
      assert.strictEqual(settings.clientId, "client-from-env")
      assert.strictEqual(settings.groupId, "group-override")
      assert.strictEqual(settings.commitInterval, 1_500)
      assert.strictEqual(settings.autoOffsetReset, "latest")
      assert.strictEqual(settings.topicPartitions, 4)
      assert.strictEqual(settings.topicAllowDeclare, false)
      assert.strictEqual(settings.consumerMaxFetchSize, 65_536)
    }).pipe(Effect.provide(
      Kafka.layerConfig({ groupId: "group-override", retries: undefined }).pipe(
        Layer.provide(AppTest),
        Layer.provide(config({
          KAFKA_BOOTSTRAP_SERVERS: "k1:9092,k2:9092",
          KAFKA_CLIENT_ID: "client-from-env",
          KAFKA_GROUP_ID: "group-from-env",
          KAFKA_COMMIT_INTERVAL: "1500 millis",
          KAFKA_AUTO_OFFSET_RESET: "latest",
          KAFKA_TOPIC_PARTITIONS: "4",
          KAFKA_TOPIC_ALLOW_DECLARE: "false",
          KAFKA_CONSUMER_MAX_FETCH_SIZE: "65536"
        }))
      )
    )))

  it.effect("layerConfig fails with a ConfigError when KAFKA_BOOTSTRAP_SERVERS is missing", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Layer.build(Kafka.layerConfig()).pipe(Effect.scoped))
      assert.isTrue(Exit.isFailure(exit))
    }).pipe(Effect.provide(AppTest), Effect.provide(config({}))))
})

describe("a broker that does not answer", () => {
  it.live(
    "publish adds the record when its effect runs, once per run, not when it is built",
    () =>
      Effect.gen(function*() {
        const kafka = yield* Kafka.Kafka
        const answers: Array<string> = []
        const record = { topic: "nowhere", partition: 0, key: null, value: utf8.encode("x"), headers: [], timestamp: 0 }
        const publish = kafka.publish(record, (exit) => Effect.sync(() => answers.push(exit._tag)))
        yield* kafka.flush
        assert.deepStrictEqual(answers, [], "built, not run: nothing was sent")
        yield* publish
        yield* publish
        yield* kafka.flush
        assert.deepStrictEqual(answers, ["Failure", "Failure"])
      }).pipe(Effect.provide(Unreachable)),
    20_000
  )

  it.live("send fails with a typed KafkaError within a bounded time", () =>
    Effect.gen(function*() {
      const topic = yield* Topic.make({ topics: ["nowhere"], value: Schema.String })
      const started = Date.now()
      const error = yield* Effect.flip(topic.send({ value: "x" }))
      assert.strictEqual(error._tag, "KafkaError")
      assert.instanceOf(error, KafkaError)
      assert.strictEqual((error as KafkaError).topic, "nowhere")
      assert.isBelow(Date.now() - started, 10_000)
    }).pipe(Effect.provide(Unreachable)), 20_000)

  it.live(
    "without declaring, the send still fails typed (metadata), and so do sendSoon's future and a stream",
    () =>
      Effect.gen(function*() {
        const topic = yield* Topic.make({ topics: ["nowhere"], value: Schema.String })
        const error = yield* Effect.flip(topic.send({ value: "x" }))
        assert.instanceOf(error, KafkaError)
        assert.strictEqual((error as KafkaError).operation, "metadata")
        const soon = yield* Effect.flip(topic.sendSoon({ value: "y" }))
        assert.instanceOf(soon, KafkaError)
        const streamed = yield* Effect.flip(Stream.runCollect(topic.stream()))
        assert.instanceOf(streamed, KafkaError)
        assert.strictEqual((streamed as KafkaError).operation, "consume")
      }).pipe(
        Effect.provide(
          Kafka.layer({
            bootstrapServers: "127.0.0.1:1",
            retries: 1,
            retryDelay: "20 millis",
            connectTimeout: "500 millis",
            topicAllowDeclare: false
          }).pipe(Layer.provideMerge(AppTest))
        )
      ),
    30_000
  )
})

describe("Topic without a broker", () => {
  it.effect("make validates topic options", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Topic.Options, string]> = [
        [{}, "topics"],
        [{ topics: ["a"], pattern: /a/ }, "topics"],
        [{ topics: [] }, "topics"],
        [{ topics: ["bad name"] }, "topics"],
        [{ topics: ["a"], partitions: 0 }, "partitions"],
        [{ topics: ["a"], replicas: 1.5 }, "replicas"],
        [{ topics: ["a"], retention: "forever" as Duration.Input }, "retention"],
        [{ topics: ["a"], maxsize: 0 }, "maxsize"],
        [{ topics: ["a"], valueSerializer: "nope" }, "valueSerializer"]
      ]
      for (const [options, option] of cases) {
        const error = yield* Effect.flip(Topic.make(options))
        assert.instanceOf(error, InvalidChannelOptionsError)
        assert.strictEqual(error.option, option, JSON.stringify(options))
      }
    }).pipe(Effect.provide(Unreachable)))

  it.effect("is a Channel with Faust's topic attributes; config says how declare creates it", () =>
    Effect.gen(function*() {
      const topic = yield* Topic.make({
        topics: ["events"],
        value: Schema.Number,
        partitions: 6,
        replicas: 1,
        retention: "1 day",
        compacting: true,
        deleting: true,
        config: { "min.insync.replicas": 1 },
        acks: false,
        internal: true
      })
      assert.isTrue(Channel.isChannel(topic))
      assert.isTrue(Topic.isTopic(topic))
      assert.isFalse(Topic.isTopic(yield* Channel.make({})))
      assert.strictEqual(topic.label, "Topic: events")
      assert.deepStrictEqual(topic.topics, ["events"])
      assert.strictEqual(topic.groupId, "kafka-unit.events")
      assert.strictEqual(topic.partitions, 6)
      assert.strictEqual(topic.replicas, 1)
      assert.deepStrictEqual(topic.retention, Duration.days(1))
      assert.isTrue(topic.compacting)
      assert.isTrue(topic.deleting)
      assert.isFalse(topic.acks)
      assert.isTrue(topic.internal)
      assert.deepStrictEqual(topic.config, {
        "retention.ms": "86400000",
        "cleanup.policy": "compact,delete",
        "min.insync.replicas": "1"
      })
      assert.strictEqual(topic.activePartitions, undefined)
      assert.strictEqual(topic.subscriberCount, 0)
      const pattern = yield* Topic.make({ pattern: "^events-.*", groupId: "mine" })
      assert.strictEqual(pattern.pattern?.source, "^events-.*")
      assert.strictEqual(pattern.groupId, "mine")
      assert.strictEqual(pattern.label, "Topic: /^events-.*/")
    }).pipe(Effect.provide(Unreachable)))

  it.effect("getTopicName: the single name; a pattern or several names fail with NotATopicError saying why", () =>
    Effect.gen(function*() {
      const one = yield* Topic.make({ topics: ["a"] })
      assert.strictEqual(yield* one.getTopicName(), "a")
      const several = yield* Effect.flip((yield* Topic.make({ topics: ["a", "b"] })).getTopicName())
      assert.instanceOf(several, NotATopicError)
      assert.include(several.message, "2 topic names (a, b)")
      const pattern = yield* Effect.flip((yield* Topic.make({ pattern: /^a/ })).getTopicName())
      assert.include(pattern.message, "pattern /^a/")
    }).pipe(Effect.provide(Unreachable)))

  it.effect("derive adds a prefix and suffix to each name and applies overrides; types stay", () =>
    Effect.gen(function*() {
      const base = yield* Topic.make({
        topics: ["clicks", "views"],
        value: Schema.Number,
        partitions: 3,
        label: "mine"
      })
      const derived = yield* base.derive({ prefix: "app-", suffix: "-repartition", partitions: 12, internal: true })
      assert.deepStrictEqual(derived.topics, ["app-clicks-repartition", "app-views-repartition"])
      assert.strictEqual(derived.partitions, 12)
      assert.isTrue(derived.internal)
      assert.strictEqual(derived.label, "Topic: app-clicks-repartition, app-views-repartition")
      assert.strictEqual(derived.valueType, base.valueType)
      assert.notStrictEqual(derived, base)
      const renamed = yield* base.derive({ topics: ["other"] })
      assert.deepStrictEqual(renamed.topics, ["other"])
      const pattern = yield* Topic.make({ pattern: /^x/ })
      const error = yield* Effect.flip(pattern.derive({ prefix: "p-" }))
      assert.instanceOf(error, InvalidChannelOptionsError)
      assert.strictEqual((yield* pattern.derive({ acks: false })).acks, false)
    }).pipe(Effect.provide(Unreachable)))

  it.effect("prepareKey / prepareValue encode with the Schema then the codec; decode reverses them", () =>
    Effect.gen(function*() {
      const topic = yield* Topic.make({
        topics: ["prices"],
        key: Schema.String,
        value: Schema.Struct({ amount: Schema.NumberFromString, at: Schema.String })
      })
      const at = "2026-01-02"
      const [key, headers] = yield* topic.prepareKey("k-1", { headers: { h: "1" } })
      assert.deepStrictEqual(headers, { h: "1" })
      assert.strictEqual(text.decode(key as Uint8Array), "k-1")
      const [value] = yield* topic.prepareValue({ amount: 2.5, at })
      assert.deepStrictEqual(JSON.parse(text.decode(value as Uint8Array)), { amount: "2.5", at })
      const [binary] = yield* topic.prepareValue({ amount: 1, at }, { valueSerializer: "json|binary" })
      assert.deepStrictEqual(
        Codec.json.loads(Codec.binary.loads(binary as Uint8Array) as Uint8Array),
        { amount: "1", at }
      )
      assert.deepStrictEqual(yield* topic.prepareKey(null), [null, undefined])
      const message = Message.make({
        topic: "prices",
        partition: 0,
        offset: 7,
        timestamp: 0,
        timestampType: 0,
        key,
        value
      })
      const event = yield* topic.decode(message)
      assert.strictEqual(event.key, "k-1")
      assert.deepStrictEqual(event.value, { amount: 2.5, at })
      const bad = yield* Effect.flip(
        topic.decode(Message.make({ ...message, value: utf8.encode("{") }), { propagate: true })
      )
      assert.strictEqual(bad._tag, "ValueDecodeError")
      assert.strictEqual(bad.received.offset, 7)
      const wrong = yield* Effect.flip(topic.prepareValue({ amount: "x" as unknown as number, at }))
      assert.strictEqual(wrong._tag, "CodecError")
    }).pipe(Effect.provide(Unreachable)))
})

describe("Topic fan-out without a broker", () => {
  it.effect("deliver decodes a message and offers it to every subscriber's queue; clones share the root", () =>
    Effect.gen(function*() {
      const topic = yield* Topic.make({ topics: ["fan"], value: Schema.Number, onDecodeError: "skip" })
      const subscriber = yield* topic.clone({ isIterator: true })
      const queue = yield* Queue.bounded<Event.Event<unknown, number>, never>(4)
      const fromQueue = yield* topic.cloneUsingQueue(queue as never)
      assert.strictEqual(topic.subscriberCount, 2)
      assert.isTrue(yield* subscriber.empty)
      const message = (value: string, offset: number) =>
        Message.make({
          topic: "fan",
          partition: 0,
          offset,
          timestamp: 0,
          timestampType: 0,
          key: null,
          value: utf8.encode(value)
        })
      yield* topic.deliver(message("41", 0))
      yield* topic.deliver(message("oops", 1))
      assert.isFalse(yield* subscriber.empty)
      assert.strictEqual((yield* subscriber.get()).value, 41)
      assert.strictEqual((yield* Queue.take(queue)).value, 41)
      assert.deepStrictEqual(topic.decodeErrorCounts, { failed: 0, skipped: 1, deadLettered: 0 })
      yield* fromQueue.onStopIteration
      yield* subscriber.onStopIteration
      assert.strictEqual(topic.subscriberCount, 0)
      assert.deepStrictEqual(topic.prepareHeaders({ a: "1" }), [["a", "1"]])
    }).pipe(Effect.provide(Unreachable), Effect.provide(quiet)))
})

class Lines extends Channel.Service<Lines>()("demo/Lines", { value: Schema.String }) {}
class Counts extends Channel.Service<Counts>()("demo/Counts", { key: Schema.String, value: Schema.Number }) {}

describe("channel services on Kafka", () => {
  it("topicNameFor turns a service id into a valid topic name", () => {
    assert.strictEqual(Topic.topicNameFor("word-count/Lines"), "word-count.Lines")
    assert.strictEqual(Topic.topicNameFor("a b:c"), "a.b.c")
  })

  it.effect("Topic.layer provides a Channel.Service with a topic made from its options", () =>
    Effect.gen(function*() {
      const counts = yield* Counts
      assert.isTrue(Topic.isTopic(counts))
      const topic = counts as unknown as Topic.Topic<string, number>
      assert.deepStrictEqual(topic.topics, ["demo.Counts"])
      assert.strictEqual(topic.label, "demo/Counts")
      assert.strictEqual(topic.partitions, 2)
      const [value] = yield* counts.prepareValue(3)
      assert.strictEqual(text.decode(value as Uint8Array), "3")
      const snapshots = yield* Metric.snapshot
      assert.isTrue(
        snapshots.some((snapshot) =>
          snapshot.id === "effect_faust_sent_total" && snapshot.attributes?.channel === "demo/Counts"
        ),
        "the layer registers the topic's metrics"
      )
    }).pipe(
      Effect.provide(Topic.layer(Counts, { partitions: 2 })),
      Effect.provide(Unreachable),
      Effect.provide(Layer.succeed(Metric.MetricRegistry, new Map()))
    ))

  it.effect("layerChannels: in memory without KAFKA_BOOTSTRAP_SERVERS, topics with it", () =>
    Effect.gen(function*() {
      const inMemory = yield* Effect.gen(function*() {
        return [Topic.isTopic(yield* Lines), Topic.isTopic(yield* Counts)]
      }).pipe(Effect.provide(layerChannels([Lines, Counts]).pipe(Layer.provide(config({})))))
      assert.deepStrictEqual(inMemory, [false, false])
      const onKafka = yield* Effect.gen(function*() {
        const lines = (yield* Lines) as unknown as Topic.Topic<unknown, string>
        const counts = (yield* Counts) as unknown as Topic.Topic<string, number>
        return [lines.topics, counts.topics, lines.partitions, counts.groupId]
      }).pipe(Effect.provide(
        layerChannels([Lines, Counts], { topics: { partitions: 1 }, kafka: { groupId: "g" } }).pipe(
          Layer.provide(config({ KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:1" }))
        )
      ))
      assert.deepStrictEqual(onKafka, [["demo.Lines"], ["demo.Counts"], 1, "g.demo.Counts"])
    }).pipe(Effect.provide(AppTest)))
})
