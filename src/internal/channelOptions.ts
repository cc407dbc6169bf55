/**
 * Checks of a channel's options shared by `Channel.make` and `clone` (and a
 * topic's clones): each gives the `InvalidChannelOptionsError` to fail with,
 * or `undefined`.
 */
import { InvalidChannelOptionsError } from "../Errors.ts"
import { TypeId } from "./channelTypeId.ts"

/** Why a `maxsize` is not valid, if it is not. @internal */
export const checkMaxsize = (maxsize: unknown): InvalidChannelOptionsError | undefined =>
  typeof maxsize === "number" && Number.isInteger(maxsize) && maxsize >= 1
    ? undefined
    : new InvalidChannelOptionsError({ option: "maxsize", value: maxsize, reason: "must be an integer of at least 1" })

/** Why an `onDecodeError` policy is not valid, if it is not. @internal */
export const checkDecodeErrorPolicy = (policy: unknown): InvalidChannelOptionsError | undefined =>
  policy === "fail" || policy === "skip" ||
    (typeof policy === "object" && policy !== null && "deadLetter" in policy &&
      typeof policy.deadLetter === "object" && policy.deadLetter !== null && TypeId in policy.deadLetter)
    ? undefined
    : new InvalidChannelOptionsError({
      option: "onDecodeError",
      value: policy,
      reason: `must be "fail", "skip" or { deadLetter: <a Channel> }`
    })
