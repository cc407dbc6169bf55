/**
 * An agent instance's queue: the events routed to it, in order, until the
 * run ends it. It holds what the gate lets in (the gate bounds it), so it
 * needs neither capacity nor backpressure: an array read from a head index,
 * with no effect per event while it has some. As effect's `Queue` does,
 * waiting fibers are woken by a task of the dispatcher, not inside `offer`:
 * a run of offers is taken as a run, and the offering fiber never runs a
 * taker's work in its own step.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { SchedulerDispatcher } from "effect/Scheduler"
import type * as Event from "../../Event.ts"

export class EventQueue {
  #items: Array<Event.Event<any, any>> = []
  #head = 0
  #ended = false
  /** Fibers waiting in `take`: each woken one looks again, so one interrupted while woken takes nothing. */
  readonly #waiting = new Set<(exit: Exit.Exit<void>) => void>()
  readonly #dispatcher: SchedulerDispatcher
  #wakeScheduled = false

  constructor(dispatcher: SchedulerDispatcher) {
    this.#dispatcher = dispatcher
  }

  get size(): number {
    return this.#items.length - this.#head
  }

  /** Whether it was ended (what it holds is still taken). */
  get ended(): boolean {
    return this.#ended
  }

  /** Adds an event (ignored once ended) and wakes a waiting fiber. */
  offer(event: Event.Event<any, any>): void {
    if (this.#ended) return
    this.#items.push(event)
    this.#schedule()
  }

  /** The next event, or `undefined` when there is none now. */
  poll(): Event.Event<any, any> | undefined {
    const items = this.#items
    if (this.#head === items.length) return undefined
    const event = items[this.#head]
    items[this.#head++] = undefined as unknown as Event.Event<any, any>
    if (this.#head === items.length) {
      this.#items = []
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= items.length) {
      this.#items = items.slice(this.#head)
      this.#head = 0
    }
    return event
  }

  /** The next event, waiting for one; `undefined` once it is ended and empty. */
  readonly take: Effect.Effect<Event.Event<any, any> | undefined> = Effect.suspend(() => {
    const event = this.poll()
    if (event !== undefined) return Exit.succeed(event)
    if (this.#ended) return Exit.succeed(undefined)
    return Effect.flatMap(this.#wait, () => this.take)
  })

  /** No more events: waiting fibers get `undefined` once it is empty. */
  end(): void {
    this.#ended = true
    this.#schedule()
  }

  /** Takes everything it holds. */
  drain(): Array<Event.Event<any, any>> {
    const rest = this.#items.slice(this.#head)
    this.#items = []
    this.#head = 0
    return rest
  }

  readonly #wait: Effect.Effect<void> = Effect.callback<void>((resume) => {
    this.#waiting.add(resume)
    return Effect.sync(() => {
      this.#waiting.delete(resume)
    })
  })

  #schedule(): void {
    if (this.#waiting.size > 0 && !this.#wakeScheduled) {
      this.#wakeScheduled = true
      this.#dispatcher.scheduleTask(this.#wake, 0)
    }
  }

  /** Wakes a waiting fiber per event, or all of them once ended (each looks again when it runs). */
  readonly #wake = (): void => {
    this.#wakeScheduled = false
    let events = this.#ended ? Infinity : this.size
    for (const wake of this.#waiting) {
      if (events-- === 0) break
      this.#waiting.delete(wake)
      wake(Exit.void)
    }
  }
}
