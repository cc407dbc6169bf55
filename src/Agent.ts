/**
 * Agents: Faust's supervised stream processors (`@app.agent(channel)`), on a
 * channel in memory or a topic on Kafka, chosen by Layer.
 *
 * An agent reads its source with `concurrency` instances, each event handled
 * by exactly one of them, in order per partition (or key); what the handler
 * returns goes to the `sinks` and, for an event that came from `ask`, back to
 * the asker. **Acknowledgement is the agent's job**: an event is acknowledged
 * once its handler, the sends it made without waiting (`sendSoon`) and its
 * sinks have completed, so a Kafka commit never passes an event still being
 * handled, whatever the concurrency. A failing event is retried per
 * `onError.retry`, then failed, skipped or dead-lettered; a failed agent is
 * restarted per `restart`, and once that gives up it fails with a typed
 * {@link AgentError}: never silently.
 *
 * @since 0.2.0
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { AgentError, AskTimeoutError } from "./AgentError.ts"
import * as Channel from "./Channel.ts"
import { InvalidChannelOptionsError } from "./Errors.ts"
import type * as Event from "./Event.ts"
import type * as FutureMessage from "./FutureMessage.ts"
import * as handle from "./internal/agent/handle.ts"
import { processLoop } from "./internal/agent/process.ts"
import { correlationIdHeader, CurrentReplies, replyToHeader } from "./internal/agent/replies.ts"
import * as settings from "./internal/agent/settings.ts"
import * as stats from "./internal/agent/stats.ts"
import * as supervise from "./internal/agent/supervise.ts"
import { durationOf } from "./internal/optionsSchema.ts"
import * as Message from "./Message.ts"
import type { RecordMetadata } from "./RecordMetadata.ts"

export {
  /**
   * @since 0.2.0
   * @category errors
   */
  AgentError,
  /**
   * @since 0.2.0
   * @category errors
   */
  AskTimeoutError
}

/**
 * @since 0.2.0
 * @category type ids
 */
export const TypeId = "~effect-faust/Agent" as const

/**
 * What an agent reads: a channel or topic, or an effect giving one (a
 * `Channel.Service` class, a Topic service), so one agent runs in memory or on
 * Kafka by Layer.
 *
 * @since 0.2.0
 * @category models
 */
export type Source<K, V, E, R> = Channel.Channel<K, V, E> | Effect.Effect<Channel.Channel<K, V, E>, never, R>

type ChannelLike = { readonly [Channel.TypeId]: typeof Channel.TypeId }

type AnySource = ChannelLike | Effect.Effect<ChannelLike, never, any>

type ChannelOf<S> = S extends ChannelLike ? S
  : S extends Effect.Effect<infer C, any, any> ? C
  : never

/**
 * The key type of a source.
 *
 * @since 0.2.0
 * @category models
 */
export type KeyOf<S> = ChannelOf<S> extends { events(): Stream.Stream<Event.Event<infer K, any>, any> } ? K : never

/**
 * The value type of a source.
 *
 * @since 0.2.0
 * @category models
 */
export type ValueOf<S> = ChannelOf<S> extends { events(): Stream.Stream<Event.Event<any, infer V>, any> } ? V : never

/**
 * What a source needs from the context: nothing for a channel, the service
 * for a service class.
 *
 * @since 0.2.0
 * @category models
 */
export type RequirementsOf<S> = S extends ChannelLike ? never
  : S extends Effect.Effect<any, any, infer R> ? R
  : never

/**
 * Where an agent's results go: a channel, topic or agent (anything with a
 * `send`), or an effect function. A sink's failure fails the event.
 *
 * @since 0.2.0
 * @category models
 */
export type Sink<Out> = settings.Sink<Out>

/**
 * What happens to an event whose handling still fails after its retries:
 * `"fail"` (the default: left unacknowledged, the agent fails or restarts and
 * reads it again), `"skip"` (acknowledged and counted) or `{ deadLetter }`
 * (the original key, value and headers, plus `x-error`, `x-error-message`,
 * `x-agent`, `x-attempts`, `x-source-topic`, `x-source-partition` and
 * `x-source-offset`, written to a channel or topic; acknowledged once that
 * write is).
 *
 * @since 0.2.0
 * @category models
 */
export type FailurePolicy = settings.FailurePolicy

/**
 * How events are spread over the instances: `"partition"` (the default:
 * events of one partition in order, partitions in parallel; in memory the key
 * decides), `"key"` (events of one key in order) or `"none"` (whichever
 * instance is free).
 *
 * @since 0.2.0
 * @category models
 */
export type Ordering = settings.Ordering

