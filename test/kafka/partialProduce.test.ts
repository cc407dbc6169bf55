/**
 * What a failed produce call still says, partition by partition, read from
 * the client's own error classes, shaped as `@platformatic/kafka` 2.12
 * rejects a produce: a `MultipleErrors` per call holding each destination's
 * error, which is the broker's answer (`ResponseError`) or, for a request
 * the client retried, every attempt's error in order.
 */
import { assert, describe, it } from "@effect/vitest"
import { MultipleErrors, NetworkError, ResponseError } from "@platformatic/kafka"
import { partitionResults } from "../../src/kafka/internal/partialProduce.ts"

const PRODUCE = 0
const NOT_ENOUGH_REPLICAS = 19
const MESSAGE_TOO_LARGE = 10
const NOT_LEADER_OR_FOLLOWER = 6

/** A produce answer for `topic`: per partition, its error code (0: appended at `offset`). */
const answer = (topic: string, partitions: ReadonlyArray<readonly [number, number, number?]>) => {
  const errors: Record<string, [number, string]> = {}
  partitions.forEach(([, errorCode], j) => {
    if (errorCode !== 0) errors[`/responses/0/partition_responses/${j}`] = [errorCode, "refused"]
  })
  const response = {
    responses: [{
      name: topic,
      partitionResponses: partitions.map(([index, errorCode, offset]) => ({
        index,
        errorCode,
        baseOffset: BigInt(errorCode === 0 ? offset ?? 0 : -1)
      }))
    }]
  }
  return new ResponseError(PRODUCE, 11, errors, response)
}

const call = (...destinations: Array<Error>) => new MultipleErrors("Producing messages failed.", destinations)
const retried = (...attempts: Array<Error>) => new MultipleErrors(`produce failed ${attempts.length} times.`, attempts)
const lost = () => new NetworkError("Connection closed")

const summary = (rejection: unknown) => {
  const results = partitionResults(rejection)
  if (results === undefined) return undefined
  return Object.fromEntries(
    [...results].map((
      [key, result]
    ) => [
      key,
      result._tag === "Appended" ? `appended@${result.baseOffset}` : `refused${result.tooLarge ? " (too large)" : ""}`
    ])
  )
}

describe("partitionResults", () => {
  it("one answer: each partition appended at its base offset or refused, a too-large refusal marked", () => {
    assert.deepStrictEqual(summary(call(answer("t", [[0, MESSAGE_TOO_LARGE], [1, 0, 40], [2, 0, 7]]))), {
      "t:0": "refused (too large)",
      "t:1": "appended@40",
      "t:2": "appended@7"
    })
  })

  it("a refusal's cause is the broker's error for that partition", () => {
    const results = partitionResults(call(answer("t", [[0, 0, 1], [1, NOT_ENOUGH_REPLICAS]])))!
    const refused = results.get("t:1")
    assert(refused?._tag === "Refused")
    assert.strictEqual((refused.cause as { apiId?: string }).apiId, "NOT_ENOUGH_REPLICAS")
  })

  it("a retried request: the last attempt's refusal counts, and what an earlier attempt appended stays appended", () => {
    const rejection = call(retried(
      answer("t", [[0, NOT_ENOUGH_REPLICAS], [1, 0, 100], [2, 0, 200]]),
      answer("t", [[0, MESSAGE_TOO_LARGE], [1, 0, 100], [2, NOT_ENOUGH_REPLICAS]])
    ))
    assert.deepStrictEqual(summary(rejection), {
      "t:0": "refused (too large)",
      "t:1": "appended@100",
      "t:2": "appended@200"
    })
  })

  it("a retried request whose first attempt got no answer (the connection failed): the answered attempt counts", () => {
    assert.deepStrictEqual(
      summary(call(retried(lost(), answer("t", [[0, MESSAGE_TOO_LARGE], [1, 0, 3], [2, 0, 4]])))),
      {
        "t:0": "refused (too large)",
        "t:1": "appended@3",
        "t:2": "appended@4"
      }
    )
  })

  it("a refusal followed by an attempt without an answer is unknown again (that attempt may have appended it)", () => {
    assert.deepStrictEqual(summary(call(retried(answer("t", [[0, NOT_ENOUGH_REPLICAS], [1, 0, 9]]), lost()))), {
      "t:1": "appended@9"
    })
  })

  it("several destinations: each read on its own, one that was never answered does not hide another's refusal", () => {
    const rejection = call(
      answer("t", [[0, MESSAGE_TOO_LARGE]]),
      retried(lost(), lost()),
      retried(answer("t", [[2, NOT_LEADER_OR_FOLLOWER]]), answer("t", [[2, 0, 5]]))
    )
    assert.deepStrictEqual(summary(rejection), { "t:0": "refused (too large)", "t:2": "appended@5" })
  })

  it("no answer at all: nothing is known", () => {
    assert.isUndefined(partitionResults(call(lost())))
    assert.isUndefined(partitionResults(call(retried(lost(), lost()))))
    assert.isUndefined(partitionResults(new Error("boom")))
    assert.isUndefined(partitionResults(undefined))
  })

  it("partitions another destination appended (`produced`) stay appended", () => {
    const rejection = Object.assign(call(answer("t", [[1, MESSAGE_TOO_LARGE]])), {
      produced: { offsets: [{ topic: "t", partition: 0, offset: 12n }] }
    })
    assert.deepStrictEqual(summary(rejection), { "t:0": "appended@12", "t:1": "refused (too large)" })
  })
})
