/**
 * Every rule of the four options schemas (App, Channel, Kafka, Topic): a bad
 * value fails with the exact `option`, `value` and `reason` of its
 * `InvalidChannelOptionsError`, a good value passes. In memory: the Kafka
 * layer points at a closed port and is never asked to reach it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer, Schema } from "effect"
import { App, Channel, Codec, InvalidChannelOptionsError, MessageSchema } from "effect-faust"
import { Kafka, Topic } from "effect-faust/kafka"
import { AppTest } from "./helpers.ts"

const AppKafka = Kafka.layer({ bootstrapServers: "127.0.0.1:1", retries: 0 }).pipe(Layer.provideMerge(AppTest))

const known = "(known: raw, json, binary)"

/** Fails with exactly this option, value and reason. */
const fails = <A, R>(
  effect: Effect.Effect<A, InvalidChannelOptionsError, R>,
  expected: { readonly option: string; readonly value: unknown; readonly reason: string }
): Effect.Effect<void, A, R> =>
  Effect.map(Effect.flip(effect), (error) => {
    assert.instanceOf(error, InvalidChannelOptionsError)
    assert.deepStrictEqual({ option: error.option, value: error.value, reason: error.reason }, expected)
  })

const app = (options: { readonly id: string } & Partial<App.AppConfig>) =>
  Effect.provide(Effect.service(App.App), App.layer(options))

describe("App options", () => {
  const reason = "must be an integer of at least 1"

  it.effect("id: a non-empty string", () =>
    Effect.gen(function*() {
      for (const id of ["", 42, undefined]) {
        yield* fails(app({ id } as never), { option: "id", value: id, reason: "the app id must be a non-empty string" })
      }
      assert.strictEqual((yield* app({ id: "shop" })).id, "shop")
    }))

  it.effect("streamBufferMaxsize: an integer of at least 1 (default 4096)", () =>
    Effect.gen(function*() {
      for (const size of [0, -1, 1.5, Number.NaN, "3"]) {
        yield* fails(app({ id: "a", streamBufferMaxsize: size as number }), {
          option: "streamBufferMaxsize",
          value: size,
          reason
        })
      }
      assert.strictEqual((yield* app({ id: "a", streamBufferMaxsize: 1 })).config.streamBufferMaxsize, 1)
      assert.strictEqual((yield* app({ id: "a" })).config.streamBufferMaxsize, 4096)
    }))

  it.effect("keySerializer and valueSerializer: codecs of the registry (defaults raw and json)", () =>
    Effect.gen(function*() {
      yield* fails(app({ id: "a", keySerializer: "nope" }), {
        option: "keySerializer",
        value: "nope",
        reason: `unknown serializer "nope" ${known}`
      })
      yield* fails(app({ id: "a", valueSerializer: "json|yaml" }), {
        option: "valueSerializer",
        value: "json|yaml",
        reason: `unknown serializer "yaml" ${known}`
      })
      const fake = { name: "fake" }
      yield* fails(app({ id: "a", valueSerializer: fake as never }), {
        option: "valueSerializer",
        value: fake,
        reason: "a serializer is a name or a Codec, got object"
      })
      const good = yield* app({ id: "a", keySerializer: "json|binary", valueSerializer: Codec.raw })
      assert.deepStrictEqual(good.config, {
        streamBufferMaxsize: 4096,
        keySerializer: "json|binary",
        valueSerializer: Codec.raw
      })
      assert.deepStrictEqual((yield* app({ id: "a" })).config.keySerializer, "raw")
      const upper = Codec.make({ name: "upper", dumps: () => new Uint8Array(), loads: (bytes) => bytes })
      const custom = yield* app({ id: "a", valueSerializer: "upper" }).pipe(
        Effect.provide(Codec.Codecs.layer({ upper }))
      )
      assert.strictEqual(custom.config.valueSerializer, "upper")
    }))
})

