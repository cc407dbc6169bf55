import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric, Schema } from "effect"
import { Channel } from "effect-faust"
import * as Web from "effect-faust/web"
import { existsSync, mkdirSync, readFileSync } from "node:fs"
import { chromium as playwright } from "playwright-core"
import { Lines, loopLines, WordCountAgents, Words } from "../../examples/word-count.ts"
import { AppTest } from "../helpers.ts"

/** Debian's chromium (`apt-get install chromium`; .ci/run installs it), or CHROMIUM_PATH. Nothing is downloaded. */
const executable = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser"]
  .find((path): path is string => path !== undefined && path !== "" && existsSync(path))

if (executable === undefined) {
  console.log(
    "test/web/browser.test.ts skipped: no chromium executable (apt-get install chromium, or set CHROMIUM_PATH)"
  )
}

/** The page's globals, in the functions playwright runs in the browser (the project has no DOM lib). */
declare const document: any

const text = readFileSync(new URL("../../examples/data/streams.txt", import.meta.url), "utf8")
const screenshot = new URL("../../docs/web-screenshot.png", import.meta.url)
const hostile = "<script>alert(1)</script>"

/** The word-count demo on a looping input (in memory), with the web view on an ephemeral port. */
const Demo = Layer.mergeAll(WordCountAgents, Web.layer({ port: 0 })).pipe(
  Layer.provideMerge(Layer.mergeAll(Lines.layer, Words.layer)),
  Layer.provideMerge(AppTest),
  Layer.provideMerge(Layer.succeed(Metric.MetricRegistry, new Map()))
)

const browser = Effect.acquireRelease(
  Effect.promise(() => playwright.launch({ executablePath: executable ?? "", headless: true, args: ["--no-sandbox"] })),
  (browser) => Effect.promise(() => browser.close())
)

/** What the page shows: each graph node's rate and detail, and the channel table's sent column. */
const readPage = `(() => {
  const nodes = {};
  for (const g of document.querySelectorAll("[data-node]")) {
    nodes[g.getAttribute("data-node")] = {
      rate: Number(g.querySelector(".rate").getAttribute("data-value") || "0"),
      detail: g.querySelector(".depth").textContent
    };
  }
  const sent = [...document.querySelectorAll("#channels tr")].slice(1).map((tr) => Number(tr.children[4].textContent.replace(/,/g, "")));
  const edges = [...document.querySelectorAll("[data-edge]")].map((path) => path.getAttribute("data-edge"));
  return { nodes, sent, edges };
})()`

interface PageState {
  readonly nodes: Record<string, { readonly rate: number; readonly detail: string }>
  readonly sent: ReadonlyArray<number>
  readonly edges: ReadonlyArray<string>
}

describe.skipIf(executable === undefined)("web page in a real browser", () => {
  it.live(
    "draws the demo's pipeline with live rates, updates it, and shows a hostile label as text",
    () =>
      Effect.gen(function*() {
        yield* Effect.forkScoped(loopLines(text))
        const web = yield* Web.Server
        const page = yield* Effect.flatMap(browser, (browser) => Effect.promise(() => browser.newPage()))
        const dialogs: Array<string> = []
        page.on("dialog", (dialog) => {
          dialogs.push(dialog.message())
          void dialog.dismiss()
        })
        yield* Effect.promise(() => page.setViewportSize({ width: 1280, height: 900 }))
        yield* Effect.promise(() => page.goto(web.url))

        // The graph shows both channels and both agents, with a rate above 0.
        yield* Effect.promise(() =>
          page.waitForFunction(
            () => {
              const rate = (id: string) =>
                Number(document.querySelector(`[data-node="${id}"] .rate`)?.getAttribute("data-value") ?? "0")
              return rate("channel:word-count/Lines") > 0 && rate("channel:word-count/Words") > 0 &&
                rate("agent:splitter") > 0 && rate("agent:counter") > 0
            },
            undefined,
            { timeout: 30_000 }
          )
        )
        const first = (yield* Effect.promise(() => page.evaluate(readPage))) as PageState
        assert.deepStrictEqual([...first.edges].sort(), [
          "agent:splitter -> channel:word-count/Words",
          "channel:word-count/Lines -> agent:splitter",
          "channel:word-count/Words -> agent:counter"
        ])
        assert.isAbove(first.nodes["channel:word-count/Words"].rate, 0)

        // The numbers change between two reads: the page is live.
        yield* Effect.promise(() =>
          page.waitForFunction(
            (before) => {
              const rows = [...document.querySelectorAll("#channels tr")].slice(1)
              const sent = rows.map((tr) => Number((tr.children[4].textContent ?? "").replace(/,/g, "")))
              return sent.length > 0 && sent.some((value, i) => value > (before[i] ?? 0))
            },
            first.sent,
            { timeout: 30_000 }
          )
        )
        const second = (yield* Effect.promise(() => page.evaluate(readPage))) as PageState
        assert.notDeepEqual(second.sent, first.sent)
        assert.isTrue(second.sent.every((value, i) => value >= first.sent[i]))

        // Sparklines with a few seconds of history, then the screenshot for the README.
        yield* Effect.promise(() =>
          page.waitForFunction(
            () => (document.querySelector(".spark")?.getAttribute("points")?.split(" ").length ?? 0) >= 8,
            undefined,
            { timeout: 30_000 }
          )
        )
        mkdirSync(new URL(".", screenshot), { recursive: true })
        yield* Effect.promise(() => page.screenshot({ path: screenshot.pathname, fullPage: true }))
        assert.isTrue(existsSync(screenshot))

        // A channel labelled with markup shows as text: no script runs, no element is made from it.
        const channel = yield* Channel.make({ label: hostile, value: Schema.String })
        yield* channel.registerMetrics
        yield* Effect.promise(() =>
          page.waitForFunction(
            (label) => [...document.querySelectorAll(".node .label")].some((node) => node.textContent === label),
            hostile,
            { timeout: 30_000 }
          )
        )
        const dom = yield* Effect.promise(() =>
          page.evaluate(() => ({
            scripts: document.scripts.length,
            cells: [...document.querySelectorAll("#channels td")].map((td) => td.textContent)
          }))
        )
        assert.strictEqual(dom.scripts, 1)
        assert.include(dom.cells, hostile)
        assert.deepStrictEqual(dialogs, [])
      }).pipe(Effect.provide(Demo), Effect.scoped),
    { timeout: 120_000 }
  )
})
