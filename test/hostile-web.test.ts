/**
 * A hostile review of the README's "Web view" and "Tracing" promises, tested
 * from outside as a user would (public modules only). Each test names the
 * promise it checks.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Logger, Metric, Option, Schedule, Schema, Scope } from "effect"
import { Agent, App, Channel, Event, Message } from "effect-faust"
import * as Web from "effect-faust/web"
import * as net from "node:net"
import * as os from "node:os"
import { AppTest, waitUntil } from "./helpers.ts"
import { memoryTracer } from "./memoryTracer.ts"

/** A registry of its own, so that series of other tests never show. */
const Isolated = Layer.succeed(Metric.MetricRegistry, new Map())

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: string
}

const request = (url: string, init?: RequestInit) =>
  Effect.promise(async (): Promise<Reply> => {
    const response = await fetch(url, init)
    return { status: response.status, headers: response.headers, body: await response.text() }
  })

const until = (url: string, ok: (reply: Reply) => boolean) =>
  request(url).pipe(Effect.filterOrFail(ok), Effect.retry(Schedule.spaced("50 millis")))

/**
 * Writes `text` on a raw TCP connection and returns what the server answered
 * until it closes the connection (or `waitMillis` passes).
 */
const raw = (port: number, text: string | Uint8Array, waitMillis = 2_000) =>
  Effect.promise(() =>
    new Promise<string>((resolve) => {
      const chunks: Array<Buffer> = []
      const socket = net.connect(port, "127.0.0.1")
      const done = () => {
        clearTimeout(timer)
        socket.destroy()
        resolve(Buffer.concat(chunks).toString("latin1"))
      }
      const timer = setTimeout(done, waitMillis)
      socket.on("data", (chunk) => chunks.push(chunk))
      socket.on("end", done)
      socket.on("error", done)
      socket.on("connect", () => socket.write(text))
    })
  )

const statusOf = (response: string): number => Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? NaN)

