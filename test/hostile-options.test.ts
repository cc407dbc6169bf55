/**
 * Hostile review of the README's promises about options and hosted-cluster
 * settings, without a broker:
 *
 * - "invalid options ... fail with `InvalidChannelOptionsError { option, value, reason }`"
 *   (App, Channel, Kafka, Topic, Agent), never a defect, whatever the options
 *   object is (throwing getters, proxies, odd numbers);
 * - "Passwords, keys and tokens are kept `Redacted` in `Kafka.Settings`: logs,
 *   errors and JSON show `<redacted>`";
 * - `Kafka.layerConfig` / `Kafka.config` env vars, with bad values, fail typed.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, Exit, Layer, Logger, Redacted, Schedule, Schema } from "effect"
import { Agent, App, Channel, InvalidChannelOptionsError } from "effect-faust"
import { Kafka, Topic } from "effect-faust/kafka"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { inspect } from "node:util"

const SECRET = "hunter2-TOPSECRET"
const KEY_BODY = "SECRETKEYMATERIALxyz"
const pem = (name: string, body = "MIIB" + "A".repeat(60)) =>
  `-----BEGIN ${name}-----\n${body}\n-----END ${name}-----\n`

const AppKafka = Kafka.layer({ bootstrapServers: "127.0.0.1:1", retries: 0 }).pipe(
  Layer.provideMerge(App.layer({ id: "hostile" }))
)

/** Every way an error may be shown: none may hold the secret. */
const shown = (error: unknown): ReadonlyArray<string> => {
  const e = error as { message?: string; value?: unknown; stack?: string }
  return [
    String(e.message),
    String(error),
    JSON.stringify(error),
    inspect(error, { depth: 20 }),
    String(e.stack),
    Cause.pretty(Cause.fail(error)),
    inspect(e.value, { depth: 20 }),
    JSON.stringify(e.value, (_k, v) => typeof v === "bigint" ? String(v) : v) ?? ""
  ]
}

/** The effect fails (not dies) with InvalidChannelOptionsError; returns it. */
const typedFailure = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) return assert.fail(`expected a failure, got success ${inspect(exit.value)}`)
    const failure = exit.cause.reasons.find(Cause.isFailReason)
    if (failure === undefined) return assert.fail(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
    assert.instanceOf(failure.error, InvalidChannelOptionsError, Cause.pretty(exit.cause))
    return failure.error as InvalidChannelOptionsError
  })

/** Runs every case; fails once, listing every case that did not fail typed with the expected option. */
const everyCase = <C, R>(
  cases: ReadonlyArray<C>,
  label: (c: C) => string,
  run: (c: C) => Effect.Effect<unknown, unknown, R>,
  option: (c: C) => string | RegExp
) =>
  Effect.gen(function*() {
    const broken: Array<string> = []
    for (const c of cases) {
      const exit = yield* Effect.exit(run(c))
      const expected = option(c)
      if (Exit.isSuccess(exit)) {
        broken.push(`${label(c)}: accepted`)
        continue
      }
      const failure = exit.cause.reasons.find(Cause.isFailReason)
      if (failure === undefined) {
        broken.push(`${label(c)}: defect ${Cause.pretty(exit.cause).split("\n")[0]}`)
        continue
      }
      const error = failure.error
      if (!(error instanceof InvalidChannelOptionsError)) {
        broken.push(`${label(c)}: ${String(error)}`)
      } else if (typeof expected === "string" ? error.option !== expected : !expected.test(error.option)) {
        broken.push(`${label(c)}: option ${error.option}`)
      }
    }
    assert.deepStrictEqual(broken, [])
  })

const show = (u: unknown) => typeof u === "string" ? JSON.stringify(u) : inspect(u)

const resolve = (options: Partial<Kafka.Options>) =>
  Kafka.resolve({ bootstrapServers: "127.0.0.1:9092", ...options } as Kafka.Options, "app")

