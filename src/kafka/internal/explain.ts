/**
 * What a Kafka client's error means for the person reading it. The client
 * nests its errors (a failed request holds one error per broker tried, each
 * holding the socket's error); this finds what matters in them and says it
 * in one line with what to do: the brokers that could not be reached and the
 * OS's reason, a topic that does not exist, a record too large, refused
 * credentials, a broker certificate that is not trusted, TLS on one side of
 * the connection only. `undefined` when it recognises nothing.
 */

import { findErrorBy, GenericError } from "@platformatic/kafka"

/** The brokers a client error came from, noted where it is caught (the client's messages rarely name them). */
const brokersOf = new WeakMap<object, ReadonlyArray<string>>()

/** Notes that `cause`, a client's error, came from talking to `brokers`; returns it. */
export const fromBrokers = <A>(cause: A, brokers: ReadonlyArray<string>): A => {
  if (typeof cause === "object" && cause !== null) brokersOf.set(cause, brokers)
  return cause
}

interface Findings {
  /** Broker address → the OS error codes seen connecting to it. */
  readonly unreachable: Map<string, Set<string>>
  /** Kafka protocol error ids (UNKNOWN_TOPIC_OR_PARTITION, …). */
  readonly protocol: Set<string>
  authentication: string | undefined
  timedOut: boolean
  /** A connection the other side closed (or a reply that was not Kafka's). */
  closed: boolean
  /** A `node:tls` verification error: its code and message. */
  certificate: { readonly code: string; readonly message: string } | undefined
  /** The broker answered a plaintext client with TLS. */
  brokerWantsTls: boolean
  /** A TLS client reached a listener that does not speak TLS. */
  brokerNoTls: boolean
  /** The broker closed the connection before the SASL handshake answered. */
  saslClosed: boolean
}

/** `node:tls`'s codes for a certificate the client does not accept. */
const untrusted = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
  "CERT_REJECTED"
])
const expired = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"])
const wrongName = "ERR_TLS_CERT_ALTNAME_INVALID"

const maxDepth = 8

const read = (value: unknown, key: string): unknown => {
  try {
    return (value as Record<string, unknown>)[key]
  } catch {
    return undefined
  }
}

const collect = (error: unknown, findings: Findings, depth: number, seen: Set<unknown>): void => {
  if (typeof error !== "object" || error === null || depth > maxDepth || seen.has(error)) return
  seen.add(error)
  const code = read(error, "code")
  const message = read(error, "message")
  if (code === "PLT_KFK_NETWORK" && message === "Request timed out") {
    findings.timedOut = true
  } else if (code === "PLT_KFK_NETWORK" && message === "Connection closed") {
    findings.closed = true
  } else if (code === "PLT_KFK_NETWORK" && typeof message === "string") {
    const address = /Connection to (\S+) failed/.exec(message)?.[1]
    if (address !== undefined) {
      const reasons = findings.unreachable.get(address) ?? new Set()
      const os = read(read(error, "cause"), "code")
      if (typeof os === "string") reasons.add(os)
      findings.unreachable.set(address, reasons)
    }
  } else if (code === "PLT_KFK_USER" && typeof message === "string" && message.startsWith("Unknown topic")) {
    findings.protocol.add("UNKNOWN_TOPIC_OR_PARTITION")
  } else if (code === "PLT_KFK_TIMEOUT") {
    findings.timedOut = true
  } else if (code === "PLT_KFK_AUTHENTICATION" && typeof message === "string") {
    if (message.startsWith("Cannot find a suitable SASL mechanism")) {
      const inner = read(error, "cause")
      if (read(inner, "code") === "PLT_KFK_NETWORK" && read(inner, "message") === "Connection closed") {
        findings.saslClosed = true
      } else {
        findings.authentication = message
      }
    } else {
      findings.authentication = message
    }
  } else if (code === "PLT_KFK_USER" && message === "Broker requires TLS.") {
    findings.brokerWantsTls = true
  } else if (code === "PLT_KFK_USER" && typeof message === "string" && message.startsWith("TLS handshake failed")) {
    findings.brokerNoTls = true
  } else if (
    typeof code === "string" && (untrusted.has(code) || expired.has(code) || code === wrongName) &&
    findings.certificate === undefined
  ) {
    findings.certificate = { code, message: typeof message === "string" ? message : code }
  }
  const apiId = read(error, "apiId")
  if (typeof apiId === "string") findings.protocol.add(apiId)
  const nested = read(error, "errors")
  if (Array.isArray(nested)) { for (const inner of nested) collect(inner, findings, depth + 1, seen) }
  collect(read(error, "cause"), findings, depth + 1, seen)
}