describe("Channel options", () => {
  const make = (options: Record<string, unknown>) => Channel.make(options as Channel.Options)

  it.effect("key, value and error: effect Schemas when given (key and value also from the message schema)", () =>
    Effect.gen(function*() {
      for (const option of ["key", "value", "error"]) {
        yield* fails(make({ [option]: "string" }), { option, value: "string", reason: "must be an effect Schema" })
      }
      const schema = MessageSchema.make({ key: 42 as never })
      yield* fails(make({ schema }), { option: "key", value: 42, reason: "must be an effect Schema" })
      const channel = yield* make({ key: Schema.String, value: Schema.Number, error: Schema.String })
      assert.strictEqual(channel.keyType, Schema.String)
      assert.strictEqual(channel.valueType, Schema.Number)
    }).pipe(Effect.provide(AppTest)))

  it.effect("keySerializer and valueSerializer: codecs of the registry (given, from the message schema or the app)", () =>
    Effect.gen(function*() {
      yield* fails(make({ keySerializer: "nope" }), {
        option: "keySerializer",
        value: "nope",
        reason: `unknown serializer "nope" ${known}`
      })
      yield* fails(make({ valueSerializer: "json|nope" }), {
        option: "valueSerializer",
        value: "json|nope",
        reason: `unknown serializer "nope" ${known}`
      })
      yield* fails(make({ schema: MessageSchema.make({ valueSerializer: "yaml" }) }), {
        option: "valueSerializer",
        value: "yaml",
        reason: `unknown serializer "yaml" ${known}`
      })
      yield* fails(make({ valueSerializer: 7 }), {
        option: "valueSerializer",
        value: 7,
        reason: "a serializer is a name or a Codec, got number"
      })
      const channel = yield* make({ keySerializer: "json", valueSerializer: "json|binary" })
      assert.strictEqual(channel.schema.keySerializer, "json")
      assert.strictEqual(channel.schema.valueSerializer, "json|binary")
    }).pipe(Effect.provide(AppTest)))

  it.effect("maxsize: an integer of at least 1 (default: the app's streamBufferMaxsize), in make and clone", () =>
    Effect.gen(function*() {
      const channel = yield* make({})
      assert.strictEqual(channel.maxsize, 16)
      for (const maxsize of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "10"]) {
        const expected = { option: "maxsize", value: maxsize, reason: "must be an integer of at least 1" }
        yield* fails(make({ maxsize }), expected)
        yield* fails(channel.clone({ maxsize: maxsize as number }), expected)
      }
      assert.strictEqual((yield* make({ maxsize: 1 })).maxsize, 1)
      assert.strictEqual((yield* channel.clone({ maxsize: 3 })).maxsize, 3)
      assert.strictEqual((yield* channel.clone()).maxsize, 16)
    }).pipe(Effect.provide(AppTest)))

  it.effect(`onDecodeError: "fail", "skip" or { deadLetter: <a Channel> }, in make and clone`, () =>
    Effect.gen(function*() {
      const channel = yield* make({})
      const reason = `must be "fail", "skip" or { deadLetter: <a Channel> }`
      for (const policy of ["explode", "Skip", 42, { deadLetter: {} }, { deadLetter: "dlq" }]) {
        yield* fails(make({ onDecodeError: policy }), { option: "onDecodeError", value: policy, reason })
        yield* fails(channel.clone({ onDecodeError: policy as never }), {
          option: "onDecodeError",
          value: policy,
          reason
        })
      }
      // null is not a policy (nor a missing one) when the channel is made
      yield* fails(make({ onDecodeError: null }), { option: "onDecodeError", value: null, reason })
      const deadLetters = yield* make({})
      for (const policy of ["fail", "skip", { deadLetter: deadLetters }] as const) {
        yield* make({ onDecodeError: policy })
        yield* channel.clone({ onDecodeError: policy })
      }
    }).pipe(Effect.provide(AppTest)))

  it.effect(`whenNoSubscribers: "buffer", "drop" or "fail"`, () =>
    Effect.gen(function*() {
      for (const policy of ["wait", "BUFFER", 1]) {
        yield* fails(make({ whenNoSubscribers: policy }), {
          option: "whenNoSubscribers",
          value: policy,
          reason: `must be "buffer", "drop" or "fail"`
        })
      }
      for (const policy of ["buffer", "drop", "fail"]) yield* make({ whenNoSubscribers: policy })
    }).pipe(Effect.provide(AppTest)))

  it.effect("the rules are checked in the order of the options: types, serializers, maxsize, policies", () =>
    Effect.gen(function*() {
      yield* fails(make({ maxsize: 0, keySerializer: "nope", whenNoSubscribers: "wait" }), {
        option: "keySerializer",
        value: "nope",
        reason: `unknown serializer "nope" ${known}`
      })
      yield* fails(make({ value: 1, maxsize: 0 }), { option: "value", value: 1, reason: "must be an effect Schema" })
      yield* fails(make({ onDecodeError: "x", maxsize: 0 }), {
        option: "maxsize",
        value: 0,
        reason: "must be an integer of at least 1"
      })
    }).pipe(Effect.provide(AppTest)))

  it.effect("a topic's channel options follow the same rules", () =>
    Effect.gen(function*() {
      yield* fails(Topic.make({ topics: ["a"], maxsize: 0 }), {
        option: "maxsize",
        value: 0,
        reason: "must be an integer of at least 1"
      })
      yield* fails(Topic.make({ topics: ["a"], valueSerializer: "nope" }), {
        option: "valueSerializer",
        value: "nope",
        reason: `unknown serializer "nope" ${known}`
      })
    }).pipe(Effect.provide(AppKafka)))
})

