import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric, Schedule, Schema } from "effect"
import { Agent, Channel } from "effect-faust"
import * as Web from "effect-faust/web"
import { registerPartition, registerTopic } from "../../src/kafka/internal/kafkaMetrics.ts"
import { AppTest, quiet } from "../helpers.ts"

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

/** Polls `url` until `ok` holds for its reply (no time limit but the test's). */
const until = (url: string, ok: (reply: Reply) => boolean) =>
  request(url).pipe(
    Effect.filterOrFail(ok),
    Effect.retry(Schedule.spaced("50 millis"))
  )

interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/**
 * Parses the Prometheus text exposition format (version 0.0.4): `# HELP` and
 * `# TYPE` lines, then samples `name{label="value",...} value`. Throws on a
 * line that is none of these, on a sample whose family has no `# TYPE`, and
 * on a value that is not a number.
 */
const parsePrometheus = (text: string) => {
  const types = new Map<string, string>()
  const samples: Array<Sample> = []
  const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/
  const labelPair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/gy
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue
    if (line.startsWith("#")) {
      const [, keyword, name, rest] = /^#\s+(HELP|TYPE)\s+(\S+)\s*(.*)$/.exec(line) ?? []
      if (keyword === "TYPE") {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) {
          throw new Error(`bad type in: ${line}`)
        }
        types.set(name, rest)
      } else if (keyword === undefined) throw new Error(`bad comment: ${line}`)
      continue
    }
    const match = sampleLine.exec(line)
    if (match === null) throw new Error(`bad sample: ${line}`)
    const [, name, labelText = "", valueText] = match
    const labels: Record<string, string> = {}
    labelPair.lastIndex = 0
    let pair: RegExpExecArray | null
    while (labelPair.lastIndex < labelText.length && (pair = labelPair.exec(labelText)) !== null) {
      labels[pair[1]] = pair[2].replace(/\\(.)/g, (_, c: string) => c === "n" ? "\n" : c)
    }
    if (labelPair.lastIndex !== labelText.length && labelText.length > 0) throw new Error(`bad labels: ${line}`)
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, "")
    if (!types.has(family)) throw new Error(`sample without # TYPE: ${line}`)
    const value = valueText === "+Inf" ? Infinity : valueText === "-Inf" ? -Infinity : Number(valueText)
    if (Number.isNaN(value) && valueText !== "NaN") throw new Error(`bad value: ${line}`)
    samples.push({ name, labels, value })
  }
  return { types, samples }
}

const secret = "card=4111-1111-1111-1111"

/** A channel, a topic's series, a running agent writing to a sink channel, and the web view. */
const setup = Effect.gen(function*() {
  const orders = yield* Channel.make({ label: "orders", value: Schema.String })
  const audited = yield* Channel.make({ label: "audited", value: Schema.String, whenNoSubscribers: "drop" })
  yield* orders.registerMetrics
  yield* audited.registerMetrics
  // A topic's series, registered by the functions Topic layers register them with (no broker here).
  const context = yield* Effect.context<never>()
  yield* Effect.acquireRelease(
    Effect.sync(() => {
      const removeTopic = registerTopic(context, "payments", { acknowledged: 5, committed: 3, streamsReplaced: 1 })
      const removePartition = registerPartition(context, "payments", "payments-v1", 0, {
        committedOffset: () => 3,
        lag: () => 7
      })
      return () => {
        removeTopic()
        removePartition()
      }
    }),
    (remove) => Effect.sync(remove)
  )
  // A sink carrying a label: the agent's info series names it.
  const sink = {
    label: "audited",
    send: ({ value }: { readonly value: number }) => audited.send({ value: String(value) })
  }
  const agent = yield* Agent.forEach("audit", orders, (value: string) => Effect.succeed(value.length), {
    sinks: [sink]
  })
  yield* Effect.forkScoped(agent.run)
  const web = yield* Web.Server
  yield* until(`${web.url}/stats`, (reply) => JSON.parse(reply.body).agents.length === 1)
  yield* orders.send({ value: secret })
  yield* until(`${web.url}/stats`, (reply) => JSON.parse(reply.body).agents[0]?.events === 1)
  return web
})

const provided = <A, E>(effect: Effect.Effect<A, E, any>) =>
  effect.pipe(
    Effect.provide(
      Web.layer({ port: 0, interval: "100 millis" }).pipe(Layer.provideMerge(Layer.mergeAll(Isolated, AppTest, quiet)))
    ),
    Effect.scoped
  ) as Effect.Effect<A, E>

