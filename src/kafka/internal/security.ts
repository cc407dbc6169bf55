/**
 * The secured-connection part of the Kafka settings as the client takes it:
 * TLS options for `node:tls` and the SASL mechanism with its credentials.
 * Secrets stay `Redacted` in the settings and are read only here, when a
 * connection asks for them (the client calls the providers on each connect).
 */
import { compressionsAlgorithms } from "@platformatic/kafka"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { describe } from "../../Errors.ts"
import type { Settings } from "../Kafka.ts"

/** The codecs the producer can use; zstd only where `node:zlib` has it (Node.js 22.15 and later). @internal */
export const compressionAvailable = (codec: string): boolean =>
  Object.hasOwn(compressionsAlgorithms, codec) &&
  compressionsAlgorithms[codec as keyof typeof compressionsAlgorithms].available

/** What the client's connection options get from the settings: `tls`, `tlsServerName`, `sasl`. @internal */
export const connectionOptions = (settings: Pick<Settings, "tls" | "sasl">) => {
  const options: {
    tls?: { ca?: string; cert?: string; key?: string }
    tlsServerName?: string
    sasl?: {
      mechanism: "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512" | "OAUTHBEARER"
      username?: () => string
      password?: () => string
      token?: () => Promise<string>
    }
  } = {}
  const tls = settings.tls
  if (tls !== undefined) {
    options.tls = {
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.cert === undefined ? {} : { cert: tls.cert }),
      ...(tls.key === undefined ? {} : { key: Redacted.value(tls.key) })
    }
    if (tls.servername !== undefined) options.tlsServerName = tls.servername
  }
  const sasl = settings.sasl
  if (sasl !== undefined) {
    if (sasl.mechanism === "OAUTHBEARER") {
      const token = Redacted.value(sasl.token)
      options.sasl = {
        mechanism: sasl.mechanism,
        token: () =>
          Effect.runPromise(Effect.map(token, Redacted.value)).catch((cause: unknown) => {
            throw new Error(`the OAUTHBEARER token provider failed: ${describe(cause)}`)
          })
      }
    } else {
      const { password, username } = sasl
      // Providers, so that the password is read when a connection
      // authenticates, and is never a field of the client's options.
      options.sasl = { mechanism: sasl.mechanism, username: () => username, password: () => Redacted.value(password) }
    }
  }
  return options
}
