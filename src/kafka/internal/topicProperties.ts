/**
 * What a topic instance holds (its settings, the services it was made with,
 * the root state it shares with its clones, its queue), the properties read
 * from them (a topic's part of the `Channel` interface and its Kafka
 * settings) and how it shows itself.
 */
import type * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import type * as HashSet from "effect/HashSet"
import { NodeInspectSymbol } from "effect/Inspectable"
import { pipeArguments } from "effect/Pipeable"
import type * as Queue from "effect/Queue"
import { type App, defaultCreateEvent } from "../../App.ts"
import type * as Channel from "../../Channel.ts"
import type { DecodeError } from "../../Errors.ts"
import type * as Event from "../../Event.ts"
import type { Settings as ChannelSettings } from "../../internal/channel.ts"
import * as inspect from "../../internal/inspect.ts"
import type * as Message from "../../Message.ts"
import type { MessageSchema } from "../../MessageSchema.ts"
import { makeTopicEvent } from "./acknowledgement.ts"
import type { TopicSettings } from "./settings.ts"
import type { Root, TopicContext } from "./topic.ts"

/** What a topic's queue fails with: the errors given to `throw`, a decode error, or `Done` at the end. */
export type QueueError<E> = E | DecodeError | Cause.Done

/** @internal */
export abstract class TopicProperties<K, V, E> {
  /** The settings a topic shares with in-memory channels: label, schema, codecs, maxsize, policy, spans. */
  readonly channelSettings: ChannelSettings<K, V>
  readonly settings: TopicSettings
  readonly context: TopicContext
  readonly root: Root
  /** A subscriber's queue may also fail with a `TransportError` (see `failSubscribers`). */
  readonly queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>
  readonly isIterator: boolean

  constructor(
    channelSettings: ChannelSettings<K, V>,
    settings: TopicSettings,
    context: TopicContext,
    root: Root,
    queue: Queue.Queue<Event.Event<K, V>, QueueError<E>>,
    isIterator: boolean
  ) {
    this.channelSettings = channelSettings
    this.settings = settings
    this.context = context
    this.root = root
    this.queue = queue
    this.isIterator = isIterator
  }

  get label(): string {
    return this.channelSettings.label
  }
  get schema(): MessageSchema<K, V> {
    return this.channelSettings.schema
  }
  get keyType() {
    return this.channelSettings.schema.key
  }
  get valueType() {
    return this.channelSettings.schema.value
  }
  get maxsize(): number {
    return this.channelSettings.maxsize
  }
  /** The partitions it was given, or else those its consumer is assigned now. */
  get activePartitions(): HashSet.HashSet<Message.TopicPartition> | undefined {
    return this.channelSettings.activePartitions ?? this.root.session?.assignment
  }
  get subscriberCount(): number {
    return this.root.subscribers.length
  }
  get decodeErrorCounts(): Channel.DecodeErrorCounts {
    return { ...this.root.stats.decodeErrors }
  }
  get topics(): ReadonlyArray<string> {
    return this.settings.topics
  }
  get pattern(): RegExp | undefined {
    return this.settings.pattern
  }
  get groupId(): string {
    return this.settings.groupId
  }
  get partitions(): number | undefined {
    return this.settings.partitions
  }
  get replicas(): number | undefined {
    return this.settings.replicas
  }
  get retention(): Duration.Duration | undefined {
    return this.settings.retention
  }
  get compacting(): boolean | undefined {
    return this.settings.compacting
  }
  get deleting(): boolean | undefined {
    return this.settings.deleting
  }
  get config(): Readonly<Record<string, string>> {
    return this.settings.config
  }
  get acks(): boolean {
    return this.settings.acks
  }
  get internal(): boolean {
    return this.settings.internal
  }

  /** The app's event constructor; for the default one, events that carry their delivery. */
  get eventFactory(): App["Service"]["createEvent"] {
    const createEvent = this.context.app.createEvent
    return createEvent === defaultCreateEvent ? makeTopicEvent : createEvent
  }

  /** The attributes of the `Topic.send` and `Topic.deliver` spans. */
  get spanOptions() {
    return { attributes: { "channel.label": this.label, "messaging.destination.name": this.settings.topics.join(",") } }
  }

  pipe() {
    return pipeArguments(this, arguments)
  }

  toJSON() {
    return inspect.toJSON("Topic", this, {
      topics: this.settings.topics,
      pattern: this.settings.pattern?.source ?? null,
      groupId: this.settings.groupId
    })
  }

  toString(): string {
    return inspect.toString(this, { group: this.settings.groupId }, { activePartitions: false })
  }

  [NodeInspectSymbol]() {
    return this.toJSON()
  }
}
