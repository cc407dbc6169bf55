/**
 * Declaring a topic: creating its topics on the broker, at most once per
 * root however many fibers ask at the same time.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { TransportError } from "../../Errors.ts"
import type { Kafka } from "../Kafka.ts"
import { KafkaError } from "../KafkaError.ts"
import type { TopicSettings } from "./settings.ts"

/** What declaring needs of a topic. */
export interface DeclaringTopic {
  readonly settings: TopicSettings
  readonly context: { readonly kafka: Kafka["Service"] }
  readonly root: {
    declared: Deferred.Deferred<void, TransportError> | undefined
    /** Set once a declare succeeded: senders skip `maybeDeclare`. */
    declaredOk: boolean
  }
  readonly declare: Effect.Effect<void, TransportError>
}

/** `declare` once: later callers wait for the first; a failed declare (a broker down) is tried again. */
export const maybeDeclare = (topic: DeclaringTopic): Effect.Effect<void, TransportError> =>
  Effect.suspend(() => {
    const root = topic.root
    if (root.declaredOk) return Effect.void
    if (root.declared !== undefined) return Deferred.await(root.declared)
    const declared = Deferred.makeUnsafe<void, TransportError>()
    root.declared = declared
    return Effect.flatMap(Effect.exit(topic.declare), (exit) => {
      if (Exit.isFailure(exit)) root.declared = undefined
      else root.declaredOk = true
      return Effect.andThen(Deferred.done(declared, exit), exit)
    })
  })

/**
 * Creates each named topic with its partitions, replicas and config
 * (existing topics are left alone). An internal topic must also have the
 * partitions it declares, as keys must land where the app expects them.
 */
export const declare = (topic: Pick<DeclaringTopic, "settings" | "context">): Effect.Effect<void, TransportError> => {
  const { kafka } = topic.context
  const settings = topic.settings
  if (!kafka.settings.topicAllowDeclare) return Effect.void
  return Effect.forEach(settings.topics, (name) =>
    Effect.gen(function*() {
      const created = yield* kafka.createTopic({
        topic: name,
        partitions: settings.partitions ?? kafka.settings.topicPartitions,
        replicas: settings.replicas ?? kafka.settings.topicReplicationFactor,
        config: settings.config
      })
      if (created || !settings.internal || settings.partitions === undefined) return
      const count = yield* kafka.partitionCount(name)
      if (count !== settings.partitions) {
        return yield* new KafkaError({
          operation: "declare",
          topic: name,
          cause: new Error(`the internal topic has ${count} partitions, and declares ${settings.partitions}`)
        })
      }
    }), { discard: true })
}
