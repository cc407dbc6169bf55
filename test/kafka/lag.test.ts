/**
 * The consumer lag gauge's arithmetic (no broker needed): `commits.test.ts`
 * reads the gauge on the broker.
 */
import { assert, describe, it } from "@effect/vitest"
import { lagOf } from "../../src/kafka/internal/consumerMetrics.ts"

describe("consumer lag", () => {
  it("the records after the committed offset, up to the log end last read", () => {
    assert.strictEqual(lagOf(100n, 40n), 60)
    assert.strictEqual(lagOf(100n, 100n), 0)
  })

  it("nothing committed: every record from the start", () => {
    assert.strictEqual(lagOf(25n, -1n), 25)
  })

  it("the log end not read yet: no lag known, 0", () => {
    assert.strictEqual(lagOf(-1n, 10n), 0)
  })

  it("a commit past the log end last read (read before the commit): 0, not negative", () => {
    assert.strictEqual(lagOf(100n, 130n), 0)
  })
})
