/**
 * Secured connections: TLS and SASL settings, their rules and environment
 * variables, and what a refused connection says. The broker part runs
 * against a real SASL_SSL listener (`npm run kafka:up -- --secure`, which
 * writes what a client needs to `.kafka/secure.json`; elsewhere name that
 * file with KAFKA_SECURE_JSON) and is skipped with one line when none
 * answers.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, Exit, Layer, Logger, Metric, Redacted, Schema, Stream } from "effect"
import { App, InvalidChannelOptionsError } from "effect-faust"
import { Kafka, KafkaError, Topic } from "effect-faust/kafka"
import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { inspect } from "node:util"
import { explain } from "../../src/kafka/internal/explain.ts"
import { reachable } from "./reachable.ts"
import { unique } from "./setup.ts"

interface SecureBroker {
  readonly bootstrapServers: string
  readonly ca: string
  readonly scram: { readonly username: string; readonly password: string }
  readonly plain: { readonly username: string; readonly password: string }
}

const secureJson = process.env.KAFKA_SECURE_JSON ??
  `${process.env.KAFKA_DIR ?? fileURLToPath(new URL("../../.kafka", import.meta.url))}/secure.json`

const broker: SecureBroker | undefined = existsSync(secureJson)
  ? JSON.parse(readFileSync(secureJson, "utf8"))
  : undefined
const secureAvailable = broker !== undefined && await reachable(broker.bootstrapServers)

if (!secureAvailable) {
  console.warn(
    `Secure Kafka tests skipped: no SASL_SSL listener answers (${secureJson}) — start one with \`npm run kafka:up -- --secure\`.`
  )
}

const pem = (name: string) => `-----BEGIN ${name}-----\nMIIB${"A".repeat(60)}\n-----END ${name}-----\n`

const optionsError = <A, E>(exit: Exit.Exit<A, E>): InvalidChannelOptionsError => {
  const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : assert.fail("expected a failure")
  assert.instanceOf(error, InvalidChannelOptionsError)
  return error as InvalidChannelOptionsError
}

const resolve = (options: Partial<Kafka.Options>) =>
  Effect.exit(Kafka.resolve({ bootstrapServers: "127.0.0.1:9092", ...options }, "app"))

describe("Kafka settings for secured connections", () => {
  it.effect("resolve TLS, SASL and compression, secrets redacted", () =>
    Effect.gen(function*() {
      const settings = yield* Kafka.resolve({
        bootstrapServers: "kafka.example.com:9093",
        tls: { ca: pem("CERTIFICATE"), servername: "kafka.example.com" },
        sasl: { mechanism: "SCRAM-SHA-512", username: "orders", password: "hunter2-secret" },
        compression: "gzip"
      }, "app")
      assert.strictEqual(settings.tls?.servername, "kafka.example.com")
      assert.include(settings.tls?.ca, "BEGIN CERTIFICATE")
      assert.strictEqual(settings.compression, "gzip")
      const sasl = settings.sasl!
      assert.strictEqual(sasl.mechanism, "SCRAM-SHA-512")
      if (sasl.mechanism === "OAUTHBEARER") return assert.fail("expected SCRAM")
      assert.strictEqual(Redacted.value(sasl.password), "hunter2-secret")
      for (const shown of [JSON.stringify(settings), inspect(settings, { depth: 10 }), String(sasl.password)]) {
        assert.notInclude(shown, "hunter2-secret")
      }
      const defaults = yield* Kafka.resolve({ bootstrapServers: "127.0.0.1:9092" }, "app")
      assert.isUndefined(defaults.tls)
      assert.isUndefined(defaults.sasl)
      assert.strictEqual(defaults.compression, "none")
      assert.deepStrictEqual((yield* Kafka.resolve({ bootstrapServers: "a:1", tls: true }, "app")).tls, {})
      assert.isUndefined((yield* Kafka.resolve({ bootstrapServers: "a:1", tls: false }, "app")).tls)
      const oauth = yield* Kafka.resolve({
        bootstrapServers: "a:1",
        tls: true,
        sasl: { mechanism: "OAUTHBEARER", token: Effect.succeed("eyJ-token-secret") }
      }, "app")
      assert.notInclude(JSON.stringify(oauth), "eyJ-token-secret")
      assert.notInclude(inspect(oauth, { depth: 10 }), "eyJ-token-secret")
    }))

  it.effect("each invalid value fails naming kafka.<option>; a secret given is never shown", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Partial<Kafka.Options>, string]> = [
        [{ tls: "yes" as never }, "kafka.tls"],
        [{ tls: { ca: "/no/such/ca.pem" } }, "kafka.tls.ca"],
        [{ tls: { ca: "not a certificate" } }, "kafka.tls.ca"],
        [{ tls: { cert: pem("CERTIFICATE") } }, "kafka.tls.key"],
        [{ tls: { servername: "" } }, "kafka.tls.servername"],
        [{ sasl: "alice:secret" as never }, "kafka.sasl"],
        [{ sasl: { mechanism: "GSSAPI", username: "a", password: "b" } as never }, "kafka.sasl.mechanism"],
        [{ sasl: { mechanism: "PLAIN", username: "alice" } as never }, "kafka.sasl.password"],
        [{ sasl: { mechanism: "SCRAM-SHA-256", password: "p" } as never }, "kafka.sasl.username"],
        [{ sasl: { mechanism: "SCRAM-SHA-256", username: "alice", password: "" } }, "kafka.sasl.password"],
        [{ sasl: { mechanism: "OAUTHBEARER" } as never }, "kafka.sasl.token"],
        [{ sasl: { mechanism: "OAUTHBEARER", token: "raw" } as never }, "kafka.sasl.token"],
        [{ compression: "brotli" as never }, "kafka.compression"]
      ]
      for (const [options, option] of cases) {
        const error = optionsError(yield* resolve(options))
        assert.strictEqual(error.option, option, JSON.stringify(options))
      }
      const key = "-----BEGIN PRIVATE KEY----- oops, a key pasted wrong hunter2-secret"
      const error = optionsError(yield* resolve({ tls: { cert: pem("CERTIFICATE"), key: key.slice(0, 20) } }))
      assert.strictEqual(error.option, "kafka.tls.key")
      const shownKey = optionsError(yield* resolve({ tls: { cert: pem("CERTIFICATE"), key: "hunter2-secret" } }))
      for (const shown of [shownKey.message, JSON.stringify(shownKey), inspect(shownKey)]) {
        assert.notInclude(shown, "hunter2-secret")
      }
    }))

  it.effect("zstd is offered where the client has it (node:zlib's zstd), else refused saying why", () =>
    Effect.gen(function*() {
      const exit = yield* resolve({ compression: "zstd" })
      if (Exit.isSuccess(exit)) return
      assert.include(optionsError(exit).reason, "zstd needs Node.js 22.15")
    }))

  it.effect("layerConfig reads them from the environment, the secrets as Redacted", () =>
    Effect.gen(function*() {
      const options = yield* Kafka.config.pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord({
        KAFKA_BOOTSTRAP_SERVERS: "kafka.example.com:9093",
        KAFKA_TLS_CA: pem("CERTIFICATE"),
        KAFKA_TLS_SERVERNAME: "kafka.example.com",
        KAFKA_SASL_MECHANISM: "SCRAM-SHA-256",
        KAFKA_SASL_USERNAME: "orders",
        KAFKA_SASL_PASSWORD: "hunter2-secret",
        KAFKA_COMPRESSION: "lz4"
      }))))
      assert.strictEqual(options.compression, "lz4")
      assert.deepStrictEqual(options.tls, { ca: pem("CERTIFICATE"), servername: "kafka.example.com" })
      const sasl = options.sasl!
      assert.strictEqual(sasl.mechanism, "SCRAM-SHA-256")
      if (sasl.mechanism === "OAUTHBEARER") return assert.fail("expected SCRAM")
      assert.isTrue(Redacted.isRedacted(sasl.password))
      assert.notInclude(inspect(options, { depth: 10 }), "hunter2-secret")
      const settings = yield* Kafka.resolve(options, "app")
      assert.notInclude(JSON.stringify(settings), "hunter2-secret")

      const read = (env: Record<string, string>) =>
        Kafka.config.pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord({
          KAFKA_BOOTSTRAP_SERVERS: "a:1",
          ...env
        }))))
      assert.strictEqual((yield* read({ KAFKA_TLS: "true" })).tls, true)
      assert.strictEqual((yield* read({ KAFKA_TLS: "false", KAFKA_TLS_CA: pem("CERTIFICATE") })).tls, false)
      assert.isUndefined((yield* read({})).tls)
      assert.isUndefined((yield* read({})).sasl)
      const oauth = yield* read({ KAFKA_SASL_MECHANISM: "OAUTHBEARER", KAFKA_SASL_OAUTHBEARER_TOKEN: "tok-secret" })
      const token = oauth.sasl?.mechanism === "OAUTHBEARER" ? yield* oauth.sasl.token : undefined
      assert.strictEqual(Redacted.isRedacted(token) ? Redacted.value(token) : token, "tok-secret")
      const missing = optionsError(
        yield* Effect.exit(Effect.flatMap(read({ KAFKA_SASL_MECHANISM: "PLAIN" }), (o) => Kafka.resolve(o, "app")))
      )
      assert.strictEqual(missing.option, "kafka.sasl.username")
    }))

  it("explains TLS and SASL failures in one line", () => {
    const network = (cause: unknown) =>
      Object.assign(new Error("Connection to b:9094 failed."), { code: "PLT_KFK_NETWORK", cause })
    const tlsError = (code: string, message: string) => Object.assign(new Error(message), { code })
    const multiple = (...errors: Array<unknown>) =>
      Object.assign(new Error("Cannot connect to any broker."), { code: "PLT_KFK_MULTIPLE", errors })
    for (
      const code of ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", "SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT"]
    ) {
      const line = explain(multiple(network(tlsError(code, "x"))))!
      assert.include(line, "the broker's certificate is not trusted")
      assert.include(line, code)
      assert.include(line, "tls.ca")
    }
    assert.include(
      explain(multiple(network(tlsError("ERR_TLS_CERT_ALTNAME_INVALID", "Host: a. is not in the cert's altnames"))))!,
      "the broker's certificate is not for the name connected to"
    )
    assert.include(explain(network(tlsError("CERT_HAS_EXPIRED", "certificate has expired")))!, "not valid now")
    const user = (message: string, cause?: unknown) =>
      Object.assign(new Error(message), { code: "PLT_KFK_USER", cause })
    assert.include(explain(multiple(user("Broker requires TLS.")))!, "expects TLS and the client connected without it")
    assert.include(
      explain(network(user("TLS handshake failed. Please verify the broker supports TLS.")))!,
      "connected with TLS to a listener that does not speak TLS"
    )
    const auth = (message: string, cause?: unknown) =>
      Object.assign(new Error(message), { code: "PLT_KFK_AUTHENTICATION", cause })
    assert.include(
      explain(network(auth(
        "Cannot find a suitable SASL mechanism.",
        Object.assign(new Error("Connection closed"), { code: "PLT_KFK_NETWORK" })
      )))!,
      "closed the connection at the SASL handshake"
    )
    assert.include(
      explain(network(auth(
        "Cannot find a suitable SASL mechanism.",
        Object.assign(new Error("x"), { code: "PLT_KFK_PROTOCOL", apiId: "UNSUPPORTED_SASL_MECHANISM" })
      )))!,
      "does not enable this SASL mechanism"
    )
    assert.include(explain(network(auth("SASL authentication failed.")))!, "refused the credentials")
  })
})

/** Where the secure broker is, with these credentials. */
const secureLayer = (options: Partial<Kafka.Options> & { readonly appId?: string } = {}) =>
  Kafka.layer({
    bootstrapServers: broker!.bootstrapServers,
    tls: { ca: broker!.ca },
    sasl: { mechanism: "SCRAM-SHA-256", username: broker!.scram.username, password: broker!.scram.password },
    commitInterval: "100 millis",
    sessionTimeout: "6 seconds",
    heartbeatInterval: "500 millis",
    maxWaitTime: "100 millis",
    topicPartitions: 1,
    ...options
  }).pipe(Layer.provideMerge(App.layer({ id: options.appId ?? unique("secure-app") })))

