/**
 * The main job: a word count through channels. Lines go into one channel, a
 * splitter agent sends each word to a second channel keyed by the word, and a
 * counter agent tallies them. The agents run for the lifetime of their
 * layers; an `End` marker flows through the stages so that the counter knows
 * when its input is complete, on any transport.
 *
 * Run: npm start            (on examples/data/streams.txt)
 *      npx tsx examples/word-count.ts path/to/file.txt 20
 *      npm start -- --serve  (or WORD_COUNT_SERVE=1: loops the text forever with the
 *                             web view on http://127.0.0.1:9464; WEB_PORT, WEB_HOST)
 *
 * The same program runs on Kafka topics when KAFKA_BOOTSTRAP_SERVERS is set
 * (`npm run kafka:up`, then `KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 npm start`):
 * only the layer providing `Lines` and `Words` changes.
 */
import { Console, Context, Deferred, Effect, Layer, Schema } from "effect"
import { Agent, App, Channel } from "effect-faust"
import { layerChannels, Topic } from "effect-faust/kafka"
import * as Web from "effect-faust/web"
import { randomUUID } from "node:crypto"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { runExample } from "./support/main.ts"

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

/** What the counter agent tallied, and whether it has seen `End`. */
export class Counts extends Context.Service<Counts, {
  readonly counts: Map<string, number>
  readonly complete: Deferred.Deferred<void>
}>()("word-count/Counts") {
  static readonly layer = Layer.sync(Counts, () => ({ counts: new Map(), complete: Deferred.makeUnsafe<void>() }))
}

/**
 * Splitter agent: each line becomes its lower-cased words; `End` is passed on.
 * Its sink sends them to `Words` and carries that channel's label, so the
 * agent's info series (and the web view's graph) names where it writes.
 */
const Splitter = Agent.layer(Effect.gen(function*() {
  const words = yield* Words
  type Send = Parameters<typeof words.send>[0]
  const toWords = {
    label: words.label,
    send: ({ value }: { readonly value: ReadonlyArray<Send> }) =>
      Effect.forEach(value, (options) => words.send(options), { discard: true })
  }
  return yield* Agent.forEach("splitter", Lines, (line): Effect.Effect<ReadonlyArray<Send>> =>
    Effect.succeed(
      line._tag === "End"
        ? [{ value: End.make({}) }]
        : (line.text.toLowerCase().match(wordPattern) ?? []).map((word) => ({ key: word, value: Word.make({ word }) }))
    ), { sinks: [toWords] })
}))

/** Counter agent: tallies words until `End`. */
const Counter = Agent.layer(Effect.gen(function*() {
  const { complete, counts } = yield* Counts
  return yield* Agent.forEach("counter", Words, (word) =>
    word._tag === "End"
      ? Deferred.succeed(complete, undefined)
      : Effect.sync(() => {
        counts.set(word.word, (counts.get(word.word) ?? 0) + 1)
      }))
}))

/** Both agents, running while the layer lives, with the counts they share. */
export const WordCountAgents = Layer.mergeAll(Splitter, Counter).pipe(Layer.provideMerge(Counts.layer))

/**
 * Runs the pipeline over `text` and returns the counts: the agents start with
 * their layer and stop, gracefully, once the counter has seen `End`.
 */
export const wordCount = (text: string) =>
  Effect.gen(function*() {
    const lines = yield* Lines
    const { complete, counts } = yield* Counts
    for (const line of text.split("\n")) {
      if (line.trim().length > 0) yield* lines.send({ value: Line.make({ text: line }) })
    }
    yield* lines.send({ value: End.make({}) })
    yield* Deferred.await(complete)
    return counts
  }).pipe(Effect.provide(WordCountAgents))

/** The `n` most frequent words, ties broken alphabetically. */
export const topWords = (counts: ReadonlyMap<string, number>, n: number): Array<readonly [string, number]> =>
  [...counts].sort(([a, x], [b, y]) => y - x || a.localeCompare(b)).slice(0, n)

/**
 * The `--serve` demo's input: the text's lines sent forever, a short pause
 * between them, never `End` (so the counter never completes).
 */
export const loopLines = (text: string) =>
  Effect.gen(function*() {
    const lines = yield* Lines
    const nonEmpty = text.split("\n").filter((line) => line.trim().length > 0)
    while (true) {
      for (const line of nonEmpty) {
        yield* lines.send({ value: Line.make({ text: line }) })
        yield* Effect.sleep("20 millis")
      }
    }
  })

/** The `--serve` demo: the agents on a looping input, with the web view on. */
export const serve = (text: string, options?: Web.Options) =>
  Effect.gen(function*() {
    const web = yield* Web.Server
    yield* Console.log(`word-count: web view on ${web.url} (Ctrl-C to stop)`)
    return yield* loopLines(text)
  }).pipe(Effect.provide(Layer.merge(WordCountAgents, Web.layer(options))))

const args = process.argv.slice(2).filter((arg) => !arg.startsWith("--"))
const serving = process.argv.includes("--serve") || (process.env.WORD_COUNT_SERVE ?? "") !== ""

const main = Effect.gen(function*() {
  const path = args[0] ?? fileURLToPath(new URL("./data/streams.txt", import.meta.url))
  if (serving) {
    return yield* serve(readFileSync(path, "utf8"), {
      port: Number(process.env.WEB_PORT ?? 9464),
      host: process.env.WEB_HOST
    })
  }
  const top = Number(args[1] ?? 10)
  const counts = yield* wordCount(readFileSync(path, "utf8"))
  const total = [...counts.values()].reduce((sum, n) => sum + n, 0)
  yield* Console.log(`${total} words, ${counts.size} distinct, in ${path}`)
  yield* Console.log(`top ${top}:`)
  for (const [word, count] of topWords(counts, top)) {
    yield* Console.log(`  ${word.padEnd(12)} ${count}`)
  }
})

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  runExample(
    "word-count",
    main.pipe(
      Effect.provide(WordCountChannels),
      Effect.provide(App.layer({ id: "word-count" }))
    )
  )
}
