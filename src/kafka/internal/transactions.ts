import type { RecordsBatch } from "@platformatic/kafka"

const IS_TRANSACTIONAL = 0b1_0000
const IS_CONTROL = 0b10_0000

/**
 * Whether a batch belongs to an aborted transaction, for one partition's
 * answer read in order: the broker lists the aborted transactions that
 * overlap it (the project's broker already leaves their batches out, but the
 * protocol lets a broker send them). As the Java consumer under
 * `read_committed`: a producer's transaction counts as aborted from its
 * first offset until its abort marker.
 */
export const abortedBatches = (
  aborted: ReadonlyArray<{ readonly producerId: bigint; readonly firstOffset: bigint }>
): (batch: RecordsBatch) => boolean => {
  const pending = [...aborted].sort((
    a,
    b
  ) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0))
  const abortedProducers = new Set<bigint>()
  let next = 0
  return (batch) => {
    if (!(batch.attributes & IS_TRANSACTIONAL)) return false
    const lastOffset = batch.firstOffset + BigInt(batch.lastOffsetDelta)
    while (next < pending.length && pending[next].firstOffset <= lastOffset) {
      abortedProducers.add(pending[next++].producerId)
    }
    if (batch.attributes & IS_CONTROL) {
      if (isAbortMarker(batch)) abortedProducers.delete(batch.producerId)
      return false
    }
    return abortedProducers.has(batch.producerId)
  }
}

/** A control batch's marker: its record's key is a version and a type, 0 for an abort. */
const isAbortMarker = (batch: RecordsBatch): boolean => {
  const key = batch.records[0]?.key
  return key !== null && key !== undefined && key.length >= 4 && key.readInt16BE(2) === 0
}