describe("Kafka options", () => {
  const resolve = (options: Record<string, unknown>) =>
    Kafka.resolve({ bootstrapServers: "h:1", ...options } as Kafka.Options, "app")

  it.effect(`bootstrapServers: brokers as "host:port", comma-separated or in a list`, () =>
    Effect.gen(function*() {
      for (const servers of ["", " , ", "no-port", "h:port", "h:1,no-port", ["a:1", 3], [], undefined, 9092]) {
        yield* fails(resolve({ bootstrapServers: servers }), {
          option: "kafka.bootstrapServers",
          value: servers,
          reason: `must list brokers as "host:port"`
        })
      }
      assert.deepStrictEqual((yield* resolve({ bootstrapServers: "b1:9092, b2:9093" })).bootstrapServers, [
        "b1:9092",
        "b2:9093"
      ])
      assert.deepStrictEqual((yield* resolve({ bootstrapServers: [" a:1,b:2 ", "c:3"] })).bootstrapServers, [
        "a:1",
        "b:2",
        "c:3"
      ])
    }))

  it.effect("each duration: a Duration input, resolved to milliseconds (with its default)", () =>
    Effect.gen(function*() {
      const defaults = {
        connectTimeout: 5_000,
        requestTimeout: 30_000,
        retryDelay: 250,
        sessionTimeout: 10_000,
        rebalanceTimeout: 10_000,
        heartbeatInterval: 1_000,
        maxWaitTime: 500,
        commitInterval: 2_800
      } as const
      const settings = yield* resolve({})
      for (const [name, millis] of Object.entries(defaults)) {
        assert.strictEqual(settings[name as keyof typeof defaults], millis, name)
        yield* fails(resolve({ [name]: "soon" }), {
          option: `kafka.${name}`,
          value: "soon",
          reason: "must be a Duration"
        })
      }
      const given = yield* resolve({
        connectTimeout: "2 seconds",
        requestTimeout: Duration.minutes(1),
        retryDelay: 100,
        sessionTimeout: "20 seconds",
        rebalanceTimeout: "30 seconds",
        heartbeatInterval: "3 seconds",
        maxWaitTime: "1 second",
        commitInterval: "5 seconds"
      })
      assert.deepStrictEqual(
        [
          given.connectTimeout,
          given.requestTimeout,
          given.retryDelay,
          given.sessionTimeout,
          given.rebalanceTimeout,
          given.heartbeatInterval,
          given.maxWaitTime,
          given.commitInterval
        ],
        [2_000, 60_000, 100, 20_000, 30_000, 3_000, 1_000, 5_000]
      )
    }))

  it.effect("heartbeatInterval <= sessionTimeout <= rebalanceTimeout (which defaults to sessionTimeout)", () =>
    Effect.gen(function*() {
      const reason = "heartbeatInterval must not exceed sessionTimeout, which must not exceed rebalanceTimeout"
      const option = "kafka.heartbeatInterval"
      yield* fails(resolve({ heartbeatInterval: "1 minute" }), { option, value: "1 minute", reason })
      yield* fails(resolve({ sessionTimeout: 500 }), { option, value: undefined, reason })
      yield* fails(resolve({ rebalanceTimeout: "1 second" }), { option, value: undefined, reason })
      yield* fails(resolve({ heartbeatInterval: 2_000, sessionTimeout: 1_000 }), { option, value: 2_000, reason })
      const equal = yield* resolve({ heartbeatInterval: 3_000, sessionTimeout: 3_000 })
      assert.strictEqual(equal.rebalanceTimeout, 3_000)
      const longer = yield* resolve({ sessionTimeout: 3_000, rebalanceTimeout: 4_000 })
      assert.strictEqual(longer.rebalanceTimeout, 4_000)
    }))

  it.effect("retries: an integer of at least 0; the other counts: at least 1 (with their defaults)", () =>
    Effect.gen(function*() {
      const counts = {
        retries: 3,
        topicPartitions: 8,
        topicReplicationFactor: 1,
        maxBatchSize: 1_000,
        bufferMaxsize: 10_000,
        consumerMaxFetchSize: 1024 * 1024
      }
      const settings = yield* resolve({})
      for (const [name, fallback] of Object.entries(counts)) {
        const least = name === "retries" ? 0 : 1
        assert.strictEqual(settings[name as keyof typeof counts], fallback, name)
        for (const value of [least - 1, 1.5, Number.NaN, "2"]) {
          yield* fails(resolve({ [name]: value }), {
            option: `kafka.${name}`,
            value,
            reason: `must be an integer of at least ${least}`
          })
        }
        assert.strictEqual((yield* resolve({ [name]: least }))[name as keyof typeof counts], least)
      }
    }))

  it.effect(`autoOffsetReset: "earliest" (default) or "latest"`, () =>
    Effect.gen(function*() {
      yield* fails(resolve({ autoOffsetReset: "middle" }), {
        option: "kafka.autoOffsetReset",
        value: "middle",
        reason: `must be "earliest" or "latest"`
      })
      assert.strictEqual((yield* resolve({})).autoOffsetReset, "earliest")
      assert.strictEqual((yield* resolve({ autoOffsetReset: "latest" })).autoOffsetReset, "latest")
    }))

  it.effect("clientId and groupId default to the app id; topicAllowDeclare to true", () =>
    Effect.gen(function*() {
      const settings = yield* resolve({})
      assert.deepStrictEqual([settings.clientId, settings.groupId, settings.topicAllowDeclare], ["app", "app", true])
      const given = yield* resolve({ clientId: "c", groupId: "g", topicAllowDeclare: false })
      assert.deepStrictEqual([given.clientId, given.groupId, given.topicAllowDeclare], ["c", "g", false])
    }))
})

