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
  if (!Array.isArray(failures)) return results.size > 0 ? results : undefined
  for (const failure of failures) {
    const responses = (failure as { response?: { responses?: unknown } } | null)?.response?.responses
    if (!Array.isArray(responses)) continue
    const nested = (failure as { errors?: unknown }).errors
    responses.forEach(
      (response: { name: string; partitionResponses?: ReadonlyArray<PartitionResponse> }, topicIndex) => {
        response.partitionResponses?.forEach((answer, partitionIndex) => {
          const key = `${response.name}:${answer.index}`
          if (answer.errorCode === 0) {
            results.set(key, { _tag: "Appended", baseOffset: Number(answer.baseOffset) })
            return
          }
          const path = `/responses/${topicIndex}/partition_responses/${partitionIndex}`
          const cause = Array.isArray(nested)
            ? nested.find((error: { path?: unknown }) => error?.path === path) ?? failure
            : failure
          results.set(key, { _tag: "Refused", cause, tooLarge: TOO_LARGE.has(answer.errorCode) })
        })
      }
    )
  }
  return results.size > 0 ? results : undefined
}

interface PartitionResponse {
  readonly index: number
  readonly errorCode: number
  readonly baseOffset: bigint
}
