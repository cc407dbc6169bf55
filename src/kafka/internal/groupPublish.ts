import type * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as RecordMetadata from "../../RecordMetadata.ts"
import type { KafkaError, ProducerRecord } from "../Kafka.ts"

/** A `Kafka` service's `publish`: one record, one completion. */
type Publish = (
  record: ProducerRecord,
  onDone: (exit: Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>) => Effect.Effect<void>
) => Effect.Effect<void>

/**
 * Adds records to a send buffer as its `publish` does, with one completion
 * for all of them: `onDone` runs once every record has been answered, with
 * each record's exit in order.
 *
 * @internal
 */
export type PublishAll = (
  records: ReadonlyArray<ProducerRecord>,
  onDone: (exits: ReadonlyArray<Exit.Exit<RecordMetadata.RecordMetadata, KafkaError>>) => Effect.Effect<void>
) => Effect.Effect<void>

/**
 * The group publisher of each `publish` made by `Kafka.make`, keyed by that
 * very function: a service whose `publish` is replaced (a wrapper that gates,
 * counts or fails records) has none, so `sendAll` goes through its
 * `publish` record by record instead of around it.
 */
const publishers = new WeakMap<Publish, PublishAll>()

/** @internal */
export const register = (publish: Publish, publishAll: PublishAll): void => {
  publishers.set(publish, publishAll)
}

/** The group publisher that belongs to this `publish`, if any. @internal */
export const publishAllOf = (publish: Publish): PublishAll | undefined => publishers.get(publish)
