import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { workflowIdForJob } from '../../common/temporal';
import { jobs } from '../../db/schema';
import { getJson, postJson, validRequest } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { waitFor } from '../support/wait';

/** Idempotent submits (AUTH_MODE=off: keys are scoped to 'anonymous'). No worker: jobs stay PENDING. */
describe('Idempotency-Key on POST /api/v1/generate', () => {
  const stack = useTestStack({ worker: false });

  const jobsWithKey = async (key: string) =>
    stack.database.db
      .select()
      .from(jobs)
      .where(and(eq(jobs.owner, 'anonymous'), eq(jobs.idempotencyKey, key)));

  async function workflowRuns(jobId: string): Promise<number> {
    let runs = 0;
    for await (const _execution of stack.client.workflow.list({ query: `WorkflowId = '${workflowIdForJob(jobId)}'` }))
      runs++;
    return runs;
  }

  it('answers a replay with the original job, 200 and Idempotent-Replayed: true', async () => {
    const key = `replay-${randomUUID()}`;
    const body = { ...validRequest, prompt: `idempotent ${key}` };
    const first = await postJson(stack.baseUrl, '/api/v1/generate', body, { 'Idempotency-Key': key });
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    // The same request with its fields in another order is the same request.
    const reordered = Object.fromEntries(Object.entries(body).reverse());
    const second = await postJson(stack.baseUrl, '/api/v1/generate', reordered, { 'Idempotency-Key': key });
    expect(second.status).toBe(200);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.body).toMatchObject({
      job_id: first.body!.job_id,
      status: 'PENDING',
      workflow_id: first.body!.workflow_id,
    });
    expect(await jobsWithKey(key)).toHaveLength(1);
    // Without a key, the same body is a new job.
    const third = await postJson(stack.baseUrl, '/api/v1/generate', body);
    expect(third.status).toBe(202);
    expect(third.body!.job_id).not.toBe(first.body!.job_id);
  });

  it('answers 409 when the key is reused with another body, and creates nothing', async () => {
    const key = `conflict-${randomUUID()}`;
    const withKey = (prompt: string) =>
      postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, prompt }, { 'Idempotency-Key': key });
    expect((await withKey(`conflict ${key}`)).status).toBe(202);
    const other = await withKey(`another ${key}`);
    expect(other.status).toBe(409);
    expect(other.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(other.body!.detail).toContain(key);
    expect(other.body!.detail).toMatch(/different request/);
    expect(await jobsWithKey(key)).toHaveLength(1);
    const prompts = await stack.database.db
      .select()
      .from(jobs)
      .where(eq(jobs.prompt, `another ${key}`));
    expect(prompts).toHaveLength(0);
  });

  it('creates one job and one workflow for concurrent requests with one key', async () => {
    const key = `concurrent-${randomUUID()}`;
    const body = { ...validRequest, prompt: `concurrent ${key}` };
    const replies = await Promise.all(
      Array.from({ length: 8 }, () => postJson(stack.baseUrl, '/api/v1/generate', body, { 'Idempotency-Key': key })),
    );
    const ids = new Set(replies.map((reply) => reply.body!.job_id));
    expect(ids.size).toBe(1);
    expect(replies.map((reply) => reply.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 202]);
    expect(replies.filter((reply) => reply.headers.get('idempotent-replayed') === 'true')).toHaveLength(7);
    expect(await jobsWithKey(key)).toHaveLength(1);
    const jobId = [...ids][0] as string;
    // Visibility is eventually consistent: wait until the run is listed, then check it is the only one.
    await waitFor('the workflow to be listed', async () => (await workflowRuns(jobId)) > 0, 10_000, 200);
    expect(await workflowRuns(jobId)).toBe(1);
    expect((await getJson(stack.baseUrl, `/api/v1/status/${jobId}`)).body!.status).toBe('PENDING');
  });

  it('rejects an unusable key with a 422 naming the header', async () => {
    const reply = await postJson(stack.baseUrl, '/api/v1/generate', validRequest, {
      'Idempotency-Key': 'x'.repeat(300),
    });
    expect(reply.status).toBe(422);
    expect(reply.body!.errors).toEqual([{ field: 'Idempotency-Key', message: expect.any(String) }]);
  });

  it('documents the new routes and fields in /openapi.json', async () => {
    const { body } = await getJson(stack.baseUrl, '/openapi.json');
    expect(Object.keys(body!.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/jobs/{job_id}/events',
        '/api/v1/jobs/{job_id}/webhook-deliveries',
        '/api/v1/jobs/{job_id}/webhook-deliveries/{delivery_id}/redeliver',
        '/metrics',
      ]),
    );
    const generate = body!.paths['/api/v1/generate'].post;
    expect(generate.parameters.map((parameter: { name: string }) => parameter.name)).toContain('Idempotency-Key');
    expect(Object.keys(generate.responses)).toEqual(expect.arrayContaining(['200', '202', '401', '409', '429']));
    expect(Object.keys(body!.components.schemas.GenerateRequest.properties)).toEqual(
      expect.arrayContaining(['webhook_url', 'webhook_events_filter', 'deadline_seconds']),
    );
  });
});
