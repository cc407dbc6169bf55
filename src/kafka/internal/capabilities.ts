import type * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as RecordMetadata from "../../RecordMetadata.ts"
import type { KafkaError, ProducerRecord } from "../Kafka.ts"
import * as sendGuard from "./sendGuard.ts"

/** A `Kafka` service's `publish`: one record, one completion. */
export type Publish = (
  record: ProducerRecord,
  onDone: (exit: Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>) => Effect.Effect<void>
) => Effect.Effect<void>

/**
 * Adds records to a send buffer as its `publish` does, with one completion
 * for all of them: `onDone` runs once every record has been answered, with
 * each record's failure (`undefined` when appended) in order.
 */
export type PublishAll = (
  records: ReadonlyArray<ProducerRecord>,
  onDone: (failures: ReadonlyArray<KafkaError | undefined>) => Effect.Effect<void>
) => Effect.Effect<void>

/**
 * Adds a record to the send buffer at once, as `publish` would: `false`
 * (nothing added) when the buffer is full or ended, and `publish` must wait.
 */
export type PublishUnsafe = (
  record: ProducerRecord,
  onDone: (outcome: Outcome) => Effect.Effect<void>
) => boolean

/**
 * What the send buffer answers for a record: the offset it was appended at
 * (-1 without acks), or why it failed.
 */
export type Outcome = number | KafkaError

/**
 * What the send buffer behind a `publish` can do beyond the `Kafka`
 * service's interface. Everything is found through this one record, keyed by
 * the `publish` function itself: a service whose `publish` is replaced (a
 * wrapper that gates, counts or fails records) gets a record of its own with
 * no group publisher, no publishing without an effect and no cached
 * partition counts, so `sendAll` and `sendSoon` go through its `publish`
 * record by record instead of around it.
 */
export interface Capabilities {
  /** Publishes a group of records with one completion (`Kafka.make`'s buffer only). */
  readonly publishAll: PublishAll | undefined
  /** Publishes one record without an effect while the buffer has room (`Kafka.make`'s buffer only). */
  readonly publishUnsafe: PublishUnsafe | undefined
  /** A topic's partition count while cached and fresh, else `undefined`: the per-record fast path. */
  readonly partitionCountCached: ((topic: string) => number | undefined) | undefined
  /** The `sendSoon` numbering and live consumer sessions of the service (see `sendGuard.ts`). */
  readonly sendGuards: sendGuard.Registry
}

const byPublish = new WeakMap<Publish, Capabilities>()

/** Records what `Kafka.make`'s send buffer can do for its `publish`. */
export const register = (
  publish: Publish,
  capabilities: Omit<Capabilities, "sendGuards">
): void => {
  byPublish.set(publish, { ...capabilities, sendGuards: sendGuard.makeRegistry() })
}

/** The capabilities of the service owning `publish`: none beyond the interface for one not made by `Kafka.make`. */
export const of = (publish: Publish): Capabilities => {
  let capabilities = byPublish.get(publish)
  if (capabilities === undefined) {
    capabilities = {
      publishAll: undefined,
      publishUnsafe: undefined,
      partitionCountCached: undefined,
      sendGuards: sendGuard.makeRegistry()
    }
    byPublish.set(publish, capabilities)
  }
  return capabilities
}
