/**
 * Delivery on a three-node cluster (`npm run kafka:up -- --brokers 3`), run
 * when `KAFKA_CLUSTER=1` and the cluster answers (`.ci/run` runs it after the
 * single-broker suite). Topics are declared with replication factor 3 and
 * `min.insync.replicas=2`; the producer waits for every in-sync replica.
 *
 * - (c1) the leader of a partition is killed with SIGKILL while an agent
 *   consumes and a producer sends; the program goes on through the clients'
 *   retries, and the node is brought back with `up.sh --node I`;
 * - (c2) a rolling restart of the three nodes under load (`down.sh --node I`,
 *   a controlled shutdown, then `up.sh --node I`, waiting until every replica
 *   is in sync again before the next node).
 *
 * Each prints `[delivery] sent / received / lost / duplicated` and requires
 * lost = 0. `KAFKA_CLUSTER_BOOTSTRAP_SERVERS` lists the nodes (default
 * 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094, node i on the i-th);
 * `KAFKA_CLUSTER_DIR` (else `KAFKA_DIR`, else .kafka) is where up.sh keeps
 * their state and pid files (`node-<i>/kafka.pid`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Admin } from "@platformatic/kafka"
import { Duration, Effect, Fiber, Logger, Schedule, Schema } from "effect"
import { Agent } from "effect-faust"
import { Topic } from "effect-faust/kafka"
import { execFile } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { quiet } from "../helpers.ts"
import { eventually, eventuallyEffect, Tally } from "./delivery.ts"
import { reachable } from "./reachable.ts"
import { kafkaLayer, unique } from "./setup.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const servers = (process.env.KAFKA_CLUSTER_BOOTSTRAP_SERVERS ?? "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094")
  .split(",").map((server) => server.trim())
const clusterDir = process.env.KAFKA_CLUSTER_DIR ?? process.env.KAFKA_DIR ?? `${root}.kafka`
const scriptEnv = { ...process.env, KAFKA_DIR: clusterDir }

const wanted = process.env.KAFKA_CLUSTER === "1"
const answering = wanted && (await Promise.all(servers.map(reachable))).every(Boolean)
const enabled = answering && servers.length === 3 && existsSync(`${clusterDir}/cluster.env`)
if (wanted && !enabled) {
  console.warn(
    `Kafka cluster suite skipped: no three-node cluster at ${servers.join(",")} started by up.sh under ${clusterDir}` +
      " — start one with `npm run kafka:up -- --brokers 3`."
  )
}

/** Replication factor 3 and min.insync.replicas=2 for every topic of these tests. */
const topicOptions = (name: string) =>
  ({
    topics: [name],
    value: Schema.Number,
    partitions: 3,
    replicas: 3,
    config: { "min.insync.replicas": 2 }
  }) as const

/** The clients ride out a leader change on their own: up to 40 retries, half a second apart. */
const clusterLayer = () =>
  kafkaLayer({
    bootstrapServers: servers,
    topicReplicationFactor: 3,
    requestTimeout: "5 seconds",
    retries: 40,
    retryDelay: "500 millis"
  })

/** Runs one of the scripts in scripts/kafka with the cluster's KAFKA_DIR. */
const script = (name: "up.sh" | "down.sh", ...args: Array<string>) =>
  Effect.callback<void, Error>((resume) => {
    execFile("bash", [`${root}scripts/kafka/${name}`, ...args], { cwd: root, env: scriptEnv, timeout: 180_000 }, (
      error,
      _stdout,
      stderr
    ) =>
      resume(
        error ? Effect.fail(new Error(`${name} ${args.join(" ")} failed: ${stderr || error.message}`)) : Effect.void
      ))
  })

/** Node i listens on the i-th address. */
const nodeOf = (port: number) => servers.findIndex((server) => server.endsWith(`:${port}`)) + 1

const withAdmin = <A>(f: (admin: Admin) => Promise<A>) =>
  Effect.promise(async () => {
    const admin = new Admin({ clientId: unique("cluster-admin"), bootstrapBrokers: servers, retries: 5 })
    try {
      return await f(admin)
    } finally {
      await admin.close()
    }
  })

