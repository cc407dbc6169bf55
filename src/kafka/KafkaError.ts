/**
 * The error of everything a Kafka transport does: a leaf module, so that
 * the service, the topic and their machinery all import it without cycles.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { describe, toJSONSafe } from "../Errors.ts"
import { explain } from "./internal/explain.ts"

/**
 * A call to the broker failed: it is unreachable, refused a request, or a
 * topic operation is impossible. `operation` says what was attempted; `topic`,
 * `partition` and `offset` locate it when known; `cause` is the client's error.
 * The message says what the client's nested errors mean when it can: the
 * brokers that could not be reached and why, a missing topic, a record too
 * large, refused credentials.
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
    // One line, whatever the cause's text: logs and the examples print it as it is.
    const why = (explain(this.cause) ?? describe(this.cause)).replace(/\s*[\r\n]+\s*/g, " ")
    return `Kafka ${this.operation} failed${where}: ${why}`
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