describe("hostile: Kafka secrets never shown", () => {
  it.effect("a sasl rejected for its mechanism's case ('scram-sha-256') fails naming kafka.sasl.mechanism, password not shown", () =>
    Effect.gen(function*() {
      for (const mechanism of ["scram-sha-256", "plain", "Scram-Sha-512", " PLAIN", "oauthbearer"]) {
        const error = yield* typedFailure(
          resolve({ sasl: { mechanism, username: "alice", password: SECRET } as never })
        )
        assert.strictEqual(error.option, "kafka.sasl.mechanism", mechanism)
        for (const text of shown(error)) assert.notInclude(text, SECRET, `${mechanism}: ${text}`)
      }
    }))

  it.effect("an empty / non-string username fails naming kafka.sasl.username, password not shown", () =>
    Effect.gen(function*() {
      for (const username of ["", 42, null]) {
        const error = yield* typedFailure(
          resolve({ sasl: { mechanism: "SCRAM-SHA-256", username, password: SECRET } as never })
        )
        assert.strictEqual(error.option, "kafka.sasl.username", String(username))
        for (const text of shown(error)) assert.notInclude(text, SECRET, text)
      }
    }))

  it.effect("the whole sasl object invalid (a string password beside an unknown key) never shows the password", () =>
    Effect.gen(function*() {
      const error = yield* typedFailure(resolve({ sasl: { mechanism: "PLAIN", password: SECRET } as never }))
      assert.match(error.option, /^kafka\.sasl/)
      for (const text of shown(error)) assert.notInclude(text, SECRET, text)
      // Redacted password but mechanism wrong
      const error2 = yield* typedFailure(
        resolve({ sasl: { mechanism: "GSSAPI", username: "u", password: Redacted.make(SECRET) } as never })
      )
      for (const text of shown(error2)) assert.notInclude(text, SECRET, text)
    }))

  it.effect("an empty Redacted password fails naming kafka.sasl.password", () =>
    Effect.gen(function*() {
      const error = yield* typedFailure(
        resolve({ sasl: { mechanism: "PLAIN", username: "alice", password: Redacted.make("") } })
      )
      assert.strictEqual(error.option, "kafka.sasl.password")
    }))

  it.effect("a Redacted holding a non-string password fails typed (not a defect)", () =>
    Effect.gen(function*() {
      const error = yield* typedFailure(
        resolve({ sasl: { mechanism: "PLAIN", username: "alice", password: Redacted.make(42) as never } })
      )
      assert.strictEqual(error.option, "kafka.sasl.password")
    }))

  it.effect("a tls key without a cert fails naming kafka.tls.cert; the key's PEM body is not shown", () =>
    Effect.gen(function*() {
      for (const key of [pem("PRIVATE KEY", KEY_BODY), Redacted.make(pem("PRIVATE KEY", KEY_BODY))]) {
        const error = yield* typedFailure(resolve({ tls: { key } }))
        assert.strictEqual(error.option, "kafka.tls.cert")
        for (const text of shown(error)) assert.notInclude(text, KEY_BODY, text)
      }
    }))

  it.effect("a tls key that is not PEM fails naming kafka.tls.key; its text is not shown", () =>
    Effect.gen(function*() {
      for (const key of [`garbage ${KEY_BODY}`]) {
        const error = yield* typedFailure(resolve({ tls: { cert: pem("CERTIFICATE"), key } }))
        assert.strictEqual(error.option, "kafka.tls.key")
        for (const text of shown(error)) assert.notInclude(text, KEY_BODY, text)
      }
    }))

  it.effect("tls paths that are a directory, an empty file or a missing file fail typed naming the field", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "hostile-"))
      const empty = join(dir, "empty.pem")
      writeFileSync(empty, "")
      for (const ca of [dir, empty, "/dev/null", join(dir, "missing.pem"), "\0bad"]) {
        const error = yield* typedFailure(resolve({ tls: { ca } }))
        assert.strictEqual(error.option, "kafka.tls.ca", ca)
      }
      for (const cert of [dir, empty]) {
        const error = yield* typedFailure(resolve({ tls: { cert, key: pem("PRIVATE KEY") } }))
        assert.strictEqual(error.option, "kafka.tls.cert", cert)
      }
    }))

  it.effect("resolved settings show <redacted> in JSON, inspect, String and logs", () =>
    Effect.gen(function*() {
      const settings = yield* resolve({
        tls: { ca: pem("CERTIFICATE"), cert: pem("CERTIFICATE"), key: pem("PRIVATE KEY", KEY_BODY) },
        sasl: { mechanism: "SCRAM-SHA-512", username: "orders", password: SECRET }
      })
      const logged: Array<string> = []
      yield* Effect.log(settings, settings.sasl, settings.tls).pipe(
        Effect.annotateLogs("settings", settings as never),
        Effect.provide(Logger.layer([Logger.make((options) => {
          logged.push(inspect(options.message, { depth: 20 }), JSON.stringify(options.message))
        })])),
        Effect.provide(Logger.layer([Logger.consolePretty(), Logger.consoleJson]))
      ).pipe(Effect.ignore)
      const texts = [
        JSON.stringify(settings),
        inspect(settings, { depth: 20 }),
        String(settings.sasl && "password" in settings.sasl ? settings.sasl.password : ""),
        `${settings.tls?.key}`,
        ...logged
      ]
      for (const text of texts) {
        assert.notInclude(text, SECRET, text)
        assert.notInclude(text, KEY_BODY, text)
      }
    }))

  it.effect("OAUTHBEARER: the resolved token provider is Redacted and shows nothing of a captured token", () =>
    Effect.gen(function*() {
      const settings = yield* resolve({
        sasl: { mechanism: "OAUTHBEARER", token: Effect.succeed(SECRET) }
      })
      assert.strictEqual(settings.sasl?.mechanism, "OAUTHBEARER")
      for (const text of [JSON.stringify(settings), inspect(settings, { depth: 20 })]) {
        assert.notInclude(text, SECRET, text)
      }
    }))

  it.effect("compression: unknown / wrong case fails naming kafka.compression", () =>
    Effect.gen(function*() {
      for (const compression of ["brotli", "GZIP", "", null, 1]) {
        const error = yield* typedFailure(resolve({ compression: compression as never }))
        assert.strictEqual(error.option, "kafka.compression", String(compression))
      }
    }))
})

