/**
 * The package as users install it: packed, installed into an empty project,
 * imported from a plain Node ESM script, and type-checked from a consumer's
 * TypeScript file against the installed declarations.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const npm = process.platform === "win32" ? "npm.cmd" : "npm"

const run = (command: string, args: ReadonlyArray<string>, cwd: string): string =>
  execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 240_000 })

const script = `
import { Effect, Fiber, Schema, Stream } from "effect"
import { App, Channel } from "effect-faust"
import { Kafka, Topic } from "effect-faust/kafka"

const program = Effect.gen(function*() {
  const channel = yield* Channel.make({ value: Schema.Number })
  const reader = yield* channel.stream().pipe(Stream.take(2), Stream.runCollect, Effect.forkChild({ startImmediately: true }))
  yield* channel.send({ value: 1 })
  yield* channel.send({ value: 2 })
  return { values: yield* Fiber.join(reader), kafka: typeof Kafka.layer, topic: typeof Topic.make }
})
console.log(JSON.stringify(await Effect.runPromise(program.pipe(Effect.provide(App.layer({ id: "consumer" }))))))
`

const consumer = `
import { Effect, Schema, Stream } from "effect"
import { App, Channel, type ChannelClosedError } from "effect-faust"
import { type KafkaError, Topic } from "effect-faust/kafka"

const Order = Schema.Struct({ id: Schema.String, qty: Schema.Number })

export const program = Effect.gen(function*() {
  const orders = yield* Channel.make({ key: Schema.String, value: Order })
  yield* orders.send({ key: "o-1", value: { id: "o-1", qty: 2 } })
  const first: ReadonlyArray<{ readonly id: string; readonly qty: number }> = yield* orders.stream().pipe(
    Stream.take(1),
    Stream.runCollect
  )
  const topic = yield* Topic.make({ topics: ["orders"], value: Order })
  return { first, names: topic.topics }
}).pipe(Effect.provide(App.layer({ id: "shop" })))

export const closed = (error: ChannelClosedError | KafkaError): string => error.message

// @ts-expect-error a value must match the channel's Schema
export const wrong = Effect.flatMap(Channel.make({ value: Order }), (channel) => channel.send({ value: { id: 1 } }))
`

describe("the published package", () => {
  it("packs without tests or scripts, installs, runs from plain ESM and type-checks a consumer", () => {
    const work = mkdtempSync(join(tmpdir(), "effect-faust-package-"))
    try {
      run(npm, ["pack", "--pack-destination", work, "--silent"], root)
      const tarball = readdirSync(work).find((name) => name.endsWith(".tgz"))!
      const files = run("tar", ["tzf", join(work, tarball)], work).split("\n").filter((line) => line.length > 0)
      assert.include(files, "package/dist/index.js")
      assert.include(files, "package/dist/index.d.ts")
      assert.include(files, "package/dist/kafka/index.js")
      assert.include(files, "package/dist/kafka/index.d.ts")
      for (const file of files) {
        assert.notMatch(file, /^package\/(test|bench|scripts|examples)\//, `${file} is not for users`)
      }

      const project = join(work, "project")
      mkdirSync(project)
      writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
      run(npm, ["install", join(work, tarball), "--no-audit", "--no-fund", "--prefer-offline", "--silent"], project)

      writeFileSync(join(project, "check.mjs"), script)
      const output = JSON.parse(run(process.execPath, ["check.mjs"], project))
      assert.deepStrictEqual(output, { values: [1, 2], kafka: "function", topic: "function" })

      writeFileSync(join(project, "consumer.ts"), consumer)
      writeFileSync(
        join(project, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "ES2022",
            module: "NodeNext",
            moduleResolution: "NodeNext",
            strict: true,
            exactOptionalPropertyTypes: true,
            noEmit: true,
            types: []
          },
          files: ["consumer.ts"]
        })
      )
      run(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", project], project)
    } finally {
      rmSync(work, { recursive: true, force: true })
    }
  }, 300_000)
})