/** Sends and reads back one record on a fresh topic. */
const roundTrip = Effect.gen(function*() {
  const topic = yield* Topic.make({ topics: [unique("secure")], key: Schema.String, value: Schema.String })
  const metadata = yield* topic.send({ key: "k", value: "over SASL_SSL" })
  const [event] = yield* topic.events().pipe(Stream.take(1), Stream.runCollect)
  assert.strictEqual(event.value, "over SASL_SSL")
  assert.strictEqual(event.message.offset, metadata.offset)
})

/** Fails the first declare and send with `KafkaError`, and how long that took. */
const failedSend = (layer: Layer.Layer<Kafka.Kafka | App.App, InvalidChannelOptionsError>) =>
  Effect.gen(function*() {
    const started = Date.now()
    const exit = yield* Effect.exit(
      Effect.gen(function*() {
        const topic = yield* Topic.make({ topics: [unique("refused")], value: Schema.String })
        yield* topic.send({ value: "x" })
      }).pipe(Effect.provide(layer))
    )
    const elapsed = Date.now() - started
    const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : assert.fail("expected a failure")
    assert.instanceOf(error, KafkaError)
    return { error: error as KafkaError, elapsed, pretty: Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "" }
  })

/** How long a refused connection may take: a few seconds, not retries forever. */
const fast = 8_000

