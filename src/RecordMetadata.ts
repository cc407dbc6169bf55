/**
 * Faust's `RecordMetadata`: where a sent message ended up.
 *
 * @since 0.1.0
 */
import * as Message from "./Message.ts"

/**
 * Metadata of a published record. In-memory channels report topic `"<anon>"`,
 * partition and offset `-1`, and timestamp type `1`, as Faust does.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordMetadata {
  readonly topic: string
  readonly partition: number
  readonly topicPartition: Message.TopicPartition
  readonly offset: number
  readonly timestamp: number
  readonly timestampType: number
}

// A plain class: effect's `Equal.equals` compares it structurally.
class RecordMetadataImpl implements RecordMetadata {
  readonly topic: string
  readonly partition: number
  readonly topicPartition: Message.TopicPartition
  readonly offset: number
  readonly timestamp: number
  readonly timestampType: number
  constructor(fields: Omit<RecordMetadata, "topicPartition">) {
    this.topic = fields.topic
    this.partition = fields.partition
    this.topicPartition = Message.TopicPartition.make(fields.topic, fields.partition)
    this.offset = fields.offset
    this.timestamp = fields.timestamp
    this.timestampType = fields.timestampType
  }
}

/**
 * Builds a {@link RecordMetadata}; `topicPartition` is derived.
 *
 * **Example**
 *
 * ```ts
 * import { RecordMetadata } from "effect-faust"
 *
 * RecordMetadata.make({ topic: "<anon>", partition: -1, offset: -1, timestamp: Date.now(), timestampType: 1 })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (fields: Omit<RecordMetadata, "topicPartition">): RecordMetadata => new RecordMetadataImpl(fields)
