import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { startTracing, type Tracing } from '../../common/tracing';

/** The sampler variables of the OpenTelemetry SDK, which docs/configuration.md documents for the service. */
const SAMPLER_VARIABLES = ['OTEL_TRACES_SAMPLER', 'OTEL_TRACES_SAMPLER_ARG'] as const;

describe('tracing', () => {
  let tracing: Tracing | undefined;
  const saved = Object.fromEntries(SAMPLER_VARIABLES.map((name) => [name, process.env[name]]));

  afterEach(async () => {
    await tracing?.shutdown();
    tracing = undefined;
    // Another test's provider registers as the global one only once this one is gone.
    trace.disable();
    for (const name of SAMPLER_VARIABLES) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  });

  /** Starts tracing into memory, opens and ends 200 root spans, and returns how many were exported. */
  function exportedRootSpans(): number {
    const exporter = new InMemorySpanExporter();
    tracing = startTracing('tracing-test', { spanProcessor: new SimpleSpanProcessor(exporter) });
    const tracer = trace.getTracer('tracing-test');
    for (let index = 0; index < 200; index++) tracer.startSpan(`request ${index}`).end();
    return exporter.getFinishedSpans().length;
  }

  it('records every trace when no sampler is set', () => {
    for (const name of SAMPLER_VARIABLES) delete process.env[name];
    expect(exportedRootSpans()).toBe(200);
  });

  it('keeps the share of traces that OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG ask for', () => {
    process.env.OTEL_TRACES_SAMPLER = 'parentbased_traceidratio';
    process.env.OTEL_TRACES_SAMPLER_ARG = '0';
    expect(exportedRootSpans()).toBe(0);
  });

  it('follows the caller: a request whose traceparent is sampled is traced under any ratio', () => {
    process.env.OTEL_TRACES_SAMPLER = 'parentbased_traceidratio';
    process.env.OTEL_TRACES_SAMPLER_ARG = '0';
    const exporter = new InMemorySpanExporter();
    tracing = startTracing('tracing-test', { spanProcessor: new SimpleSpanProcessor(exporter) });
    // The context a W3C `traceparent: 00-…-…-01` header carries.
    const sampledParent = trace.setSpanContext(context.active(), {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
      isRemote: true,
    });
    trace.getTracer('tracing-test').startSpan('request', {}, sampledParent).end();
    expect(exporter.getFinishedSpans().map((span) => span.spanContext().traceId)).toEqual([
      '4bf92f3577b34da6a3ce929d0e0e4736',
    ]);
  });
});
