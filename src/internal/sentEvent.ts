import { EventBase } from "../Event.ts"
import * as Message from "../Message.ts"

/**
 * The event an in-memory `send` creates. Its `Message` is built only when a
 * reader asks for it: most readers want the value, and a send then costs one
 * allocation instead of two.
 */
export class SentEvent<K, V> extends EventBase<K, V> {
  readonly key: K | null
  readonly value: V
  readonly headers: Message.Headers
  // Private: what the message is built from, not a part of the event.
  readonly #partition: number
  readonly #timestamp: number
  #message: Message.Message | undefined = undefined

  constructor(key: K | null, value: V, headers: Message.Headers, partition: number, timestamp: number) {
    super()
    this.key = key
    this.value = value
    this.headers = headers
    this.#partition = partition
    this.#timestamp = timestamp
  }

  get message(): Message.Message {
    return this.#message ??= Message.make({
      topic: "<anon>",
      partition: this.#partition,
      offset: -1,
      timestamp: this.#timestamp,
      timestampType: 1,
      headers: this.headers,
      key: this.key,
      value: this.value
    })
  }
}
