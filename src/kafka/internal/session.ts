import { Consumer } from "@platformatic/kafka"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as HashSet from "effect/HashSet"
import * as Queue from "effect/Queue"
import * as RcRef from "effect/RcRef"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import { type DecodeError, type TransportError } from "../../Errors.ts"
import * as FutureMessage from "../../FutureMessage.ts"
import * as Message from "../../Message.ts"
import { KafkaError } from "../KafkaError.ts"
import { bySubscription } from "./assignor.ts"
import { fromBrokers } from "./explain.ts"
import * as newPartitions from "./newPartitions.ts"
import * as security from "./security.ts"
import * as sendGuard from "./sendGuard.ts"

import { partitionKey } from "../../internal/partitionKey.ts"
import { type CommitOffset, PartitionTracker } from "./acknowledgement.ts"
import { readOffsets, syncPartitionMetrics } from "./consumerMetrics.ts"
import * as fetcher from "./fetcher.ts"
import { pump } from "./pump.ts"
import { failSubscribers } from "./subscribers.ts"
import type { TopicImpl } from "./topic.ts"

/** One run of the topic's consumer, from the first subscriber to the last. */
export interface Session {
  readonly names: ReadonlyArray<string>
  /** The current assignment: empty while a rebalance runs (the eager protocol revokes everything first). */
  assignment: HashSet.HashSet<Message.TopicPartition>
  /** The generation whose messages are delivered; none, or a revoked one, while a rebalance runs. */
  current: Generation | undefined
  /** The last generation joined, until a rebalance starts. */
  joined: { readonly id: number; readonly assignment: HashSet.HashSet<Message.TopicPartition> } | undefined
  /** What revoked generations had acknowledged and not committed, committed before the next assignment is read. */
  revokedOffsets: Array<CommitOffset>
  /** Per `topic:partition`, the log end offset and the group's committed offset as last read (for the lag). */
  readonly offsets: Map<string, { end: bigint; committed: bigint }>
  /** Per `topic:partition`, the removal of its metric series. */
  readonly partitionMetrics: Map<string, () => void>
  /** Whether a refused sendSoon record stops this session's commits (see `sendGuard.ts`). */
  readonly guard: sendGuard.SessionGuard
}

/**
 * One generation of the consumer group as this member sees it: the
 * partitions assigned, the fetcher reading them (opened after the join, so
 * it starts from the committed offsets; replaced when it fails on an error
 * the client deems passing), and delivery tracking.
 */
export class Generation {
  readonly id: number
  readonly assignment: HashSet.HashSet<Message.TopicPartition>
  readonly assigned: Set<string>
  fetcher: fetcher.Fetcher
  readonly partitions = new Map<string, PartitionTracker>()
  /** Set when a rebalance starts or the session ends: nothing more is delivered, late acknowledgements do not count. */
  revoked = false
  pump: Fiber.Fiber<void> | undefined = undefined
  constructor(id: number, assignment: HashSet.HashSet<Message.TopicPartition>, opened: fetcher.Fetcher) {
    this.id = id
    this.assignment = assignment
    this.assigned = new Set(Array.from(assignment, (tp) => partitionKey(tp.topic, tp.partition)))
    this.fetcher = opened
  }
}

/** What a generation's fetcher reads: its id and its assignment. */
export type FetchedGeneration = Pick<Generation, "id" | "assignment">

/**
 * Why a consumer session ends early: the client broke (`KafkaError`), or a
 * delivery failed — a record the "fail" policy refused, a dead letter that
 * could not be sent.
 */
export type SessionFailure = KafkaError | DecodeError | FutureMessage.PublishError

/** A failure of one delivery, which leaves the consumer itself healthy. */
const isDelivered = (error: SessionFailure): boolean => !(error instanceof KafkaError)

/** How long a consumer's cached topic metadata serves (the client's default, stated: see `newPartitions.ts`). */
const CONSUMER_METADATA_MAX_AGE = 5_000

/**
 * Starts a consumer session: declares the topics, joins the consumer group
 * and runs one generation of the group at a time.
 *
 * Each generation (an assignment from a join) gets a fetcher opened after
 * the join (see `fetcher.ts`), so it starts from the group's committed offsets: a fetch
 * sent before a rebalance, or a position left from an earlier assignment,
 * can neither skip nor repeat what the new assignment delivers, and a
 * partition's first tracked offset is where its commits start. A rebalance
 * revokes the current generation at once: nothing more of it is delivered,
 * what subscribers still hold of it is dropped when reached (its new owner
 * reads it again), and what it had acknowledged is committed before the next
 * generation's fetcher reads the committed offsets.
 *
 * Acknowledged offsets are also committed every `commitInterval` and when
 * the session ends. Each commit first waits for the send buffer, so that it
 * never covers an event whose `sendSoon` records are unanswered; a refused
 * `sendSoon` record stops the commits and fails the subscribers, whose next
 * session reads those events again.
 */
