import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import * as page from "./page.ts"
import type { Sampler } from "./sampler.ts"
import * as stats from "./stats.ts"

/** Headers of every response: nothing is cached, sniffed or framed. */
const commonHeaders = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer"
}

/** The page loads its script and style from this server only, and talks to it only. */
const pageHeaders = {
  ...commonHeaders,
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

const json = (body: unknown, status = 200) => HttpServerResponse.jsonUnsafe(body, { status, headers: commonHeaders })

/** The raw path of a request's URL (its query dropped). */
const exactPath = (url: string): string => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

const notFound = Effect.succeed(
  HttpServerResponse.jsonUnsafe(
    { error: "not found", paths: ["/", "/metrics", "/health", "/ready", "/stats"] },
    { status: 404, headers: commonHeaders }
  )
)

/**
 * A path's handler for GET; any other method gets 405 with `Allow: GET`.
 * Only the path exactly as written answers (the router also matches other
 * spellings: another case, a trailing or doubled slash, percent-encoding).
 */
const getOnly = <E, R>(path: string, handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    exactPath(request.url) !== path
      ? notFound
      : request.method === "GET"
      ? handler
      : Effect.succeed(HttpServerResponse.jsonUnsafe(
        { error: "method not allowed", method: request.method, allow: ["GET"] },
        { status: 405, headers: { ...commonHeaders, allow: "GET" } }
      )))

/** Every route of the web layer, on the router of the server it is served by. */
export const routes = (sampler: Sampler, startedAt: number) =>
  Layer.mergeAll(
    HttpRouter.add(
      "*",
      "/",
      getOnly("/", Effect.succeed(HttpServerResponse.html(page.html).pipe(HttpServerResponse.setHeaders(pageHeaders))))
    ),
    HttpRouter.add(
      "*",
      "/page.js",
      getOnly(
        "/page.js",
        Effect.succeed(HttpServerResponse.text(page.script, {
          contentType: "text/javascript; charset=utf-8",
          headers: pageHeaders
        }))
      )
    ),
    HttpRouter.add(
      "*",
      "/page.css",
      getOnly(
        "/page.css",
        Effect.succeed(HttpServerResponse.text(page.style, {
          contentType: "text/css; charset=utf-8",
          headers: pageHeaders
        }))
      )
    ),
    HttpRouter.add(
      "*",
      "/metrics",
      getOnly(
        "/metrics",
        Effect.map(PrometheusMetrics.format(), (text) =>
          HttpServerResponse.text(text, {
            contentType: "text/plain; version=0.0.4; charset=utf-8",
            headers: commonHeaders
          }))
      )
    ),
    HttpRouter.add(
      "*",
      "/health",
      getOnly(
        "/health",
        Effect.sync(() => json({ status: "up", uptimeSeconds: Math.round((Date.now() - startedAt) / 1000) }))
      )
    ),
    HttpRouter.add(
      "*",
      "/ready",
      getOnly(
        "/ready",
        Effect.map(sampler.now, (current) => {
          const readiness = stats.readiness(current)
          return json(readiness, readiness.ready ? 200 : 503)
        })
      )
    ),
    HttpRouter.add(
      "*",
      "/stats",
      getOnly(
        "/stats",
        Effect.gen(function*() {
          const params = yield* HttpServerRequest.ParsedSearchParams
          const current = yield* sampler.latest
          return json(params.history === undefined ? current : { ...current, history: sampler.history() })
        })
      )
    ),
    HttpRouter.add("*", "*", notFound)
  )
