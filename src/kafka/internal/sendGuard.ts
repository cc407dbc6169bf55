/**
 * Which consumer sessions a refused `sendSoon` record stops committing.
 *
 * Nobody waits for a `sendSoon` record, so a consumer that handled events
 * and made such a send could commit past those events before the broker
 * refuses the record: the events would never be read again. A session that
 * may have made a refused record therefore commits no more. A session may
 * have made it unless it was created after the record, or had every event it
 * tracked settled from before the record until the refusal (nothing was in
 * a handler, so none of its handlers made it): an idle consumer of another
 * topic, or one that started later, goes on.
 *
 * Records are numbered per Kafka service as they enter the send buffer; a
 * session notes the number current when it was created and when it last
 * became idle.
 */

/** The `sendSoon` numbering and the live sessions of one Kafka service. */
export interface Registry {
  sent: number
  readonly guards: Set<SessionGuard>
}

/** A registry with no sends and no sessions yet. */
export const makeRegistry = (): Registry => ({ sent: 0, guards: new Set() })

/** One consumer session's view: how many of its tracked messages are not settled yet. */
export class SessionGuard {
  readonly registry: Registry
  readonly createdAt: number
  /** Tracked messages not settled (queued, in a handler, or held by a subscriber). */
  unsettled = 0
  /** The record number current when `unsettled` last dropped to 0. */
  idleSince: number
  /** Set once a record this session may have made was refused: it commits no more. */
  poisoned = false
  constructor(registry: Registry) {
    this.registry = registry
    this.createdAt = registry.sent
    this.idleSince = registry.sent
  }
  tracked(): void {
    this.unsettled++
  }
  settled(count = 1): void {
    this.unsettled -= count
    if (this.unsettled === 0) this.idleSince = this.registry.sent
  }
  /** Ends the guard with its session: later refusals no longer concern it. */
  close(): void {
    this.registry.guards.delete(this)
  }
}

/** A guard for a new consumer session. */
export const register = (registry: Registry): SessionGuard => {
  const guard = new SessionGuard(registry)
  registry.guards.add(guard)
  return guard
}

/** Numbers a `sendSoon` record entering the send buffer. */
export const numberSend = (registry: Registry): number => ++registry.sent

/** The record numbered `sent` was refused: every session that may have made it commits no more. */
export const refused = (registry: Registry, sent: number): void => {
  for (const guard of registry.guards) {
    const before = sent <= guard.createdAt
    const idleThroughout = guard.unsettled === 0 && guard.idleSince < sent
    if (!before && !idleThroughout) guard.poisoned = true
  }
}