/** Parses Prometheus text strictly (one sample a line, labels `name="escaped"`). */
const parsePrometheus = (text: string) => {
  const samples: Array<{ name: string; labels: Record<string, string>; value: string }> = []
  // A label value may hold any character but an unescaped `"`, `\\` or line feed (a raw CR is legal).
  const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([\s\S]*)\})?[ \t]+(\S+)$/
  const labelPair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)",?/y
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue
    const match = sampleLine.exec(line)
    if (match === null) throw new Error(`bad sample: ${JSON.stringify(line)}`)
    const [, name, labelText = "", value] = match
    const labels: Record<string, string> = {}
    labelPair.lastIndex = 0
    while (labelPair.lastIndex < labelText.length) {
      const pair = labelPair.exec(labelText)
      if (pair === null) throw new Error(`bad labels: ${JSON.stringify(line)}`)
      labels[pair[1]] = pair[2].replace(/\\([\\"n])/g, (_, c: string) => c === "n" ? "\n" : c)
    }
    samples.push({ name, labels, value })
  }
  return samples
}

/** Collects every log line (message and annotations, as text). */
const collectingLogger = () => {
  const lines: Array<string> = []
  const logger = Logger.make((options) => {
    lines.push(`${options.logLevel} ${JSON.stringify(options.message)} ${String(options.cause)}`)
  })
  return { lines, layer: Logger.layer([logger]) }
}

const quietLogs = Logger.layer([])

const webLayer = (options?: Web.Options) => Web.layer({ port: 0, interval: "100 millis", ...options })

const provided = <A, E>(effect: Effect.Effect<A, E, any>, logs: Layer.Layer<never> = quietLogs) =>
  effect.pipe(
    Effect.provide(webLayer().pipe(Layer.provideMerge(Layer.mergeAll(Isolated, AppTest, logs)))),
    Effect.scoped
  ) as Effect.Effect<A, E>

const statsOf = (url: string) => Effect.map(request(`${url}/stats`), (reply) => JSON.parse(reply.body) as Web.Stats)

describe("Web view: methods and paths", () => {
  it.live("promise: any method but GET answers 405 with Allow: GET (OPTIONS, PATCH, POST with a body)", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      for (const path of ["/", "/metrics", "/health", "/ready", "/stats", "/page.js"]) {
        for (const method of ["OPTIONS", "PATCH"]) {
          const reply = yield* request(`${web.url}${path}`, { method })
          assert.strictEqual(reply.status, 405, `${method} ${path}`)
          assert.strictEqual(reply.headers.get("allow"), "GET", `${method} ${path}`)
        }
        const post = yield* request(`${web.url}${path}`, { method: "POST", body: "x".repeat(1_000_000) })
        assert.strictEqual(post.status, 405, `POST ${path}`)
      }
    })))

  it.live("promise: an unknown method (raw 'FOO', 'BREW') is refused, never served, and the server stays up", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      for (const method of ["FOO", "BREW", "get"]) {
        const response = yield* raw(web.port, `${method} /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
        const status = statusOf(response)
        assert.notStrictEqual(status, 200, `${method}: ${response.slice(0, 80)}`)
      }
      assert.strictEqual((yield* request(`${web.url}/health`)).status, 200)
    })))

  it.live("promise: a query string does not change the path (/metrics?x, /health?, /ready?a=b are served)", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      for (const path of ["/metrics?x", "/health?", "/ready?a=b&c", "/stats?history=0&x=%00", "/?x=<script>"]) {
        const reply = yield* request(`${web.url}${path}`)
        assert.strictEqual(reply.status, 200, path)
      }
    })))

  it.live("promise: any other path answers 404 (traversal, doubled or trailing slashes, case, encodings)", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      const paths = [
        "//metrics",
        "/metrics/",
        "/METRICS",
        "/%6Detrics",
        "/health/../metrics",
        "/%2e%2e/metrics",
        "/..%2fmetrics",
        "/metrics%00",
        "/metrics;x",
        "/stats.json",
        "/etc/passwd",
        "/../../../../etc/passwd",
        "/page.js/../../package.json",
        "/node_modules/effect/package.json",
        "/src/web/Web.ts"
      ]
      const answers: Record<string, number> = {}
      for (const path of paths) {
        const response = yield* raw(web.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
        answers[path] = statusOf(response)
        // Never a file of the machine, never a server error.
        assert.notInclude(response, "root:x:0:0", path)
        assert.notInclude(response, "\"name\": \"effect", path)
      }
      for (const [path, status] of Object.entries(answers)) {
        assert.include([400, 404], status, `${path} answered ${status}: ${JSON.stringify(answers)}`)
      }
    })))

  it.live("promise: very long URLs and malformed requests are refused, and the server keeps serving", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      const huge = yield* raw(
        web.port,
        `GET /metrics?${"a".repeat(200_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`
      )
      assert.include([200, 400, 414, 431], statusOf(huge), huge.slice(0, 80))
      const longPath = yield* request(`${web.url}/${"x".repeat(8_000)}`)
      assert.strictEqual(longPath.status, 404)
      yield* raw(web.port, new Uint8Array(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)))
      yield* raw(web.port, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
      yield* raw(web.port, "GET /metrics HTTP/1.1\r\n\u0000\u0001: \u00ff\r\n\r\n")
      // A slow client that sends half a request and stays.
      const slow = yield* Effect.forkChild(raw(web.port, "GET /metrics HTTP/1.1\r\nHost: x\r\n", 500))
      assert.strictEqual((yield* request(`${web.url}/health`)).status, 200)
      yield* Fiber.join(slow)
    })))
})

describe("Web view: labels, escaping and what it never exposes", () => {
  const hostileLabels = [
    "quote\"d",
    "back\\slash",
    "new\nline",
    "cr\rlf",
    "<script>alert(1)</script>",
    "\u{1F600} ünïcödé \u202E rtl",
    "a\\\"b\\n",
    "}{\"",
    "tab\there"
  ]

  it.live("promise: /metrics stays valid Prometheus text whatever the labels (quotes, backslashes, newlines escaped)", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      for (const label of hostileLabels) {
        const channel = yield* Channel.make({ label, value: Schema.String, whenNoSubscribers: "drop" })
        yield* channel.registerMetrics
        yield* channel.send({ value: "v" })
      }
      const reply = yield* request(`${web.url}/metrics`)
      assert.strictEqual(reply.status, 200)
      const samples = parsePrometheus(reply.body)
      for (const label of hostileLabels) {
        const sent = samples.find((sample) =>
          sample.name === "effect_faust_sent_total" && sample.labels.channel === label
        )
        assert.isDefined(sent, `sent_total for ${JSON.stringify(label)}`)
        assert.strictEqual(sent?.value, "1")
      }
    })))

  it.live("promise: /stats is JSON naming each channel by its exact label", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      for (const label of hostileLabels) {
        const channel = yield* Channel.make({ label, value: Schema.String, whenNoSubscribers: "drop" })
        yield* channel.registerMetrics
      }
      const stats = yield* statsOf(web.url)
      const labels = stats.channels.map((channel) => channel.label)
      for (const label of hostileLabels) assert.include(labels, label)
    })))

  it.live("promise: the page builds labels as text — no label ever appears in the HTML or script served", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      const channel = yield* Channel.make({ label: "<img src=x onerror=alert(1)>", value: Schema.String })
      yield* channel.registerMetrics
      for (const path of ["/", "/page.js", "/page.css"]) {
        const reply = yield* request(`${web.url}${path}`)
        assert.strictEqual(reply.status, 200, path)
        assert.notInclude(reply.body, "onerror=alert", path)
      }
      const stats = yield* request(`${web.url}/stats`)
      assert.match(stats.headers.get("content-type") ?? "", /^application\/json/)
    })))

  it.live("promise: an agent's edges name its sinks by label, even labels with commas or quotes", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      const source = yield* Channel.make({ label: "src,1", value: Schema.Number })
      const sinkA = yield* Channel.make({ label: "a,b", value: Schema.Number, whenNoSubscribers: "drop" })
      const sinkB = yield* Channel.make({ label: "c\"d", value: Schema.Number, whenNoSubscribers: "drop" })
      yield* source.registerMetrics
      yield* sinkA.registerMetrics
      yield* sinkB.registerMetrics
      const agent = yield* Agent.forEach("ag,ent", source, (n: number) => Effect.succeed(n), { sinks: [sinkA, sinkB] })
      yield* Effect.forkScoped(agent.run)
      const stats = yield* until(`${web.url}/stats`, (reply) => JSON.parse(reply.body).agents.length === 1).pipe(
        Effect.map((reply) => JSON.parse(reply.body) as Web.Stats)
      )
      assert.strictEqual(stats.agents[0].source, "src,1")
      assert.deepStrictEqual(
        stats.agents[0].sinks,
        ["a,b", "c\"d"],
        `sinks split on the comma; edges: ${JSON.stringify(stats.edges)}`
      )
      assert.deepStrictEqual(
        [...stats.edges].sort((x, y) => x.from.localeCompare(y.from) || x.to.localeCompare(y.to)),
        [
          { from: "agent:ag,ent", to: "channel:a,b" },
          { from: "agent:ag,ent", to: "channel:c\"d" },
          { from: "channel:src,1", to: "agent:ag,ent" }
        ]
      )
    })))

  it.live("promise: a record's key, value and header values appear in no endpoint and no log", () => {
    const { layer, lines } = collectingLogger()
    const secretKey = "KEY-SECRET-7d1f"
    const secretValue = "VALUE-SECRET-93ab"
    const secretHeader = "HEADER-SECRET-55c2"
    return provided(
      Effect.gen(function*() {
        const web = yield* Web.Server
        const orders = yield* Channel.make({ label: "orders", key: Schema.String, value: Schema.String })
        yield* orders.registerMetrics
        let handled = 0
        const failing = yield* Agent.forEach("audit", orders, (value: string) =>
          Effect.suspend(() => {
            handled++
            return value.endsWith("fail") ? Effect.fail(`handler refused ${value}`) : Effect.void
          }), { onError: { then: "skip" } })
        yield* Effect.forkScoped(failing.run)
        yield* until(`${web.url}/stats`, (reply) => JSON.parse(reply.body).agents.length === 1)
        yield* orders.send({ key: secretKey, value: secretValue, headers: { "x-secret": secretHeader } })
        yield* orders.send({ key: secretKey, value: `${secretValue}-fail`, headers: { "x-secret": secretHeader } })
        yield* waitUntil(() => handled >= 2)
        yield* until(`${web.url}/stats`, (reply) => JSON.parse(reply.body).agents[0]?.events >= 1)
        yield* Effect.sleep("250 millis")
        for (
          const path of ["/", "/page.js", "/page.css", "/metrics", "/health", "/ready", "/stats", "/stats?history"]
        ) {
          const reply = yield* request(`${web.url}${path}`)
          for (const secret of [secretKey, secretValue, secretHeader]) {
            assert.notInclude(reply.body, secret, `${path} leaks ${secret}`)
          }
        }
        // Logs of the web view: "It logs nothing per request" — and the library logs no record contents.
        const webLines = lines.filter((line) => /web|http|request|GET/i.test(line))
        assert.deepStrictEqual(webLines, [], "the web view logged per request")
      }),
      layer
    )
  })
})

describe("Web view: /ready and concurrency", () => {
  it.live("promise: /ready is 503 while an agent waits for its restart, and 200 again once it runs", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      const input = yield* Channel.make({ label: "flaky-input", value: Schema.Number })
      let attempts = 0
      const agent = yield* Agent.forEach("flaky", input, () =>
        Effect.suspend(() => {
          attempts++
          return attempts === 1 ? Effect.fail("boom") : Effect.void
        }), { restart: Schedule.spaced("1500 millis") })
      yield* Effect.forkScoped(agent.run)
      yield* until(`${web.url}/ready`, (reply) => reply.status === 200)
      yield* input.send({ value: 1 })
      const down = yield* until(`${web.url}/ready`, (reply) => reply.status === 503)
      assert.deepStrictEqual(JSON.parse(down.body).agents.notRunning, ["flaky"])
      const up = yield* until(`${web.url}/ready`, (reply) => reply.status === 200).pipe(
        Effect.timeout("10 seconds")
      )
      assert.isTrue(JSON.parse(up.body).ready)
    })))

  it.live("promise: /ready is not 200 after an agent has failed for good (no restart) while the process serves", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      const input = yield* Channel.make({ label: "doomed-input", value: Schema.Number })
      const agent = yield* Agent.forEach("doomed", input, () => Effect.fail("boom"))
      const fiber = yield* Effect.forkScoped(agent.run)
      yield* until(`${web.url}/stats`, (reply) => JSON.parse(reply.body).agents.length === 1)
      yield* input.send({ value: 1 })
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      yield* Effect.sleep("300 millis")
      const ready = yield* request(`${web.url}/ready`)
      const stats = yield* statsOf(web.url)
      assert.strictEqual(
        ready.status,
        503,
        `agent "doomed" failed for good, yet /ready says ${ready.status} ${ready.body}; /stats agents: ${
          JSON.stringify(stats.agents)
        }`
      )
    })))

  it.live("promise: every request answers while channels and agents come and go (valid JSON and Prometheus)", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      let stop = false
      const churn = Effect.gen(function*() {
        let i = 0
        while (!stop) {
          i++
          yield* Effect.scoped(Effect.gen(function*() {
            const channel = yield* Channel.make({ label: `churn-${i % 7}`, value: Schema.Number })
            yield* channel.registerMetrics
            const agent = yield* Agent.forEach(`churner-${i % 5}-${i}`, channel, () => Effect.void)
            const fiber = yield* Effect.forkScoped(agent.run)
            yield* channel.send({ value: i })
            yield* Effect.sleep("2 millis")
            yield* channel.end
            yield* Fiber.await(fiber)
          }))
        }
      })
      const churners = yield* Effect.forkChild(Effect.all([churn, churn, churn], { concurrency: "unbounded" }))
      const failures: Array<string> = []
      yield* Effect.forEach(Array.from({ length: 300 }, (_, i) => i), (i) =>
        Effect.gen(function*() {
          const path = ["/metrics", "/stats", "/stats?history", "/ready"][i % 4]
          const reply = yield* request(`${web.url}${path}`)
          if (path === "/ready" ? ![200, 503].includes(reply.status) : reply.status !== 200) {
            failures.push(`${path} ${reply.status} ${reply.body.slice(0, 200)}`)
            return
          }
          try {
            if (path === "/metrics") parsePrometheus(reply.body)
            else JSON.parse(reply.body)
          } catch (error) {
            failures.push(`${path}: ${String(error)}`)
          }
        }), { concurrency: 16 })
      stop = true
      yield* Fiber.join(churners)
      assert.deepStrictEqual(failures, [])
    })))
})

describe("Web view: binding, ports and shutdown", () => {
  it.live("promise: it binds to 127.0.0.1 unless a host is given (not reachable on another address)", () =>
    Effect.gen(function*() {
      const other = Object.values(os.networkInterfaces()).flat().find((a) =>
        a !== undefined && a.family === "IPv4" && !a.internal
      )
      const web = yield* Web.Server
      assert.strictEqual(web.host, "127.0.0.1")
      if (other !== undefined) {
        const reachable = yield* Effect.promise(() =>
          new Promise<boolean>((resolve) => {
            const socket = net.connect(web.port, other.address)
            socket.on("connect", () => {
              socket.destroy()
              resolve(true)
            })
            socket.on("error", () => resolve(false))
          })
        )
        assert.isFalse(reachable, `reachable on ${other.address}:${web.port}`)
      }
    }).pipe(Effect.provide(webLayer().pipe(Layer.provideMerge(Isolated))), Effect.scoped))

  const portIsFree = (port: number) =>
    Effect.promise(() =>
      new Promise<boolean>((resolve) => {
        const server = net.createServer()
        server.once("error", () => resolve(false))
        server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
      })
    )

  /** Builds the web view in a scope of its own; `client` opens connections before it is closed. */
  const closeWith = (client: (port: number) => Effect.Effect<ReadonlyArray<net.Socket>>) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(webLayer().pipe(Layer.provide(Isolated)), scope)
      const web = context.mapUnsafe.get(Web.Server.key) as { port: number; url: string }
      const sockets = yield* client(web.port)
      yield* Effect.sleep("200 millis")
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      const millis = Date.now() - started
      for (const socket of sockets) socket.destroy()
      return { millis, free: yield* portIsFree(web.port), port: web.port }
    })

  const connect = (port: number, text: string) =>
    Effect.promise(() =>
      new Promise<net.Socket>((resolve) => {
        const socket = net.connect(port, "127.0.0.1", () => {
          socket.write(text)
          resolve(socket)
        })
        socket.on("error", () => undefined)
      })
    )

  it.live("promise: closing the layer frees the port at once (after requests, with an idle keep-alive connection)", () =>
    Effect.gen(function*() {
      const { free, millis, port } = yield* closeWith((port) =>
        Effect.gen(function*() {
          yield* request(`http://127.0.0.1:${port}/metrics`)
          return [yield* connect(port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")]
        })
      )
      assert.isTrue(free, `port ${port} still bound after the layer closed`)
      assert.isBelow(millis, 2_000)
    }))

  it.live(
    "expectation (not in the README): a client that sent half a request cannot hold the layer's shutdown",
    () =>
      Effect.gen(function*() {
        const { free, millis } = yield* closeWith((port) =>
          Effect.map(connect(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n"), (socket) => [socket])
        )
        assert.isTrue(free)
        // Measured: 20 000 ms, effect's NodeHttpServer gracefulShutdownTimeout, which Web.layer does not expose.
        assert.isBelow(millis, 5_000, `closing the web view took ${millis} ms while one client held a half request`)
      }),
    60_000
  )

  it.live("promise: a port that cannot be bound fails the layer with WebStartError naming it (out of range, negative)", () =>
    Effect.gen(function*() {
      const outcomes: Record<string, string> = {}
      for (const port of [70_000, 65_536, -1, 1.5, Number.NaN]) {
        const exit = yield* Effect.exit(Layer.build(Web.layer({ port })).pipe(Effect.scoped))
        const error = Exit.isFailure(exit) ? Option.getOrUndefined(Exit.findErrorOption(exit)) : undefined
        outcomes[String(port)] = Exit.isSuccess(exit)
          ? "bound"
          : (error as { _tag?: string } | undefined)?._tag ?? `defect: ${String(exit.cause).slice(0, 120)}`
      }
      assert.deepStrictEqual(outcomes, {
        "70000": "WebStartError",
        "65536": "WebStartError",
        "-1": "WebStartError",
        "1.5": "WebStartError",
        "NaN": "WebStartError"
      })
    }).pipe(Effect.provide(Isolated)))

  it.live("promise: a host that is not an address of this machine fails with WebStartError saying so", () =>
    Effect.gen(function*() {
      for (const host of ["203.0.113.7", "no-such-host.invalid"]) {
        const exit = yield* Effect.exit(Layer.build(Web.layer({ port: 0, host })).pipe(Effect.scoped))
        assert.isTrue(Exit.isFailure(exit), host)
        const error = Exit.isFailure(exit) ? Option.getOrUndefined(Exit.findErrorOption(exit)) : undefined
        assert.strictEqual((error as { _tag?: string } | undefined)?._tag, "WebStartError", `${host}: ${String(exit)}`)
        assert.include((error as Error).message, host)
      }
    }).pipe(Effect.provide(Isolated)))

  it.live("promise: a port in use fails with WebStartError 'port N is already in use' (held by another process's socket)", () =>
    Effect.gen(function*() {
      const server = net.createServer()
      const port = yield* Effect.promise(() =>
        new Promise<number>((resolve) =>
          server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port))
        )
      )
      const error = yield* Layer.build(Web.layer({ port })).pipe(Effect.scoped, Effect.flip)
      server.close()
      assert.strictEqual(error._tag, "WebStartError")
      assert.strictEqual(
        error.message,
        `the web view could not listen on 127.0.0.1:${port}: port ${port} is already in use`
      )
    }).pipe(Effect.provide(Isolated)))

  it.live("bad input: interval 0 or negative, history 0/NaN do not crash the view or spin", () =>
    Effect.gen(function*() {
      for (const options of [{ interval: 0 }, { history: 0 }, { history: Number.NaN }, { history: -5 }]) {
        const exit = yield* Effect.exit(
          Effect.scoped(Effect.gen(function*() {
            const context = yield* Layer.build(Web.layer({ port: 0, ...options }))
            const web = context.mapUnsafe.get(Web.Server.key) as { url: string }
            yield* Effect.sleep("300 millis")
            const reply = yield* request(`${web.url}/stats?history`)
            assert.strictEqual(reply.status, 200, JSON.stringify(options))
            const stats = JSON.parse(reply.body)
            assert.isObject(stats, JSON.stringify(options))
          })).pipe(Effect.timeout("5 seconds"))
        )
        // Either refused up front, or serving: never a defect or a hang.
        if (Exit.isFailure(exit)) {
          assert.isFalse(
            String(exit.cause).includes("TimeoutError"),
            `${JSON.stringify(options)} hung: ${String(exit.cause)}`
          )
          assert.isTrue(
            Option.isSome(Exit.findErrorOption(exit)),
            `${JSON.stringify(options)} died: ${String(exit.cause)}`
          )
        }
      }
    }).pipe(Effect.provide(Isolated)))
})

