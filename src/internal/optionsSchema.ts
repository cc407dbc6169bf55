/**
 * What the options schemas (App, Channel, Kafka, Topic) are built from: a
 * rule is a Schema member whose failure carries the reason to report, and
 * {@link decode} / {@link decodeResult} run an options schema, turning its
 * first issue into the `InvalidChannelOptionsError` naming the option (the
 * issue's path), the value given for it and the rule's reason.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Codec from "../Codec.ts"
import { InvalidChannelOptionsError } from "../Errors.ts"

/**
 * A value `isValid` accepts; anything else fails with `reason`. The input is
 * `unknown`, so that a value of the wrong type fails with the rule's reason
 * too (not with a Schema type error).
 *
 * @internal
 */
export const rule = <T>(isValid: (u: unknown) => u is T, reason: string): Schema.refine<T, Schema.Unknown> =>
  Schema.Unknown.pipe(Schema.refine(isValid, { message: reason }))

/**
 * A member the options schema carries without checking it (a flag, a label,
 * an iterable read later): its type is the option's type.
 *
 * @internal
 */
export const unchecked = <T>(): Schema.declare<T> => Schema.declare((_: unknown): _ is T => true)

const isIntegerOfAtLeast = (least: number) => (u: unknown): u is number =>
  typeof u === "number" && Number.isInteger(u) && u >= least

/**
 * An integer of at least `least`, with today's reason.
 *
 * @internal
 */
export const integerOfAtLeast = (least: number): Schema.refine<number, Schema.Unknown> =>
  rule(isIntegerOfAtLeast(least), `must be an integer of at least ${least}`)

/**
 * A value `parse` turns into a `to` (a normalisation: a duration, a broker
 * list); when it gives `undefined`, the value fails with `reason`.
 *
 * @internal
 */
export const parse = <To extends Schema.Top>(
  to: To,
  parse: (u: unknown) => To["Encoded"] | undefined,
  reason: string
): Schema.decodeTo<To, Schema.Unknown> =>
  Schema.Unknown.pipe(Schema.decodeTo(to, {
    decode: SchemaGetter.transformEffect((u: unknown) => {
      const parsed = parse(u)
      return parsed === undefined
        ? Effect.fail(new SchemaIssue.InvalidValue({ message: reason }))
        : Effect.succeed(parsed)
    }),
    encode: SchemaGetter.transform((parsed: To["Encoded"]): unknown => parsed)
  }))

/**
 * An effect `Duration` input (`"5 seconds"`, `500` millis, …), decoded to a
 * `Duration`.
 *
 * @internal
 */
/**
 * A duration an option may take: a `Duration`, a number of milliseconds, a
 * `"5 seconds"` string or a `[seconds, nanos]` pair, not negative. `NaN` and
 * other objects are refused (effect reads them as zero).
 */
export const durationOf = (u: unknown): Duration.Duration | undefined => {
  if (typeof u === "number" && Number.isNaN(u)) return undefined
  if (typeof u === "object" && u !== null && !Array.isArray(u) && !Duration.isDuration(u)) return undefined
  let duration: Option.Option<Duration.Duration>
  try {
    duration = Duration.fromInput(u as Duration.Input)
  } catch {
    return undefined
  }
  return Option.isNone(duration) || Duration.isNegative(duration.value) ? undefined : duration.value
}

export const DurationInput: Schema.decodeTo<Schema.Duration, Schema.Unknown> = parse(
  Schema.Duration,
  durationOf,
  "must be a Duration"
)

/**
 * {@link DurationInput} in milliseconds.
 *
 * @internal
 */
export const Millis: Schema.decodeTo<Schema.Number, typeof DurationInput> = DurationInput.pipe(
  Schema.decodeTo(Schema.Number, {
    decode: SchemaGetter.transformEffect((duration: Duration.Duration) =>
      // A timeout must end: an infinite one would be a hang.
      Duration.isFinite(duration)
        ? Effect.succeed(Duration.toMillis(duration))
        : Effect.fail(new SchemaIssue.InvalidValue({ message: "must be a finite Duration" }))
    ),
    encode: SchemaGetter.transform(Duration.millis)
  })
)

/**
 * A serializer (a codec name, names joined with `|`, or a `Codec`) that the
 * codec registry in context (`Codec.Codecs`) resolves; the reason is
 * `Codec.resolve`'s. Decodes to the serializer and the codec it names.
 *
 * @internal
 */
