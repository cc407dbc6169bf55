/**
 * The Kafka connection of an app: settings, one idempotent producer with its
 * send buffer, and an admin client, all scoped to the {@link layer} (closed on
 * shutdown, after the buffer is flushed). Topics (`Topic.make`) use it to
 * produce, declare and consume; each topic's consumer sessions also live in
 * its scope. Client: `@platformatic/kafka`.
 *
 * @since 0.1.0
 */
import { Admin, findErrorBy, ProduceAcks, Producer } from "@platformatic/kafka"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { App } from "../App.ts"
import { describe, InvalidChannelOptionsError, toJSONSafe } from "../Errors.ts"
import type { Headers } from "../Message.ts"
import * as RecordMetadata from "../RecordMetadata.ts"
import * as groupPublish from "./internal/groupPublish.ts"
import type { PublishAll } from "./internal/groupPublish.ts"
import * as partialProduce from "./internal/partialProduce.ts"

/**
 * A call to the broker failed: it is unreachable, refused a request, or a
 * topic operation is impossible. `operation` says what was attempted; `topic`,
 * `partition` and `offset` locate it when known; `cause` is the client's error.
 *
 * @since 0.1.0
 * @category errors
 */
export class KafkaError extends Schema.TaggedError<KafkaError>()("KafkaError", {
  operation: Schema.Literals(["produce", "consume", "commit", "declare", "metadata"]),
  topic: Schema.optional(Schema.String),
  partition: Schema.optional(Schema.Number),
  offset: Schema.optional(Schema.Number),
  cause: Schema.Defect()
}) {
  override get message(): string {
    const where = this.topic === undefined
      ? ""
      : ` on ${this.topic}${this.partition === undefined ? "" : `[${this.partition}]`}${
        this.offset === undefined ? "" : `@${this.offset}`
      }`
    return `Kafka ${this.operation} failed${where}: ${describe(this.cause)}`
  }
  override toJSON(): unknown {
    return toJSONSafe(this)
  }
}

declare module "../Errors.ts" {
  /** A Topic's sends, declares and streams can fail with these. */
  interface TransportErrors {
    readonly KafkaError: KafkaError
    readonly CodecError: CodecError
  }
}

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
  /** Records per produce request at most (default 1000). */
  readonly maxBatchSize?: number | undefined
  /** Records the send buffer holds before senders wait (default 10000). */
  readonly bufferMaxsize?: number | undefined
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
  readonly maxBatchSize: number
  readonly bufferMaxsize: number
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
  /**
   * The number of partitions of a topic if {@link partitionCount} has it
   * cached and fresh, else `undefined`: the per-record fast path. Optional.
   */
  readonly partitionCountUnsafe?: (topic: string) => number | undefined
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

const defaults = {
  connectTimeout: 5_000,
  requestTimeout: 30_000,
  retries: 3,
  retryDelay: 250,
  sessionTimeout: 10_000,
  heartbeatInterval: 1_000,
  maxWaitTime: 500,
  commitInterval: 2_800,
  topicPartitions: 8,
  topicReplicationFactor: 1,
  maxBatchSize: 1_000,
  bufferMaxsize: 10_000
}

