/**
 * `npm run bench`: runs every scenario of issue 3 side by side with its
 * baseline, one child process per scenario group, then prints a table and
 * writes `bench/results.json` and `bench/results.svg`.
 *
 *   npm run bench                      full run (1 M messages, 5 rounds; Faust 3 rounds; ~6 minutes on 2 cores)
 *   npm run bench -- --smoke           CI smoke: tiny N, 1 round, results in a temp dir; Faust only if
 *                                      bench/faust/.venv already exists; exits ≠ 0 if a group crashes
 *   npm run bench -- --groups single,fanout --rounds 3
 *   npm run bench -- --no-faust        skip scenario 6
 *   npm run bench -- --groups kafka --kafka-n 200000
 *                                      scenario 7 (Kafka; skipped, with the reason, when no broker answers at
 *                                      KAFKA_BOOTSTRAP_SERVERS, default 127.0.0.1:9092); 100 000 records, --smoke 2 000,
 *                                      ten times as many in the consume pairs
 *   npm run bench -- --cpu-prof DIR    also write a V8 CPU profile per group into DIR
 *
 * Progress goes to stderr; the table to stdout.
 */
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import type { MemoryResult } from "./groups/memory.ts"
import type { PairResult } from "./lib/harness.ts"
import {
  type FaustComparison,
  type FaustResult,
  type FaustScenario,
  type GroupRun,
  memoryTable,
  type Results,
  svgChart,
  throughputTable
} from "./lib/report.ts"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, "..")
const GROUPS = ["single", "fanout", "batch", "deliver", "wordcount", "agent", "memory", "kafka"] as const

const { values } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    groups: { type: "string" },
    n: { type: "string" },
    rounds: { type: "string" },
    "no-faust": { type: "boolean", default: false },
    "faust-n": { type: "string" },
    "kafka-n": { type: "string" },
    "faust-rounds": { type: "string" },
    "cpu-prof": { type: "string" },
    "out-dir": { type: "string" }
  }
})

const smoke = values.smoke
const settings = smoke
  ? {
    n: 5_000,
    n16: 2_000,
    rounds: 1,
    warmup: 1_000,
    latencyN: 2_000,
    subscribers: 200,
    fibers: 50,
    events: 2_000,
    kafkaN: 2_000
  }
  : {
    n: 1_000_000,
    n16: 250_000,
    rounds: 5,
    warmup: 200_000,
    latencyN: 100_000,
    subscribers: 10_000,
    fibers: 2_000,
    events: 200_000,
    kafkaN: 100_000
  }