export const acquireSession = (topic: TopicImpl<any, any, any>): Effect.Effect<Session, TransportError, Scope.Scope> =>
  Effect.gen(function*() {
    const { kafka } = topic.context
    const settings = kafka.settings
    yield* topic.maybeDeclare
    const pattern = topic.settings.pattern
    const names = pattern === undefined
      ? topic.settings.topics
      : (yield* kafka.topicNames).filter((name) => pattern.test(name))
    if (names.length === 0) {
      return yield* new KafkaError({ operation: "consume", cause: new Error(`no topic matches ${pattern}`) })
    }
    const label = names.join(", ")
    const scope = yield* Effect.scope
    const guard = yield* Effect.acquireRelease(
      Effect.sync(() => sendGuard.register(topic.root.capabilities.sendGuards)),
      (guard) => Effect.sync(() => guard.close())
    )
    const session: Session = {
      names,
      assignment: HashSet.empty(),
      current: undefined,
      joined: undefined,
      revokedOffsets: [],
      offsets: new Map(),
      partitionMetrics: new Map(),
      guard
    }
    const consumer = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Consumer({
          clientId: settings.clientId,
          groupId: topic.settings.groupId,
          bootstrapBrokers: [...settings.bootstrapServers],
          connectTimeout: settings.connectTimeout,
          requestTimeout: settings.requestTimeout,
          retries: settings.retries,
          retryDelay: settings.retryDelay,
          ...security.connectionOptions(settings),
          autocommit: false,
          sessionTimeout: settings.sessionTimeout,
          rebalanceTimeout: settings.rebalanceTimeout,
          heartbeatInterval: settings.heartbeatInterval,
          maxWaitTime: settings.maxWaitTime,
          maxBytesPerPartition: settings.consumerMaxFetchSize,
          partitionAssigner: bySubscription,
          protocolsMetadata: newPartitions.subscriptionUserData,
          metadataMaxAge: CONSUMER_METADATA_MAX_AGE
        })
      ),
      (consumer) =>
        closingAtMost(settings.requestTimeout, Effect.promise(() => consumer.close(true).catch(() => undefined)))
    )
    // The topics this member subscribes to when it joins the group.
    consumer.topics.trackAll(...names)
    // The session fails (its subscribers get the error, the next subscriber
    // starts a new session) when the client gives up on the group, a fetcher
    // fails, or a sendSoon record is refused.
    const failure = Deferred.makeUnsafe<never, SessionFailure>()
    const fail = (error: SessionFailure): void => {
      Deferred.doneUnsafe(failure, Exit.fail(error))
    }
    const joins = yield* Queue.sliding<void>(1)
    // The eager protocol revokes every partition when a rebalance starts.
    consumer.on("consumer:group:rebalance", () => {
      revoke(topic, session)
      session.joined = undefined
    })
    consumer.on("consumer:group:join", ({ assignments, generationId }) => {
      revoke(topic, session)
      const assigned = (assignments ?? []).filter((assignment) => names.includes(assignment.topic)).flatMap((
        assignment
      ) => assignment.partitions.map((partition) => Message.TopicPartition.make(assignment.topic, partition)))
      session.joined = { id: generationId ?? -1, assignment: HashSet.fromIterable(assigned) }
      session.assignment = session.joined.assignment
      Queue.offerUnsafe(joins, undefined)
    })
    // The client reports a group it could not rejoin as an "error" event
    // (an unheard one would crash the process).
    consumer.on(
      "error",
      (cause: unknown) =>
        fail(
          new KafkaError({ operation: "consume", topic: label, cause: fromBrokers(cause, settings.bootstrapServers) })
        )
    )

    const fetchers = new Set<fetcher.Fetcher>()
    /**
     * A fetcher of `generation`'s assignment from the committed offsets, or
     * from the positions given (a failed fetcher's replacement).
     * Interruptible: one opened after its opener was interrupted is closed.
     */
    const openFetcher = (generation: FetchedGeneration, from?: ReadonlyArray<fetcher.FetchPosition>) =>
      Effect.callback<fetcher.Fetcher, KafkaError>((resume) => {
        let abandoned = false
        fetcher.open(consumer, {
          names,
          assignment: generation.assignment,
          generation: generation.id,
          from,
          autoOffsetReset: settings.autoOffsetReset,
          maxWaitTime: settings.maxWaitTime,
          partitionMaxBytes: settings.consumerMaxFetchSize,
          retryDelay: settings.retryDelay
        }).then(
          (opened) => {
            if (abandoned) {
              opened.close()
            } else {
              fetchers.add(opened)
              resume(Effect.succeed(opened))
            }
          },
          (cause) =>
            resume(Effect.fail(
              new KafkaError({
                operation: "consume",
                topic: label,
                cause: fromBrokers(cause, settings.bootstrapServers)
              })
            ))
        )
        return Effect.sync(() => {
          abandoned = true
        })
      })
    const closeFetcher = (opened: fetcher.Fetcher) =>
      closingAtMost(
        settings.requestTimeout,
        Effect.promise(() => {
          fetchers.delete(opened)
          return opened.close()
        })
      )
    // Runs after the session's own finalizer, before the consumer closes.
    yield* Effect.addFinalizer(() => Effect.forEach(Array.from(fetchers), closeFetcher, { discard: true }))

    const lock = yield* Semaphore.make(1)
    let poisoned = false
    /**
     * Commits what the current generation acknowledged, and what revoked
     * ones did (unless a rebalance is running: those wait for its join, or
     * `"everything"` is asked), after the send buffer has been answered.
     */
    const commit = (what: "settled" | "everything"): Effect.Effect<void> =>
      lock.withPermits(1)(Effect.suspend(() => {
        if (poisoned) return Effect.void
        const pending = new Map<string, CommitOffset>()
        const add = (offset: CommitOffset) => {
          const key = partitionKey(offset.topic, offset.partition)
          const existing = pending.get(key)
          if (existing === undefined || existing.offset < offset.offset) pending.set(key, offset)
        }
        const current = session.current
        const rebalancing = current === undefined || current.revoked
        if (what === "everything" || !rebalancing) {
          for (const offset of session.revokedOffsets.splice(0)) add(offset)
        }
        if (current !== undefined && !current.revoked) {
          for (const tracker of current.partitions.values()) {
            const offset = tracker.toCommit()
            if (offset !== undefined) add(offset)
          }
        }
        if (pending.size === 0) return Effect.void
        const offsets = Array.from(pending.values())
        return Effect.andThen(
          kafka.flush,
          Effect.suspend(() => {
            if (guard.poisoned) {
              poisoned = true
              fail(
                new KafkaError({
                  operation: "commit",
                  topic: label,
                  cause: new Error(
                    "a sendSoon record made while this consumer had events in its handlers was refused by the broker; the events that produced it must be read again, so this consumer commits no more"
                  )
                })
              )
              return Effect.void
            }
            return Effect.tryPromise({
              try: () =>
                consumer.commit({
                  offsets: offsets.map(({ leaderEpoch, offset, partition, topic }) => ({
                    topic,
                    partition,
                    offset,
                    leaderEpoch
                  }))
                }),
              // One partition committed: the error locates it; several: the topics say where.
              catch: (cause) =>
                new KafkaError({
                  operation: "commit",
                  ...(offsets.length === 1
                    ? { topic: offsets[0].topic, partition: offsets[0].partition, offset: Number(offsets[0].offset) }
                    : { topic: label }),
                  cause
                })
            }).pipe(
              Effect.tap(() =>
                Effect.sync(() => {
                  const stats = topic.root.kafkaStats
                  for (const { offset, tracker } of offsets) {
                    const previous = tracker.committed ?? tracker.startOffset
                    if (offset > previous) stats.committed += Number(offset - previous)
                    if (tracker.committed === undefined || tracker.committed < offset) tracker.committed = offset
                  }
                })
              ),
              // Committing again later is harmless; a failure only means more is read twice after a restart.
              Effect.catch((error) => Effect.logWarning(error.message))
            )
          })
        )
      }))

    /**
     * Makes the generation `joined` and opens its fetcher; it is delivered
     * unless a rebalance started since.
     */
    const install = (joined: Session["joined"]): Effect.Effect<void, KafkaError> =>
      Effect.gen(function*() {
        const id = joined?.id ?? -1
        const assignment = joined?.assignment ?? HashSet.empty()
        const generation = new Generation(id, assignment, yield* openFetcher({ id, assignment }))
        if (joined === undefined || session.joined !== joined) generation.revoked = true
        const previous = session.current
        session.current = generation
        if (previous !== undefined) {
          if (previous.pump !== undefined) yield* Fiber.interrupt(previous.pump)
          yield* closeFetcher(previous.fetcher)
        }
        generation.pump = yield* Effect.forkIn(
          pump(topic, session, generation, fail, { open: openFetcher, close: closeFetcher }),
          scope
        )
        syncPartitionMetrics(topic, session)
      })

    // Joining the group (its join event has run when the join returns).
    yield* Effect.tryPromise({
      try: () => consumer.joinGroup({}),
      catch: (cause) =>
        new KafkaError({ operation: "consume", topic: label, cause: fromBrokers(cause, settings.bootstrapServers) })
    })
    yield* install(session.joined)

    /**
     * After each join: commit what the revoked generation acknowledged, then
     * install the new generation.
     */
    const switcher = yield* Effect.forkIn(
      Effect.forever(Effect.gen(function*() {
        yield* Queue.take(joins)
        const target = session.joined
        const current = session.current
        if (target === undefined || (current !== undefined && !current.revoked && current.id === target.id)) return
        yield* commit("everything")
        yield* install(target)
      })).pipe(Effect.catch((error) => Effect.sync(() => fail(error)))),
      scope
    )
    const committer = yield* Effect.forkIn(
      Effect.forever(Effect.andThen(Effect.sleep(settings.commitInterval), commit("settled"))),
      scope
    )
    const lag = yield* Effect.forkIn(
      Effect.forever(Effect.andThen(Effect.sleep(settings.commitInterval), readOffsets(consumer, topic, session))),
      scope
    )
    const growth = yield* Effect.forkIn(
      newPartitions.watch({
        consumer,
        names,
        interval: Math.max(settings.commitInterval, 1_000),
        metadataMaxAge: CONSUMER_METADATA_MAX_AGE,
        fromEarliest: settings.autoOffsetReset === "latest"
      }),
      scope
    )
    const watcher = yield* Effect.forkIn(
      Effect.catch(Deferred.await(failure), (error) =>
        Effect.gen(function*() {
          // A record the policy failed on leaves the consumer healthy: what the subscribers
          // acknowledge while they read what they hold still counts, and the session's last
          // commit (when they have left) covers it and the bad record. Anything else broke the
          // consumer: its acknowledgements no longer count.
          if (!isDelivered(error)) {
            revoke(topic, session)
            session.joined = undefined
          }
          yield* RcRef.invalidate(topic.root.sessions)
          failSubscribers(topic, Cause.fail(error))
        })),
      scope
    )
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        for (const fiber of [watcher, switcher, committer, lag, growth]) yield* Fiber.interrupt(fiber)
        // The Kafka layer closing under its readers: they fail typed (after what they hold), not wait for ever.
        if (kafka.scope.state._tag === "Closed") {
          failSubscribers(
            topic,
            Cause.fail(
              new KafkaError({
                operation: "consume",
                topic: label,
                cause: new Error("the Kafka layer this topic was made with is closed")
              })
            )
          )
        }
        const current = session.current
        if (current?.pump !== undefined) yield* Fiber.interrupt(current.pump)
        revoke(topic, session)
        session.joined = undefined
        yield* commit("everything").pipe(Effect.timeoutOrElse({
          duration: settings.requestTimeout,
          orElse: () =>
            Effect.logWarning(
              `Kafka consume on ${label}: the closing commit got no answer within requestTimeout; what was handled since the last commit will be read again`
            )
        }))
        if (topic.root.session === session) topic.root.session = undefined
        syncPartitionMetrics(topic, session)
      })
    )
    topic.root.session = session
    syncPartitionMetrics(topic, session)
    return session
  })

/**
 * Closing a session never waits on a broker that does not answer longer
 * than `millis` per step: the client may retry a dead broker for minutes
 * (its retries nest), and whoever interrupts a consumer must not be held
 * that long. What the client still does after that is its own; it ends
 * with its retries.
 */
const closingAtMost = (millis: number, close: Effect.Effect<void>): Effect.Effect<void> =>
  Effect.timeoutOrElse(close, { duration: millis, orElse: () => Effect.void })

/**
 * Revokes the current generation: nothing more of it is delivered, and what
 * it acknowledged is kept for the next commit.
 */
const revoke = (topic: TopicImpl<any, any, any>, session: Session): void => {
  session.assignment = HashSet.empty()
  const generation = session.current
  if (generation === undefined || generation.revoked) return
  generation.revoked = true
  for (const tracker of generation.partitions.values()) {
    tracker.revoked = true
    tracker.abandon()
    const offset = tracker.toCommit()
    if (offset !== undefined) session.revokedOffsets.push(offset)
  }
  syncPartitionMetrics(topic, session)
}