/** The node leading a partition of `topic`, as the cluster's metadata says. */
const leaderOf = (topic: string, partition: number) =>
  withAdmin(async (admin) => {
    const metadata = await admin.metadata({ topics: [topic], forceUpdate: true })
    const leader = metadata.topics.get(topic)!.partitions[partition].leader
    return nodeOf(metadata.brokers.get(leader)!.port)
  })

/**
 * Whether every partition of the topics has all its replicas in sync (the
 * client's metadata leaves out internal topics such as __consumer_offsets).
 */
const fullyInSync = (topics: ReadonlyArray<string>) =>
  withAdmin(async (admin) => {
    const metadata = await admin.metadata({ topics: [...topics], forceUpdate: true })
    return topics.every((topic) =>
      metadata.topics.get(topic)?.partitions.every((p) => p.isr.length === p.replicas.length && p.leader >= 0) ?? false
    )
  }).pipe(Effect.catchDefect(() => Effect.succeed(false)))

/** SIGKILL to a node (its pid file), then waits until its listener is closed. */
const killNode = (node: number) =>
  Effect.gen(function*() {
    const pid = Number(readFileSync(`${clusterDir}/node-${node}/kafka.pid`, "utf8").trim())
    process.kill(pid, "SIGKILL")
    yield* eventuallyEffect(
      Effect.promise(() => reachable(servers[node - 1]).then((up) => !up)),
      30_000,
      `node ${node} down`
    )
    return pid
  })

interface Load {
  readonly tally: Tally
  /** Sends that failed after the client's own retries (the chunk is sent again). */
  readonly sendFailures: () => number
  readonly stop: () => void
  readonly producing: Fiber.Fiber<void, unknown>
  readonly agentRun: Fiber.Fiber<void, unknown>
  readonly agentStats: () => Agent.Stats | undefined
}

/**
 * A producer sending chunks of `chunk` ids every 100 ms (until `total`, or
 * until stopped) and an agent handling each; both on their own connection.
 */
const startLoad = (name: string, chunk: number, total = Number.POSITIVE_INFINITY) =>
  Effect.gen(function*() {
    const tally = new Tally()
    let sendFailures = 0
    let stopped = false
    let agent: Agent.Agent<unknown, number, void, unknown> | undefined
    const agentRun = yield* Effect.gen(function*() {
      const topic = yield* Topic.make(topicOptions(name))
      const made = yield* Agent.forEach(
        unique("cluster-agent"),
        topic,
        (id, event) => Effect.sync(() => tally.receive(id, event.message.partition, event.message.offset)),
        // a failure the client's retries did not hide restarts the agent (counted), never the program
        { restart: Schedule.spaced("1 second") }
      )
      agent = made
      yield* made.run
    }).pipe(Effect.provide(clusterLayer()), Effect.forkChild)
    const producing = yield* Effect.gen(function*() {
      const topic = yield* Topic.make(topicOptions(name))
      for (let from = 0; from < total && !stopped; from += chunk) {
        const ids = Array.from({ length: chunk }, (_, i) => from + i)
        yield* topic.sendAll(ids).pipe(
          Effect.tapError(() => Effect.sync(() => sendFailures++)),
          Effect.retry(Schedule.spaced("500 millis"))
        )
        for (const id of ids) tally.sent.add(id)
        yield* Effect.sleep("100 millis")
      }
    }).pipe(Effect.provide(clusterLayer()), Effect.forkChild)
    return {
      tally,
      sendFailures: () => sendFailures,
      stop: () => {
        stopped = true
      },
      producing,
      agentRun,
      agentStats: () => agent?.stats
    } satisfies Load
  })

const finish = (load: Load, what: string) =>
  Effect.gen(function*() {
    yield* Fiber.join(load.producing)
    yield* eventually(
      () => load.tally.complete,
      180_000,
      "every acknowledged id",
      () => JSON.stringify({ ...load.tally.counts(), sendFailures: load.sendFailures(), agent: load.agentStats() })
    )
    yield* Fiber.interrupt(load.agentRun)
    const counts = load.tally.report(what)
    console.log(
      `[delivery] ${what}: sends failed after the client's retries: ${load.sendFailures()}, agent restarts: ${load.agentStats()?.restarts}`
    )
    return counts
  })

