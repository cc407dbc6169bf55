/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): the functions with
 * the most self time and the most total (inclusive) time.
 *
 * Usage: npx tsx bench/tools/profile.ts FILE.cpuprofile [--top 30] [--filter substring]
 */
import { readFileSync } from "node:fs"

interface Node {
  readonly id: number
  readonly callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const args = process.argv.slice(2)
const file = args.find((a) => !a.startsWith("--"))
if (file === undefined) {
  console.error("usage: profile.ts FILE.cpuprofile [--top N] [--filter S]")
  process.exit(2)
}
const flag = (name: string) => {
  const i = args.indexOf(name)
  return i === -1 ? undefined : args[i + 1]
}
const top = Number(flag("--top") ?? 30)
const filter = flag("--filter")

const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

const short = (url: string) =>
  url.replace(/^file:\/\//, "").replace(/.*node_modules\//, "").replace(/^\/work\/main\//, "").replace(
    /^\/tmp\/[^/]+\//,
    ""
  )
const keyOf = (n: Node) =>
  `${n.callFrame.functionName || "(anonymous)"} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`

const selfTime = new Map<string, number>()
const totalTime = new Map<string, number>()
let total = 0
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i] ?? 0
  total += dt
  const leaf = byId.get(profile.samples[i])!
  const leafKey = keyOf(leaf)
  selfTime.set(leafKey, (selfTime.get(leafKey) ?? 0) + dt)
  const seen = new Set<string>()
  for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
    const k = keyOf(byId.get(id)!)
    if (seen.has(k)) continue
    seen.add(k)
    totalTime.set(k, (totalTime.get(k) ?? 0) + dt)
  }
}

const print = (title: string, map: Map<string, number>) => {
  console.log(`\n${title} (of ${(total / 1000).toFixed(0)} ms sampled)`)
  const rows = [...map].filter(([k]) => filter === undefined || k.includes(filter)).sort((a, b) => b[1] - a[1])
    .slice(0, top)
  for (const [k, t] of rows) {
    console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${(t / 1000).toFixed(0).padStart(6)} ms  ${k}`)
  }
}
print("self time", selfTime)
print("total time", totalTime)
