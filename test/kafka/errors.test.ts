/**
 * Errors that name their cause: a broker that cannot be reached, a topic
 * that does not exist while declaring is off, a record over the broker's
 * limit, refused credentials. The unreachable broker needs no broker; the
 * others run against the real one.
 */
import { assert, describe, it } from "@effect/vitest"
import { AuthenticationError, MultipleErrors, NetworkError, ProtocolError, UserError } from "@platformatic/kafka"
import { Cause, Effect, Exit, Layer, Schema } from "effect"
import { App } from "effect-faust"
import { Kafka, KafkaError, Topic } from "effect-faust/kafka"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { explain, isTransient } from "../../src/kafka/internal/explain.ts"
import { brokerAvailable, kafkaLayer, unique } from "./setup.ts"

const failure = <A, E>(exit: Exit.Exit<A, E>): unknown =>
  Exit.isFailure(exit) ? Cause.squash(exit.cause) : assert.fail("expected a failure")

describe("KafkaError says what went wrong", () => {
  it.live(
    "a broker that cannot be reached: the addresses tried and the OS error, from the first operation",
    () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(
          Effect.gen(function*() {
            const topic = yield* Topic.make({ topics: [unique("nowhere")], value: Schema.String })
            yield* topic.send({ value: "x" })
          }).pipe(
            Effect.provide(
              Kafka.layer({ bootstrapServers: "127.0.0.1:1,127.0.0.1:2", retries: 0, connectTimeout: "2 seconds" })
                .pipe(
                  Layer.provideMerge(App.layer({ id: unique("unreachable") }))
                )
            )
          )
        )
        const error = failure(exit)
        assert.instanceOf(error, KafkaError)
        assert.include(
          (error as KafkaError).message,
          "could not reach any broker of 127.0.0.1:1, 127.0.0.1:2 (ECONNREFUSED)"
        )
      }),
    30_000
  )

  it("explains the client's nested errors, and nothing it does not recognise", () => {
    const network = (address: string) =>
      Object.assign(new Error(`Connection to ${address} failed.`), {
        code: "PLT_KFK_NETWORK",
        cause: Object.assign(new Error("connect"), { code: "ETIMEDOUT" })
      })
    const multiple = Object.assign(new Error("Cannot connect to any broker."), {
      code: "PLT_KFK_MULTIPLE",
      errors: [network("a:1"), network("b:2")]
    })
    assert.strictEqual(
      explain(multiple),
      "could not reach any broker of a:1, b:2 (ETIMEDOUT): is the broker running, and are KAFKA_BOOTSTRAP_SERVERS / bootstrapServers right?"
    )
    const sasl = Object.assign(new Error("failed"), { code: "PLT_KFK_PROTOCOL", apiId: "SASL_AUTHENTICATION_FAILED" })
    assert.include(explain({ errors: [sasl] })!, "refused the credentials")
    assert.include(
      explain(Object.assign(new Error("x"), { apiId: "MESSAGE_TOO_LARGE" }))!,
      "larger than the broker accepts"
    )
    assert.include(
      explain(Object.assign(new Error("x"), { apiId: "UNKNOWN_TOPIC_OR_PARTITION" }))!,
      "topicAllowDeclare"
    )
    assert.isUndefined(explain(new Error("something else")))
    const circular: Record<string, unknown> = { code: "PLT_KFK_MULTIPLE" }
    circular.errors = [circular]
    circular.cause = circular
    assert.isUndefined(explain(circular))
    const hostile = new Proxy({}, {
      get() {
        throw new Error("no")
      }
    })
    assert.isUndefined(explain(hostile))
    assert.isUndefined(explain(Object.create(null)))
  })

  it("tells a failure the client deems passing (a consumer reads on) from any other", () => {
    const refused = new NetworkError("Connection to 127.0.0.1:9092 failed.")
    const staleSession = new ProtocolError("INVALID_FETCH_SESSION_EPOCH")
    const gaveUp = (...errors: Array<Error>) => new MultipleErrors(`fetch failed ${errors.length} times.`, errors)
    assert.isTrue(isTransient(refused))
    assert.isTrue(isTransient(gaveUp(new NetworkError("Connection closed"), refused, staleSession)))
    assert.isTrue(isTransient(gaveUp(gaveUp(refused), new ProtocolError("NOT_LEADER_OR_FOLLOWER"))))
    // one error the client would not retry, anywhere in what it gathered
    assert.isFalse(isTransient(gaveUp(refused, new ProtocolError("TOPIC_AUTHORIZATION_FAILED"))))
    assert.isFalse(isTransient(gaveUp(refused, new AuthenticationError("SASL authentication failed"))))
    assert.isFalse(isTransient(new UserError("Failed to deserialize a message.")))
    // not the client's
    assert.isFalse(isTransient(Object.assign(new Error("Connection closed"), { code: "PLT_KFK_NETWORK" })))
    assert.isFalse(isTransient(undefined))
    assert.isFalse(isTransient(new Proxy(new Error("x"), { get: () => assert.fail("read") })))
  })

  it("an example prints one line for it and exits 1, without a stack", () => {
    const result = spawnSync("npx", ["tsx", fileURLToPath(new URL("../../examples/word-count.ts", import.meta.url))], {
      env: { ...process.env, KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:1" },
      encoding: "utf8",
      timeout: 60_000
    })
    assert.strictEqual(result.status, 1)
    const lines = result.stderr.trim().split("\n")
    assert.strictEqual(lines.length, 1, result.stderr)
    assert.match(
      lines[0],
      /^word-count: Kafka declare failed .*could not reach any broker of 127\.0\.0\.1:1 \(ECONNREFUSED\)/
    )
  }, 60_000)
})

describe.skipIf(!brokerAvailable)("KafkaError on a broker", () => {
  it.live(
    "a topic that does not exist while declaring is off: says to create it or allow declaring",
    () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(
          Effect.gen(function*() {
            const topic = yield* Topic.make({ topics: [unique("missing")], value: Schema.String })
            yield* topic.send({ value: "x" })
          }).pipe(Effect.provide(kafkaLayer({ topicAllowDeclare: false, retries: 1 })))
        )
        const error = failure(exit)
        assert.instanceOf(error, KafkaError)
        assert.include((error as KafkaError).message, "topic does not exist")
      }),
    60_000
  )

  it.live("a record over the broker's size limit: says so and what to change", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        Effect.gen(function*() {
          const topic = yield* Topic.make({ topics: [unique("large")], value: Schema.String })
          yield* topic.send({ value: "x".repeat(2_000_000) })
        }).pipe(Effect.provide(kafkaLayer()))
      )
      const error = failure(exit)
      assert.instanceOf(error, KafkaError)
      assert.include((error as KafkaError).message, "larger than the broker accepts")
    }), 60_000)
})
