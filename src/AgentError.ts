/**
 * The errors of agents: a leaf module, so that the agent machinery and its
 * users import them without cycles.
 *
 * @since 0.2.0
 */
import * as Schema from "effect/Schema"
import { describe, toJSONSafe } from "./Errors.ts"

/**
 * An agent stopped because it failed and its restart schedule (if any) gave
 * up. It names the agent, where the failing event came from (the topic,
 * partition and offset on Kafka, the channel label in memory) when an event
 * was the cause, how many times the event was attempted, and the cause: the
 * handler's error, a sink's, or the source's (then no event is named).
 *
 * @since 0.2.0
 * @category errors
 */
export class AgentError extends Schema.TaggedError<AgentError>()("AgentError", {
  agent: Schema.String,
  /** The source's label: the channel's, or the topic's name. */
  channel: Schema.String,
  topic: Schema.optional(Schema.String),
  partition: Schema.optional(Schema.Number),
  offset: Schema.optional(Schema.Number),
  /** Handler attempts made for the failing event; 0 when the source failed. */
  attempts: Schema.Number,
  /** Restarts made before giving up. */
  restarts: Schema.Number,
  cause: Schema.Defect()
}) {
  override get message(): string {
    const where = this.topic === undefined
      ? ` reading ${this.channel}`
      : ` on ${this.topic}${this.partition === undefined ? "" : `[${this.partition}]`}${
        this.offset === undefined ? "" : `@${this.offset}`
      }`
    const attempts = this.attempts === 0 ? "" : ` after ${this.attempts} attempt${this.attempts === 1 ? "" : "s"}`
    const restarts = this.restarts === 0 ? "" : ` and ${this.restarts} restart${this.restarts === 1 ? "" : "s"}`
    return `agent ${this.agent} failed${where}${attempts}${restarts}: ${describe(this.cause)}`
  }
  override toJSON(): unknown {
    return toJSONSafe(this)
  }
}

/**
 * An `ask` got no reply in time: the agent did not handle the request, or
 * did not reply, before `timeout`. A reply arriving later is dropped and
 * counted.
 *
 * @since 0.2.0
 * @category errors
 */
export class AskTimeoutError extends Schema.TaggedError<AskTimeoutError>()("AskTimeoutError", {
  agent: Schema.String,
  correlationId: Schema.String,
  timeoutMillis: Schema.Number
}) {
  override get message(): string {
    return `agent ${this.agent} did not reply to ${this.correlationId} within ${this.timeoutMillis} ms`
  }
  override toJSON(): unknown {
    return toJSONSafe(this)
  }
}
