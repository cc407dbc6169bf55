/**
 * Turns the collected results into a Markdown table (printed and put in the
 * README) and a hand-written SVG bar chart of the ratios.
 */
import type { MemoryResult } from "../groups/memory.ts"
import type { CaseStats, PairResult } from "./harness.ts"

export interface FaustScenario {
  readonly id: string
  readonly subscribers: number
  /** Faust's median messages per second. */
  readonly median: number
  readonly rounds?: ReadonlyArray<number> | undefined
}

export interface FaustComparison {
  readonly id: string
  readonly title: string
  readonly ours: number
  readonly faust: number
  readonly ratio: number
  readonly target: { readonly ratio: number; readonly text: string; readonly met: boolean } | undefined
}

export interface FaustResult {
  readonly ran: boolean
  /** Why Faust did not run, or what went wrong, when it did not. */
  readonly reason?: string | undefined
  readonly n?: number | undefined
  readonly rounds?: number | undefined
  readonly version?: string | undefined
  readonly python?: string | undefined
  readonly scenarios: ReadonlyArray<FaustScenario>
  readonly comparisons: ReadonlyArray<FaustComparison>
  readonly raw?: unknown
}

export interface GroupRun {
  readonly group: string
  readonly ok: boolean
  readonly seconds: number
  readonly error?: string | undefined
  /** Why the group did not run (it is not a failure: `kafka` without a broker). */
  readonly skipped?: string | undefined
}

export interface Results {
  readonly generatedAt: string
  readonly smoke: boolean
  readonly machine: Record<string, string | number>
  readonly settings: Record<string, unknown>
  readonly groups: ReadonlyArray<GroupRun>
  readonly pairs: ReadonlyArray<PairResult>
  readonly memory: ReadonlyArray<MemoryResult>
  readonly faust: FaustResult
}

export const rate = (perSecond: number): string =>
  !Number.isFinite(perSecond)
    ? "–"
    : perSecond >= 1e6
    ? `${(perSecond / 1e6).toFixed(2)} M/s`
    : perSecond >= 1e3
    ? `${(perSecond / 1e3).toFixed(1)} k/s`
    : `${perSecond.toFixed(0)} /s`

const ratioText = (r: number) => (r >= 10 ? `${r.toFixed(1)}×` : `${r.toFixed(2)}×`)
const latency = (s: CaseStats) =>
  s.latencyUs === undefined ? "" : `${fmtUs(s.latencyUs.p50)} / ${fmtUs(s.latencyUs.p99)}`
const fmtUs = (us: number) => (us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us.toFixed(0)} µs`)
const verdict = (t: { readonly text: string; readonly met: boolean } | undefined) =>
  t === undefined ? "" : `${t.text} ${t.met ? "✅" : "❌"}`
const bytes = (b: number) => (b >= 1024 ? `${(b / 1024).toFixed(2)} KiB` : `${b.toFixed(0)} B`)

const scenarioOf = (group: string): string =>
  ({ single: "1", fanout: "2", batch: "3", deliver: "4", wordcount: "5", kafka: "7" } as Record<string, string>)[
    group
  ] ?? ""

/** The throughput table: one row per pair, skipped or crashed groups, plus the Faust comparisons. */
export const throughputTable = (results: Results): string => {
  const rows: Array<Array<string>> = [[
    "#",
    "scenario",
    "effect-faust",
    "baseline",
    "ratio",
    "target",
    "p50 / p99 latency (ours)",
    "p50 / p99 latency (baseline)"
  ]]
  for (const p of results.pairs) {
    rows.push([
      String(p.scenario),
      p.title + (p.n === 1_000_000 ? "" : ` (n=${p.n.toLocaleString("en-US")})`),
      `${rate(p.candidate.median)} — ${p.candidate.label}`,
      `${rate(p.baseline.median)} — ${p.baseline.label}`,
      ratioText(p.ratio),
      verdict(p.target),
      latency(p.candidate),
      latency(p.baseline)
    ])
    for (const extra of p.extras) {
      rows.push([
        "",
        "",
        "",
        `${rate(extra.median)} — ${extra.label}`,
        ratioText(p.extrasAre === "candidates" ? extra.median / p.baseline.median : p.candidate.median / extra.median),
        "",
        "",
        ""
      ])
    }
  }
  for (const g of results.groups) {
    if (g.skipped !== undefined) {
      rows.push([scenarioOf(g.group), `group ${g.group}`, "", `skipped: ${g.skipped}`, "", "", "", ""])
    } else if (!g.ok && g.group !== "faust") {
      rows.push([scenarioOf(g.group), `group ${g.group}`, "", `crashed: ${g.error ?? "?"}`, "", "", "", ""])
    }
  }
  const f = results.faust
  if (f.ran) {
    for (const c of f.comparisons) {
      rows.push([
        "6",
        c.title,
        rate(c.ours),
        `${rate(c.faust)} — Faust ${f.version ?? ""} in-memory channel`.trim(),
        ratioText(c.ratio),
        verdict(c.target),
        "",
        ""
      ])
    }
  } else {
    rows.push(["6", "Faust itself", "", `did not run: ${f.reason ?? "unknown"}`, "", "", "", ""])
  }
  return markdown(rows)
}

/** The memory table. */
export const memoryTable = (results: Results): string => {
  const rows: Array<Array<string>> = [["measure", "effect-faust", "baseline", "other", "target"]]
  for (const m of results.memory) {
    rows.push([
      m.title,
      `${bytes(m.candidate.bytes)} — ${m.candidate.label}`,
      `${bytes(m.baseline.bytes)} — ${m.baseline.label}`,
      m.extras.map((e) => `${bytes(e.bytes)} — ${e.label}`).join("; "),
      m.target === undefined ? "" : `${m.target.text} ${m.target.met ? "✅" : "❌"}`
    ])
  }
  return markdown(rows)
}

const markdown = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const escape = (s: string) => s.replace(/\|/g, "\\|")
  const [head, ...body] = rows
  return [
    `| ${head.map(escape).join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...body.map((r) => `| ${r.map(escape).join(" | ")} |`)
  ].join("\n")
}

