/**
 * The Kafka connection of an app: settings, one idempotent producer with its
 * send buffer, and an admin client, all scoped to the {@link layer} (closed on
 * shutdown, after the buffer is flushed). Topics (`Topic.make`) use it to
 * produce, declare and consume; each topic's consumer sessions also live in
 * its scope. Client: `@platformatic/kafka`.
 *
 * @since 0.1.0
 */
import { Admin, findErrorBy, Producer } from "@platformatic/kafka"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { App } from "../App.ts"
import type { InvalidChannelOptionsError } from "../Errors.ts"
import type { Headers } from "../Message.ts"
import * as RecordMetadata from "../RecordMetadata.ts"
import * as capabilities from "./internal/capabilities.ts"
import { fromBrokers } from "./internal/explain.ts"
import * as kafkaOptions from "./internal/kafkaOptions.ts"
import { answeringLeaders, awaitLeaders } from "./internal/leaders.ts"
import * as security from "./internal/security.ts"
import * as sendBuffer from "./internal/sendBuffer.ts"

import { KafkaError } from "./KafkaError.ts"

export { KafkaError }

/**
 * The Kafka settings, with Faust's names where Faust has one
 * (`broker_commit_interval` is `commitInterval`, and so on). Durations are
 * effect `Duration` inputs (`"5 seconds"`, `500`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `host:port` of one or more brokers; a string may list several, comma-separated. */
  readonly bootstrapServers: string | ReadonlyArray<string>
  /** Defaults to the app id. */
  readonly clientId?: string | undefined
  /** The consumer group of every topic's stream; defaults to the app id (as in Faust). */
  readonly groupId?: string | undefined
  /** How long to wait for a TCP connection to a broker (default 5 seconds). */
  readonly connectTimeout?: Duration.Input | undefined
  /** How long to wait for a broker's answer (default 30 seconds). */
  readonly requestTimeout?: Duration.Input | undefined
  /** Retries of a failed request before it fails with `KafkaError` (default 3). */
  readonly retries?: number | undefined
  /** Pause between retries (default 250 millis). */
  readonly retryDelay?: Duration.Input | undefined
  /** Consumer group session timeout (default 10 seconds). */
  readonly sessionTimeout?: Duration.Input | undefined
  /** How long the group waits for members to rejoin (default: `sessionTimeout`). */
  readonly rebalanceTimeout?: Duration.Input | undefined
  /** Consumer heartbeats (default 1 second). */
  readonly heartbeatInterval?: Duration.Input | undefined
  /** How long a fetch waits for new records (default 500 millis). */
  readonly maxWaitTime?: Duration.Input | undefined
  /** How often acknowledged offsets are committed (Faust's default, 2.8 seconds). */
  readonly commitInterval?: Duration.Input | undefined
  /** Where a group without a committed offset starts (Faust's default, `"earliest"`). */
  readonly autoOffsetReset?: "earliest" | "latest" | undefined
  /** Partitions of a declared topic that does not set them (Faust's default, 8). */
  readonly topicPartitions?: number | undefined
  /** Replicas of a declared topic that does not set them (default 1). */
  readonly topicReplicationFactor?: number | undefined
  /** Whether `declare` creates topics (Faust's `topic_allow_declare`, default true). */
  readonly topicAllowDeclare?: boolean | undefined
  /**
   * Bytes a fetch brings of one partition at most (Faust's
   * `consumer_max_fetch_size`, Kafka's `max.partition.fetch.bytes`; default
   * 1 MiB, Kafka's, where Faust's is 4 MiB). Every record of a fetch is parsed
   * at once, so this bounds what a consumer holds per partition beyond its
   * subscriber queues; small records read faster with 1 MiB than with 4 (the
   * collector has fewer live records to carry: see the README's Performance).
   */
  readonly consumerMaxFetchSize?: number | undefined
  /** Records per produce request at most (default 1000). */
  readonly maxBatchSize?: number | undefined
  /** Records the send buffer holds before senders wait (default 10000). */
  readonly bufferMaxsize?: number | undefined
  /**
   * TLS to the brokers (with {@link sasl}, half of Faust's
   * `broker_credentials`): `true` trusts the system's certificate
   * authorities; an object names the CA to trust instead, a client
   * certificate and key, the server name to check. The broker's certificate
   * is always checked against the name connected to (or `servername`).
   */
  readonly tls?: boolean | TlsOptions | undefined
  /** SASL authentication (the other half of Faust's `broker_credentials`). */
  readonly sasl?: SaslOptions | undefined
  /** How the producer compresses batches (Faust's `producer_compression_type`, default `"none"`). */
  readonly compression?: Compression | undefined
}

