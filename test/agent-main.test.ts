/**
 * A program whose agent fails for good (no restart schedule) must not run
 * on without it, nor exit as if all went well: under `NodeRuntime.runMain`
 * (a child process, agent-main-process.ts) it exits non-zero and its
 * `AgentError` is on stderr, whether the agent runs through `Agent.layer` +
 * `Layer.launch` or through its plain `run`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

/** tsx as a loader of the child node process. */
const tsx = new URL("../node_modules/tsx/dist/loader.mjs", import.meta.url).href
const childScript = fileURLToPath(new URL("./agent-main-process.ts", import.meta.url))

/** Runs the child to its end: its exit code, signal, stdout and stderr. */
const runChild = (mode: "layer" | "run") =>
  Effect.callback<
    { readonly code: number | null; readonly signal: string | null; readonly stdout: string; readonly stderr: string }
  >(
    (resume) => {
      const child = spawn(process.execPath, ["--conditions=source", "--import", tsx, childScript, mode], {
        stdio: ["ignore", "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => stdout += chunk)
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk)
      child.once("close", (code, signal) => resume(Effect.succeed({ code, signal, stdout, stderr })))
      return Effect.sync(() => child.kill("SIGKILL"))
    }
  ).pipe(Effect.timeout("40 seconds"))

describe("Agent under NodeRuntime.runMain", () => {
  for (const mode of ["layer", "run"] as const) {
    it.live(
      `a failing agent without restart (${
        mode === "layer" ? "Agent.layer + Layer.launch" : "agent.run"
      }) makes the program exit non-zero with its AgentError on stderr`,
      () =>
        Effect.gen(function*() {
          const { code, signal, stderr, stdout } = yield* runChild(mode)
          assert.isNull(signal, "exited by itself")
          assert.isNotNull(code)
          assert.notStrictEqual(code, 0, `exit code; stdout: ${stdout}; stderr: ${stderr}`)
          assert.include(stderr, "agent failing-main failed reading")
          assert.include(stderr, "after 1 attempt")
          // the handler's typed error is the AgentError's cause
          assert.include(stderr + stdout, "AgentError")
          assert.include(stderr + stdout, "Refused")
        }),
      60_000
    )
  }
})
