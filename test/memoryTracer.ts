import { Tracer } from "effect"

/**
 * A tracer that keeps every span it makes, for tests: effect's native spans
 * (W3C ids, attributes, links and status kept), collected in `spans`.
 * Install it with `Effect.withTracer(tracer)` or `Layer.succeed(Tracer.Tracer, tracer)`.
 */
export const memoryTracer = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { tracer, spans }
}
