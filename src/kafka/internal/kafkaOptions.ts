/**
 * The `Kafka` service's options, validated and normalised by one Schema:
 * each option's rule and default, the broker list and durations decoded,
 * the rule across the timeouts, TLS and SASL (secrets kept `Redacted`) and
 * compression. `Kafka.resolve` adds the app's id as the default ids.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import { readFileSync } from "node:fs"
import * as optionsSchema from "../../internal/optionsSchema.ts"
import type { Compression, Options, SaslOptions, SaslSettings, Secret, Settings } from "../Kafka.ts"
import * as security from "./security.ts"

const withDefault = <S extends Schema.Top>(value: S["Encoded"]) => (schema: S) =>
  schema.pipe(Schema.withDecodingDefault(Effect.succeed(value)))

/** The brokers a `bootstrapServers` option lists, if it lists them as `host:port`. */
const brokerList = (u: unknown): Array<string> | undefined => {
  const entries = typeof u === "string" ? [u] : Array.isArray(u) ? u : undefined
  if (entries === undefined || entries.some((entry) => typeof entry !== "string")) return undefined
  const servers = (entries as Array<string>)
    .flatMap((entry) => entry.split(","))
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0)
  const valid = (server: string) => {
    const port = /^[^:\s]+:(\d+)$/.exec(server)?.[1]
    return port !== undefined && Number(port) >= 1 && Number(port) <= 65_535
  }
  return servers.length > 0 && servers.every(valid) ? servers : undefined
}

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u) && !Redacted.isRedacted(u)

const isNonEmptyString = (u: unknown): u is string => typeof u === "string" && u.length > 0

const nonEmptyString = optionsSchema.rule(isNonEmptyString, "must be a non-empty string")

const PEM = /-----BEGIN [A-Z0-9 ]+-----/

/** PEM text as given, or read from the file a path names; `undefined` if neither. */
const pemText = (u: unknown): string | undefined => {
  if (typeof u !== "string" || u.trim().length === 0) return undefined
  if (PEM.test(u)) return u
  try {
    const text = readFileSync(u, "utf8")
    return PEM.test(text) ? text : undefined
  } catch {
    return undefined
  }
}

const Pem = optionsSchema.parse(
  Schema.String,
  pemText,
  "must be PEM text, or the path of a readable PEM file"
)

const PemKey = optionsSchema.parse(
  optionsSchema.unchecked<Redacted.Redacted<string>>(),
  (u) => {
    const text = pemText(Redacted.isRedacted(u) ? Redacted.value(u) : u)
    return text === undefined ? undefined : Redacted.make(text)
  },
  "must be a PEM private key, or the path of a readable PEM file"
)

/** A secret, kept (or made) `Redacted`. */
const SecretText = optionsSchema.parse(
  optionsSchema.unchecked<Redacted.Redacted<string>>(),
  (u) => {
    if (Redacted.isRedacted(u)) return isNonEmptyString(Redacted.value(u)) ? u as Redacted.Redacted<string> : undefined
    return isNonEmptyString(u) ? Redacted.make(u) : undefined
  },
  "must be a non-empty string or a Redacted one"
)

const TlsSchema = optionsSchema.parse(
  optionsSchema.unchecked<Record<string, unknown> | null>(),
  (u) => u === true ? {} : u === false ? null : isRecord(u) ? u : undefined,
  "must be true, false, or an object with ca, cert, key and servername"
).pipe(Schema.decodeTo(Schema.NullOr(
  Schema.Struct({
    ca: Schema.optional(Pem),
    cert: Schema.optional(Pem),
    key: Schema.optional(PemKey),
    servername: Schema.optional(nonEmptyString)
  }).pipe(Schema.check(Schema.makeFilter((tls) =>
    (tls.cert === undefined) === (tls.key === undefined)
      ? undefined
      : { path: [tls.cert === undefined ? "cert" : "key"], issue: "a client certificate needs both cert and key" }
  )))
)))

const mechanisms: ReadonlyArray<unknown> = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]

const SaslSchema = optionsSchema.parse(
  optionsSchema.unchecked<Record<string, unknown>>(),
  (u) => isRecord(u) ? u : undefined,
  `must be { mechanism, username, password } or { mechanism: "OAUTHBEARER", token }`
).pipe(Schema.decodeTo(
  Schema.Struct({
    mechanism: optionsSchema.rule(
      (u): u is SaslOptions["mechanism"] => mechanisms.includes(u),
      `must be "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512" or "OAUTHBEARER"`
    ),
    username: Schema.optional(nonEmptyString),
    password: Schema.optional(SecretText),
    token: Schema.optional(optionsSchema.rule(
      (u): u is Effect.Effect<Secret, unknown> => Effect.isEffect(u),
      "must be an Effect that gives the token"
    ))
  }).pipe(Schema.check(Schema.makeFilter((sasl) =>
    sasl.mechanism === "OAUTHBEARER"
      ? sasl.token === undefined
        ? { path: ["token"], issue: "OAUTHBEARER needs a token: an Effect that gives it" }
        : undefined
      : sasl.username === undefined || sasl.password === undefined
      ? {
        path: [sasl.username === undefined ? "username" : "password"],
        issue: `${sasl.mechanism} needs a username and a password`
      }
      : undefined
  )))
))

const compressionReason = security.compressionAvailable("zstd")
  ? `must be "none", "gzip", "snappy", "lz4" or "zstd"`
  : `must be "none", "gzip", "snappy" or "lz4" (zstd needs Node.js 22.15 or later; this is ${process.version})`

