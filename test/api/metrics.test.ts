import { ScriptedProvider } from '../support/scripted-provider';
import { getJson, postJson, validRequest, waitForJob } from '../support/stack';
import { useTestStack } from '../support/use-stack';

/** GET /metrics on the API, and the worker's own registry (served on WORKER_METRICS_PORT by `npm run worker`). */
describe('metrics', () => {
  const provider = new ScriptedProvider();
  const stack = useTestStack({ provider, env: { PERSIST_MAX_ATTEMPTS: '3' } });

  const sample = (text: string, pattern: RegExp): number => {
    const line = text.split('\n').find((candidate) => pattern.test(candidate));
    return line ? Number(line.split(' ').at(-1)) : Number.NaN;
  };

  it('exposes HTTP latency by route and code, jobs by status, and activity durations and failures', async () => {
    provider.outputFailures.set(1, 1);
    const reply = await postJson(stack.baseUrl, '/api/v1/generate', validRequest);
    const jobId = reply.body!.job_id as string;
    await waitForJob(stack.baseUrl, jobId);
    await getJson(stack.baseUrl, '/api/v1/status/00000000-0000-4000-8000-000000000000');

    const response = await fetch(`${stack.baseUrl}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toContain('# TYPE http_request_duration_seconds histogram');
    expect(
      sample(
        text,
        /^http_request_duration_seconds_count\{method="POST",route="\/api\/v1\/generate",status_code="202"\}/,
      ),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(
        text,
        /^http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/status\/:job_id",status_code="404"\}/,
      ),
    ).toBeGreaterThanOrEqual(1);
    expect(text).toContain('# TYPE media_jobs gauge');
    expect(sample(text, /^media_jobs\{status="COMPLETED"\}/)).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^media_jobs\{status="PENDING"\} \d+$/m);

    const worker = await stack.workerMetrics.registry.metrics();
    expect(worker).toContain('# TYPE activity_duration_seconds histogram');
    // Output 0 stored in its local attempt; output 1's failed there, and persistOutput stored it.
    expect(
      sample(worker, /^activity_duration_seconds_count\{activity_type="persistSmallOutput",outcome="completed"\}/),
    ).toBe(1);
    expect(
      sample(worker, /^activity_duration_seconds_count\{activity_type="persistSmallOutput",outcome="failed"\}/),
    ).toBe(1);
    expect(
      sample(
        worker,
        /^activity_failures_total\{activity_type="persistSmallOutput",error_type="ScriptedTransientError"\}/,
      ),
    ).toBe(1);
    expect(
      sample(worker, /^activity_duration_seconds_count\{activity_type="persistOutput",outcome="completed"\}/),
    ).toBe(1);
    expect(sample(worker, /^activity_duration_seconds_count\{activity_type="finishJob",outcome="completed"\}/)).toBe(1);
  });
});
