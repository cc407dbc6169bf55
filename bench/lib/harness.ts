/**
 * Timing and reporting helpers shared by every scenario group. A group runs
 * in its own child process (see `bench/run.ts`), measures each pair
 * (candidate vs baseline) side by side and writes its results as JSON.
 */
import { performance } from "node:perf_hooks"

/** What one timed run returns. */
export interface RunResult {
  /** Wall time from the first send to the last receive, in milliseconds. */
  readonly elapsedMs: number
  /** Send→receive latencies in milliseconds (latency runs only). */
  readonly latencies?: Float64Array | undefined
  /** CPU time of this process over the timed part, in milliseconds (where a case measures it). */
  readonly cpuMs?: number | undefined
}

/** One side of a comparison: runs `n` messages and reports its time. */
export interface Case {
  readonly label: string
  readonly run: (n: number, options: { readonly latency: boolean }) => Promise<RunResult>
}

/** A scenario of the issue: a candidate (effect-faust) against its baseline. */
export interface Pair {
  readonly id: string
  readonly scenario: number
  readonly title: string
  /** Messages per timed run. */
  readonly n: number
  readonly candidate: Case
  readonly baseline: Case
  /** Whether to run an extra latency pass (send→receive p50/p99). */
  readonly latency: boolean
  /** The target for candidate/baseline, if any. */
  readonly target?: { readonly ratio: number; readonly text: string } | undefined
  /** Extra reference cases reported beside the pair but not part of the ratio. */
  readonly extras?: ReadonlyArray<Case> | undefined
  /**
   * What the extras are: other baselines (the default; reported as the
   * candidate ÷ the extra) or other candidates (reported as the extra ÷ the
   * baseline).
   */
  readonly extrasAre?: "baselines" | "candidates" | undefined
  readonly note?: string | undefined
}

export interface CaseStats {
  readonly label: string
  /** Messages per second of each timed round. */
  readonly rounds: ReadonlyArray<number>
  readonly median: number
  readonly latencyUs?: { readonly p50: number; readonly p99: number; readonly samples: number } | undefined
}

export interface PairResult {
  readonly id: string
  readonly scenario: number
  readonly title: string
  readonly n: number
  readonly candidate: CaseStats
  readonly baseline: CaseStats
  readonly extras: ReadonlyArray<CaseStats>
  readonly extrasAre?: "baselines" | "candidates" | undefined
  /** candidate median / baseline median, from the same run. */
  readonly ratio: number
  readonly target?: { readonly ratio: number; readonly text: string; readonly met: boolean } | undefined
  readonly note?: string | undefined
}

export interface GroupOptions {
  readonly n: number
  readonly rounds: number
  readonly warmupN: number
  readonly latencyN: number
  readonly smoke: boolean
}

export const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

export const percentile = (sorted: Float64Array, p: number): number => {
  if (sorted.length === 0) return NaN
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index]
}

export const progress = (message: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

export const gc = (): void => {
  const collect = (globalThis as { gc?: () => void }).gc
  if (collect === undefined) throw new Error("run the group with --expose-gc")
  for (let i = 0; i < 4; i++) collect()
}

export const now = (): number => performance.now()

export const formatRate = (perSecond: number): string =>
  perSecond >= 1e6 ? `${(perSecond / 1e6).toFixed(2)} M/s` : `${(perSecond / 1e3).toFixed(1)} k/s`

const rate = (n: number, result: RunResult): number => n / (result.elapsedMs / 1000)

/**
 * Runs a pair: a warm-up of each case, then `rounds` rounds in which the
 * candidate and the baseline alternate (their order flips every round), then
 * a latency pass if the pair asks for one.
 */
export const runPair = async (pair: Pair, options: GroupOptions): Promise<PairResult> => {
  const cases = [pair.candidate, pair.baseline, ...(pair.extras ?? [])]
  const warmupN = Math.min(pair.n, options.warmupN)
  for (const c of cases) {
    progress(`${pair.id}: warm-up ${c.label} (n=${warmupN})`)
    await c.run(warmupN, { latency: false })
  }
  const rates: Array<Array<number>> = cases.map(() => [])
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? cases.map((_, i) => i) : cases.map((_, i) => i).reverse()
    for (const i of order) {
      gc()
      const result = await cases[i].run(pair.n, { latency: false })
      rates[i].push(rate(pair.n, result))
    }
    progress(
      `${pair.id}: round ${round + 1}/${options.rounds} ` +
        cases.map((c, i) => `${c.label} ${formatRate(rates[i][round])}`).join(" | ")
    )
  }
  const latencies: Array<CaseStats["latencyUs"]> = cases.map(() => undefined)
  if (pair.latency) {
    const latencyN = Math.min(pair.n, options.latencyN)
    for (let i = 0; i < 2; i++) {
      gc()
      const result = await cases[i].run(latencyN, { latency: true })
      const samples = result.latencies
      if (samples === undefined) throw new Error(`${cases[i].label} returned no latencies`)
      const sorted = Float64Array.from(samples).sort()
      latencies[i] = {
        p50: percentile(sorted, 50) * 1000,
        p99: percentile(sorted, 99) * 1000,
        samples: sorted.length
      }
    }
    progress(
      `${pair.id}: latency p50/p99 ` +
        [0, 1].map((i) => `${cases[i].label} ${latencies[i]!.p50.toFixed(0)}/${latencies[i]!.p99.toFixed(0)} µs`)
          .join(" | ")
    )
  }
  const stats: Array<CaseStats> = cases.map((c, i) => ({
    label: c.label,
    rounds: rates[i],
    median: median(rates[i]),
    latencyUs: latencies[i]
  }))
  const ratio = stats[0].median / stats[1].median
  return {
    id: pair.id,
    scenario: pair.scenario,
    title: pair.title,
    n: pair.n,
    candidate: stats[0],
    baseline: stats[1],
    extras: stats.slice(2),
    extrasAre: pair.extrasAre,
    ratio,
    target: pair.target === undefined ? undefined : { ...pair.target, met: ratio >= pair.target.ratio },
    note: pair.note
  }
}

/** A promise with its resolve function, for "the consumer saw the last message". */
export const signal = (): { readonly promise: Promise<void>; readonly resolve: () => void } => {
  let resolve!: () => void
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}