/** The SASL options as settings: secrets redacted, the token provider too. */
const saslSettings = (sasl: Schema.Schema.Type<typeof SaslSchema> | undefined): SaslSettings | undefined => {
  if (sasl === undefined) return undefined
  if (sasl.mechanism === "OAUTHBEARER") {
    return {
      mechanism: "OAUTHBEARER",
      token: Redacted.make(Effect.map(
        sasl.token!,
        (token): Redacted.Redacted<string> => Redacted.isRedacted(token) ? token : Redacted.make(token)
      ))
    }
  }
  return { mechanism: sasl.mechanism, username: sasl.username!, password: sasl.password! }
}

/**
 * The options with their secrets redacted before anything reads them, so
 * that an invalid one is reported as `<redacted>`.
 */
const redactSecrets = (options: Options): Options => {
  let redacted = options
  const tls: unknown = options.tls
  if (isRecord(tls) && typeof tls.key === "string") {
    redacted = { ...redacted, tls: { ...tls, key: Redacted.make(tls.key) } }
  }
  const sasl: unknown = options.sasl
  if (isRecord(sasl) && typeof sasl.password === "string") {
    redacted = { ...redacted, sasl: { ...sasl, password: Redacted.make(sasl.password) } as SaslOptions }
  }
  return redacted
}

/** Settings as the schema resolves them: the ids still default to the app's. */
type Resolved = Omit<Settings, "clientId" | "groupId"> & {
  readonly clientId?: string | undefined
  readonly groupId?: string | undefined
}

/**
 * The Kafka options as one Schema: each option's rule, its default and
 * normalisation (the broker list split and trimmed, durations in
 * milliseconds), then `rebalanceTimeout` defaulting to `sessionTimeout` and
 * the rule across the three timeouts. Failures name the option with a
 * `kafka.` prefix.
 */
const atMostInt32 = Schema.makeFilter((n: number) => n <= 2_147_483_647, { message: "must be at most 2147483647" })

const OptionsSchema = Schema.Struct({
  // a missing list fails as an empty one does
  bootstrapServers: optionsSchema.parse(Schema.Array(Schema.String), brokerList, `must list brokers as "host:port"`)
    .pipe(withDefault("")),
  clientId: Schema.optional(optionsSchema.unchecked<string>()),
  groupId: Schema.optional(optionsSchema.unchecked<string>()),
  connectTimeout: optionsSchema.Millis.pipe(withDefault(5_000)),
  requestTimeout: optionsSchema.Millis.pipe(withDefault(30_000)),
  retryDelay: optionsSchema.Millis.pipe(withDefault(250)),
  sessionTimeout: optionsSchema.Millis.pipe(withDefault(10_000)),
  rebalanceTimeout: Schema.optional(optionsSchema.Millis),
  heartbeatInterval: optionsSchema.Millis.pipe(withDefault(1_000)),
  maxWaitTime: optionsSchema.Millis.pipe(withDefault(500)),
  commitInterval: optionsSchema.Millis.pipe(withDefault(2_800)),
  retries: optionsSchema.integerOfAtLeast(0).pipe(withDefault(3)),
  // Kafka counts partitions, and a fetch's bytes per partition, in a 32-bit integer.
  topicPartitions: optionsSchema.integerOfAtLeast(1).pipe(Schema.check(atMostInt32), withDefault(8)),
  topicReplicationFactor: optionsSchema.integerOfAtLeast(1).pipe(withDefault(1)),
  consumerMaxFetchSize: optionsSchema.integerOfAtLeast(1).pipe(Schema.check(atMostInt32), withDefault(1024 * 1024)),
  maxBatchSize: optionsSchema.integerOfAtLeast(1).pipe(withDefault(1_000)),
  bufferMaxsize: optionsSchema.integerOfAtLeast(1).pipe(withDefault(10_000)),
  autoOffsetReset: optionsSchema.rule(
    (u): u is "earliest" | "latest" => u === "earliest" || u === "latest",
    `must be "earliest" or "latest"`
  ).pipe(withDefault("earliest")),
  topicAllowDeclare: optionsSchema.unchecked<boolean>().pipe(withDefault(true)),
  tls: Schema.optional(TlsSchema),
  sasl: Schema.optional(SaslSchema),
  compression: optionsSchema.rule(
    (u): u is Compression => typeof u === "string" && security.compressionAvailable(u),
    compressionReason
  ).pipe(withDefault("none"))
}).pipe(
  Schema.decodeTo(optionsSchema.unchecked<Resolved>(), {
    decode: SchemaGetter.transform((options): Resolved => ({
      ...options,
      rebalanceTimeout: options.rebalanceTimeout ?? options.sessionTimeout,
      tls: options.tls ?? undefined,
      sasl: saslSettings(options.sasl)
    })),
    encode: SchemaGetter.transform((settings) => settings as never)
  }),
  Schema.check(
    Schema.makeFilter((settings) =>
      settings.heartbeatInterval <= settings.sessionTimeout && settings.sessionTimeout <= settings.rebalanceTimeout
        ? undefined
        : {
          path: ["heartbeatInterval"],
          issue: "heartbeatInterval must not exceed sessionTimeout, which must not exceed rebalanceTimeout"
        }
    )
  )
)

const decodeOptions = optionsSchema.decode(OptionsSchema, "kafka")

/** Checks and normalises options; secrets are redacted first, so no error shows them. */
export const decode = (options: Options) =>
  Effect.suspend(() => decodeOptions(redactSecrets(options))).pipe(
    Effect.catchDefect((cause) => Effect.fail(optionsSchema.unreadable("kafka", cause)))
  )
