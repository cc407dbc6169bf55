/**
 * Scenario 5: the word-count demo (`examples/word-count.ts`, the main job)
 * end to end, on its own text repeated to about 1 M words: its `wordCount`
 * program with its channels, against the same pipeline (same stages, same
 * `End` marker, same schemas and splitting) on raw `Queue.bounded` +
 * `Stream.fromQueue`. A plain synchronous loop is reported as a reference.
 * Throughput is words per second.
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { wordCount, WordCountChannels } from "../../examples/word-count.ts"
import { CAPACITY, run, runWithApp } from "../lib/app.ts"
import { type Case, now, type Pair } from "../lib/harness.ts"

// The demo's schemas and splitting, repeated for the baseline.
const End = Schema.TaggedStruct("End", {})
const Line = Schema.TaggedStruct("Line", { text: Schema.String })
const Word = Schema.TaggedStruct("Word", { word: Schema.String })
type Line = typeof Line.Type | typeof End.Type
type Word = typeof Word.Type | typeof End.Type
const wordPattern = /[\p{L}\p{N}']+/gu

const source = readFileSync(fileURLToPath(new URL("../../examples/data/streams.txt", import.meta.url)), "utf8")
const wordsPerCopy = (source.toLowerCase().match(wordPattern) ?? []).length

/** How many copies of the demo text make about `n` words. */
const copiesFor = (n: number) => Math.max(1, Math.round(n / wordsPerCopy))
/** The number of words the text for `n` really has (whole copies). */
export const wordsFor = (n: number) => copiesFor(n) * wordsPerCopy
const texts = new Map<number, string>()
const textFor = (n: number) => {
  const copies = copiesFor(n)
  let text = texts.get(copies)
  if (text === undefined) texts.set(copies, text = Array.from({ length: copies }, () => source).join("\n"))
  return text
}

const check = (counts: ReadonlyMap<string, number>, n: number) => {
  let total = 0
  for (const c of counts.values()) total += c
  if (total !== wordsFor(n)) throw new Error(`counted ${total} words, expected ${wordsFor(n)}`)
}

export const demo: Case = {
  label: "examples/word-count.ts (channels)",
  run: (n) =>
    runWithApp(Effect.gen(function*() {
      const text = textFor(n)
      const start = now()
      const counts = yield* wordCount(text).pipe(Effect.provide(WordCountChannels))
      const elapsedMs = now() - start
      check(counts, n)
      return { elapsedMs }
    }))
}

const queuePipeline = (text: string) =>
  Effect.gen(function*() {
    const lines = yield* Queue.bounded<Line>(CAPACITY)
    const words = yield* Queue.bounded<Word>(CAPACITY)
    const splitting = yield* Effect.forkChild(
      Stream.fromQueue(lines).pipe(
        Stream.takeUntil((line) => line._tag === "End"),
        Stream.runForEach((line) =>
          line._tag === "End"
            ? Queue.offer(words, End.make({}))
            : Effect.forEach(
              line.text.toLowerCase().match(wordPattern) ?? [],
              (word) => Queue.offer(words, Word.make({ word })),
              { discard: true }
            )
        )
      )
    )
    const counting = yield* Effect.forkChild(
      Stream.fromQueue(words).pipe(
        Stream.takeUntil((word) => word._tag === "End"),
        Stream.runFold(() => new Map<string, number>(), (counts, word) => {
          if (word._tag === "Word") counts.set(word.word, (counts.get(word.word) ?? 0) + 1)
          return counts
        })
      )
    )
    for (const line of text.split("\n")) {
      if (line.trim().length > 0) yield* Queue.offer(lines, Line.make({ text: line }))
    }
    yield* Queue.offer(lines, End.make({}))
    yield* Fiber.join(splitting)
    return yield* Fiber.join(counting)
  })

export const queues: Case = {
  label: "raw Queue + Stream.fromQueue, same pipeline",
  run: (n) =>
    run(Effect.gen(function*() {
      const text = textFor(n)
      const start = now()
      const counts = yield* queuePipeline(text)
      const elapsedMs = now() - start
      check(counts, n)
      return { elapsedMs }
    }))
}

export const plain: Case = {
  label: "plain JS loop (reference)",
  run: async (n) => {
    const text = textFor(n)
    const start = now()
    const counts = new Map<string, number>()
    for (const line of text.split("\n")) {
      if (line.trim().length === 0) continue
      for (const word of line.toLowerCase().match(wordPattern) ?? []) counts.set(word, (counts.get(word) ?? 0) + 1)
    }
    const elapsedMs = now() - start
    check(counts, n)
    return { elapsedMs }
  }
}

export const wordcount = (n: number): Array<Pair> => [{
  id: "s5-word-count",
  scenario: 5,
  title: "word-count demo, end to end (words/s)",
  n: wordsFor(n),
  candidate: demo,
  baseline: queues,
  extras: [plain],
  latency: false,
  note: `examples/data/streams.txt (${wordsPerCopy} words) repeated ${copiesFor(n)}×`
}]