/**
 * Validates options and applies defaults; ids default to the app's id.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (options: Options, appId: string): Effect.Effect<Settings, InvalidChannelOptionsError> =>
  Effect.suspend(() => {
    const invalid = (option: string, value: unknown, reason: string) =>
      Effect.fail(new InvalidChannelOptionsError({ option: `kafka.${option}`, value, reason }))
    const servers =
      (typeof options.bootstrapServers === "string" ? [options.bootstrapServers] : options.bootstrapServers)
        .flatMap((entry) => entry.split(","))
        .map((entry) => entry.trim())
        .filter((entry) => entry.length > 0)
    if (servers.length === 0 || servers.some((server) => !/^[^:\s]+:\d+$/.test(server))) {
      return invalid("bootstrapServers", options.bootstrapServers, `must list brokers as "host:port"`)
    }
    const ms: Partial<Record<DurationOption, number>> = {}
    for (const name of durationOptions) {
      const input = options[name]
      const duration = input === undefined ? undefined : Option.getOrUndefined(Duration.fromInput(input))
      if (input !== undefined && duration === undefined) return invalid(name, input, "must be a Duration")
      if (duration !== undefined) ms[name] = Duration.toMillis(duration)
      else if (name !== "rebalanceTimeout") ms[name] = defaults[name]
    }
    const {
      commitInterval,
      connectTimeout,
      heartbeatInterval,
      maxWaitTime,
      requestTimeout,
      retryDelay,
      sessionTimeout
    } = ms as Record<DurationOption, number>
    const rebalanceTimeout = ms.rebalanceTimeout ?? sessionTimeout
    if (heartbeatInterval > sessionTimeout || rebalanceTimeout < sessionTimeout) {
      return invalid(
        "heartbeatInterval",
        options.heartbeatInterval,
        "heartbeatInterval must not exceed sessionTimeout, which must not exceed rebalanceTimeout"
      )
    }
    const counts = {
      retries: options.retries ?? defaults.retries,
      topicPartitions: options.topicPartitions ?? defaults.topicPartitions,
      topicReplicationFactor: options.topicReplicationFactor ?? defaults.topicReplicationFactor,
      maxBatchSize: options.maxBatchSize ?? defaults.maxBatchSize,
      bufferMaxsize: options.bufferMaxsize ?? defaults.bufferMaxsize
    }
    for (const [name, value] of Object.entries(counts)) {
      const least = name === "retries" ? 0 : 1
      if (!Number.isInteger(value) || value < least) {
        return invalid(name, value, `must be an integer of at least ${least}`)
      }
    }
    const autoOffsetReset = options.autoOffsetReset ?? "earliest"
    if (autoOffsetReset !== "earliest" && autoOffsetReset !== "latest") {
      return invalid("autoOffsetReset", autoOffsetReset, `must be "earliest" or "latest"`)
    }
    return Effect.succeed<Settings>({
      bootstrapServers: servers,
      clientId: options.clientId ?? appId,
      groupId: options.groupId ?? appId,
      connectTimeout,
      requestTimeout,
      retryDelay,
      sessionTimeout,
      rebalanceTimeout,
      heartbeatInterval,
      maxWaitTime,
      commitInterval,
      autoOffsetReset,
      topicAllowDeclare: options.topicAllowDeclare ?? true,
      ...counts
    })
  })

const durationOptions = [
  "connectTimeout",
  "requestTimeout",
  "retryDelay",
  "sessionTimeout",
  "rebalanceTimeout",
  "heartbeatInterval",
  "maxWaitTime",
  "commitInterval"
] as const

type DurationOption = (typeof durationOptions)[number]

/** How long a topic's partition count is reused: the client's own `metadataMaxAge` default. */
const METADATA_MAX_AGE = 5_000

/** Records published together with one completion (see `internal/groupPublish.ts`). */
interface Group {
  readonly exits: Array<Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>>
  remaining: number
  readonly onDone: (exits: ReadonlyArray<Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>>) => Effect.Effect<void>
}

/** A record in the send buffer (alone, or one of a group), or a flush marker. */
type Pending =
  | {
    readonly record: ProducerRecord
    readonly onDone: (exit: Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>) => Effect.Effect<void>
  }
  | { readonly record: ProducerRecord; readonly group: Group; readonly index: number }
  | { readonly flushed: Deferred.Deferred<void> }

