/**
 * Testing with layers: a program depends on a `Channel.Service`; production
 * provides the real layer, a test provides another channel it can inspect.
 * No broker to mock.
 *
 * Run: npx tsx examples/testing-with-layers.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Schema } from "effect"
import { App, Channel } from "effect-faust"

const Alert = Schema.Struct({ level: Schema.Literals(["info", "page"]), text: Schema.String })

class Alerts extends Channel.Service<Alerts>()("monitoring/Alerts", { key: Schema.String, value: Alert }) {}

/** The code under test: pages when the error rate is too high. */
const checkErrorRate = (service: string, errorRate: number) =>
  Effect.gen(function*() {
    const alerts = yield* Alerts
    if (errorRate > 0.05) {
      yield* alerts.send({
        key: service,
        value: { level: "page", text: `${service}: ${(errorRate * 100).toFixed(1)}% errors` }
      })
    }
  })

const test = Effect.gen(function*() {
  // The test's own channel: nobody subscribes, so sends are buffered for get().
  const recorded = yield* Channel.make({ key: Schema.String, value: Alert, label: "test-alerts" })
  const TestAlerts = Layer.succeed(Alerts, recorded)

  yield* checkErrorRate("checkout", 0.01).pipe(Effect.provide(TestAlerts))
  yield* checkErrorRate("search", 0.2).pipe(Effect.provide(TestAlerts))

  const alert = yield* recorded.get({ timeout: "1 second" })
  if (alert.key !== "search" || alert.value.level !== "page") return yield* Effect.die("unexpected alert")
  if (!(yield* recorded.empty)) return yield* Effect.die("checkout should not page")
  yield* Console.log(`test passed: one page for ${alert.key} (${alert.value.text})`)
})

const production = Effect.gen(function*() {
  yield* checkErrorRate("search", 0.2)
  const alerts = yield* Alerts
  yield* Console.log(`production layer: ${alerts.label} holds the page: ${!(yield* alerts.empty)}`)
}).pipe(Effect.provide(Alerts.layer))

Effect.andThen(test, production).pipe(Effect.provide(App.layer({ id: "monitoring" })), NodeRuntime.runMain)
