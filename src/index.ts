/**
 * effect-faust: Faust's stream-processing channels on Effect 4.
 *
 * @since 0.1.0
 */

/** @since 0.2.0 */
export * as Agent from "./Agent.ts"
/** @since 0.1.0 */
export * as App from "./App.ts"
/** @since 0.1.0 */
export * as Channel from "./Channel.ts"
/** @since 0.1.0 */
export * as Codec from "./Codec.ts"
/** @since 0.1.0 */
export * as Event from "./Event.ts"
/** @since 0.1.0 */
export * as FutureMessage from "./FutureMessage.ts"
/** @since 0.1.0 */
export * as Message from "./Message.ts"
/** @since 0.1.0 */
export * as MessageSchema from "./MessageSchema.ts"
/** @since 0.1.0 */
export * as RecordMetadata from "./RecordMetadata.ts"
/** @since 0.1.0 */
export { AgentError, AskTimeoutError } from "./AgentError.ts"
/** @since 0.1.0 */
export {
  ChannelClosedError,
  CodecError,
  type DecodeError,
  InvalidChannelOptionsError,
  KeyDecodeError,
  NoSubscribersError,
  NotATopicError,
  PublishInterruptedError,
  UnsupportedOperationError,
  ValueDecodeError
} from "./Errors.ts"
