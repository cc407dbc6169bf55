/**
 * Before the Kafka suite: when no broker answers and none was named
 * (KAFKA_BOOTSTRAP_SERVERS), starts the project's own (`npm run kafka:up`,
 * which needs Java 17) and stops it afterwards, so that `npm test` runs
 * everything on a fresh clone. Without Java the suite skips, saying why.
 */
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { reachable } from "./reachable.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const defaultBroker = "127.0.0.1:9092"

const javaAvailable = (): boolean => spawnSync("java", ["-version"], { stdio: "ignore" }).status === 0

export default async function setup(): Promise<(() => void) | undefined> {
  if (process.env.KAFKA_BOOTSTRAP_SERVERS !== undefined) return undefined
  if (await reachable(defaultBroker)) return undefined
  if (!javaAvailable()) {
    console.warn(
      `Kafka suite skipped: no broker at ${defaultBroker} and no Java to start one (npm run kafka:up needs Java 17).`
    )
    return undefined
  }
  console.warn(`No broker at ${defaultBroker}: starting the project's own for the Kafka suite (npm run kafka:up).`)
  const up = spawnSync("bash", ["scripts/kafka/up.sh"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] })
  if (up.status !== 0) {
    console.warn("Kafka suite skipped: the project's broker did not start (see above).")
    return undefined
  }
  return () => {
    spawnSync("bash", ["scripts/kafka/down.sh"], { cwd: root, stdio: "ignore" })
  }
}
