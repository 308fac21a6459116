import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { waitForJob } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { submitJob } from '../support/jobs';
import { waitFor } from '../support/wait';
import { JOB_TRACE_SPANS } from '../support/tracing';

/** OpenTelemetry: one trace from the HTTP request through its workflow to its activities. */
describe('tracing', () => {
  const exporter = new InMemorySpanExporter();
  const stack = useTestStack({ tracing: { spanProcessor: new SimpleSpanProcessor(exporter) } }, 120_000);

  it('links the request that submitted a job to its workflow and its activities', async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await waitForJob(stack.baseUrl, await submitJob(stack, {}, { traceparent }));
    // Workflow spans reach the exporter through a sink, after the workflow task that ends them.
    const names = () =>
      exporter
        .getFinishedSpans()
        .filter((span) => span.spanContext().traceId === '0af7651916cd43dd8448eb211c80319c')
        .map((span) => span.name);
    const expected = JOB_TRACE_SPANS;
    // Past the wait, the assertions below say which spans are missing.
    await waitFor('the workflow spans', () => expected.every((name) => names().includes(name)), 10_000, 200).catch(
      () => undefined,
    );

    const spans = exporter.getFinishedSpans();
    const request = spans.find((span) => span.name === 'POST /api/v1/generate')!;
    expect(request).toBeDefined();
    expect(request.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(request.parentSpanId).toBe('b7ad6b7169203331');
    expect(names()).toEqual(expect.arrayContaining(expected));
    const start = spans.find((span) => span.name === 'StartWorkflow:mediaGeneration')!;
    expect(start.parentSpanId).toBe(request.spanContext().spanId);
  }, 60_000);
});
