/**
 * What a failed produce request still says, partition by partition.
 *
 * The client sends one request per broker, each carrying one record batch
 * per partition, and rejects the whole call when any partition fails. The
 * broker, though, appends or refuses each partition's batch on its own: the
 * rejection carries every partition's answer (`errorCode` 0 and a base
 * offset for those appended). Reading them tells which records were stored
 * (they must not be sent again) and which were refused, and why.
 */
import { partitionKey } from "../../internal/partitionKey.ts"

/** One partition's answer in a failed produce call. */
export type PartitionResult =
  | { readonly _tag: "Appended"; readonly baseOffset: number }
  | {
    readonly _tag: "Refused"
    readonly cause: unknown
    /** The batch was over the size the broker accepts: its records may fit when sent alone. */
    readonly tooLarge: boolean
  }

/** Kafka's MESSAGE_TOO_LARGE and RECORD_LIST_TOO_LARGE. */
const TOO_LARGE = new Set([10, 18])

/**
 * Every partition answer a produce rejection carries, by `topic:partition`;
 * `undefined` when it carries none (a connection that failed, a timeout):
 * then nothing is known about any record.
 *
 * A request the client retried is rejected with every attempt's error, in
 * order (a `MultipleErrors` inside the rejection's): the answers are read
 * attempt by attempt (see `destinationResults`). Without reading them, a
 * partition refused as too large after a retried one was not sent again
 * record by record, and its records that fit were lost to the call.
 */
export const partitionResults = (rejection: unknown): Map<string, PartitionResult> | undefined => {
  const results = new Map<string, PartitionResult>()
  const produced = (rejection as { produced?: { offsets?: unknown } } | null)?.produced?.offsets
  if (Array.isArray(produced)) {
    for (
      const { offset, partition, topic } of produced as Array<{ topic: string; partition: number; offset: bigint }>
    ) {
      results.set(partitionKey(topic, partition), { _tag: "Appended", baseOffset: Number(offset) })
    }
  }
  const failures = (rejection as { errors?: unknown } | null)?.errors
  if (Array.isArray(failures)) {
    for (const failure of failures) {
      const answers = destinationResults(failure)
      if (answers !== undefined) merge(results, answers)
    }
  }
  return results.size > 0 ? results : undefined
}

/**
 * One destination's answers: its one attempt's, or those of every attempt
 * of a retried request, in order; `undefined` when no attempt was answered.
 */
const destinationResults = (failure: unknown): Map<string, PartitionResult> | undefined => {
  const responses = (failure as { response?: { responses?: unknown } } | null)?.response?.responses
  const nested = (failure as { errors?: unknown } | null)?.errors
  if (Array.isArray(responses)) return answerOf(failure, responses, nested)
  if (!Array.isArray(nested) || !nested.some(isAttempt)) return undefined
  const merged = new Map<string, PartitionResult>()
  for (const attempt of nested) {
    const answers = destinationResults(attempt)
    if (answers !== undefined) merge(merged, answers)
    // No answer to this attempt: what the earlier ones refused may have been appended by it.
    else for (const [key, result] of merged) if (result._tag === "Refused") merged.delete(key)
  }
  return merged
}

/** Adds later answers: an appended partition stays appended (a retry of it is a duplicate the broker drops). */
const merge = (into: Map<string, PartitionResult>, later: Map<string, PartitionResult>): void => {
  for (const [key, result] of later) if (into.get(key)?._tag !== "Appended") into.set(key, result)
}

/** Whether an error is an attempt of a request: an answer, or errors holding one. */
const isAttempt = (error: unknown): boolean => {
  const failure = error as { response?: { responses?: unknown }; errors?: unknown } | null
  return Array.isArray(failure?.response?.responses) ||
    (Array.isArray(failure?.errors) && failure.errors.some(isAttempt))
}

/** One attempt's answer, partition by partition. */
const answerOf = (
  failure: unknown,
  responses: ReadonlyArray<{ name: string; partitionResponses?: ReadonlyArray<PartitionResponse> }>,
  nested: unknown
): Map<string, PartitionResult> => {
  const answers = new Map<string, PartitionResult>()
  responses.forEach((response, topicIndex) => {
    response.partitionResponses?.forEach((answer, partitionIndex) => {
      const key = partitionKey(response.name, answer.index)
      if (answer.errorCode === 0) {
        answers.set(key, { _tag: "Appended", baseOffset: Number(answer.baseOffset) })
        return
      }
      const path = `/responses/${topicIndex}/partition_responses/${partitionIndex}`
      const cause = Array.isArray(nested)
        ? nested.find((error: { path?: unknown }) => error?.path === path) ?? failure
        : failure
      answers.set(key, { _tag: "Refused", cause, tooLarge: TOO_LARGE.has(answer.errorCode) })
    })
  })
  return answers
}

interface PartitionResponse {
  readonly index: number
  readonly errorCode: number
  readonly baseOffset: bigint
}
