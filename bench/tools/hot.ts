/**
 * Runs one case of one scenario repeatedly, for profiling it alone:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/tools/hot.ts s1-send-1 candidate 1000000 5
 *   npx tsx bench/tools/profile.ts /tmp/prof/*.cpuprofile
 *
 * Arguments: pair id, `candidate` | `baseline` | extra index, messages, repeats.
 * Kafka pairs (`s7-kafka-produce`, `s7-kafka-send`, `s7-kafka-consume`) need a broker.
 */
import { batch } from "../groups/batch.ts"
import { deliver } from "../groups/deliver.ts"
import { kafka } from "../groups/kafka.ts"
import { fanout, single } from "../groups/send.ts"
import { wordcount } from "../groups/wordcount.ts"

const [id = "s1-send-1", which = "candidate", nArg = "1000000", repeatArg = "5"] = process.argv.slice(2)
const n = Number(nArg)
// The Kafka pairs (s7-*) need a broker and pre-fill a topic first.
const pairs = id.startsWith("s7-")
  ? await kafka(n, n)
  : [...single(n), ...fanout(n, n), ...batch(n), ...deliver(n), ...wordcount(n)]
const pair = pairs.find((p) => p.id === id)
if (pair === undefined) {
  console.error(`no pair ${id}; pairs: ${pairs.map((p) => p.id).join(", ")}`)
  process.exit(2)
}
const c = which === "candidate" ? pair.candidate : which === "baseline" ? pair.baseline : pair.extras![Number(which)]
for (let i = 0; i < Number(repeatArg); i++) {
  const result = await c.run(pair.n, { latency: false })
  // CPU per message moves less than the rate when the broker shares the cores.
  const cpu = result.cpuMs === undefined ? "" : `, ${(result.cpuMs * 1000 / pair.n).toFixed(2)} µs CPU/message`
  console.log(`${c.label}: ${((pair.n / result.elapsedMs) / 1000).toFixed(3)} M/s${cpu}`)
}
