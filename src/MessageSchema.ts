/**
 * Faust's `Schema`: the key and value types of a channel (each an effect
 * `Schema`) and the serializers that carry them as bytes.
 *
 * @since 0.1.0
 */
import type * as Schema from "effect/Schema"
import type { Serializer } from "./Codec.ts"

/**
 * A key or value schema a channel can use: any effect Schema that decodes
 * and encodes without services.
 *
 * @since 0.1.0
 * @category models
 */
export type Any = Schema.Codec<any, any, never, never>

/**
 * Key and value types with their serializers. Serializers are kept as given
 * (a name or a Codec) and resolved against the `Codecs` registry by the
 * channel that uses the schema.
 *
 * @since 0.1.0
 * @category models
 */
export interface MessageSchema<K, V> {
  readonly key: Schema.Codec<K, any> | undefined
  readonly value: Schema.Codec<V, any> | undefined
  readonly keySerializer: Serializer | undefined
  readonly valueSerializer: Serializer | undefined
  /** Whether an empty value (null, or zero bytes) decodes to `null` instead of failing. */
  readonly allowEmpty: boolean
}

/**
 * The decoded type of an optional schema: `unknown` when absent.
 *
 * @since 0.1.0
 * @category type-level
 */
export type TypeOf<S> = S extends Schema.Codec<infer T, any, any, any> ? T : unknown

/**
 * Builds a {@link MessageSchema}.
 *
 * **Example**
 *
 * ```ts
 * import { Schema } from "effect"
 * import { MessageSchema } from "effect-faust"
 *
 * const schema = MessageSchema.make({
 *   key: Schema.String,
 *   value: Schema.Struct({ id: Schema.Number }),
 *   valueSerializer: "json"
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <
  KS extends Any | undefined = undefined,
  VS extends Any | undefined = undefined
>(options: {
  readonly key?: KS
  readonly value?: VS
  readonly keySerializer?: Serializer | undefined
  readonly valueSerializer?: Serializer | undefined
  readonly allowEmpty?: boolean | undefined
}): MessageSchema<TypeOf<KS>, TypeOf<VS>> => ({
  key: options.key,
  value: options.value,
  keySerializer: options.keySerializer,
  valueSerializer: options.valueSerializer,
  allowEmpty: options.allowEmpty ?? false
})
