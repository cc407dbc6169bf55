/**
 * Runs one pair's candidate and baseline alternately in one process (the
 * order flipped every round) and prints each round's rates and the median
 * ratio: on a shared machine, a ratio within a round moves far less than
 * either rate.
 *
 *   node bench/tools/pair.ts s7-kafka-consume-agent-batch 100000 8
 *   node bench/tools/pair.ts s7-kafka-produce:0 100000 8   # the pair's first extra (sendAll)
 *
 * Arguments: pair id, messages (for a consume pair too: the bench reads ten
 * times its produce count there, see `kafka.ts`), rounds. Kafka pairs need a
 * broker.
 * `PAIR_GC=1` (with `node --expose-gc`) forces a GC before each run, as the
 * bench harness does: V8 then starts each run with a small young generation,
 * which costs the side that allocates more.
 */
import { kafka } from "../groups/kafka.ts"
import type { Case } from "../lib/harness.ts"

const [idArg = "s7-kafka-consume", nArg = "100000", roundsArg = "8"] = process.argv.slice(2)
// `id:k` pits the pair's k-th extra (e.g. `s7-kafka-produce:0`, sendAll) against its baseline.
const [id, extraArg] = idArg.split(":")
const pairs = await kafka(Number(nArg), Number(nArg))
const found = pairs.find((p) => p.id === id)
const extra = extraArg === undefined ? undefined : found?.extras?.[Number(extraArg)]
if (found === undefined || (extraArg !== undefined && extra === undefined)) {
  console.error(`no pair ${idArg}; pairs: ${pairs.map((p) => `${p.id} (${p.extras?.length ?? 0} extras)`).join(", ")}`)
  process.exit(2)
}
const pair = extra === undefined ? found : { ...found, candidate: extra }
const cpuPerMessage: Record<"candidate" | "baseline", Array<number>> = { candidate: [], baseline: [] }
const rate = async (c: Case): Promise<number> => {
  if (process.env.PAIR_GC === "1") (globalThis as { gc?: () => void }).gc?.()
  const result = await c.run(pair.n, { latency: false })
  if (result.cpuMs !== undefined) {
    cpuPerMessage[c === pair.candidate ? "candidate" : "baseline"].push(result.cpuMs * 1000 / pair.n)
  }
  return pair.n / result.elapsedMs / 1000
}
// One warm-up of each side, not counted.
await rate(pair.candidate)
await rate(pair.baseline)
const ratios: Array<number> = []
for (let round = 0; round < Number(roundsArg); round++) {
  const first = round % 2 === 0
  const a = await rate(first ? pair.candidate : pair.baseline)
  const b = await rate(first ? pair.baseline : pair.candidate)
  const [candidate, baseline] = first ? [a, b] : [b, a]
  ratios.push(candidate / baseline)
  console.log(
    `round ${round + 1}: ${candidate.toFixed(3)} / ${baseline.toFixed(3)} M/s = ${(candidate / baseline).toFixed(2)}×`
  )
}
ratios.sort((x, y) => x - y)
const median = (values: Array<number>) => values.sort((x, y) => x - y)[values.length >> 1]
if (cpuPerMessage.candidate.length > 0 && cpuPerMessage.baseline.length > 0) {
  console.log(
    `CPU per message (median): ${median(cpuPerMessage.candidate).toFixed(2)} µs / ${
      median(cpuPerMessage.baseline).toFixed(2)
    } µs`
  )
}
console.log(
  `${id}: median ${ratios[ratios.length >> 1].toFixed(2)}× (${ratios[0].toFixed(2)}–${
    ratios[ratios.length - 1].toFixed(2)
  })`
)