/**
 * A secret given as text or as an effect `Redacted` (what `Config.Redacted`
 * reads). It is kept `Redacted` in the {@link Settings}, so that logs, errors
 * and JSON show `<redacted>`.
 *
 * @since 0.2.0
 * @category models
 */
export type Secret = string | Redacted.Redacted<string>

/**
 * TLS options. `ca`, `cert` and `key` are PEM text, or the path of a PEM
 * file (read when the settings are resolved).
 *
 * @since 0.2.0
 * @category models
 */
export interface TlsOptions {
  /** The certificate authorities to trust instead of the system's (a hosted cluster's CA file). */
  readonly ca?: string | undefined
  /** A client certificate (mutual TLS), with {@link key}. */
  readonly cert?: string | undefined
  /** The client certificate's private key. */
  readonly key?: Secret | undefined
  /** The name the broker's certificate must be issued for, and the SNI name sent (default: the broker's host). */
  readonly servername?: string | undefined
}

/**
 * SASL authentication: a user name and password (`PLAIN` — only over TLS —
 * or `SCRAM-SHA-256` / `SCRAM-SHA-512`), or an OAuth bearer token from an
 * Effect run on each connection (`OAUTHBEARER`; fetch or refresh the token
 * there).
 *
 * @since 0.2.0
 * @category models
 */
export type SaslOptions =
  | {
    readonly mechanism: "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
    readonly username: string
    readonly password: Secret
  }
  | {
    readonly mechanism: "OAUTHBEARER"
    readonly token: Effect.Effect<Secret, unknown>
  }

/**
 * The producer's compression codecs (those of `@platformatic/kafka`; `zstd`
 * needs Node.js 22.15 or later).
 *
 * @since 0.2.0
 * @category models
 */
export type Compression = "none" | "gzip" | "snappy" | "lz4" | "zstd"

/**
 * {@link TlsOptions} resolved: PEM text (files read), the key redacted.
 *
 * @since 0.2.0
 * @category models
 */
export interface TlsSettings {
  readonly ca?: string | undefined
  readonly cert?: string | undefined
  readonly key?: Redacted.Redacted<string> | undefined
  readonly servername?: string | undefined
}

/**
 * {@link SaslOptions} resolved: the password redacted, and the token
 * provider too (it may hold a token).
 *
 * @since 0.2.0
 * @category models
 */
export type SaslSettings =
  | {
    readonly mechanism: "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
    readonly username: string
    readonly password: Redacted.Redacted<string>
  }
  | {
    readonly mechanism: "OAUTHBEARER"
    readonly token: Redacted.Redacted<Effect.Effect<Redacted.Redacted<string>, unknown>>
  }

/**
 * {@link Options} with every default applied and durations in milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  readonly bootstrapServers: ReadonlyArray<string>
  readonly clientId: string
  readonly groupId: string
  readonly connectTimeout: number
  readonly requestTimeout: number
  readonly retries: number
  readonly retryDelay: number
  readonly sessionTimeout: number
  readonly rebalanceTimeout: number
  readonly heartbeatInterval: number
  readonly maxWaitTime: number
  readonly commitInterval: number
  readonly autoOffsetReset: "earliest" | "latest"
  readonly topicPartitions: number
  readonly topicReplicationFactor: number
  readonly topicAllowDeclare: boolean
  readonly consumerMaxFetchSize: number
  readonly maxBatchSize: number
  readonly bufferMaxsize: number
  readonly tls: TlsSettings | undefined
  readonly sasl: SaslSettings | undefined
  readonly compression: Compression
}

/**
 * A record ready for the broker: key and value already encoded, partition
 * already chosen. `acks: false` does not wait for the broker (its metadata
 * has offset `-1`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ProducerRecord {
  readonly topic: string
  readonly partition: number
  readonly key: Uint8Array | null
  readonly value: Uint8Array | null
  readonly headers: Headers
  /**
   * Headers exactly as bytes, sent instead of `headers` when given: header
   * names that are not UTF-8 and null values survive (a dead letter keeps
   * the header bytes of the record it forwards).
   */
  readonly rawHeaders?: ReadonlyArray<readonly [Uint8Array, Uint8Array | null]> | undefined
  /** Milliseconds since the epoch (create time). */
  readonly timestamp: number
  readonly acks?: boolean | undefined
}