/** Records an exit of a group member; the group's completion once all are in, else `undefined`. */
const settleMember = (
  pending: { readonly group: Group; readonly index: number },
  exit: Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>
): Effect.Effect<void> | undefined => {
  const group = pending.group
  group.exits[pending.index] = exit
  return --group.remaining === 0 ? group.onDone(group.exits) : undefined
}

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
      retryDelay: settings.retryDelay
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
      Effect.sync(() => new Producer({ ...clientOptions, idempotent: true, retries: Math.max(settings.retries, 2) })),
      (client) => Effect.promise(() => client.close().catch(() => undefined))
    )
    const buffer = yield* Queue.bounded<Pending, Cause.Done>(settings.bufferMaxsize)

    /**
     * Sends a batch: each record's own outcome, in order. When the call fails,
     * the partitions the broker did append still succeed (their records must
     * not be sent again), and a partition refused as too large is sent again
     * one record at a time, so only the record that is too large fails.
     */
    const sendBatch = (
      records: ReadonlyArray<ProducerRecord>,
      acks: boolean
    ): Effect.Effect<Array<Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>>> =>
      Effect.callback<Array<Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>>>((resume) => {
        producer.send({
          acks: acks ? ProduceAcks.ALL : ProduceAcks.NO_RESPONSE,
          idempotent: acks,
          messages: records.map(toClientMessage)
        }).then(
          (result) => {
            const appended = new Map<string, partialProduce.PartitionResult>()
            for (const { offset, partition, topic } of result.offsets ?? []) {
              appended.set(`${topic}:${partition}`, { _tag: "Appended", baseOffset: Number(offset) })
            }
            resume(Effect.succeed(outcomes(records, acks ? appended : undefined, undefined).exits))
          },
          (rejection) => {
            const whole = new KafkaError({
              operation: "produce",
              cause: rejection,
              ...(sameTopic(records) ? { topic: records[0].topic } : {})
            })
            const { exits, resend } = outcomes(records, partialProduce.partitionResults(rejection), whole)
            if (resend.length === 0) return resume(Effect.succeed(exits))
            resume(Effect.as(
              Effect.forEach(resend, (index) =>
                Effect.map(sendBatch([records[index]], acks), ([exit]) => {
                  exits[index] = exit
                }), { discard: true }),
              exits
            ))
          }
        )
      })

    /**
     * Sends a batch and hands each record's result to its completion, in a
     * plain loop: a completion that finishes synchronously returns
     * `Effect.void`, and only the others are run (in order) afterwards.
     */
    const complete = (batch: ReadonlyArray<Pending>) =>
      Effect.gen(function*() {
        const groups = [
          batch.filter((pending) => "record" in pending && pending.record.acks !== false),
          batch.filter((pending) => "record" in pending && pending.record.acks === false)
        ] as const
        for (const [index, group] of groups.entries()) {
          if (group.length === 0) continue
          const items = group as ReadonlyArray<Extract<Pending, { record: ProducerRecord }>>
          const exits = yield* sendBatch(items.map((pending) => pending.record), index === 0)
          let after: Array<Effect.Effect<void>> | undefined
          for (let i = 0; i < items.length; i++) {
            const item = items[i]
            const result = exits[i]
            const done = "onDone" in item ? item.onDone(result) : settleMember(item, result)
            if (done !== undefined && done !== Effect.void) (after ??= []).push(done)
          }
          if (after !== undefined) { for (const done of after) yield* done }
        }
        for (const pending of batch) if ("flushed" in pending) yield* Deferred.succeed(pending.flushed, undefined)
      })

    const sender = yield* Effect.forkIn(
      Effect.catchIf(
        Effect.forever(Effect.flatMap(Queue.takeBetween(buffer, 1, settings.maxBatchSize), complete)),
        Cause.isDone,
        () => Effect.void
      ),
      scope
    )
    // Registered after the clients, so it runs before they close: end the
    // buffer, and let the sender drain what is left.
    yield* Effect.addFinalizer(() => Effect.andThen(Queue.end(buffer), Fiber.await(sender)))

    const shutDown = (record: ProducerRecord) =>
      new KafkaError({ operation: "produce", topic: record.topic, cause: new Error("the Kafka layer is shut down") })

    const publish = (
      record: ProducerRecord,
      onDone: (exit: Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>) => Effect.Effect<void>
    ): Effect.Effect<void> =>
      // Suspended: the record joins the buffer when the effect runs, not when it is built.
      Effect.suspend(() => {
        const pending: Pending = { record, onDone }
        if (Queue.offerUnsafe(buffer, pending)) return Effect.void
        return Effect.flatMap(Queue.offer(buffer, pending), (offered) =>
          offered ? Effect.void : onDone(Exit.fail(shutDown(record))))
      })

    const publishAll: PublishAll = (records, onDone) =>
      Effect.suspend(() => {
        if (records.length === 0) return onDone([])
        const group: Group = { exits: new Array(records.length), remaining: records.length, onDone }
        const pendings: Array<Pending> = records.map((record, index) => ({ record, group, index }))
        const remaining = Queue.offerAllUnsafe(buffer, pendings)
        if (remaining.length === 0) return Effect.void
        // What did not fit waits for room, in order; a shut buffer refuses it.
        return Effect.flatMap(Queue.offerAll(buffer, remaining), (refused) =>
          Effect.suspend(() => {
            let done: Effect.Effect<void> | undefined
            for (const pending of refused as Array<Extract<Pending, { group: Group }>>) {
              done = settleMember(pending, Exit.fail(shutDown(pending.record))) ?? done
            }
            return done ?? Effect.void
          }))
      })

    groupPublish.register(publish, publishAll)

    const metadataError = (topic: string) => (cause: unknown) => new KafkaError({ operation: "metadata", topic, cause })
    const partitionCounts = new Map<string, { readonly count: number; readonly expires: number }>()

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
      flush: Effect.flatMap(
        Deferred.make<void>(),
        (flushed) =>
          Effect.flatMap(Queue.offer(buffer, { flushed }), (offered) => offered ? Deferred.await(flushed) : Effect.void)
      ),
      partitionCountUnsafe: (topic) => {
        const cached = partitionCounts.get(topic)
        return cached !== undefined && cached.expires > Date.now() ? cached.count : undefined
      },
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
          catch: (cause) => new KafkaError({ operation: "declare", topic: spec.topic, cause })
        }),
      topicNames: Effect.tryPromise({
        try: () => admin.listTopics(),
        catch: (cause) => new KafkaError({ operation: "metadata", cause })
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
 * `KAFKA_TOPIC_REPLICATION_FACTOR`, `KAFKA_TOPIC_ALLOW_DECLARE`.
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
  autoOffsetReset: optional(Config.Literals(["earliest", "latest"], "KAFKA_AUTO_OFFSET_RESET")),
  topicPartitions: optional(Config.Int("KAFKA_TOPIC_PARTITIONS")),
  topicReplicationFactor: optional(Config.Int("KAFKA_TOPIC_REPLICATION_FACTOR")),
  topicAllowDeclare: optional(Config.Boolean("KAFKA_TOPIC_ALLOW_DECLARE"))
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

type ClientMessage = Parameters<Producer["send"]>[0]["messages"][number]

/**
 * A record as the client sends it: every message of one shape (the client
 * writes an `undefined` key, value or headers as absent), no headers map
 * when there are none.
 */
const toClientMessage = (record: ProducerRecord): ClientMessage => ({
  topic: record.topic,
  partition: record.partition,
  key: record.key === null ? undefined : toBuffer(record.key),
  value: record.value === null ? undefined : toBuffer(record.value),
  headers: record.rawHeaders !== undefined
    ? new Map(record.rawHeaders.map(([name, value]) => [toBuffer(name), value === null ? null : toBuffer(value)]))
    : record.headers.length === 0
    ? undefined
    : new Map(record.headers.map(([name, value]) => [Buffer.from(name), toBuffer(value)])),
  timestamp: BigInt(record.timestamp)
} as ClientMessage)

const toBuffer = (bytes: Uint8Array | string): Buffer =>
  typeof bytes === "string"
    ? Buffer.from(bytes)
    : Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** Drops `undefined` entries, so that an override left unset keeps what the config read. */
const definedOnly = <A extends object>(options: A): Partial<A> =>
  Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<A>

/**
 * Each record's outcome from its partition's answer (`results`): appended
 * from the partition's base offset, in order; refused with the partition's
 * cause; or, refused as too large in a batch of several, to be sent again
 * alone (`resend`, by index). With no answer for its partition (or no
 * answers at all), a record fails with `whole`; without acks (no answers
 * expected, no failure) it succeeds with offset -1.
 */
const outcomes = (
  records: ReadonlyArray<ProducerRecord>,
  results: Map<string, partialProduce.PartitionResult> | undefined,
  whole: KafkaError | undefined
): { exits: Array<Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>>; resend: Array<number> } => {
  const next = new Map<string, number>()
  // Records per partition, needed only when something was refused.
  const counts = new Map<string, number>()
  if (whole !== undefined) {
    for (const record of records) {
      const key = `${record.topic}:${record.partition}`
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
  }
  const resend: Array<number> = []
  const exits = records.map((record, index): Exit.Exit<RecordMetadata.RecordMetadata, KafkaError> => {
    const key = `${record.topic}:${record.partition}`
    const result = results?.get(key)
    if (result === undefined && whole !== undefined) return Exit.fail(whole)
    if (result !== undefined && result._tag === "Refused") {
      if (result.tooLarge && counts.get(key)! > 1) resend.push(index)
      return Exit.fail(
        new KafkaError({ operation: "produce", topic: record.topic, partition: record.partition, cause: result.cause })
      )
    }
    const offset = result === undefined ? -1 : next.get(key) ?? result.baseOffset
    if (result !== undefined) next.set(key, offset + 1)
    return Exit.succeed(RecordMetadata.make({
      topic: record.topic,
      partition: record.partition,
      offset,
      timestamp: record.timestamp,
      timestampType: 0
    }))
  })
  return { exits, resend }
}

const sameTopic = (records: ReadonlyArray<ProducerRecord>): boolean =>
  records.every((record) => record.topic === records[0].topic)
