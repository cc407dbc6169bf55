/**
 * One scenario group, run in its own process by `bench/run.ts`:
 *
 *   node --expose-gc bench/child.ts --group single --n 1000000 --rounds 5 --out FILE
 *
 * Writes `{ group, pairs, memory }` as JSON to `--out` (or stdout), plus
 * `skipped` (why) when the group could not run (`kafka` without a broker).
 */
import { writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { agent } from "./groups/agent.ts"
import { batch } from "./groups/batch.ts"
import { deliver } from "./groups/deliver.ts"
import { brokerUnavailable, kafka } from "./groups/kafka.ts"
import { memory, type MemoryResult } from "./groups/memory.ts"
import { fanout, single } from "./groups/send.ts"
import { wordcount } from "./groups/wordcount.ts"
import { type GroupOptions, type Pair, type PairResult, progress, runPair } from "./lib/harness.ts"

export const GROUPS = ["single", "fanout", "batch", "deliver", "wordcount", "agent", "memory", "kafka"] as const
export type Group = (typeof GROUPS)[number]

const { values } = parseArgs({
  options: {
    group: { type: "string" },
    n: { type: "string", default: "1000000" },
    n16: { type: "string" },
    rounds: { type: "string", default: "5" },
    warmup: { type: "string", default: "200000" },
    "latency-n": { type: "string", default: "100000" },
    subscribers: { type: "string", default: "10000" },
    fibers: { type: "string", default: "2000" },
    events: { type: "string", default: "200000" },
    "kafka-n": { type: "string", default: "100000" },
    smoke: { type: "boolean", default: false },
    out: { type: "string" }
  }
})

const group = values.group as Group
if (!GROUPS.includes(group)) {
  console.error(`--group must be one of ${GROUPS.join(", ")}`)
  process.exit(2)
}
const n = Number(values.n)
const kafkaN = Number(values["kafka-n"])
const options: GroupOptions = {
  n,
  rounds: Number(values.rounds),
  // Kafka: a tenth of a run warms up each side (every run also connects before its timer starts).
  warmupN: group === "kafka" ? Math.max(1, Math.round(kafkaN / 10)) : Number(values.warmup),
  latencyN: Number(values["latency-n"]),
  smoke: values.smoke
}

const pairsOf = (g: Group): Array<Pair> => {
  switch (g) {
    case "single":
      return single(n)
    case "fanout":
      return fanout(n, Number(values.n16 ?? n))
    case "batch":
      return batch(n)
    case "deliver":
      return deliver(n)
    case "wordcount":
      return wordcount(n)
    case "agent":
      return agent(n, Math.min(n, options.smoke ? 200 : 8_000))
    case "memory":
    case "kafka":
      return []
  }
}

const pairs: Array<PairResult> = []
let memoryResults: Array<MemoryResult> = []
let skipped: string | undefined
if (group === "memory") {
  memoryResults = await memory(Number(values.subscribers), Number(values.fibers), Number(values.events))
} else if (group === "kafka" && (skipped = await brokerUnavailable()) !== undefined) {
  progress(`kafka: skipped: ${skipped}`)
} else {
  for (const pair of group === "kafka" ? await kafka(kafkaN) : pairsOf(group)) {
    progress(`${pair.id}: ${pair.candidate.label} vs ${pair.baseline.label}, n=${pair.n}, ${options.rounds} rounds`)
    pairs.push(await runPair(pair, options))
  }
}
const json = JSON.stringify(
  { group, pairs, memory: memoryResults, ...(skipped === undefined ? {} : { skipped }) },
  null,
  2
)
if (values.out === undefined) process.stdout.write(json + "\n")
else writeFileSync(values.out, json)
