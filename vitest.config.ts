import { fileURLToPath } from "node:url"
import { configDefaults, defineConfig } from "vitest/config"

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url))

export default defineConfig({
  // Tests run from source; the published package points at dist/ (see tsconfig.json "paths").
  resolve: {
    alias: [
      { find: /^effect-faust\/kafka$/, replacement: source("./src/kafka/index.ts") },
      { find: /^effect-faust\/web$/, replacement: source("./src/web/Web.ts") },
      { find: /^effect-faust$/, replacement: source("./src/index.ts") }
    ]
  },
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: { name: "memory", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, "test/kafka/**"] }
      },
      {
        // The Kafka files share one broker, and broker-kill.test.ts stops it for a while:
        // they run one file at a time (alongside the in-memory files, which need no broker).
        extends: true,
        // Its global setup starts the project's broker when none answers (and stops it after).
        test: {
          name: "kafka",
          include: ["test/kafka/**/*.test.ts"],
          fileParallelism: false,
          globalSetup: ["test/kafka/globalSetup.ts"]
        }
      }
    ]
  }
})