const TRACE = "0af7651916cd43dd8448eb211c80319c"
const SPAN = "b7ad6b7169203331"
const VALID = `00-${TRACE}-${SPAN}-01`

const eventWith = (headers: Message.Headers) =>
  Event.make({
    key: null,
    value: 1,
    headers,
    message: Message.make({ topic: "t", partition: 2, offset: 7, timestamp: 0, timestampType: 0, key: null, value: 1 })
  })

describe("Tracing", () => {
  const hostile: Array<string | Uint8Array> = [
    "",
    VALID.slice(0, 54),
    `${VALID}-`,
    ` ${VALID}`,
    VALID.toUpperCase(),
    `ff-${TRACE}-${SPAN}-01`,
    `00-${"0".repeat(32)}-${SPAN}-01`,
    `00-${TRACE}-${"0".repeat(16)}-01`,
    `00-${TRACE}-${SPAN}-0g`,
    `00-${TRACE}-${SPAN}-01`.replace("a", "\u00e9"),
    "x".repeat(1_000_000),
    new Uint8Array(55).fill(0xff),
    new TextEncoder().encode(`00-${TRACE}-${SPAN}-0\u00ff`)
  ]

  it.effect("promise: a hostile traceparent on an in-memory send is ignored by an agent (no span, handled, no failure)", () =>
    Effect.gen(function*() {
      const { spans, tracer } = memoryTracer()
      const input = yield* Channel.make({ label: "hostile-trace", value: Schema.Number, maxsize: 64 })
      let handled = 0
      const agent = yield* Agent.forEach("tracer-victim", input, () =>
        Effect.sync(() => {
          handled++
        }))
      const fiber = yield* Effect.forkChild(agent.run.pipe(Effect.withTracer(tracer)))
      for (const value of hostile) {
        yield* input.send({ value: 1, headers: [["traceparent", value]] })
      }
      // Several traceparent headers: an invalid one first, a valid one second.
      yield* input.send({ value: 2, headers: [["traceparent", "garbage"], ["traceparent", VALID]] })
      yield* waitUntil(() => handled >= hostile.length + 1)
      yield* input.end
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isSuccess(exit), String(exit))
      assert.strictEqual(agent.stats.failed, 0)
      const agentSpans = spans.filter((span) => span.name === "agent tracer-victim")
      // None of the hostile values names a parent; at most one span (the doubled header), never with a hostile parent.
      for (const span of agentSpans) {
        assert.strictEqual(Option.getOrThrow(span.parent).spanId, SPAN)
      }
      assert.isAtMost(agentSpans.length, 1)
    }).pipe(Effect.provide(AppTest)))

  it("promise: Event.traceContext never throws on hostile headers, and is none for each", () => {
    for (const value of hostile) {
      assert.isTrue(Option.isNone(Event.traceContext(eventWith([["traceparent", value]]))), String(value).slice(0, 60))
    }
  })

  it.effect("promise: Event.withSpan without a traceparent: parent is the current span (as Effect.withSpan)", () =>
    Effect.gen(function*() {
      const { spans, tracer } = memoryTracer()
      yield* Effect.void.pipe(
        Event.withSpan(eventWith([]), "handle"),
        Effect.withSpan("outer"),
        Effect.withTracer(tracer)
      )
      const outer = spans.find((span) => span.name === "outer")!
      const handle = spans.find((span) => span.name === "handle")!
      assert.strictEqual(handle.traceId, outer.traceId)
      assert.strictEqual(Option.getOrThrow(handle.parent).spanId, outer.spanId)
      assert.strictEqual(handle.kind, "consumer")
      assert.deepStrictEqual(Object.fromEntries(handle.attributes), { topic: "t", partition: 2, offset: 7 })
      // Root when there is no current span either.
      yield* Effect.void.pipe(Event.withSpan(eventWith([["traceparent", "junk"]]), "root"), Effect.withTracer(tracer))
      assert.isTrue(Option.isNone(spans.find((span) => span.name === "root")!.parent))
    }))

  it.effect("promise: Event.withSpan with a valid traceparent: the producer's span is the parent even inside another span", () =>
    Effect.gen(function*() {
      const { spans, tracer } = memoryTracer()
      yield* Effect.void.pipe(
        Event.withSpan(eventWith([["traceparent", new TextEncoder().encode(`00-${TRACE}-${SPAN}-00`)]]), "h"),
        Effect.withSpan("outer"),
        Effect.withTracer(tracer)
      )
      const handle = spans.find((span) => span.name === "h")!
      assert.strictEqual(handle.traceId, TRACE)
      assert.strictEqual(Option.getOrThrow(handle.parent).spanId, SPAN)
      // Bit 0 of the flags is the span's sampled: an unsampled producer is not sampled here either.
      const parent = Option.getOrThrow(handle.parent)
      assert.isFalse(parent.sampled)
    }))

  it.effect("promise: Event.withSpan fails and defects pass through unchanged, and the span ends", () =>
    Effect.gen(function*() {
      const { spans, tracer } = memoryTracer()
      const exit = yield* Effect.fail("nope").pipe(
        Event.withSpan(eventWith([["traceparent", VALID]]), "failing"),
        Effect.withTracer(tracer),
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.deepStrictEqual(
        Exit.isFailure(exit) ? Option.getOrUndefined(Exit.findErrorOption(exit)) : undefined,
        "nope"
      )
      const died = yield* Effect.die("bang").pipe(
        Event.withSpan(eventWith([]), "dying"),
        Effect.withTracer(tracer),
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(died) && Cause.hasDies(died.cause))
      assert.strictEqual(spans[1].status._tag, "Ended")
      assert.strictEqual(spans[0].status._tag, "Ended")
    }))

  it.effect("promise: a chain of agents in memory is one trace (what a handler sends carries the agent span on)", () =>
    Effect.gen(function*() {
      const { spans, tracer } = memoryTracer()
      const first = yield* Channel.make({ label: "first", value: Schema.Number, maxsize: 16 })
      const second = yield* Channel.make({ label: "second", value: Schema.Number, maxsize: 16 })
      let done = 0
      const a = yield* Agent.forEach("hop-a", first, (n: number) => second.send({ value: n + 1 }))
      const b = yield* Agent.forEach("hop-b", second, () =>
        Effect.sync(() => {
          done++
        }))
      const fibers = [
        yield* Effect.forkChild(a.run.pipe(Effect.withTracer(tracer))),
        yield* Effect.forkChild(b.run.pipe(Effect.withTracer(tracer)))
      ]
      yield* first.send({ value: 1 }).pipe(Effect.withSpan("origin"), Effect.withTracer(tracer))
      yield* waitUntil(() => done >= 1)
      yield* first.end
      yield* Fiber.await(fibers[0])
      yield* second.end
      yield* Fiber.await(fibers[1])
      const origin = spans.find((span) => span.name === "origin")!
      const spanA = spans.find((span) => span.name === "agent hop-a")
      const spanB = spans.find((span) => span.name === "agent hop-b")
      assert.isDefined(spanA, "no agent hop-a span")
      assert.isDefined(spanB, "no agent hop-b span")
      assert.strictEqual(spanA!.traceId, origin.traceId)
      assert.strictEqual(spanB!.traceId, origin.traceId, "the second hop started a new trace")
      assert.strictEqual(spanA!.kind, "consumer")
      assert.strictEqual(spanA!.attributes.get("agent"), "hop-a")
      for (const key of ["topic", "partition", "offset"]) {
        assert.isTrue(spanA!.attributes.has(key), `agent span lacks attribute ${key}`)
      }
    }).pipe(Effect.provide(AppTest)))

  it.effect("promise: publishMessage in memory adds the traceparent of the sending span", () =>
    Effect.gen(function*() {
      const { spans, tracer } = memoryTracer()
      const channel = yield* Channel.make({ value: Schema.Number, maxsize: 8 })
      const subscriber = yield* Effect.forkChild(channel.get())
      yield* Effect.yieldNow
      const future = yield* channel.asFutureMessage({ value: 5 })
      yield* channel.publishMessage(future).pipe(Effect.withSpan("pub"), Effect.withTracer(tracer))
      const event = yield* Fiber.join(subscriber)
      const pub = spans.find((span) => span.name === "pub")!
      assert.deepStrictEqual(event.headers, [["traceparent", `00-${pub.traceId}-${pub.spanId}-01`]])
    }).pipe(Effect.provide(AppTest)))
})

// Keep `App` referenced for readers: the tests run in AppTest's app.
void App
