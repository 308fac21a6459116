import { ScriptedProvider } from '../support/scripted-provider';
import { createTestKey } from '../support/public-api';
import { getJson, postJson, validRequest } from '../support/stack';
import { useTestStack } from '../support/use-stack';

/** Timings per job (`metrics` in the status reply), GET /api/v1/usage per key, and the same figures on /metrics. */
describe('usage', () => {
  const provider = new ScriptedProvider({ latencyMs: 200 });
  const stack = useTestStack({ provider, env: { AUTH_MODE: 'required' } });

  const finished = async (jobId: string, auth: Record<string, string>) => {
    for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
      const { body } = await getJson(stack.baseUrl, `/api/v1/status/${jobId}`, auth);
      if (body && ['COMPLETED', 'FAILED', 'CANCELLED'].includes(body.status)) return body;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`job ${jobId} did not end`);
  };

  it("records each job's timings, and the key's usage by day and by model adds up to them", async () => {
    const key = await createTestKey(stack.database.db, 'usage');
    const other = await createTestKey(stack.database.db, 'usage-other');
    const requests = [
      { ...validRequest, model: 'usage/alpha', num_outputs: 2 },
      { ...validRequest, model: 'usage/alpha', num_outputs: 1 },
      { ...validRequest, model: 'usage/beta', num_outputs: 3 },
    ];
    const jobs = [];
    for (const request of requests) {
      const reply = await postJson(stack.baseUrl, '/api/v1/generate', request, key.auth);
      expect(reply.status).toBe(202);
      jobs.push(await finished(reply.body!.job_id as string, key.auth));
    }
    const unrelated = await postJson(stack.baseUrl, '/api/v1/generate', validRequest, other.auth);
    await finished(unrelated.body!.job_id as string, other.auth);

    for (const job of jobs) {
      expect(job.status).toBe('COMPLETED');
      const { queue_ms, predict_ms, store_ms, total_ms, bytes_stored } = job.metrics;
      for (const span of [queue_ms, predict_ms, store_ms]) expect(span).toBeGreaterThanOrEqual(0);
      // The provider takes 200 ms to predict.
      expect(predict_ms).toBeGreaterThanOrEqual(150);
      expect(queue_ms + predict_ms + store_ms).toBe(total_ms);
      expect(bytes_stored).toBe(job.media.reduce((sum: number, media: any) => sum + media.size_bytes, 0));
      expect(bytes_stored).toBeGreaterThan(0);
    }

    const usage = await getJson(stack.baseUrl, '/api/v1/usage', key.auth);
    expect(usage.status).toBe(200);
    const bytes = jobs.reduce((sum, job) => sum + job.metrics.bytes_stored, 0);
    const predictSeconds = jobs.reduce((sum, job) => sum + job.metrics.predict_ms, 0) / 1000;
    expect(usage.body!.totals).toEqual({
      jobs: 3,
      outputs: 6,
      bytes_stored: bytes,
      prediction_seconds: expect.closeTo(predictSeconds, 2),
    });
    const today = new Date().toISOString().slice(0, 10);
    expect(usage.body!.by_day).toEqual([{ day: today, ...usage.body!.totals }]);
    expect(usage.body!.by_model.map((row: any) => [row.model, row.jobs, row.outputs])).toEqual([
      ['usage/alpha', 2, 3],
      ['usage/beta', 1, 3],
    ]);
    expect(usage.body!.by_model[0].bytes_stored + usage.body!.by_model[1].bytes_stored).toBe(bytes);

    // A window that ends before the jobs: nothing.
    const before = await getJson(stack.baseUrl, '/api/v1/usage?from=2020-01-01&to=2020-01-02', key.auth);
    expect(before.body!.totals).toEqual({ jobs: 0, outputs: 0, bytes_stored: 0, prediction_seconds: 0 });
    const bad = await getJson(stack.baseUrl, '/api/v1/usage?from=yesterday', key.auth);
    expect(bad.status).toBe(422);
    expect(bad.body!.errors[0].field).toBe('from');

    const metrics = await (await fetch(`${stack.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/^media_usage_jobs\{model="usage\/alpha"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^media_usage_outputs\{model="usage\/beta"\} [1-9]\d*$/m);
    expect(metrics).toContain('# TYPE media_usage_bytes_stored gauge');
    expect(metrics).toContain('# TYPE media_usage_prediction_seconds gauge');
  });
  it('refuses a range it cannot count, naming the parameter', async () => {
    const { auth } = await createTestKey(stack.database.db, 'usage-range');
    for (const [query, field] of [
      ['from=0000-01-01', 'from'],
      ['to=0001-01-01T00:30:00%2B01:00', 'to'],
      ['from=2026-12-01&to=2026-11-01', 'from'],
      // `to` is now unless given: a `from` after it is as empty a range.
      [`from=${new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)}`, 'from'],
    ]) {
      const reply = await getJson(stack.baseUrl, `/api/v1/usage?${query}`, auth);
      expect([query, reply.status]).toEqual([query, 422]);
      expect(reply.body!.errors).toEqual([expect.objectContaining({ field })]);
    }
  });
});
