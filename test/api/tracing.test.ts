import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { postJson, startTestStack, validRequest, waitForJob, type TestStack } from '../support/stack';

/** OpenTelemetry: one trace from the HTTP request through its workflow to its activities. */
describe('tracing', () => {
  const exporter = new InMemorySpanExporter();
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ tracing: { spanProcessor: new SimpleSpanProcessor(exporter) } });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('links the request that submitted a job to its workflow and its activities', async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const reply = await postJson(stack.baseUrl, '/api/v1/generate', validRequest, { traceparent });
    expect(reply.status).toBe(202);
    await waitForJob(stack.baseUrl, reply.body!.job_id as string);
    // Workflow spans reach the exporter through a sink, after the workflow task that ends them.
    const deadline = Date.now() + 10_000;
    const names = () =>
      exporter
        .getFinishedSpans()
        .filter((span) => span.spanContext().traceId === '0af7651916cd43dd8448eb211c80319c')
        .map((span) => span.name);
    const expected = [
      'POST /api/v1/generate',
      'StartWorkflow:mediaGeneration',
      'RunWorkflow:mediaGeneration',
      'RunActivity:createPrediction',
      'RunActivity:persistOutput',
      'RunActivity:finishJob',
    ];
    while (!expected.every((name) => names().includes(name)) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 200));

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
