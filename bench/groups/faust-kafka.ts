/**
 * Faust itself on Kafka, the baseline of scenario 7's "vs Faust" pairs: each
 * timed run is one Python process (`bench/faust/run.sh kafka produce|consume
 * …`, i.e. `bench/faust/kafka_bench.py` in the virtualenv scenario 6 uses),
 * which starts a faust-streaming app in its own event loop and prints the
 * elapsed time of its timed part as JSON. The Node harness alternates it with
 * effect-faust's `Topic` run like any other case.
 */
import { spawn, spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { Case } from "../lib/harness.ts"

const faustDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "faust")
const runScript = path.join(faustDir, "run.sh")
const venv = path.join(faustDir, ".venv")

/** Faust's versions, as `kafka_bench.py --check` reports them. */
export interface FaustVersions {
  readonly faustVersion: string
  readonly aiokafkaVersion: string
  readonly python: string
}

/**
 * Makes sure the virtualenv is there and Faust imports. In `--smoke` only an
 * existing `bench/faust/.venv` is used (as scenario 6 does); otherwise
 * `run.sh` creates it (installs faust-streaming from PyPI on first use).
 * Returns Faust's versions, or why Faust cannot run.
 */
export const checkFaust = (smoke: boolean): FaustVersions | string => {
  if (process.env.BENCH_KAFKA_FAUST === "0") return "BENCH_KAFKA_FAUST=0"
  if (!existsSync(runScript)) return `${runScript} does not exist`
  if (smoke && !existsSync(venv)) return "skipped in --smoke (bench/faust/.venv does not exist; a full run creates it)"
  const r = spawnSync("bash", [runScript, "kafka", "--check"], { encoding: "utf8", timeout: 240_000 })
  const line = (r.stdout ?? "").trim().split("\n").filter((l) => l.startsWith("{")).pop()
  if (r.status !== 0 || line === undefined) {
    const tail = `${r.stderr ?? ""}${r.error?.message ?? ""}`.trim().split("\n").slice(-4).join(" / ")
    return `bench/faust/run.sh kafka --check failed (${r.signal ?? `exit ${r.status}`}): ${tail}`
  }
  return JSON.parse(line) as FaustVersions
}

const runPython = (args: ReadonlyArray<string>, timeoutMs: number): Promise<Record<string, unknown>> =>
  new Promise((resolve, reject) => {
    const child = spawn("bash", [runScript, "kafka", ...args], { stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      const line = stdout.trim().split("\n").filter((l) => l.startsWith("{")).pop()
      if (code !== 0 || line === undefined) {
        const tail = stderr.trim().split("\n").slice(-6).join("\n")
        reject(new Error(`faust kafka_bench.py ${args[0]}: ${signal ?? `exit ${code}`}: ${tail}`))
        return
      }
      resolve(JSON.parse(line) as Record<string, unknown>)
    })
  })

/** Faust producing `n` keyed JSON records with `await topic.send(...)` into a fresh topic, every future awaited. */
export const faustProduce = (versions: FaustVersions, bootstrapServers: string, topicName: () => string): Case => ({
  label: `Faust ${versions.faustVersion}: await topic.send(key, value) × N, then every future`,
  run: async (n) => {
    const r = await runPython(
      ["produce", "--bootstrap", bootstrapServers, "--topic", topicName(), "--n", String(n)],
      300_000
    )
    return { elapsedMs: Number(r.elapsedMs) }
  }
})

/** A Faust agent reading `n` records of a pre-filled topic (fresh app id = fresh group, from earliest). */
export const faustConsume = (versions: FaustVersions, bootstrapServers: string, topicName: () => string): Case => ({
  label: `Faust ${versions.faustVersion}: an agent, async for key, value in stream.items() (new group, from earliest)`,
  run: async (n) => {
    const r = await runPython(
      ["consume", "--bootstrap", bootstrapServers, "--topic", topicName(), "--n", String(n)],
      300_000
    )
    return { elapsedMs: Number(r.elapsedMs) }
  }
})