describe("hostile: Kafka numbers and shapes", () => {
  it.effect("retries / topicPartitions / topicReplicationFactor / maxBatchSize / bufferMaxsize reject NaN, Infinity, fractions, negatives", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [keyof Kafka.Options, ReadonlyArray<unknown>]> = [
        ["retries", [Number.NaN, Infinity, -1, 1.5, "3"]],
        ["topicPartitions", [Number.NaN, Infinity, 0, -1, 1.5, -0]],
        ["topicReplicationFactor", [Number.NaN, Infinity, 0, -1, 1.5]],
        ["maxBatchSize", [Number.NaN, Infinity, 0, -1, 1.5]],
        ["bufferMaxsize", [Number.NaN, Infinity, 0, -1, 1.5]]
      ]
      for (const [option, values] of cases) {
        for (const value of values) {
          const error = yield* typedFailure(resolve({ [option]: value }))
          assert.strictEqual(error.option, `kafka.${option}`, `${option}=${String(value)}`)
        }
      }
    }))

  it.effect("topicPartitions beyond Kafka's int32 (2**31, 1e308) fail typed", () =>
    Effect.gen(function*() {
      yield* everyCase([2 ** 31, 1e308], String, (v) => resolve({ topicPartitions: v }), () => "kafka.topicPartitions")
    }))

  it.effect("durations reject NaN, negative and unparsable inputs naming the option", () =>
    Effect.gen(function*() {
      const cases = ["connectTimeout", "requestTimeout", "retryDelay", "commitInterval"].flatMap((option) =>
        [Number.NaN, -1, "-5 seconds", "five seconds", {}, null].map((value) => [option, value] as const)
      )
      yield* everyCase(
        cases,
        ([o, v]) => `${o}=${show(v)}`,
        ([o, v]) => resolve({ [o]: v }),
        ([o]) => `kafka.${o}`
      )
    }))

  it.effect("an infinite connect / request timeout fails typed (it would be a hang)", () =>
    Effect.gen(function*() {
      yield* everyCase(
        ["connectTimeout", "requestTimeout"],
        String,
        (o) => resolve({ [o]: Infinity }),
        (o) => `kafka.${o}`
      )
    }))

  it.effect("bootstrapServers: empty, blank entries, no port, bad port fail naming kafka.bootstrapServers", () =>
    Effect.gen(function*() {
      yield* everyCase(
        ["", " , ", [], "host", "host:abc", "host:99999", "host:0", "host:-1", 42],
        show,
        (bootstrapServers) => Kafka.resolve({ bootstrapServers } as never, "app"),
        () => "kafka.bootstrapServers"
      )
    }))

  it.effect("an options object whose getter throws fails typed, not as a defect", () =>
    Effect.gen(function*() {
      const options = {
        bootstrapServers: "a:1",
        get retries(): number {
          throw new Error("boom getter")
        }
      }
      yield* typedFailure(Kafka.resolve(options, "app"))
      const sasl = {
        mechanism: "PLAIN",
        username: "u",
        get password(): string {
          throw new Error(`boom ${SECRET}`)
        }
      }
      const error = yield* typedFailure(resolve({ sasl: sasl as never }))
      for (const text of shown(error)) assert.notInclude(text, SECRET, text)
    }))

  it.effect("a revoked proxy as options or as sasl fails typed, not as a defect", () =>
    Effect.gen(function*() {
      const { proxy, revoke } = Proxy.revocable({ bootstrapServers: "a:1" }, {})
      revoke()
      yield* typedFailure(Kafka.resolve(proxy as never, "app"))
      const inner = Proxy.revocable({ mechanism: "PLAIN", username: "u", password: SECRET }, {})
      inner.revoke()
      yield* typedFailure(resolve({ sasl: inner.proxy as never }))
    }))

  it.effect("frozen options resolve like plain ones", () =>
    Effect.gen(function*() {
      const sasl = Object.freeze({ mechanism: "PLAIN" as const, username: "u", password: SECRET })
      const settings = yield* Kafka.resolve(
        Object.freeze({ bootstrapServers: Object.freeze(["a:1", "b:2"]), sasl, tls: true }),
        "app"
      )
      assert.deepStrictEqual(settings.bootstrapServers, ["a:1", "b:2"])
      assert.notInclude(JSON.stringify(settings), SECRET)
    }))

  it.effect("Kafka.layer with a leaking sasl fails the layer with the typed error, secret not in Cause.pretty", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        Effect.provide(
          Effect.service(Kafka.Kafka),
          Kafka.layer({
            bootstrapServers: "a:1",
            sasl: { mechanism: "scram-sha-512", username: "alice", password: SECRET } as never
          }).pipe(Layer.provide(App.layer({ id: "x" })))
        )
      )
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        assert.notInclude(Cause.pretty(exit.cause), SECRET)
        assert.notInclude(inspect(exit, { depth: 20 }), SECRET)
        assert.notInclude(JSON.stringify(exit), SECRET)
      }
    }))
})