/** The agent's warnings (a restart says why), for an assertion to show; nothing printed. */
const warnings: Array<string> = []
const keepWarnings = Logger.layer([Logger.make((options) => {
  if (String(options.logLevel) === "Warn") warnings.push(String(options.message))
})])

describe.skipIf(!enabled)("Kafka delivery on a three-node cluster", () => {
  it.live(
    "(c1) the leader of a partition is killed with SIGKILL while an agent produces and consumes, then brought back: nothing acknowledged is lost",
    () =>
      Effect.gen(function*() {
        const name = unique("cluster-kill")
        const load = yield* startLoad(name, 500, 40_000)
        yield* eventually(() => load.tally.received >= 8_000, 120_000, "8000 received before the kill")
        const node = yield* leaderOf(name, 0)
        const killedAt = load.tally.received
        const pid = yield* killNode(node)
        // the stream goes on with two nodes: new leaders are elected once the controller fences the dead one
        const [resumed] = yield* Effect.timed(
          eventually(() => load.tally.received >= killedAt + 5_000, 120_000, "5000 more received without the node")
        )
        // Down for longer than the client's retries (40 × 500 ms): a fetch it keeps sending to the
        // dead node gives up, and the consumer must read on without restarting the agent.
        yield* Effect.sleep(Duration.max(Duration.zero, Duration.subtract(Duration.seconds(25), resumed)))
        const [back] = yield* Effect.timed(script("up.sh", "--node", String(node)))
        const counts = yield* finish(load, "(c1) partition leader killed with SIGKILL mid-stream, brought back")
        console.log(
          `[delivery] (c1) node ${node} (pid ${pid}, leader of partition 0) killed after ${killedAt} received;` +
            ` 5000 more received without it ${Duration.toSeconds(resumed).toFixed(1)} s later;` +
            ` back (up.sh --node ${node}) after ${Duration.toSeconds(back).toFixed(1)} s;` +
            ` fetch loops replaced: ${warnings.filter((line) => line.includes("with a new fetcher")).length}`
        )
        assert.strictEqual(counts.sent, 40_000)
        assert.strictEqual(counts.lost, 0)
        assert.strictEqual(
          load.agentStats()?.restarts,
          0,
          `the agent went on without a restart; it logged: ${JSON.stringify(warnings)}`
        )
        yield* eventuallyEffect(fullyInSync([name]), 60_000, "every replica in sync again")
      }).pipe(
        Effect.provide(keepWarnings),
        // whatever happened, the cluster has its three nodes for what follows
        Effect.ensuring(Effect.ignore(script("up.sh")))
      ),
    420_000
  )

  it.live(
    "(c2) a rolling restart of all three nodes under load: nothing acknowledged is lost",
    () =>
      Effect.gen(function*() {
        const name = unique("cluster-rolling")
        const load = yield* startLoad(name, 500)
        yield* eventually(() => load.tally.received >= 5_000, 120_000, "5000 received before the restarts")
        const restarts: Array<string> = []
        for (const node of [1, 2, 3]) {
          yield* eventuallyEffect(fullyInSync([name]), 120_000, "every replica in sync")
          yield* Effect.sleep("3 seconds") // __consumer_offsets too (not in the client's metadata)
          const [took] = yield* Effect.timed(
            Effect.andThen(script("down.sh", "--node", String(node)), script("up.sh", "--node", String(node)))
          )
          restarts.push(`node ${node} ${Duration.toSeconds(took).toFixed(1)} s`)
        }
        yield* eventuallyEffect(fullyInSync([name]), 120_000, "every replica in sync")
        yield* Effect.sleep("2 seconds")
        load.stop()
        const counts = yield* finish(load, "(c2) rolling restart of the three nodes under load")
        console.log(`[delivery] (c2) restarted one at a time (stop + start): ${restarts.join(", ")}`)
        assert.isAbove(counts.sent, 20_000)
        assert.strictEqual(counts.lost, 0)
      }).pipe(
        Effect.provide(quiet),
        Effect.ensuring(Effect.ignore(script("up.sh")))
      ),
    600_000
  )
})
