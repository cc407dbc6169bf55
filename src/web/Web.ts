/**
 * `effect-faust/web`: a web view of a running app, on effect's HTTP server
 * (`HttpRouter`, `HttpServer`) with `@effect/platform-node`'s
 * `NodeHttpServer`.
 *
 * - `GET /metrics`: Prometheus text from effect's metric registry
 *   (`PrometheusMetrics.format`).
 * - `GET /health`: 200 while the process is up.
 * - `GET /ready`: 200 when every registered agent runs and every registered
 *   topic has partitions assigned, else 503 with what is not ready.
 * - `GET /stats`: a JSON snapshot of channels, topics and agents, with rates
 *   (`?history` adds the last minutes per graph node).
 * - `GET /`: a live page drawing the pipeline (agents, channels, topics) with
 *   rates, queue depths or lag and sparklines, refreshed every second.
 *
 * Everything is read from effect's `Metric` registry, where channels, topics
 * and agents register their series: names, counts and offsets, never record
 * contents or credentials. It binds to 127.0.0.1 unless a host is given.
 *
 * @since 0.3.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import type { ServeError } from "effect/http/HttpServerError"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { createServer } from "node:http"
import { routes } from "./internal/router.ts"
import * as sampler from "./internal/sampler.ts"
import type * as stats from "./internal/stats.ts"

/**
 * Options of {@link layer}.
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** The port to listen on (default 9464; 0 picks a free one). */
  readonly port?: number | undefined
  /** The address to bind (default `127.0.0.1`: reachable from this machine only). */
  readonly host?: string | undefined
  /** How often rates are computed and the sparklines get a point (default 1 second). */
  readonly interval?: Duration.Input | undefined
  /** How many points each sparkline keeps (default 300: five minutes at one a second). */
  readonly history?: number | undefined
}

/**
 * The running web view: where it listens.
 *
 * @since 0.3.0
 * @category services
 */
export class Server extends Context.Service<Server, {
  /** The base URL, e.g. `http://127.0.0.1:9464`. */
  readonly url: string
  readonly host: string
  /** The port it listens on (the one picked when 0 was asked for). */
  readonly port: number
}>()("effect-faust/web/Server") {}

/**
 * The web view could not start listening: the port is in use, binding it is
 * not permitted, or the host is not an address of this machine.
 *
 * @since 0.3.0
 * @category errors
 */
export class WebStartError extends Schema.TaggedError<WebStartError>()("WebStartError", {
  host: Schema.String,
  port: Schema.Number,
  /** Node's error code, e.g. `EADDRINUSE`, when there is one. */
  code: Schema.optional(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    return `the web view could not listen on ${this.host}:${this.port}: ${this.reason}`
  }
}

/**
 * A JSON snapshot, as `GET /stats` serves it.
 *
 * @since 0.3.0
 * @category models
 */
export type Stats = stats.Stats

/**
 * A channel's part of {@link Stats} (a topic's channel series included).
 *
 * @since 0.3.0
 * @category models
 */
export type ChannelStats = stats.ChannelStats

/**
 * A topic's part of {@link Stats}: assignment, committed offsets and lag per partition.
 *
 * @since 0.3.0
 * @category models
 */
export type TopicStats = stats.TopicStats

/**
 * An agent's part of {@link Stats}.
 *
 * @since 0.3.0
 * @category models
 */
export type AgentStats = stats.AgentStats

/**
 * What `GET /ready` answers.
 *
 * @since 0.3.0
 * @category models
 */
export type Readiness = stats.Readiness

const describeServeError = (error: ServeError, host: string, port: number): WebStartError => {
  const cause = error.cause as { readonly code?: unknown; readonly message?: unknown } | undefined
  const code = typeof cause?.code === "string" ? cause.code : undefined
  const reason = code === "EADDRINUSE"
    ? `port ${port} is already in use`
    : code === "EACCES"
    ? `binding port ${port} is not permitted`
    : code === "EADDRNOTAVAIL"
    ? `${host} is not an address of this machine`
    : typeof cause?.message === "string"
    ? cause.message
    : "the server failed to start"
  return new WebStartError(code === undefined ? { host, port, reason } : { host, port, code, reason })
}

/**
 * The routes of the web view, for an app that runs its own `HttpRouter`:
 * `/`, `/page.js`, `/page.css`, `/metrics`, `/health`, `/ready`, `/stats`,
 * and a catch-all answering 404 (so mount it on a router of its own, or
 * serve it with {@link layer}). Samples the metric registry while it lives.
 *
 * @since 0.3.0
 * @category layers
 */
export const routesLayer = (
  options?: Pick<Options, "interval" | "history">
): Layer.Layer<never, never, HttpRouter.HttpRouter> =>
  Layer.unwrap(Effect.gen(function*() {
    const interval = Duration.fromInputUnsafe(options?.interval ?? Duration.seconds(1))
    const view = sampler.make(Duration.toMillis(interval) / 1000, Math.max(2, options?.history ?? 300))
    yield* Effect.forkScoped(Effect.repeat(view.sample, Schedule.spaced(interval)))
    return routes(view, Date.now())
  }))

/**
 * Serves the web view while the layer lives, and provides {@link Server} (where
 * it listens). Fails with {@link WebStartError} when it cannot listen, e.g.
 * when the port is in use.
 *
 * **Details**
 *
 * It binds to `127.0.0.1` unless `host` is given; answers GET only (405
 * otherwise, 404 for an unknown path); logs nothing per request. The series it
 * reads are those in effect's metric registry: channel and topic layers and
 * agents register theirs while they run.
 *
 * **Example** (Serving the web view beside an app)
 *
 * ```ts
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Effect, Layer } from "effect"
 * import * as Web from "effect-faust/web"
 *
 * const program = Effect.gen(function*() {
 *   const web = yield* Web.Server
 *   yield* Effect.log(`web view on ${web.url}`)
 *   return yield* Effect.never
 * })
 *
 * program.pipe(Effect.provide(Web.layer({ port: 9464 })), NodeRuntime.runMain)
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Server, WebStartError> => {
  const host = options?.host ?? "127.0.0.1"
  const port = options?.port ?? 9464
  if (!Number.isSafeInteger(port) || port < 0 || port > 65_535) {
    return Layer.effect(
      Server,
      Effect.fail(new WebStartError({ host, port, reason: "the port must be an integer from 0 to 65535" }))
    )
  }
  const served = HttpRouter.serve(routesLayer(options), { disableLogger: true, disableListenLog: true })
  const web = Layer.effect(
    Server,
    Effect.gen(function*() {
      const { address } = yield* HttpServer.HttpServer
      const bound = "port" in address ? address.port : port
      return { url: HttpServer.formatAddress(address), host, port: bound }
    })
  )
  return Layer.mergeAll(served, web).pipe(
    // A client that never finishes its request must not hold the layer's close for long.
    Layer.provide(NodeHttpServer.layer(() => createServer(), { port, host, gracefulShutdownTimeout: "1 second" })),
    Layer.catchTag("ServeError", (error) => Layer.effect(Server, Effect.fail(describeServeError(error, host, port))))
  )
}
