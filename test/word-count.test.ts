import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { topWords, wordCount, WordCountChannels } from "../examples/word-count.ts"
import { AppTest } from "./helpers.ts"

const text = readFileSync(new URL("../examples/data/streams.txt", import.meta.url), "utf8")

/** The same count done without channels. */
const directCount = (input: string) => {
  const counts = new Map<string, number>()
  for (const word of input.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []) counts.set(word, (counts.get(word) ?? 0) + 1)
  return counts
}

describe("word-count demo", () => {
  it.effect("counts every word of the shipped text through the channels, with backpressure", () =>
    Effect.gen(function*() {
      const counts = yield* wordCount(text)
      assert.deepStrictEqual(counts, directCount(text))
      assert.deepStrictEqual(topWords(counts, 3), [["the", 41], ["a", 34], ["is", 22]])
    }).pipe(Effect.provide(WordCountChannels), Effect.provide(AppTest)))

  it("topWords breaks ties alphabetically", () => {
    assert.deepStrictEqual(topWords(new Map([["b", 2], ["a", 2], ["c", 3]]), 2), [["c", 3], ["a", 2]])
  })
})
