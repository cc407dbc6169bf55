/** What marks a value as a channel (a topic too): a leaf module, so that checks import it without cycles. @internal */
export const TypeId = "~effect-faust/Channel" as const