/**
 * How to create a topic: see `Topic.make` for the meaning of each field.
 *
 * @since 0.1.0
 * @category models
 */
export interface TopicSpec {
  readonly topic: string
  readonly partitions: number
  readonly replicas: number
  readonly config: Readonly<Record<string, string>>
}

/**
 * The Kafka service: what topics use to reach the broker, also usable
 * directly (raw records, topic administration).
 *
 * **Example**
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Kafka } from "effect-faust/kafka"
 *
 * const program = Effect.gen(function*() {
 *   const kafka = yield* Kafka.Kafka
 *   yield* kafka.createTopic({ topic: "audit", partitions: 1, replicas: 1, config: {} })
 *   const [metadata] = yield* kafka.produce([{
 *     topic: "audit",
 *     partition: 0,
 *     key: null,
 *     value: new TextEncoder().encode("started"),
 *     headers: [],
 *     timestamp: Date.now()
 *   }])
 *   return metadata.offset
 * })
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class Kafka extends Context.Service<Kafka, {
  readonly settings: Settings
  /**
   * Adds a record to the send buffer (waiting while it is full) and returns;
   * `onDone` runs with the record's metadata or error once the broker
   * answers. Records are sent in order, in batches.
   */
  readonly publish: (
    record: ProducerRecord,
    onDone: (exit: Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>) => Effect.Effect<void>
  ) => Effect.Effect<void>
  /** Sends records through the buffer and waits for their metadata, in order. */
  readonly produce: (
    records: ReadonlyArray<ProducerRecord>
  ) => Effect.Effect<Array<RecordMetadata.RecordMetadata>, KafkaError>
  /** Waits until every record published so far has been answered. */
  readonly flush: Effect.Effect<void>
  /** The number of partitions of a topic (from cached metadata). */
  readonly partitionCount: (topic: string) => Effect.Effect<number, KafkaError>
  /** Creates a topic; `false` if it existed already. */
  readonly createTopic: (spec: TopicSpec) => Effect.Effect<boolean, KafkaError>
  /** The names of the cluster's topics (internal ones excluded). */
  readonly topicNames: Effect.Effect<ReadonlyArray<string>, KafkaError>
  /**
   * The layer's scope. Topics keep their consumer sessions in it, so that
   * they end before the producer closes.
   */
  readonly scope: Scope.Scope
}>()("effect-faust/Kafka") {}

/**
 * Validates options and applies defaults; ids default to the app's id.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (options: Options, appId: string): Effect.Effect<Settings, InvalidChannelOptionsError> =>
  Effect.map(kafkaOptions.decode(options), (settings) => ({
    ...settings,
    clientId: settings.clientId ?? appId,
    groupId: settings.groupId ?? appId
  }))

/** How long a topic's partition count is reused: the client's own `metadataMaxAge` default. */
const METADATA_MAX_AGE = 5_000

