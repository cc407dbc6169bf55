/**
 * The main job: a word count through channels. Lines go into one channel, a
 * splitter agent sends each word to a second channel keyed by the word, and a
 * counter agent tallies them. Each stage is an agent-like fiber reading a
 * stream; an `End` marker flows through the stages so that each one knows
 * when its input is complete, on any transport.
 *
 * Run: npm start            (on examples/data/streams.txt)
 *      npx tsx examples/word-count.ts path/to/file.txt 20
 *
 * The same program runs on Kafka topics when KAFKA_BOOTSTRAP_SERVERS is set
 * (`npm run kafka:up`, then `KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 npm start`):
 * only the layer providing `Lines` and `Words` changes.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Fiber, Schema, Stream } from "effect"
import { App, Channel } from "effect-faust"
import { layerChannels, Topic } from "effect-faust/kafka"
import { randomUUID } from "node:crypto"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const End = Schema.TaggedStruct("End", {})
const Line = Schema.TaggedStruct("Line", { text: Schema.String })
const Word = Schema.TaggedStruct("Word", { word: Schema.String })

/** Lines of text, then `End`. */
export class Lines extends Channel.Service<Lines>()("word-count/Lines", {
  value: Schema.Union([Line, End])
}) {}

/** Words keyed by themselves, then `End`. */
export class Words extends Channel.Service<Words>()("word-count/Words", {
  key: Schema.String,
  value: Schema.Union([Word, End])
}) {}

/**
 * Both channels: in memory, or Kafka topics when KAFKA_BOOTSTRAP_SERVERS is
 * set. One partition each, so that `End` stays behind every word; a topic
 * suffix per run (WORD_COUNT_RUN, random by default), so that a run reads
 * only its own records.
 */
export const WordCountChannels = layerChannels([Lines, Words], {
  topics: { partitions: 1 },
  topicName: (id) => `${Topic.topicNameFor(id)}-${process.env.WORD_COUNT_RUN ?? randomUUID()}`
})

const wordPattern = /[\p{L}\p{N}']+/gu

/** Splitter agent: each line becomes its lower-cased words. */
const splitter = Effect.gen(function*() {
  const lines = yield* Lines
  const words = yield* Words
  yield* lines.stream().pipe(
    Stream.takeUntil((line) => line._tag === "End"),
    Stream.runForEach((line) =>
      line._tag === "End"
        ? words.send({ value: End.make({}) })
        : Effect.forEach(
          line.text.toLowerCase().match(wordPattern) ?? [],
          (word) => words.send({ key: word, value: Word.make({ word }) }),
          { discard: true }
        )
    )
  )
})

/** Counter agent: tallies words until `End`. */
const counter = Effect.gen(function*() {
  const words = yield* Words
  return yield* words.stream().pipe(
    Stream.takeUntil((word) => word._tag === "End"),
    Stream.runFold(() => new Map<string, number>(), (counts, word) => {
      if (word._tag === "Word") counts.set(word.word, (counts.get(word.word) ?? 0) + 1)
      return counts
    })
  )
})

/**
 * Runs the pipeline over `text` and returns the counts. The agents start
 * first; lines sent before they subscribe would be buffered anyway.
 */
export const wordCount = (text: string) =>
  Effect.gen(function*() {
    const lines = yield* Lines
    const splitting = yield* Effect.forkChild(splitter)
    const counting = yield* Effect.forkChild(counter)
    for (const line of text.split("\n")) {
      if (line.trim().length > 0) yield* lines.send({ value: Line.make({ text: line }) })
    }
    yield* lines.send({ value: End.make({}) })
    yield* Fiber.join(splitting)
    return yield* Fiber.join(counting)
  })

/** The `n` most frequent words, ties broken alphabetically. */
export const topWords = (counts: ReadonlyMap<string, number>, n: number): Array<readonly [string, number]> =>
  [...counts].sort(([a, x], [b, y]) => y - x || a.localeCompare(b)).slice(0, n)

const main = Effect.gen(function*() {
  const path = process.argv[2] ?? fileURLToPath(new URL("./data/streams.txt", import.meta.url))
  const top = Number(process.argv[3] ?? 10)
  const counts = yield* wordCount(readFileSync(path, "utf8"))
  const total = [...counts.values()].reduce((sum, n) => sum + n, 0)
  yield* Console.log(`${total} words, ${counts.size} distinct, in ${path}`)
  yield* Console.log(`top ${top}:`)
  for (const [word, count] of topWords(counts, top)) {
    yield* Console.log(`  ${word.padEnd(12)} ${count}`)
  }
})

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main.pipe(
    Effect.provide(WordCountChannels),
    Effect.provide(App.layer({ id: "word-count" })),
    NodeRuntime.runMain
  )
}
