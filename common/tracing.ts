import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

export interface Tracing {
  resource: Resource;
  spanProcessor: SpanProcessor;
  shutdown(): Promise<void>;
}

/**
 * Turns OpenTelemetry tracing on for this process: a global tracer provider (with the
 * AsyncLocalStorage context manager and W3C trace-context propagation) exporting over OTLP/HTTP to
 * `{endpoint}/v1/traces`, or to the span processor given (tests). Undefined when neither is given.
 */
export function startTracing(
  serviceName: string,
  options: { endpoint?: string; spanProcessor?: SpanProcessor },
): Tracing | undefined {
  if (!options.endpoint && !options.spanProcessor) return undefined;
  const resource = new Resource({ [ATTR_SERVICE_NAME]: serviceName });
  const spanProcessor =
    options.spanProcessor ??
    new BatchSpanProcessor(new OTLPTraceExporter({ url: `${options.endpoint!.replace(/\/+$/, '')}/v1/traces` }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register();
  return { resource, spanProcessor, shutdown: () => provider.shutdown() };
}