export const Serializer: Schema.decodeTo<
  Schema.declare<ResolvedSerializer>,
  Schema.declare<Codec.Serializer>
> = Schema.declare((_: unknown): _ is Codec.Serializer => true).pipe(
  Schema.decodeTo(Schema.declare((_: unknown): _ is ResolvedSerializer => true), {
    decode: SchemaGetter.transformEffect((serializer: Codec.Serializer) =>
      Effect.flatMap(Effect.service(Codec.Codecs), (registry) => {
        const codec = Codec.resolve(registry, serializer)
        return Result.isFailure(codec)
          ? Effect.fail(new SchemaIssue.InvalidValue({ message: codec.failure }))
          : Effect.succeed({ serializer, codec: codec.success })
      })
    ),
    encode: SchemaGetter.transform((resolved: ResolvedSerializer) => resolved.serializer)
  })
)

/** A serializer and the codec it names. @internal */
export interface ResolvedSerializer {
  readonly serializer: Codec.Serializer
  readonly codec: Codec.Codec
}

/**
 * The first issue of a failed decode as the option it names, the value the
 * input holds there, and the reason.
 */
const toError = (issue: SchemaIssue.Issue, input: unknown, prefix: string): InvalidChannelOptionsError => {
  const path: Array<PropertyKey> = []
  let filterMessage: string | undefined
  let current = issue
  for (;;) {
    if (current._tag === "Pointer") {
      path.push(...current.path)
      current = current.issue
    } else if (current._tag === "Filter") {
      filterMessage = messageOf(current.filter.annotations) ?? filterMessage
      current = current.issue
    } else if (current._tag === "Encoding") {
      current = current.issue
    } else if (current._tag === "Composite" || (current._tag === "AnyOf" && current.issues.length > 0)) {
      current = current.issues[0]!
    } else {
      break
    }
  }
  const own = current._tag === "InvalidValue" || current._tag === "Forbidden"
    ? messageOf(current.annotations)
    : undefined
  const reason = own ?? filterMessage ?? formatIssue(current)
  let value: unknown = input
  for (const key of path) value = typeof value === "object" && value !== null ? (value as any)[key] : undefined
  const option = path.map(String).join(".")
  return new InvalidChannelOptionsError({
    option: prefix.length === 0 ? option : option.length === 0 ? prefix : `${prefix}.${option}`,
    value,
    reason
  })
}

const errorKind = (cause: unknown): string => {
  try {
    return cause instanceof Error ? `a ${cause.name}` : typeof cause
  } catch {
    return "an error"
  }
}

/** Options that throw when read (a getter, a revoked proxy) are invalid as a whole. */
export const unreadable = (prefix: string, cause: unknown): InvalidChannelOptionsError =>
  new InvalidChannelOptionsError({
    option: prefix.length === 0 ? "options" : prefix,
    value: undefined,
    // Not the thrown error's text: options may hold secrets, and so may what reading them threw.
    reason: `could not be read (reading them threw ${errorKind(cause)})`
  })

const messageOf = (annotations: Schema.Annotations.Annotations | undefined): string | undefined =>
  typeof annotations?.message === "string" ? annotations.message : undefined

const formatIssue = SchemaIssue.makeFormatterDefault()

/**
 * Runs an options schema in an Effect (its members may read services, as
 * {@link Serializer} reads the codec registry); an invalid option fails
 * with `InvalidChannelOptionsError`, its name prefixed with `prefix` (e.g.
 * `"kafka"`) when given.
 *
 * @internal
 */
export const decode = <S extends Schema.Constraint>(schema: S, prefix = "") => {
  const run = Schema.decodeUnknownEffect(schema)
  return (input: unknown): Effect.Effect<S["Type"], InvalidChannelOptionsError, S["DecodingServices"]> =>
    Effect.suspend(() => run(input)).pipe(
      Effect.mapError((error) => toError(error.issue, input, prefix)),
      Effect.catchDefect((defect) => Effect.fail(unreadable(prefix, defect)))
    )
}

/**
 * {@link decode} for a schema that needs no service: synchronously.
 *
 * @internal
 */
export const decodeResult = <S extends Schema.ConstraintDecoder<unknown>>(schema: S, prefix = "") => {
  const run = Schema.decodeUnknownResult(schema)
  return (input: unknown): Result.Result<S["Type"], InvalidChannelOptionsError> => {
    try {
      return Result.mapError(run(input), (error) => toError(error.issue, input, prefix))
    } catch (defect) {
      return Result.fail(unreadable(prefix, defect))
    }
  }
}