describe("Topic options", () => {
  const make = (options: Record<string, unknown>) => Topic.make(options as Topic.Options)

  it.effect("topics or a pattern, not both", () =>
    Effect.gen(function*() {
      const reason = "give either topics (names) or a pattern, not both"
      yield* fails(make({}), { option: "topics", value: undefined, reason })
      yield* fails(make({ topics: ["a"], pattern: /a/ }), { option: "topics", value: ["a"], reason })
      yield* fails(make({ topics: [], pattern: "a" }), { option: "topics", value: [], reason })
      assert.deepStrictEqual((yield* make({ topics: ["a"] })).topics, ["a"])
      assert.strictEqual(String((yield* make({ pattern: "^a" })).pattern), "/^a/")
    }).pipe(Effect.provide(AppKafka)))

  it.effect("topics: one or more names of letters, digits, '.', '_' and '-'", () =>
    Effect.gen(function*() {
      const reason = "must be one or more names of letters, digits, '.', '_' and '-'"
      for (const topics of [[], ["bad name"], ["ok", "sl/ash"], ["x".repeat(250)], [""], "a", [1]]) {
        yield* fails(make({ topics }), { option: "topics", value: topics, reason })
      }
      const names = ["a.b_c-D9", "x".repeat(249)]
      assert.deepStrictEqual((yield* make({ topics: names })).topics, names)
    }).pipe(Effect.provide(AppKafka)))

  it.effect("partitions and replicas: integers of at least 1 when given", () =>
    Effect.gen(function*() {
      for (const option of ["partitions", "replicas"] as const) {
        for (const value of [0, -2, 1.5, "3"]) {
          yield* fails(make({ topics: ["a"], [option]: value }), {
            option,
            value,
            reason: "must be an integer of at least 1"
          })
        }
        assert.strictEqual((yield* make({ topics: ["a"], [option]: 3 }))[option], 3)
        assert.strictEqual((yield* make({ topics: ["a"] }))[option], undefined)
      }
    }).pipe(Effect.provide(AppKafka)))

  it.effect("retention: a Duration input, declared as retention.ms", () =>
    Effect.gen(function*() {
      for (const retention of ["forever", "3 fortnights"]) {
        yield* fails(make({ topics: ["a"], retention }), {
          option: "retention",
          value: retention,
          reason: "must be a Duration"
        })
      }
      const topic = yield* make({ topics: ["a"], retention: "1 day" })
      assert.isTrue(Duration.equals(topic.retention!, Duration.days(1)))
      assert.strictEqual(topic.config["retention.ms"], "86400000")
    }).pipe(Effect.provide(AppKafka)))

  it.effect("derive: a prefix or a suffix needs names (a topic subscribed by pattern has none)", () =>
    Effect.gen(function*() {
      const reason = "a topic subscribed by pattern has no names to add it to"
      const pattern = yield* make({ pattern: /^x/ })
      yield* fails(pattern.derive({ prefix: "p-" }), { option: "prefix", value: "p-", reason })
      yield* fails(pattern.derive({ suffix: "-s" }), { option: "suffix", value: "-s", reason })
      const named = yield* make({ topics: ["a"] })
      assert.deepStrictEqual((yield* named.derive({ prefix: "p-", suffix: "-s" })).topics, ["p-a-s"])
    }).pipe(Effect.provide(AppKafka)))
})
