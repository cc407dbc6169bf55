/**
 * How a channel or a topic shows itself (`toJSON`, `toString`, Node's
 * `inspect`), for both transports: what the transport adds, between the
 * label and what every instance has.
 */
import { partitionKeys } from "./partitionKey.ts"

/** What inspection shows of every channel or topic instance. */
export interface Inspected {
  readonly label: string
  readonly isIterator: boolean
  readonly activePartitions: Iterable<{ readonly topic: string; readonly partition: number }> | undefined
  readonly subscriberCount: number
}

/** `toJSON`: `_id` names the transport, `fields` are its own. */
export const toJSON = (id: "Channel" | "Topic", instance: Inspected, fields: Record<string, unknown>) => ({
  _id: id,
  label: instance.label,
  ...fields,
  isIterator: instance.isIterator,
  activePartitions: partitionKeys(instance.activePartitions),
  subscriberCount: instance.subscriberCount
})

/**
 * `toString`: `label(name=value, …)`, the transport's `fields` first; the
 * active partitions where the transport shows them.
 */
export const toString = (
  instance: Inspected,
  fields: Record<string, unknown>,
  options: { readonly activePartitions: boolean }
): string => {
  let text = `${instance.label}(`
  for (const name in fields) text += `${name}=${fields[name]}, `
  text += `isIterator=${instance.isIterator}, `
  if (options.activePartitions) {
    const keys = partitionKeys(instance.activePartitions)
    text += `activePartitions=${keys === null ? "all" : `{${keys.join(", ")}}`}, `
  }
  return `${text}subscribers=${instance.subscriberCount})`
}
