// Type-checks the TypeScript blocks of README.md and the ```ts examples of the JSDoc in src/, so
// the docs cannot drift from the API. Each block becomes a module of its own in .doc-examples/
// (recreated at each run), checked with the project's compiler options; errors name the block's
// origin. Exits non-zero when any block does not compile.
import { spawnSync } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join, relative } from "node:path"

const root = new URL("..", import.meta.url).pathname
const out = join(root, ".doc-examples")

/** Every ```ts block of a Markdown text, with the line it starts at. */
const markdownBlocks = (text) => {
  const blocks = []
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== "```ts") continue
    const start = i + 1
    let end = start
    while (end < lines.length && lines[end].trim() !== "```") end++
    blocks.push({ line: start + 1, code: lines.slice(start, end).join("\n") })
    i = end
  }
  return blocks
}

/** Every ```ts block inside the JSDoc comments of a source file. */
const jsdocBlocks = (text) => {
  const lines = text.split("\n")
  const blocks = []
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== "* ```ts") continue
    const start = i + 1
    let end = start
    while (end < lines.length && lines[end].trim() !== "* ```") end++
    const code = lines.slice(start, end).map((line) => line.replace(/^\s*\* ?/, "")).join("\n")
    blocks.push({ line: start + 1, code })
    i = end
  }
  return blocks
}

const sources = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sources(path) : name.endsWith(".ts") ? [path] : []
  })

rmSync(out, { recursive: true, force: true })
mkdirSync(out)
const origins = new Map()
const write = (origin, blocks) =>
  blocks.forEach(({ code, line }, index) => {
    const file = `${origin.replace(/[^A-Za-z0-9]+/g, "-")}-${index + 1}.ts`
    // A block's relative imports are relative to its document, one folder up from here.
    const here = relative(out, join(root, origin, "..")) || "."
    const located = code.replace(/from "\.\//g, `from "${here}/`)
    // `export {}` makes each block a module, so that blocks do not see each other's names.
    writeFileSync(join(out, file), `${located}\nexport {}\n`)
    origins.set(file, `${origin}:${line}`)
  })

write("README.md", markdownBlocks(readFileSync(join(root, "README.md"), "utf8")))
for (const path of sources(join(root, "src"))) write(relative(root, path), jsdocBlocks(readFileSync(path, "utf8")))

writeFileSync(
  join(out, "tsconfig.json"),
  JSON.stringify({
    extends: "../tsconfig.json",
    compilerOptions: {
      noEmit: true,
      // An example shows one thing; the names it declares for the reader need not all be used.
      noUnusedLocals: false,
      noUnusedParameters: false,
      plugins: []
    },
    include: ["*.ts"]
  })
)

const tsc = join(root, "node_modules", "typescript", "bin", "tsc")
const result = spawnSync(process.execPath, [tsc, "-p", out, "--pretty", "false"], { encoding: "utf8" })
const report = (result.stdout + result.stderr)
  .split("\n")
  .filter((line) => line.length > 0)
  .map((line) => {
    const match = /^(?:\.doc-examples\/)?([^(]+)\((\d+),(\d+)\): (.*)$/.exec(line.replace(out + "/", ""))
    if (match === null) return line
    const [, file, row, column, message] = match
    const origin = origins.get(file)
    if (origin === undefined) return line
    const [source, start] = origin.split(/:(?=\d+$)/)
    return `${source}:${Number(start) + Number(row) - 1}:${column}: ${message}`
  })
if (report.length > 0) console.log(report.join("\n"))
console.log(
  `${origins.size} documentation examples checked: ${result.status === 0 ? "all compile" : "some do not compile"}`
)
process.exit(result.status === 0 ? 0 : 1)