describe("hostile: Kafka.config from the environment", () => {
  const read = (env: Record<string, string>) =>
    Effect.flatMap(
      Kafka.config.pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord({
        KAFKA_BOOTSTRAP_SERVERS: "a:1",
        ...env
      })))),
      (options) => Kafka.resolve(options, "app")
    )

  it.effect("bad values fail typed (ConfigError or InvalidChannelOptionsError), the password in none of them", () =>
    Effect.gen(function*() {
      const bad: ReadonlyArray<Record<string, string>> = [
        { KAFKA_SASL_MECHANISM: "scram-sha-256" },
        { KAFKA_RETRIES: "many" },
        { KAFKA_RETRIES: "-1" },
        { KAFKA_TOPIC_PARTITIONS: "0" },
        { KAFKA_CONSUMER_MAX_FETCH_SIZE: "0" },
        { KAFKA_COMMIT_INTERVAL: "5 parsecs" },
        { KAFKA_COMPRESSION: "brotli" },
        { KAFKA_TLS: "maybe" },
        { KAFKA_TLS_KEY: `-----BEGIN PRIVATE KEY-----\n${KEY_BODY}` },
        { KAFKA_BOOTSTRAP_SERVERS: "" },
        { KAFKA_BOOTSTRAP_SERVERS: " , " }
      ]
      for (const env of bad) {
        const exit = yield* Effect.exit(read({
          KAFKA_SASL_MECHANISM: "SCRAM-SHA-256",
          KAFKA_SASL_USERNAME: "alice",
          KAFKA_SASL_PASSWORD: SECRET,
          ...env
        }))
        assert.isTrue(Exit.isFailure(exit), JSON.stringify(env))
        if (Exit.isFailure(exit)) {
          const failure = exit.cause.reasons.find(Cause.isFailReason)
          assert.isDefined(failure, `${JSON.stringify(env)}: not a typed failure: ${Cause.pretty(exit.cause)}`)
          const text = Cause.pretty(exit.cause) + inspect(exit, { depth: 20 }) + JSON.stringify(exit)
          assert.notInclude(text, SECRET, JSON.stringify(env))
          assert.notInclude(text, KEY_BODY, JSON.stringify(env))
        }
      }
    }))

  it.effect("KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD without KAFKA_SASL_MECHANISM are not silently dropped", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(read({ KAFKA_SASL_USERNAME: "alice", KAFKA_SASL_PASSWORD: SECRET }))
      // Either refused, or the credentials were kept: never a plaintext connection with credentials ignored.
      if (Exit.isSuccess(exit)) assert.isDefined(exit.value.sasl, "credentials given, sasl silently undefined")
    }))
})