describe("Web", () => {
  it.live("binds 127.0.0.1 by default and picks a free port for port 0", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      assert.strictEqual(web.host, "127.0.0.1")
      assert.isAbove(web.port, 0)
      assert.strictEqual(web.url, `http://127.0.0.1:${web.port}`)
    })))

  it.live("GET /metrics is Prometheus text with every series of the README's tables, with their labels", () =>
    provided(Effect.gen(function*() {
      const web = yield* setup
      const reply = yield* request(`${web.url}/metrics`)
      assert.strictEqual(reply.status, 200)
      assert.match(reply.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/)
      const { samples, types } = parsePrometheus(reply.body)
      const has = (name: string, labels: Record<string, string>, value?: number) => {
        const found = samples.find((sample) =>
          sample.name === name && Object.entries(labels).every(([key, v]) => sample.labels[key] === v)
        )
        assert.isDefined(found, `${name} ${JSON.stringify(labels)}`)
        if (value !== undefined) assert.strictEqual(found?.value, value, name)
      }
      const orders = { channel: "orders" }
      has("effect_faust_sent_total", orders, 1)
      has("effect_faust_dropped_total", orders, 0)
      has("effect_faust_delivered_total", orders, 0)
      for (const policy of ["failed", "skipped", "deadLettered"]) {
        has("effect_faust_decode_errors_total", { ...orders, policy }, 0)
      }
      has("effect_faust_subscribers", orders, 1)
      has("effect_faust_queue_depth", { ...orders, queue: "buffer" })
      has("effect_faust_queue_depth", { ...orders, queue: "subscriber-0" })
      has("effect_faust_acknowledged_total", { channel: "payments" }, 5)
      has("effect_faust_committed_total", { channel: "payments" }, 3)
      has("effect_faust_committed_offset", { channel: "payments", topic: "payments-v1", partition: "0" }, 3)
      has("effect_faust_consumer_lag", { channel: "payments", topic: "payments-v1", partition: "0" }, 7)
      const audit = { agent: "audit" }
      has("effect_faust_agent_events_total", audit, 1)
      for (
        const name of [
          "effect_faust_agent_failures_total",
          "effect_faust_agent_retries_total",
          "effect_faust_agent_skipped_total",
          "effect_faust_agent_dead_lettered_total",
          "effect_faust_agent_restarts_total",
          "effect_faust_agent_replies_dropped_total",
          "effect_faust_agent_in_flight"
        ]
      ) has(name, audit, 0)
      has("effect_faust_agent_running", audit, 1)
      has("effect_faust_agent_info", { agent: "audit", source: "orders", sinks: JSON.stringify(["audited"]) }, 1)
      has("effect_faust_agent_processing_seconds_count", audit, 1)
      has("effect_faust_agent_processing_seconds_bucket", { ...audit, le: "+Inf" }, 1)
      assert.strictEqual(types.get("effect_faust_agent_processing_seconds"), "histogram")
      assert.strictEqual(types.get("effect_faust_sent_total"), "counter")
      assert.strictEqual(types.get("effect_faust_consumer_lag"), "gauge")
    })))

  it.live("GET /stats: channels, topics with lag per partition, agents with rates; the graph's edges", () =>
    provided(Effect.gen(function*() {
      const web = yield* setup
      const reply = yield* request(`${web.url}/stats`)
      assert.strictEqual(reply.status, 200)
      const stats: Web.Stats = JSON.parse(reply.body)
      const orders = stats.channels.find((channel) => channel.label === "orders")
      assert.deepInclude(orders, { kind: "channel", subscribers: 1, sent: 1, delivered: 0 })
      assert.deepStrictEqual(orders?.decodeErrors, { failed: 0, skipped: 0, deadLettered: 0 })
      assert.deepStrictEqual(stats.topics, [{
        label: "payments",
        assigned: true,
        partitions: [{ topic: "payments-v1", partition: 0, committedOffset: 3, lag: 7 }],
        lag: 7,
        acknowledged: 5,
        committed: 3,
        acknowledgedPerSecond: stats.topics[0].acknowledgedPerSecond
      }])
      assert.deepInclude(stats.agents[0], {
        name: "audit",
        status: "running",
        source: "orders",
        sinks: ["audited"],
        events: 1,
        failures: 0
      })
      assert.isNumber(stats.agents[0].eventsPerSecond)
      assert.deepStrictEqual(stats.edges, [
        { from: "channel:orders", to: "agent:audit" },
        { from: "agent:audit", to: "channel:audited" }
      ])
      const withHistory = JSON.parse((yield* request(`${web.url}/stats?history`)).body)
      assert.isArray(withHistory.history.times)
      assert.isArray(withHistory.history.series["agent:audit"].rate)
    })))

  it.live("GET /health is 200; GET /ready is 200 while every agent runs, 503 naming an agent that does not", () =>
    provided(Effect.gen(function*() {
      const web = yield* setup
      const health = yield* request(`${web.url}/health`)
      assert.strictEqual(health.status, 200)
      assert.strictEqual(JSON.parse(health.body).status, "up")
      const ready = yield* request(`${web.url}/ready`)
      assert.strictEqual(ready.status, 200)
      assert.deepInclude(JSON.parse(ready.body), { ready: true, notReady: [] })
      // An agent that fails and waits an hour before its restart is not running meanwhile.
      const flaky = yield* Channel.make({ label: "flaky-input", value: Schema.Number })
      const failing = yield* Agent.forEach("flaky", flaky, () => Effect.fail("boom"), {
        restart: Schedule.spaced("1 hour")
      })
      yield* Effect.forkScoped(failing.run)
      yield* until(`${web.url}/stats`, (reply) => JSON.parse(reply.body).agents.length === 2)
      yield* flaky.send({ value: 1 })
      const notReady = yield* until(`${web.url}/ready`, (reply) => reply.status === 503)
      const body: Web.Readiness = JSON.parse(notReady.body)
      assert.isFalse(body.ready)
      assert.deepStrictEqual(body.agents.notRunning, ["flaky"])
      assert.deepStrictEqual(body.notReady, ["agent flaky is not running"])
    })))

  it.live("a topic without assigned partitions makes /ready 503", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      const context = yield* Effect.context<never>()
      yield* Effect.acquireRelease(
        Effect.sync(() => registerTopic(context, "unassigned", { acknowledged: 0, committed: 0, streamsReplaced: 0 })),
        (remove) => Effect.sync(remove)
      )
      const reply = yield* request(`${web.url}/ready`)
      assert.strictEqual(reply.status, 503)
      assert.deepStrictEqual(JSON.parse(reply.body).topics, { registered: 1, unassigned: ["unassigned"] })
    })))

  it.live("unknown paths 404, methods other than GET 405 with Allow: GET", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      assert.strictEqual((yield* request(`${web.url}/nope`)).status, 404)
      assert.strictEqual((yield* request(`${web.url}/metrics/extra`)).status, 404)
      for (const path of ["/", "/metrics", "/health", "/ready", "/stats"]) {
        for (const method of ["POST", "PUT", "DELETE", "HEAD"]) {
          const reply = yield* request(`${web.url}${path}`, { method })
          assert.strictEqual(reply.status, 405, `${method} ${path}`)
          assert.strictEqual(reply.headers.get("allow"), "GET")
        }
      }
      assert.strictEqual((yield* request(`${web.url}/`)).status, 200)
    })))

  it.live("a port already in use fails at startup with a WebStartError naming the port", () =>
    provided(Effect.gen(function*() {
      const web = yield* Web.Server
      const error = yield* Layer.build(Web.layer({ port: web.port })).pipe(Effect.flip)
      assert.strictEqual(error._tag, "WebStartError")
      assert.strictEqual(error.port, web.port)
      assert.strictEqual(error.code, "EADDRINUSE")
      assert.include(error.message, `port ${web.port} is already in use`)
    })))

  it.live("serves names, counts and offsets only: a record's contents appear nowhere", () =>
    provided(Effect.gen(function*() {
      const web = yield* setup
      for (const path of ["/", "/page.js", "/metrics", "/health", "/ready", "/stats", "/stats?history"]) {
        const reply = yield* request(`${web.url}${path}`)
        assert.notInclude(reply.body, secret, path)
        assert.notInclude(reply.body, "4111", path)
      }
      const page = yield* request(`${web.url}/`)
      assert.include(page.headers.get("content-security-policy") ?? "", "script-src 'self'")
      const script = yield* request(`${web.url}/page.js`)
      assert.notInclude(script.body, "innerHTML")
      // Nothing is loaded from elsewhere: the only URL in the script is the SVG namespace.
      assert.notMatch(script.body.replaceAll("http://www.w3.org/2000/svg", ""), /https?:\/\//)
    })))
})