/**
 * An agent's options.
 *
 * - `concurrency` (default 1): instances; each event is handled by one.
 * - `ordering` (default `"partition"`): see {@link Ordering}.
 * - `sinks`: receive every value the handler returns (`undefined` is not sent).
 * - `onError`: `{ retry?: Schedule, then?: FailurePolicy }` per event.
 * - `restart`: a `Schedule` fed with the {@link AgentError}; without one, the
 *   first failure stops the agent.
 * - `shutdownTimeout` (default 30 seconds): how long in-flight events may
 *   finish when the agent stops.
 *
 * @since 0.2.0
 * @category models
 */
export type Options<Out> = settings.Options<Out>

/**
 * Faust's `stream.take(max_, within)`: a batch closes at `size` events or
 * `within` after its first event, whichever comes first.
 *
 * @since 0.2.0
 * @category models
 */
export type BatchOptions = settings.BatchOptions

/**
 * What an agent did so far.
 *
 * @since 0.2.0
 * @category models
 */
export type Stats = Readonly<stats.Stats>

/**
 * Options of `ask`: a send, with how long to wait for the reply.
 *
 * @since 0.2.0
 * @category models
 */
export interface AskOptions<K, V> extends Omit<Channel.SendOptions<K, V>, "callback"> {
  readonly timeout: Duration.Input
}

/**
 * An agent: a name, a source, a handler and its options. It does nothing
 * until run by {@link layer} or `run`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Agent<K, V, Out, R> extends Pipeable {
  readonly [TypeId]: typeof TypeId
  readonly name: string
  /** Counters: handled, failed, retries, skipped, dead-lettered, restarts, in flight, replies dropped. */
  readonly stats: Stats
  /**
   * Runs the agent until its source ends, or until interrupted (then it stops
   * gracefully); fails with {@link AgentError} once its restart schedule
   * gives up, and with `InvalidChannelOptionsError` when an agent with its
   * name already runs in the app.
   */
  readonly run: Effect.Effect<void, AgentError | InvalidChannelOptionsError, R>
  /** Sends to the agent's source (Faust's `agent.send`). */
  send(options: Channel.SendOptions<K, V>): Effect.Effect<RecordMetadata, FutureMessage.PublishError, R>
  /** Sends to the agent's source without expecting a reply (Faust's `agent.cast`). */
  cast(options: Channel.SendOptions<K, V>): Effect.Effect<void, FutureMessage.PublishError, R>
  /**
   * Sends a request and waits for the agent's reply: what its handler returned
   * for that event (Faust's `agent.ask`).
   */
  ask(
    options: AskOptions<K, V>
  ): Effect.Effect<Out, AskTimeoutError | FutureMessage.PublishError | InvalidChannelOptionsError, R>
  /** Asks for each value, `concurrency` at a time (default 8), emitting replies as they come (Faust's `agent.map`). */
  map(
    values: Iterable<V>,
    options: { readonly timeout: Duration.Input; readonly concurrency?: number | undefined }
  ): Stream.Stream<Out, AskTimeoutError | FutureMessage.PublishError | InvalidChannelOptionsError, R>
  /** Asks for each value and gathers the replies in the order of the values (Faust's `agent.join`). */
  join(
    values: Iterable<V>,
    options: { readonly timeout: Duration.Input; readonly concurrency?: number | undefined }
  ): Effect.Effect<Array<Out>, AskTimeoutError | FutureMessage.PublishError | InvalidChannelOptionsError, R>
}

/**
 * @since 0.2.0
 * @category guards
 */
export const isAgent = (u: unknown): u is Agent<unknown, unknown, unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u

const AgentProto = {
  [TypeId]: TypeId,
  pipe() {
    return pipeArguments(this, arguments)
  },
  toJSON(this: { readonly name: string; readonly stats: Stats }) {
    return { _id: "Agent", name: this.name, stats: { ...this.stats } }
  },
  toString(this: { readonly name: string }) {
    return `Agent(${this.name})`
  }
}

/** How a sink is named in the agent's info series: its label or name, else its kind. */
const sinkLabel = (sink: Sink<any>): string => {
  if (typeof sink === "function") return "function"
  const named = sink as { readonly label?: unknown; readonly name?: unknown }
  return typeof named.label === "string" ? named.label : typeof named.name === "string" ? named.name : "sink"
}

const sourceOf = <K, V, E, R>(source: Source<K, V, E, R>): Effect.Effect<Channel.Channel<K, V, E>, never, R> =>
  Channel.isChannel(source)
    ? Effect.succeed(source as Channel.Channel<K, V, E>)
    : source as Effect.Effect<Channel.Channel<K, V, E>, never, R>