describe("hostile: App / Channel / Topic / Agent options", () => {
  const app = (options: object) => Effect.provide(Effect.service(App.App), App.layer(options as never))

  it.effect("App: a throwing getter or a revoked proxy fails typed", () =>
    Effect.gen(function*() {
      yield* typedFailure(app({
        id: "a",
        get streamBufferMaxsize(): number {
          throw new Error("boom")
        }
      }))
      const { proxy, revoke } = Proxy.revocable({ id: "a" }, {})
      revoke()
      yield* typedFailure(app(proxy))
    }))

  it.effect("App: streamBufferMaxsize Infinity / 1e308 fail naming streamBufferMaxsize", () =>
    Effect.gen(function*() {
      for (const size of [Infinity, -0]) {
        const error = yield* typedFailure(app({ id: "a", streamBufferMaxsize: size }))
        assert.strictEqual(error.option, "streamBufferMaxsize")
      }
    }))

  it.effect("App.layerConfig: STREAM_BUFFER_MAXSIZE=0 fails with InvalidChannelOptionsError naming it", () =>
    Effect.gen(function*() {
      const error = yield* typedFailure(
        Effect.service(App.App).pipe(
          Effect.provide(App.layerConfig("a")),
          Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord({ STREAM_BUFFER_MAXSIZE: "0" })))
        )
      )
      assert.strictEqual(error.option, "streamBufferMaxsize")
    }))

  it.effect("Channel: maxsize Infinity, a throwing getter and a revoked proxy fail typed", () =>
    Effect.gen(function*() {
      const error = yield* typedFailure(Channel.make({ value: Schema.Number, maxsize: Infinity }))
      assert.strictEqual(error.option, "maxsize")
      yield* typedFailure(Channel.make({
        value: Schema.Number,
        get maxsize(): number {
          throw new Error("boom")
        }
      }))
      const { proxy, revoke } = Proxy.revocable({ value: Schema.Number }, {})
      revoke()
      yield* typedFailure(Channel.make(proxy))
    }).pipe(Effect.provide(App.layer({ id: "a" }))))

  it.effect("Topic: bad partitions / replicas / retention / config / pattern fail typed naming the option", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
        [{ partitions: 0 }, "partitions"],
        [{ partitions: Number.NaN }, "partitions"],
        [{ partitions: 1.5 }, "partitions"],
        [{ partitions: Infinity }, "partitions"],
        [{ replicas: 0 }, "replicas"],
        [{ replicas: -1 }, "replicas"],
        [{ internal: "yes" }, "internal"],
        [{ compacting: 1 }, "compacting"],
        [{ partitions: 2 ** 40 }, "partitions"],
        [{ retention: "forever-ish" }, "retention"],
        [{ config: { "retention.ms": {} } }, "config"],
        [{ config: { "retention.ms": null } }, "config"],
        [{ config: "x" }, "config"],
        [{ topics: undefined, pattern: "(" }, "pattern"],
        [{ acks: "yes" }, "acks"],
        [{ groupId: "" }, "groupId"]
      ]
      yield* everyCase(
        cases,
        ([o]) => inspect(o),
        ([o]) => Topic.make({ topics: ["t"], value: Schema.Number, ...o } as never),
        ([, option]) => option
      )
    }).pipe(Effect.provide(AppKafka)))

  it.effect("Topic: a topic name Kafka cannot hold fails typed naming topics (not later as a broker error)", () =>
    Effect.gen(function*() {
      yield* everyCase(
        ["", "has space", "a/b", "x".repeat(250), ".", ".."],
        (n) => JSON.stringify(n.slice(0, 10)),
        (name) => Topic.make({ topics: [name], value: Schema.Number }),
        () => "topics"
      )
    }).pipe(Effect.provide(AppKafka)))

  it.effect("Topic: a throwing getter fails typed", () =>
    Effect.gen(function*() {
      yield* typedFailure(Topic.make({
        topics: ["t"],
        value: Schema.Number,
        get partitions(): number {
          throw new Error("boom")
        }
      }))
    }).pipe(Effect.provide(AppKafka)))

  it.effect("Agent: bad concurrency / batch / ordering / sinks / timeouts / policies fail typed naming the option", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const cases: ReadonlyArray<readonly [Record<string, unknown>, RegExp]> = [
        [{ concurrency: 0 }, /concurrency/],
        [{ concurrency: Number.NaN }, /concurrency/],
        [{ concurrency: Infinity }, /concurrency/],
        [{ concurrency: 1.5 }, /concurrency/],
        [{ concurrency: "2" }, /concurrency/],
        [{ batch: { size: 0, within: "1 second" } }, /batch/],
        [{ batch: { size: Number.NaN, within: "1 second" } }, /batch/],
        [{ batch: { size: 2, within: -1 } }, /batch/],
        [{ batch: { size: 2, within: "soon" } }, /batch/],
        [{ batch: { size: 2 } }, /batch/],
        [{ ordering: "random" }, /ordering/],
        [{ sinks: [{}] }, /sinks/],
        [{ sinks: [null] }, /sinks/],
        [{ sinks: "x" }, /sinks/],
        [{ shutdownTimeout: -1 }, /shutdownTimeout/],
        [{ shutdownTimeout: Number.NaN }, /shutdownTimeout/],
        [{ batch: { size: 2, within: Number.NaN } }, /batch/],
        [{ onError: "skip" }, /onError/],
        [{ ordering: null }, /ordering/],
        [{ onError: { then: "retry" } }, /onError/],
        [{ onError: { retry: 3 } }, /onError/],
        [{ onError: { then: { deadLetter: 1 } } }, /onError/],
        [{ restart: "always" }, /restart/]
      ]
      yield* everyCase(
        cases,
        ([o]) => inspect(o),
        ([o]) => Agent.forEach("a", channel, () => Effect.void, o as never),
        ([, option]) => option
      )
      // A valid Schedule passes
      yield* Agent.forEach("a", channel, () => Effect.void, { restart: Schedule.recurs(1) })
    }).pipe(Effect.provide(App.layer({ id: "a" }))))

  it.effect("Agent: a throwing getter and a revoked proxy as options fail typed", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      yield* typedFailure(Agent.forEach("a", channel, () => Effect.void, {
        get concurrency(): number {
          throw new Error("boom")
        }
      }))
      const { proxy, revoke } = Proxy.revocable({ concurrency: 2 }, {})
      revoke()
      yield* typedFailure(Agent.forEach("a", channel, () => Effect.void, proxy))
    }).pipe(Effect.provide(App.layer({ id: "a" }))))

  it.effect("Agent: ask with a negative / NaN timeout fails typed (README: 'a negative window or timeout')", () =>
    Effect.gen(function*() {
      const channel = yield* Channel.make({ value: Schema.Number })
      const agent = yield* Agent.forEach("asked", channel, (n) => Effect.succeed(n + 1))
      for (const timeout of [-1, Number.NaN, "never-ish"]) {
        const exit = yield* Effect.exit(
          agent.ask({ value: 1, timeout: timeout as never }).pipe(Effect.timeout("2 seconds"))
        )
        assert.isTrue(Exit.isFailure(exit), String(timeout))
        if (Exit.isFailure(exit)) {
          const failure = exit.cause.reasons.find(Cause.isFailReason)
          assert.instanceOf(
            failure?.error,
            InvalidChannelOptionsError,
            `${String(timeout)}: ${Cause.pretty(exit.cause)}`
          )
        }
      }
    }).pipe(Effect.provide(App.layer({ id: "a" }))))
})