// ---------------------------------------------------------------------------------------------
// SVG

interface Bar {
  readonly label: string
  readonly sublabel: string
  readonly ratio: number
  readonly target?: number | undefined
}

const clip = (s: string, max: number) => (s.length <= max ? s : `${s.slice(0, max - 1)}…`)
const xml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** Horizontal bars on a log scale, from the 1× line to each ratio, with the issue's targets marked. */
export const svgChart = (results: Results): string => {
  const bars: Array<Bar> = []
  for (const p of results.pairs) {
    bars.push({
      label: `${p.scenario}. ${p.title}`,
      sublabel: `vs ${p.baseline.label}`,
      ratio: p.ratio,
      target: p.target?.ratio
    })
  }
  for (const g of results.groups) {
    if (g.skipped !== undefined) {
      bars.push({
        label: `${scenarioOf(g.group)}. group ${g.group}`.replace(/^\. /, ""),
        sublabel: `skipped: ${g.skipped}`,
        ratio: NaN
      })
    }
  }
  if (results.faust.ran) {
    for (const c of results.faust.comparisons) {
      bars.push({
        label: `6. ${c.title}`,
        sublabel: "vs Faust's in-memory channel",
        ratio: c.ratio,
        target: c.target?.ratio
      })
    }
  }
  const width = 960
  const left = 380
  const right = 40
  const top = 70
  const row = 44
  const memoryRows = results.memory.flatMap((m) => [
    { title: m.title, label: m.candidate.label, bytes: m.candidate.bytes, ours: true },
    { title: m.title, label: m.baseline.label, bytes: m.baseline.bytes, ours: false }
  ])
  const memTop = top + bars.length * row + 120
  const memRow = 26
  const height = memoryRows.length === 0 ? top + bars.length * row + 50 : memTop + memoryRows.length * memRow + 50
  const finite = bars.map((b) => b.ratio).filter((r) => Number.isFinite(r) && r > 0)
  const lo = Math.min(0.05, ...finite.map((r) => r / 3))
  const hi = Math.max(100, ...finite.map((r) => r * 1.5))
  const lmin = Math.log10(lo)
  const lmax = Math.log10(hi)
  const x = (r: number) => left + ((Math.log10(r) - lmin) / (lmax - lmin)) * (width - left - right)
  const out: Array<string> = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="13">`
  )
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`)
  out.push(
    `<text x="${
      width / 2
    }" y="24" text-anchor="middle" font-size="16" font-weight="600">effect-faust ÷ baseline (median throughput, same run; log scale)</text>`
  )
  const m = results.machine
  out.push(
    `<text x="${width / 2}" y="44" text-anchor="middle" fill="#555">${
      xml(
        `${m.cpu} · ${m.nproc} cores · Node ${m.node} · effect ${m.effect} · ${results.generatedAt.slice(0, 10)}${
          results.smoke ? " · SMOKE (not a real measurement)" : ""
        }`
      )
    }</text>`
  )
  // grid
  for (const g of [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]) {
    if (g < lo || g > hi) continue
    const gx = x(g).toFixed(1)
    const gy = top + bars.length * row + 4
    out.push(
      `<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${gy}" stroke="${g === 1 ? "#333" : "#e4e4e4"}" stroke-width="${
        g === 1 ? 1.5 : 1
      }"/>`
    )
    out.push(`<text x="${gx}" y="${gy + 16}" text-anchor="middle" fill="#555">${g}×</text>`)
  }
  bars.forEach((b, i) => {
    const y = top + i * row
    out.push(`<text x="${left - 10}" y="${y + 16}" text-anchor="end" font-weight="600">${xml(b.label)}</text>`)
    out.push(
      `<text x="${left - 10}" y="${y + 32}" text-anchor="end" fill="#666" font-size="11">${
        xml(clip(b.sublabel, 60))
      }</text>`
    )
    if (!Number.isFinite(b.ratio) || b.ratio <= 0) {
      out.push(
        `<text x="${x(1) + 6}" y="${y + 22}" fill="#a00">${
          b.sublabel.startsWith("skipped") ? "skipped" : "no result"
        }</text>`
      )
      return
    }
    const x1 = x(1)
    const x2 = x(b.ratio)
    const met = b.target === undefined ? b.ratio >= 1 : b.ratio >= b.target
    const color = b.target === undefined ? (b.ratio >= 1 ? "#6a9fd8" : "#d8a06a") : met ? "#3c9a5f" : "#d0543c"
    out.push(
      `<rect x="${Math.min(x1, x2).toFixed(1)}" y="${y + 8}" width="${
        Math.max(1, Math.abs(x2 - x1)).toFixed(1)
      }" height="24" fill="${color}" rx="2"/>`
    )
    const label = b.ratio >= 10 ? `${b.ratio.toFixed(1)}×` : `${b.ratio.toFixed(2)}×`
    const tx = x2 >= x1 ? x2 + 6 : x2 - 6
    out.push(
      `<text x="${tx.toFixed(1)}" y="${y + 25}" text-anchor="${
        x2 >= x1 ? "start" : "end"
      }" font-weight="600">${label}</text>`
    )
    if (b.target !== undefined) {
      const t = x(b.target).toFixed(1)
      out.push(
        `<line x1="${t}" y1="${y + 3}" x2="${t}" y2="${y + 37}" stroke="#111" stroke-width="2" stroke-dasharray="4 2"/>`
      )
      out.push(`<text x="${t}" y="${y + 2}" text-anchor="middle" font-size="10" fill="#111">target ${b.target}×</text>`)
    }
  })
  const axisY = top + bars.length * row + 16
  out.push(
    `<text x="${width / 2}" y="${
      axisY + 40
    }" text-anchor="middle" fill="#666" font-size="11">green: target met · red: missed · blue/orange: no target (above/below 1×) · dashed line: the issue's target</text>`
  )
  if (memoryRows.length > 0) {
    // heap panel: bytes on a log scale, the 2 KiB idle-subscriber target marked
    const maxBytes = Math.max(8192, ...memoryRows.map((r) => r.bytes * 4))
    const bmin = 1
    const bx = (b: number) => left + (Math.log10(Math.max(b, bmin)) / Math.log10(maxBytes)) * (width - left - right)
    out.push(
      `<text x="${width / 2}" y="${
        memTop - 30
      }" text-anchor="middle" font-size="16" font-weight="600">heap (bytes, log scale; lower is leaner)</text>`,
      `<text x="${width / 2}" y="${
        memTop - 12
      }" text-anchor="middle" fill="#666" font-size="11">purple: effect-faust · grey: baseline</text>`
    )
    for (const g of [1, 10, 100, 2048, 10000, 100000]) {
      if (g > maxBytes) continue
      const gx = bx(g).toFixed(1)
      const gy = memTop + memoryRows.length * memRow + 4
      out.push(
        `<line x1="${gx}" y1="${memTop - 8}" x2="${gx}" y2="${gy}" stroke="${
          g === 2048 ? "#111" : "#e4e4e4"
        }" stroke-width="${g === 2048 ? 2 : 1}"${g === 2048 ? " stroke-dasharray=\"4 2\"" : ""}/>`
      )
      out.push(
        `<text x="${gx}" y="${gy + 16}" text-anchor="middle" fill="#555">${
          g === 2048 ? "2 KiB (target)" : g >= 1000 ? `${g / 1000}k B` : `${g} B`
        }</text>`
      )
    }
    memoryRows.forEach((r, i) => {
      const y = memTop + i * memRow
      if (r.ours) {
        out.push(
          `<text x="${left - 10}" y="${y + 12}" text-anchor="end" font-weight="600" font-size="12">${
            xml(clip(r.title, 52))
          }</text>`
        )
      }
      out.push(
        `<text x="${left - 10}" y="${y + (r.ours ? 24 : 16)}" text-anchor="end" fill="#666" font-size="10">${
          xml(clip(r.label, 64))
        }</text>`
      )
      const w = Math.max(1, bx(r.bytes) - left)
      out.push(
        `<rect x="${left}" y="${y + 4}" width="${w.toFixed(1)}" height="16" fill="${
          r.ours ? "#6a5acd" : "#b8b8b8"
        }" rx="2"/>`
      )
      const text = r.bytes >= 1024 ? `${(r.bytes / 1024).toFixed(2)} KiB` : `${r.bytes.toFixed(0)} B`
      out.push(`<text x="${(left + w + 6).toFixed(1)}" y="${y + 17}" font-size="12">${text}</text>`)
    })
  }
  out.push(`</svg>`)
  return out.join("\n") + "\n"
}