describe.skipIf(!secureAvailable)("Kafka over SASL_SSL", () => {
  it.live(
    "the Topic round trip with SCRAM-SHA-256, compressed with gzip",
    () => roundTrip.pipe(Effect.provide(secureLayer({ compression: "gzip" }))),
    60_000
  )

  it.live("SCRAM-SHA-512, PLAIN, and OAUTHBEARER with a token from an Effect", () =>
    Effect.gen(function*() {
      yield* roundTrip.pipe(Effect.provide(secureLayer({
        sasl: { mechanism: "SCRAM-SHA-512", username: broker!.scram.username, password: broker!.scram.password },
        compression: "lz4"
      })))
      yield* roundTrip.pipe(Effect.provide(secureLayer({
        sasl: { mechanism: "PLAIN", username: broker!.plain.username, password: Redacted.make(broker!.plain.password) },
        compression: "snappy"
      })))
      // The test listener accepts unsigned JWTs (Kafka's unsecured OAUTHBEARER validator).
      let asked = 0
      const base64url = (json: object) => Buffer.from(JSON.stringify(json)).toString("base64url")
      const token = Effect.sync(() => {
        asked++
        const now = Math.floor(Date.now() / 1000)
        return `${base64url({ alg: "none" })}.${base64url({ sub: "faust-oauth", iat: now, exp: now + 600 })}.`
      })
      yield* roundTrip.pipe(Effect.provide(secureLayer({ sasl: { mechanism: "OAUTHBEARER", token } })))
      assert.isAbove(asked, 0)
    }), 90_000)

  it.live(
    "a wrong password fails fast, saying the credentials were refused, and shows no secret",
    () =>
      Effect.gen(function*() {
        const password = `wrong-${unique("password")}`
        const { elapsed, error, pretty } = yield* failedSend(secureLayer({
          sasl: { mechanism: "SCRAM-SHA-256", username: broker!.scram.username, password }
        }))
        assert.include(error.message, "the broker refused the credentials")
        assert.isBelow(elapsed, fast)
        for (const shown of [error.message, JSON.stringify(error), pretty, inspect(error, { depth: 10 })]) {
          assert.notInclude(shown, password)
          assert.notInclude(shown, broker!.scram.password)
        }
      }),
    30_000
  )

  it.live("a consumer with a wrong password fails its stream fast too", () =>
    Effect.gen(function*() {
      const password = `wrong-${unique("password")}`
      const started = Date.now()
      const exit = yield* Effect.exit(
        Effect.gen(function*() {
          const topic = yield* Topic.make({ topics: [unique("refused")], value: Schema.String })
          yield* topic.events().pipe(Stream.take(1), Stream.runDrain)
        }).pipe(Effect.provide(secureLayer({
          topicAllowDeclare: false,
          sasl: { mechanism: "SCRAM-SHA-512", username: broker!.scram.username, password }
        })))
      )
      const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : assert.fail("expected a failure")
      assert.instanceOf(error, KafkaError)
      assert.include((error as KafkaError).message, "the broker refused the credentials")
      assert.isBelow(Date.now() - started, fast)
    }), 30_000)

  it.live("a certificate from a CA the client does not trust fails fast, saying so", () =>
    Effect.gen(function*() {
      const { elapsed, error } = yield* failedSend(secureLayer({ tls: true }))
      assert.include(error.message, "the broker's certificate is not trusted")
      assert.isBelow(elapsed, fast)
      const wrongName = yield* failedSend(secureLayer({ tls: { ca: broker!.ca, servername: "kafka.example.com" } }))
      assert.include(wrongName.error.message, "not for the name connected to")
      assert.isBelow(wrongName.elapsed, fast)
    }), 30_000)

  it.live("a plaintext client on the TLS port fails fast, saying TLS is missing", () =>
    Effect.gen(function*() {
      const withSasl = yield* failedSend(secureLayer({ tls: false }))
      assert.include(withSasl.error.message, "a TLS (SASL_SSL) listener needs tls on in the client")
      assert.isBelow(withSasl.elapsed, fast)
      const bare = yield* failedSend(secureLayer({ tls: false, sasl: undefined }))
      assert.include(bare.error.message, "expects TLS and the client connected without it")
      assert.isBelow(bare.elapsed, fast)
    }), 30_000)

  it.live("no credential in the settings' JSON, the logs or the metrics' labels", () =>
    Effect.gen(function*() {
      const logged: Array<string> = []
      yield* Effect.gen(function*() {
        const kafka = yield* Kafka.Kafka
        yield* Effect.logInfo("settings", kafka.settings)
        const topic = yield* Topic.make({ topics: [unique("secure-metrics")], value: Schema.String })
        yield* topic.registerMetrics
        yield* topic.send({ value: "counted" })
        yield* topic.events().pipe(Stream.take(1), Stream.runDrain)
        logged.push(JSON.stringify(kafka.settings), inspect(kafka.settings, { depth: 10 }))
        const snapshots = yield* Metric.snapshot
        logged.push(JSON.stringify(snapshots.map((snapshot) => [snapshot.id, snapshot.attributes])))
        assert.isAbove(snapshots.length, 0)
      }).pipe(
        Effect.provide(Layer.mergeAll(
          secureLayer(),
          Layer.succeed(Metric.MetricRegistry, new Map()),
          Logger.layer([Logger.make(({ message }) => logged.push(inspect(message, { depth: 10 })))])
        ))
      )
      assert.isAbove(logged.length, 3)
      for (const line of logged) assert.notInclude(line, broker!.scram.password)
    }), 60_000)
})
