// Runs every examples/*.ts with tsx, one after the other; fails if any exits non-zero.
import { spawnSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { join } from "node:path"

const dir = new URL("../examples/", import.meta.url).pathname
const examples = readdirSync(dir).filter((name) => name.endsWith(".ts")).sort()
let failed = 0
for (const name of examples) {
  const started = Date.now()
  const result = spawnSync("npx", ["tsx", join(dir, name)], {
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 180_000,
    encoding: "utf8"
  })
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  if (result.status === 0) {
    console.log(`ok   ${name} (${seconds}s)`)
  } else {
    failed++
    console.log(`FAIL ${name} (${seconds}s, exit ${result.status ?? result.signal})`)
    console.log(result.stdout.split("\n").slice(-20).join("\n"))
    console.log(result.stderr.split("\n").slice(-20).join("\n"))
  }
}
console.log(`${examples.length - failed} of ${examples.length} examples ran`)
process.exit(failed === 0 ? 0 : 1)