const makeAgent = <K, V, Out, R>(
  name: string,
  source: Effect.Effect<Channel.Channel<K, V, any>, never, R>,
  resolved: settings.Settings,
  work: supervise.Definition<R>["work"],
  readsItself: boolean
): Agent<K, V, Out, R> => {
  const counters = stats.makeStats()
  const definition: supervise.Definition<R> = {
    name,
    settings: resolved,
    stats: counters,
    source,
    work,
    readsItself
  }
  // A failed agent's series stay (running 0, its failures counted), so a view tells it from one
  // that stopped; they go when it runs again.
  let failedSeries: (() => void) | undefined
  const runAgent = Effect.gen(function*() {
    failedSeries?.()
    failedSeries = undefined
    const channel = yield* source
    const remove = yield* stats.register(name, counters, {
      source: channel.label,
      sinks: resolved.sinks.map(sinkLabel)
    })
    return yield* Effect.onExit(supervise.run(definition), (exit) =>
      Effect.sync(() => {
        // Only an agent that ran and failed stays visible (not one refused for its name).
        const failed = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
        if (failed !== undefined && failed._tag === "Some" && failed.value instanceof AgentError) failedSeries = remove
        else remove()
      }))
  })
  const send = (options: Channel.SendOptions<K, V>) => Effect.flatMap(source, (channel) => channel.send(options))
  const ask = (
    options: AskOptions<K, V>
  ): Effect.Effect<Out, AskTimeoutError | FutureMessage.PublishError | InvalidChannelOptionsError, R> =>
    Effect.gen(function*() {
      const timeout = durationOf(options.timeout)
      if (timeout === undefined) {
        return yield* new InvalidChannelOptionsError({
          option: "timeout",
          value: options.timeout,
          reason: "must be a non-negative duration"
        })
      }
      const replies = yield* CurrentReplies
      const correlationId = crypto.randomUUID()
      const timeoutMillis = Duration.toMillis(timeout)
      const expected = replies.expect(correlationId)
      const headers = Message.headersToList(options.headers)
      headers.push([correlationIdHeader, correlationId], [replyToHeader, replies.address])
      const { timeout: _, ...sendOptions } = options
      return yield* Effect.flatMap(send({ ...sendOptions, headers }), () => expected.reply).pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () => Effect.fail(new AskTimeoutError({ agent: name, correlationId, timeoutMillis }))
        }),
        Effect.ensuring(Effect.sync(expected.cancel))
      ) as Effect.Effect<Out, AskTimeoutError | FutureMessage.PublishError | InvalidChannelOptionsError, R>
    })
  const map = (
    values: Iterable<V>,
    options: { readonly timeout: Duration.Input; readonly concurrency?: number | undefined }
  ) =>
    Stream.fromIterable(values).pipe(
      Stream.mapEffect((value) => ask({ value, timeout: options.timeout }), {
        concurrency: options.concurrency ?? 8,
        unordered: true
      })
    )
  const agent = Object.create(AgentProto)
  Object.assign(agent, {
    name,
    stats: counters,
    run: runAgent,
    send,
    cast: (options: Channel.SendOptions<K, V>) => Effect.asVoid(send(options)),
    ask,
    map,
    join: (values: Iterable<V>, options: { readonly timeout: Duration.Input; readonly concurrency?: number }) =>
      Effect.forEach(values, (value) => ask({ value, timeout: options.timeout }), {
        concurrency: options.concurrency ?? 8
      })
  })
  return agent
}