if (values.n !== undefined) {
  settings.n = Number(values.n)
  settings.n16 = Math.min(settings.n16, settings.n)
}
if (values.rounds !== undefined) settings.rounds = Number(values.rounds)
if (values["kafka-n"] !== undefined) settings.kafkaN = Number(values["kafka-n"])
const faustSettings = {
  n: Number(values["faust-n"] ?? (smoke ? 1_000 : 1_000_000)),
  rounds: Number(values["faust-rounds"] ?? (smoke ? 1 : 3))
}
const groups = values.groups === undefined ? [...GROUPS] : values.groups.split(",").map((g) => g.trim())
for (const g of groups) {
  if (!(GROUPS as ReadonlyArray<string>).includes(g) && g !== "faust") {
    console.error(`unknown group ${g}; groups: ${[...GROUPS, "faust"].join(", ")}`)
    process.exit(2)
  }
}
const runFaust = !values["no-faust"] && (values.groups === undefined || groups.includes("faust"))
const outDir = values["out-dir"] ?? (smoke ? mkdtempSync(path.join(os.tmpdir(), "effect-faust-bench-")) : here)
/** The Kafka group joins a consumer group per run and reads 10⁶ records in its consume pairs. */
const childTimeoutMs = (group: string) => smoke ? 60_000 : group === "kafka" ? 900_000 : 300_000

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`)

// ---------------------------------------------------------------------------------------------
// machine

const sh = (cmd: string, args: Array<string>) => {
  const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8" })
  return r.status === 0 ? r.stdout.trim() : ""
}
const cpuModel = (() => {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("model name"))
    return line?.split(":")[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown"
  } catch {
    return os.cpus()[0]?.model ?? "unknown"
  }
})()
const machine = {
  cpu: cpuModel,
  nproc: Number(sh("nproc", [])) || os.availableParallelism(),
  node: process.version,
  effect: JSON.parse(readFileSync(path.join(root, "node_modules/effect/package.json"), "utf8")).version as string,
  os: `${os.type()} ${os.release()} ${os.arch()}`,
  memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
  commit: sh("git", ["rev-parse", "--short", "HEAD"]) || "unknown",
  srcDirty: sh("git", ["status", "--porcelain", "--", "src"]) === "" ? "no" : "yes (uncommitted changes in src/)",
  loadavgAtStart: os.loadavg().map((l) => l.toFixed(2)).join(" ")
}

// ---------------------------------------------------------------------------------------------
// children

const typeFlags = (process.features as { typescript?: unknown }).typescript ? [] : ["--experimental-strip-types"]

const runChild = (group: string): Promise<{ run: GroupRun; pairs: Array<PairResult>; memory: Array<MemoryResult> }> => {
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), "bench-group-")), `${group}.json`)
  const profFlags = values["cpu-prof"] === undefined
    ? []
    : ["--cpu-prof", `--cpu-prof-dir=${path.resolve(values["cpu-prof"])}`, `--cpu-prof-name=${group}.cpuprofile`]
  const args = [
    "--expose-gc",
    "--disable-warning=ExperimentalWarning",
    // "effect-faust" resolves to the sources (package.json's "source" condition), not dist/.
    "--conditions=source",
    ...typeFlags,
    ...profFlags,
    path.join(here, "child.ts"),
    "--group",
    group,
    "--n",
    String(settings.n),
    "--n16",
    String(settings.n16),
    "--rounds",
    String(settings.rounds),
    "--warmup",
    String(settings.warmup),
    "--latency-n",
    String(settings.latencyN),
    "--subscribers",
    String(settings.subscribers),
    "--fibers",
    String(settings.fibers),
    "--events",
    String(settings.events),
    "--kafka-n",
    String(settings.kafkaN),
    "--out",
    out,
    ...(smoke ? ["--smoke"] : [])
  ]
  const started = Date.now()
  log(`group ${group}: starting (${process.execPath} … child.ts --group ${group})`)
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"] })
    const timer = setTimeout(() => {
      log(`group ${group}: timed out after ${childTimeoutMs(group) / 1000}s, killing it`)
      child.kill("SIGKILL")
    }, childTimeoutMs(group))
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      const seconds = (Date.now() - started) / 1000
      if (code === 0 && existsSync(out)) {
        const parsed = JSON.parse(readFileSync(out, "utf8"))
        const skipped = parsed.skipped as string | undefined
        log(`group ${group}: ${skipped === undefined ? "done" : `skipped (${skipped})`} in ${seconds.toFixed(0)}s`)
        resolve({
          run: { group, ok: true, seconds, ...(skipped === undefined ? {} : { skipped }) },
          pairs: parsed.pairs,
          memory: parsed.memory
        })
      } else {
        const error = signal !== null ? `killed by ${signal}` : `exited with code ${code}`
        log(`group ${group}: FAILED (${error})`)
        resolve({ run: { group, ok: false, seconds, error }, pairs: [], memory: [] })
      }
    })
  })
}

// ---------------------------------------------------------------------------------------------
// Faust (scenario 6)

const faustScript = path.join(here, "faust", "run.sh")

const runFaustBench = (): Promise<{ run: GroupRun; faust: Omit<FaustResult, "comparisons"> }> => {
  const started = Date.now()
  const done = (faust: Omit<FaustResult, "comparisons">, ok: boolean) => {
    const seconds = (Date.now() - started) / 1000
    log(`faust: ${faust.ran ? `done in ${seconds.toFixed(0)}s` : `did not run: ${faust.reason}`}`)
    return { run: { group: "faust", ok, seconds, ...(ok ? {} : { error: faust.reason }) }, faust }
  }
  if (!existsSync(faustScript)) {
    return Promise.resolve(
      done({ ran: false, reason: `${path.relative(root, faustScript)} does not exist`, scenarios: [] }, true)
    )
  }
  const args = [
    faustScript,
    "--n",
    String(faustSettings.n),
    "--rounds",
    String(faustSettings.rounds),
    "--scenarios",
    "send-1,send-4,send-16",
    "--json",
    ...(smoke ? [] : ["--warmup"])
  ]
  log(
    `faust: bash ${path.relative(root, faustScript)} ${
      args.slice(1).join(" ")
    } (installs faust-streaming into a venv on first use)`
  )
  return new Promise((resolve) => {
    const child = spawn("bash", args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => {
      stderr += d
      process.stderr.write(d)
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), smoke ? 120_000 : 600_000)
    child.on("error", (e) => {
      clearTimeout(timer)
      resolve(done({ ran: false, reason: `could not start bash: ${e.message}`, scenarios: [] }, true))
    })
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      const tail = stderr.trim().split("\n").slice(-8).join("\n")
      if (code !== 0) {
        const why = signal !== null ? `killed by ${signal} (timeout)` : `exited with code ${code}`
        resolve(done({ ran: false, reason: `bench/faust/run.sh ${why}: ${tail}`, scenarios: [] }, true))
        return
      }
      try {
        resolve(done(parseFaust(stdout), true))
      } catch (e) {
        resolve(
          done({
            ran: false,
            reason: `could not read run.sh output: ${(e as Error).message}`,
            scenarios: [],
            raw: stdout.slice(0, 2000)
          }, true)
        )
      }
    })
  })
}

/** Reads run.sh's JSON (the last JSON document on stdout). */
const parseFaust = (stdout: string): Omit<FaustResult, "comparisons"> => {
  const start = stdout.indexOf("{")
  if (start === -1) throw new Error("no JSON on stdout")
  const raw = JSON.parse(stdout.slice(start)) as Record<string, any>
  const list: Array<Record<string, any>> = Array.isArray(raw.scenarios)
    ? raw.scenarios
    : Object.entries(raw.scenarios ?? raw).filter(([k]) => /^send-\d+$/.test(k)).map(([id, v]) => ({
      id,
      ...(v as object)
    }))
  const scenarios: Array<FaustScenario> = list.map((s) => {
    const id = String(s.id ?? s.name ?? s.scenario)
    const subscribers = Number(s.subscribers ?? /send-(\d+)/.exec(id)?.[1])
    const median = Number(
      s.medianMsgPerSec ?? s.median
    )
    if (!Number.isFinite(median)) throw new Error(`no median throughput in scenario ${id}: ${JSON.stringify(s)}`)
    return { id, subscribers, median, rounds: s.rounds }
  })
  return {
    ran: true,
    n: raw.n ?? faustSettings.n,
    rounds: raw.rounds ?? faustSettings.rounds,
    version: raw.faustVersion,
    python: `${raw.implementation ?? "Python"} ${raw.python ?? "?"}`,
    scenarios,
    raw
  }
}

const compareWithFaust = (
  faust: Omit<FaustResult, "comparisons">,
  pairs: ReadonlyArray<PairResult>
): Array<FaustComparison> => {
  const ours = (id: string) => pairs.find((p) => p.id === id)?.candidate.median
  const out: Array<FaustComparison> = []
  for (
    const [k, pairId, target] of [[1, "s1-send-1", 10], [4, "s2-send-4", 10], [16, "s2-send-16", undefined]] as const
  ) {
    const f = faust.scenarios.find((s) => s.id === `send-${k}`)
    const o = ours(pairId)
    if (f === undefined || o === undefined) continue
    const ratio = o / f.median
    out.push({
      id: `s6-faust-send-${k}`,
      title: `send → ${k} subscriber${k === 1 ? "" : "s"} vs Faust`,
      ours: o,
      faust: f.median,
      ratio,
      target: target === undefined ? undefined : { ratio: target, text: `≥ ${target}× Faust`, met: ratio >= target }
    })
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// main

log(
  `${smoke ? "SMOKE run" : "full run"}: groups ${groups.filter((g) => g !== "faust").join(", ")}${
    runFaust ? " + faust" : ""
  }; ` +
    `n=${settings.n}, rounds=${settings.rounds}; results → ${outDir}`
)
log(
  `machine: ${machine.cpu}, ${machine.nproc} cores, Node ${machine.node}, effect ${machine.effect}, commit ${machine.commit}`
)

const started = Date.now()
const runs: Array<GroupRun> = []
const pairs: Array<PairResult> = []
const memory: Array<MemoryResult> = []
for (const group of groups) {
  if (group === "faust") continue
  const r = await runChild(group)
  runs.push(r.run)
  pairs.push(...r.pairs)
  memory.push(...r.memory)
}

let faust: FaustResult = { ran: false, reason: "skipped (--no-faust)", scenarios: [], comparisons: [] }
if (runFaust && smoke && !existsSync(path.join(here, "faust", ".venv"))) {
  faust = {
    ran: false,
    reason: "skipped in --smoke (bench/faust/.venv does not exist; a full run creates it)",
    scenarios: [],
    comparisons: []
  }
} else if (runFaust) {
  const r = await runFaustBench()
  runs.push(r.run)
  faust = { ...r.faust, comparisons: r.faust.ran ? compareWithFaust(r.faust, pairs) : [] }
}

const results: Results = {
  generatedAt: new Date().toISOString(),
  smoke,
  machine: { ...machine, loadavgAtEnd: os.loadavg().map((l) => l.toFixed(2)).join(" ") },
  settings: {
    ...settings,
    capacity: 4096,
    faust: faustSettings,
    totalSeconds: Math.round((Date.now() - started) / 1000)
  },
  groups: runs,
  pairs,
  memory,
  faust
}

mkdirSync(outDir, { recursive: true })
writeFileSync(path.join(outDir, "results.json"), JSON.stringify(results, null, 2) + "\n")
writeFileSync(path.join(outDir, "results.svg"), svgChart(results))

console.log(`\n## Throughput (median of ${settings.rounds} rounds; ratio = effect-faust ÷ baseline, same run)\n`)
console.log(throughputTable(results))
console.log(`\n## Heap\n`)
console.log(memoryTable(results))
const missed = [
  ...pairs.filter((p) => p.target !== undefined && !p.target.met).map((p) =>
    `${p.id} (${p.ratio.toFixed(2)}×, ${p.target!.text})`
  ),
  ...faust.comparisons.filter((c) => c.target !== undefined && !c.target.met).map((c) =>
    `${c.id} (${c.ratio.toFixed(1)}×)`
  ),
  ...memory.filter((m) => m.target !== undefined && !m.target.met).map((m) =>
    `${m.id} (${m.candidate.bytes.toFixed(0)} B)`
  )
]
console.log(`\ntargets missed: ${missed.length === 0 ? "none" : missed.join(", ")}`)
console.log(
  `results: ${path.join(outDir, "results.json")}, ${
    path.join(outDir, "results.svg")
  } (${results.settings.totalSeconds}s)`
)

const failed = runs.filter((r) => !r.ok)
if (failed.length > 0) {
  console.error(`\n${failed.length} group(s) crashed: ${failed.map((f) => `${f.group} (${f.error})`).join(", ")}`)
  process.exit(1)
}