/**
 * Builds the service in the current scope: the producer and admin clients
 * (connected lazily, on first use) and the fiber that sends the buffer. On
 * scope close the buffer is drained, then the clients close.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(
  function*(settings: Settings): Effect.fn.Return<Kafka["Service"], never, Scope.Scope> {
    const scope = yield* Effect.scope
    const clientOptions = {
      clientId: settings.clientId,
      bootstrapBrokers: [...settings.bootstrapServers],
      connectTimeout: settings.connectTimeout,
      requestTimeout: settings.requestTimeout,
      retries: settings.retries,
      retryDelay: settings.retryDelay,
      ...security.connectionOptions(settings)
    }
    const admin = yield* Effect.acquireRelease(
      Effect.sync(() => new Admin(clientOptions)),
      (client) => Effect.promise(() => client.close().catch(() => undefined))
    )
    // Idempotent: without it the client may write a retried batch twice (seen
    // right after a topic is created); with it the broker drops the duplicate.
    // The client turns `retries` of 1 or less into unbounded retries for an
    // idempotent producer, so at least 2 keeps a dead broker a bounded failure.
    const producer = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Producer({
          ...clientOptions,
          idempotent: true,
          retries: Math.max(settings.retries, 2),
          compression: settings.compression
        })
      ),
      (client) => Effect.promise(() => client.close().catch(() => undefined))
    )
    const { flush, publish, publishAll, publishUnsafe } = yield* sendBuffer.make(producer, settings)

    const brokers = settings.bootstrapServers
    const metadataError = (topic: string) => (cause: unknown) =>
      new KafkaError({ operation: "metadata", topic, cause: fromBrokers(cause, brokers) })
    const partitionCounts = new Map<string, { readonly count: number; readonly expires: number }>()

    capabilities.register(publish, {
      publishAll,
      publishUnsafe,
      partitionCountCached: (topic) => {
        const cached = partitionCounts.get(topic)
        return cached !== undefined && cached.expires > Date.now() ? cached.count : undefined
      }
    })

    return Kafka.of({
      settings,
      scope,
      publish,
      produce: (records) =>
        Effect.flatMap(
          Effect.forEach(records, (record) =>
            Effect.flatMap(Deferred.make<RecordMetadata.RecordMetadata, KafkaError>(), (done) =>
              Effect.as(
                publish(record, (exit) =>
                  Effect.asVoid(Deferred.done(done, exit))),
                done
              ))),
          (all) =>
            Effect.forEach(all, Deferred.await)
        ),
      flush,
      partitionCount: (topic) =>
        Effect.suspend(() => {
          // Asked once per record sent: answered from memory while fresh, as
          // the client's own metadata cache would, without a promise per record.
          const cached = partitionCounts.get(topic)
          if (cached !== undefined && cached.expires > Date.now()) {
            return Effect.succeed(cached.count)
          }
          return Effect.tryPromise({
            try: () => producer.metadata({ topics: [topic] }),
            catch: metadataError(topic)
          }).pipe(Effect.flatMap((metadata) => {
            const count = metadata.topics.get(topic)?.partitionsCount
            if (count === undefined) return Effect.fail(metadataError(topic)(new Error("unknown topic")))
            partitionCounts.set(topic, { count, expires: Date.now() + METADATA_MAX_AGE })
            return Effect.succeed(count)
          }))
        }),
      createTopic: (spec) =>
        Effect.tryPromise({
          try: () =>
            admin.createTopics({
              topics: [spec.topic],
              partitions: spec.partitions,
              replicas: spec.replicas,
              configs: Object.entries(spec.config).map(([name, value]) => ({ name, value }))
            }).then(
              () => true,
              (error) => {
                if (findErrorBy(error, "apiId", "TOPIC_ALREADY_EXISTS") !== null) return false
                throw error
              }
            ),
          catch: (cause) =>
            new KafkaError({ operation: "declare", topic: spec.topic, cause: fromBrokers(cause, brokers) })
        }).pipe(
          // A topic just created is sent to at once (see `leaders.ts`).
          Effect.tap((created) =>
            created ? awaitLeaders(answeringLeaders(producer, admin), spec.topic, settings.requestTimeout) : Effect.void
          )
        ),
      topicNames: Effect.tryPromise({
        try: () => admin.listTopics(),
        catch: (cause) => new KafkaError({ operation: "metadata", cause: fromBrokers(cause, brokers) })
      })
    })
  }
)

/**
 * Provides {@link Kafka} from explicit options. Nothing connects until the
 * first send, declare or stream; the producer and admin client close when
 * the layer is released, after what `sendSoon` buffered has been sent.
 *
 * **Example**
 *
 * ```ts
 * import { Layer } from "effect"
 * import { App } from "effect-faust"
 * import { Kafka } from "effect-faust/kafka"
 *
 * const KafkaLive = Kafka.layer({ bootstrapServers: "127.0.0.1:9092", groupId: "orders-app" }).pipe(
 *   Layer.provideMerge(App.layer({ id: "orders-app" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Kafka, InvalidChannelOptionsError, App> =>
  Layer.effect(
    Kafka,
    Effect.gen(function*() {
      const app = yield* App
      return yield* make(yield* resolve(options, app.id))
    })
  )

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

/**
 * The options as effect `Config` reads them (the environment by default):
 * `KAFKA_BOOTSTRAP_SERVERS` (required, comma-separated), and optionally
 * `KAFKA_CLIENT_ID`, `KAFKA_GROUP_ID`, `KAFKA_COMMIT_INTERVAL`,
 * `KAFKA_SESSION_TIMEOUT`, `KAFKA_REQUEST_TIMEOUT`, `KAFKA_RETRIES`,
 * `KAFKA_AUTO_OFFSET_RESET`, `KAFKA_TOPIC_PARTITIONS`,
 * `KAFKA_TOPIC_REPLICATION_FACTOR`, `KAFKA_TOPIC_ALLOW_DECLARE`,
 * `KAFKA_COMPRESSION` (`producer_compression_type`).
 *
 * Secured connections: `KAFKA_TLS=true` (the system's certificate
 * authorities), or any of `KAFKA_TLS_CA`, `KAFKA_TLS_CERT`, `KAFKA_TLS_KEY`
 * (PEM text or a file's path), `KAFKA_TLS_SERVERNAME`, which turn TLS on
 * too (`KAFKA_TLS=false` turns it off); `KAFKA_SASL_MECHANISM` (`PLAIN`,
 * `SCRAM-SHA-256`, `SCRAM-SHA-512`, `OAUTHBEARER`) with
 * `KAFKA_SASL_USERNAME` and `KAFKA_SASL_PASSWORD`, or with
 * `KAFKA_SASL_OAUTHBEARER_TOKEN` (a fixed token; a token that must be
 * refreshed needs the `sasl` option's Effect). Secrets are read as
 * `Redacted`.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  bootstrapServers: Config.String("KAFKA_BOOTSTRAP_SERVERS"),
  clientId: optional(Config.String("KAFKA_CLIENT_ID")),
  groupId: optional(Config.String("KAFKA_GROUP_ID")),
  commitInterval: optional(Config.Duration("KAFKA_COMMIT_INTERVAL")),
  sessionTimeout: optional(Config.Duration("KAFKA_SESSION_TIMEOUT")),
  requestTimeout: optional(Config.Duration("KAFKA_REQUEST_TIMEOUT")),
  retries: optional(Config.Int("KAFKA_RETRIES")),
  consumerMaxFetchSize: optional(Config.Int("KAFKA_CONSUMER_MAX_FETCH_SIZE")),
  autoOffsetReset: optional(Config.Literals(["earliest", "latest"], "KAFKA_AUTO_OFFSET_RESET")),
  topicPartitions: optional(Config.Int("KAFKA_TOPIC_PARTITIONS")),
  topicReplicationFactor: optional(Config.Int("KAFKA_TOPIC_REPLICATION_FACTOR")),
  topicAllowDeclare: optional(Config.Boolean("KAFKA_TOPIC_ALLOW_DECLARE")),
  compression: optional(Config.Literals(["none", "gzip", "snappy", "lz4", "zstd"], "KAFKA_COMPRESSION")),
  tls: Config.map(
    Config.all({
      enabled: optional(Config.Boolean("KAFKA_TLS")),
      ca: optional(Config.String("KAFKA_TLS_CA")),
      cert: optional(Config.String("KAFKA_TLS_CERT")),
      key: optional(Config.Redacted("KAFKA_TLS_KEY")),
      servername: optional(Config.String("KAFKA_TLS_SERVERNAME"))
    }),
    ({ enabled, ...tls }): Options["tls"] => {
      const given = definedOnly(tls)
      if (enabled === false) return false
      return Object.keys(given).length > 0 ? given : enabled
    }
  ),
  sasl: Config.map(
    Config.all({
      mechanism: optional(
        Config.Literals(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"], "KAFKA_SASL_MECHANISM")
      ),
      username: optional(Config.String("KAFKA_SASL_USERNAME")),
      password: optional(Config.Redacted("KAFKA_SASL_PASSWORD")),
      token: optional(Config.Redacted("KAFKA_SASL_OAUTHBEARER_TOKEN"))
    }),
    ({ mechanism, password, token, username }): Options["sasl"] =>
      // What is missing fails the settings' rule, which names it (kafka.sasl.password, …): credentials
      // without a mechanism are refused rather than dropped (the app would connect unauthenticated).
      mechanism === undefined && username === undefined && password === undefined && token === undefined
        ? undefined
        : {
          mechanism,
          ...definedOnly({ username, password, token: token === undefined ? undefined : Effect.succeed(token) })
        } as SaslOptions
  )
})

/**
 * Provides {@link Kafka} from {@link config}; `overrides` win over what the
 * config read (handy for a per-test `groupId`).
 *
 * **Example**
 *
 * ```ts
 * import { Layer } from "effect"
 * import { App } from "effect-faust"
 * import { Kafka } from "effect-faust/kafka"
 *
 * // KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092
 * const KafkaLive = Kafka.layerConfig().pipe(Layer.provideMerge(App.layerConfig("orders-app")))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<Options>
): Layer.Layer<Kafka, InvalidChannelOptionsError | Config.ConfigError, App> =>
  Layer.unwrap(Effect.map(config, (options) => layer({ ...options, ...definedOnly(overrides ?? {}) })))

/** Drops `undefined` entries, so that an override left unset keeps what the config read. */
const definedOnly = <A extends object>(options: A): Partial<A> =>
  Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<A>