/** One line saying what went wrong and what to do, if the error is one this recognises. */
export const explain = (cause: unknown): string | undefined => {
  const findings: Findings = {
    unreachable: new Map(),
    protocol: new Set(),
    authentication: undefined,
    timedOut: false,
    closed: false,
    certificate: undefined,
    brokerWantsTls: false,
    brokerNoTls: false,
    saslClosed: false
  }
  try {
    collect(cause, findings, 0, new Set())
  } catch {
    return undefined
  }
  const { certificate, protocol, unreachable } = findings
  if (certificate !== undefined) {
    const what = `${certificate.code}: ${certificate.message}`
    if (certificate.code === wrongName) {
      return `the broker's certificate is not for the name connected to (${what}): connect with a name the certificate lists, or set the one it is issued for (the Kafka setting tls.servername, KAFKA_TLS_SERVERNAME)`
    }
    if (expired.has(certificate.code)) {
      return `the broker's certificate is not valid now (${what}): the broker needs a current certificate`
    }
    return `the broker's certificate is not trusted (${what}): give the CA that signed it (the Kafka setting tls.ca, KAFKA_TLS_CA), or the system trust store must hold it`
  }
  if (findings.brokerWantsTls) {
    return "the broker's listener expects TLS and the client connected without it: turn TLS on (the Kafka setting tls, KAFKA_TLS=true), or connect to its plaintext listener"
  }
  if (findings.brokerNoTls) {
    return "the client connected with TLS to a listener that does not speak TLS: turn tls off for this listener, or connect to the broker's TLS (SSL / SASL_SSL) listener"
  }
  if (protocol.has("UNSUPPORTED_SASL_MECHANISM")) {
    return "the broker does not enable this SASL mechanism: use one its listener lists (sasl.enabled.mechanisms)"
  }
  if (findings.saslClosed) {
    return "the broker closed the connection at the SASL handshake: a TLS (SASL_SSL) listener needs tls on in the client (the Kafka setting tls, KAFKA_TLS=true), or this listener has no SASL"
  }
  if (findings.authentication !== undefined || protocol.has("SASL_AUTHENTICATION_FAILED")) {
    return `the broker refused the credentials (${
      findings.authentication ?? "SASL authentication failed"
    }): check the SASL mechanism, user name and password`
  }
  if (protocol.has("TOPIC_AUTHORIZATION_FAILED") || protocol.has("GROUP_AUTHORIZATION_FAILED")) {
    return "the broker refused the request: the user is not authorized for this topic or group (check its ACLs)"
  }
  if (protocol.has("MESSAGE_TOO_LARGE") || protocol.has("RECORD_LIST_TOO_LARGE")) {
    return "the record is larger than the broker accepts (its message.max.bytes, or the topic's max.message.bytes): send smaller records or raise the limit"
  }
  if (protocol.has("UNKNOWN_TOPIC_OR_PARTITION")) {
    return "the topic does not exist: create it, or let the app declare it (the Kafka setting topicAllowDeclare)"
  }
  if (unreachable.size > 0) {
    const reasons = new Set<string>()
    for (const codes of unreachable.values()) for (const code of codes) reasons.add(code)
    return `could not reach any broker of ${[...unreachable.keys()].join(", ")}${
      reasons.size === 0 ? "" : ` (${[...reasons].join(", ")})`
    }: is the broker running, and are KAFKA_BOOTSTRAP_SERVERS / bootstrapServers right?`
  }
  let brokers: ReadonlyArray<string> | undefined
  try {
    brokers = typeof cause === "object" && cause !== null ? brokersOf.get(cause) : undefined
  } catch {
    brokers = undefined
  }
  const who = brokers === undefined || brokers.length === 0 ? "the broker" : brokers.join(", ")
  if (findings.timedOut) {
    return `no answer from ${who} within the request timeout (requestTimeout): is it a Kafka broker, reachable and not overloaded?`
  }
  if (findings.closed) {
    return `${who} closed the connection: is it a Kafka broker, and does it require TLS or SASL (the Kafka settings tls and sasl)?`
  }
  return undefined
}

/**
 * Whether the client gave up on an error it treats as passing: it is the
 * client's own, and nothing it gathered (a request's errors over its
 * retries: brokers out of reach, a leader that moved, a fetch session the
 * broker forgot) is marked as not worth retrying. A new attempt can succeed
 * where the client's retries, pinned to one broker, did not.
 */
export const isTransient = (cause: unknown): boolean => {
  try {
    return cause instanceof Error && GenericError.isGenericError(cause) &&
      findErrorBy(cause, "canRetry", false) === null
  } catch {
    return false
  }
}