/**
 * An agent calling `handler` for each event of `source` (Faust's
 * `async for value in stream` agent body). With `batch`, the handler gets the
 * values and events of each batch, and the whole batch is acknowledged once
 * the handler completes; a partial batch is handled when the agent stops.
 * The handler's result goes to the sinks and to the asker of an `ask`.
 *
 * **Example**
 *
 * ```ts
 * import { Effect, Schedule, Schema } from "effect"
 * import { Agent, App, Channel } from "effect-faust"
 *
 * const program = Effect.gen(function*() {
 *   const orders = yield* Channel.make({ value: Schema.Number })
 *   const agent = yield* Agent.forEach("count-orders", orders, (qty) => Effect.log(`qty ${qty}`), {
 *     concurrency: 4,
 *     onError: { retry: Schedule.recurs(2), then: "skip" }
 *   })
 *   yield* Effect.forkChild(agent.run)
 *   yield* orders.send({ value: 3 })
 * }).pipe(Effect.provide(App.layer({ id: "shop" })))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const forEach: {
  <S extends AnySource, Out, EH, RH>(
    name: string,
    source: S,
    handler: (
      values: ReadonlyArray<ValueOf<S>>,
      events: ReadonlyArray<Event.Event<KeyOf<S>, ValueOf<S>>>
    ) => Effect.Effect<Out, EH, RH>,
    options: Options<Out> & { readonly batch: BatchOptions }
  ): Effect.Effect<Agent<KeyOf<S>, ValueOf<S>, Out, RequirementsOf<S> | RH>, InvalidChannelOptionsError>
  <S extends AnySource, Out, EH, RH>(
    name: string,
    source: S,
    handler: (value: ValueOf<S>, event: Event.Event<KeyOf<S>, ValueOf<S>>) => Effect.Effect<Out, EH, RH>,
    options?: Options<Out> & { readonly batch?: undefined }
  ): Effect.Effect<Agent<KeyOf<S>, ValueOf<S>, Out, RequirementsOf<S> | RH>, InvalidChannelOptionsError>
} = (
  name: string,
  source: Source<any, any, any, any>,
  handler: (value: any, event: any) => Effect.Effect<any, any, any>,
  options?: Options<any> & { readonly batch?: BatchOptions | undefined }
): Effect.Effect<Agent<any, any, any, any>, InvalidChannelOptionsError> =>
  Effect.map(settings.resolve(options), (resolved) =>
    makeAgent(
      name,
      sourceOf(source),
      resolved,
      handle.handlerLoop(
        resolved.batch === undefined
          ? (events) => handler(events[0].value, events[0])
          : (events) => handler(events.map((event) => event.value), events)
      ),
      true
    ))

/**
 * An agent whose body is a stream transformation (Faust's async-iterator
 * agent): `process` reads the values of `source` (arrays of them with
 * `batch`) and emits results, which go to the sinks and to the asker of the
 * event they were emitted for (the one read last). An event is acknowledged
 * when the process reads the next one, or ends, after its results went
 * through the sinks. `onError.retry` does not apply (a stream cannot be
 * retried from the middle); when the process fails, `onError.then` applies to
 * the event it was on: `"fail"` stops the agent (or restarts it), `"skip"` and
 * `deadLetter` go on with a fresh process from the next event.
 *
 * **Example**
 *
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { Agent, App, Channel } from "effect-faust"
 *
 * const program = Effect.gen(function*() {
 *   const words = yield* Channel.make({ value: Schema.String })
 *   const upper = yield* Agent.make("upper", words, (values) => Stream.map(values, (word) => word.toUpperCase()))
 *   yield* Effect.forkChild(upper.run)
 *   const shout = yield* upper.ask({ value: "hello", timeout: "1 second" })
 *   yield* Effect.log(shout)
 * }).pipe(Effect.provide(App.layer({ id: "shouting" })))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: {
  <S extends AnySource, Out, EP, RP>(
    name: string,
    source: S,
    process: (values: Stream.Stream<ReadonlyArray<ValueOf<S>>>) => Stream.Stream<Out, EP, RP>,
    options: Options<Out> & { readonly batch: BatchOptions }
  ): Effect.Effect<Agent<KeyOf<S>, ValueOf<S>, Out, RequirementsOf<S> | RP>, InvalidChannelOptionsError>
  <S extends AnySource, Out, EP, RP>(
    name: string,
    source: S,
    process: (values: Stream.Stream<ValueOf<S>>) => Stream.Stream<Out, EP, RP>,
    options?: Options<Out> & { readonly batch?: undefined }
  ): Effect.Effect<Agent<KeyOf<S>, ValueOf<S>, Out, RequirementsOf<S> | RP>, InvalidChannelOptionsError>
} = (
  name: string,
  source: Source<any, any, any, any>,
  process: (values: Stream.Stream<any>) => Stream.Stream<any, any, any>,
  options?: Options<any> & { readonly batch?: BatchOptions | undefined }
): Effect.Effect<Agent<any, any, any, any>, InvalidChannelOptionsError> =>
  Effect.map(
    settings.resolve(options),
    (resolved) => makeAgent(name, sourceOf(source), resolved, processLoop(process), false)
  )

/**
 * Runs the agent for the lifetime of the layer: it starts when the layer is
 * built and stops gracefully when the layer's scope closes. If the agent
 * fails for good, its {@link AgentError} is logged and the fiber that built
 * the layer (the program) is interrupted, so a `NodeRuntime.runMain` program
 * exits non-zero instead of running on without it.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = <K, V, Out, R, E = never, R2 = never>(
  agent: Agent<K, V, Out, R> | Effect.Effect<Agent<K, V, Out, R>, E, R2>
): Layer.Layer<never, E, Exclude<R | R2, Scope.Scope>> =>
  Layer.effectDiscard(
    Effect.gen(function*() {
      const resolved = isAgent(agent) ? agent as Agent<K, V, Out, R> : yield* agent
      const program = yield* Effect.withFiber((fiber) => Effect.succeed(fiber))
      yield* Effect.forkScoped(
        Effect.onExit(resolved.run, (exit) =>
          Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)
            ? Effect.andThen(
              Effect.logError(`agent ${resolved.name} stopped`, exit.cause),
              Effect.sync(() => program.interruptUnsafe())
            )
            : Effect.void)
      )
    })
  ) as Layer.Layer<never, E, Exclude<R | R2, Scope.Scope>>
