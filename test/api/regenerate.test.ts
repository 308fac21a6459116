import { eq, sql } from 'drizzle-orm';
import { createJob, finishJob } from '../../db/queries/jobs';
import { jobs } from '../../db/schema';
import { createTestKey } from '../support/public-api';
import { ScriptedProvider } from '../support/scripted-provider';
import { postJson, validRequest, waitForJob } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { startWebhookReceiver, WEBHOOKS_TO_LOCAL_RECEIVERS, type WebhookReceiver } from '../support/webhooks';

/** POST /api/v1/jobs/{id}/retry with {"regenerate": true}: a new job with the failed job's request, and a new prediction. */
describe('regenerating a failed job', () => {
  const provider = new ScriptedProvider();
  const stack = useTestStack({ provider, env: { PERSIST_MAX_ATTEMPTS: '2', ...WEBHOOKS_TO_LOCAL_RECEIVERS } });
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    receiver = await startWebhookReceiver();
  });
  afterAll(() => receiver.close());

  const request = () => ({
    ...validRequest,
    seed: 4242,
    output_format: 'webp',
    priority: 'low',
    deadline_seconds: 600,
    retention_seconds: 3600,
    webhook_url: receiver.url,
    webhook_events_filter: ['completed'],
  });

  /** A job whose output 1 never stores: FAILED after its one prediction. */
  const failedJob = async () => {
    provider.outputFailures.set(1, Number.POSITIVE_INFINITY);
    const submitted = await postJson(stack.baseUrl, '/api/v1/generate', request());
    expect(submitted.status).toBe(202);
    const failed = await waitForJob(stack.baseUrl, submitted.body!.job_id as string);
    provider.outputFailures.delete(1);
    expect(failed.status).toBe('FAILED');
    return failed;
  };
  const regenerate = (jobId: string) => postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/retry`, { regenerate: true });

  it('makes a new job with the same request, linked by retry_of, with a prediction of its own; it ends COMPLETED', async () => {
    const failed = await failedJob();
    const oldId = failed.job_id as string;
    // The provider no longer serves the outputs: a plain retry cannot help, regenerating can.
    await stack.database.db
      .update(jobs)
      .set({ providerOutputsExpireAt: sql`now() - interval '1 second'` })
      .where(eq(jobs.id, oldId));
    expect((await postJson(stack.baseUrl, `/api/v1/jobs/${oldId}/retry`, {})).status).toBe(409);

    const reply = await regenerate(oldId);
    expect(reply.status).toBe(202);
    const newId = reply.body!.job_id as string;
    expect(newId).not.toBe(oldId);
    expect(reply.headers.get('location')).toBe(`/api/v1/status/${newId}`);
    expect(reply.body).toMatchObject({ retry_of: oldId, retry_count: 0 });
    // Its current status: a worker may have taken it up already.
    expect(['PENDING', 'PROCESSING']).toContain(reply.body!.status);

    const done = await waitForJob(stack.baseUrl, newId);
    expect(done).toMatchObject({
      status: 'COMPLETED',
      retry_of: oldId,
      model: failed.model,
      prompt: failed.prompt,
      num_outputs: failed.num_outputs,
      seed: 4242,
      output_format: 'webp',
      priority: 'low',
    });
    expect(done.media.map((media: any) => media.status)).toEqual(['COMPLETED', 'COMPLETED']);
    // One prediction for each job: the regeneration paid for its own.
    expect(provider.createdForJob(oldId)).toBe(1);
    expect(provider.createdForJob(newId)).toBe(1);
    expect(provider.created.find((created) => created.jobId === newId)).toMatchObject({
      seed: 4242,
      prompt: failed.prompt,
      numOutputs: failed.num_outputs,
    });
    const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, newId));
    expect(row).toMatchObject({
      webhookUrl: receiver.url,
      webhookEvents: ['completed'],
      deadlineSeconds: 600,
      retentionSeconds: 3600,
    });
    // The failed job stays as it was.
    expect((await waitForJob(stack.baseUrl, oldId)).status).toBe('FAILED');
  });

  it('regenerates a failed job once: asking again, even concurrently, answers with the same new job', async () => {
    const failed = await failedJob();
    const oldId = failed.job_id as string;
    const replies = await Promise.all([regenerate(oldId), regenerate(oldId), regenerate(oldId)]);
    expect(replies.map((reply) => reply.status).sort()).toEqual([200, 200, 202]);
    const ids = new Set(replies.map((reply) => reply.body!.job_id));
    expect(ids.size).toBe(1);
    const [newId] = [...ids] as string[];
    const replayed = replies.filter((reply) => reply.status === 200);
    expect(replayed.map((reply) => reply.headers.get('idempotent-replayed'))).toEqual(['true', 'true']);

    await waitForJob(stack.baseUrl, newId!);
    const later = await regenerate(oldId);
    expect(later.status).toBe(200);
    expect(later.body).toMatchObject({ job_id: newId, status: 'COMPLETED', retry_of: oldId });
    const regenerations = await stack.database.db.select().from(jobs).where(eq(jobs.retryOf, oldId));
    expect(regenerations).toHaveLength(1);
    expect(provider.createdForJob(newId!)).toBe(1);
  });

  it('answers 409 for a job that is not FAILED, and creates nothing', async () => {
    const submitted = await postJson(stack.baseUrl, '/api/v1/generate', validRequest);
    const completed = await waitForJob(stack.baseUrl, submitted.body!.job_id as string);
    const reply = await regenerate(completed.job_id as string);
    expect(reply.status).toBe(409);
    expect(reply.body!.detail).toMatch(/COMPLETED/);
    const regenerations = await stack.database.db
      .select()
      .from(jobs)
      .where(eq(jobs.retryOf, completed.job_id as string));
    expect(regenerations).toHaveLength(0);
  });
});

describe('regenerating another key’s job (AUTH_MODE=required)', () => {
  const stack = useTestStack({ worker: false, env: { AUTH_MODE: 'required' } });

  it("answers 404 for another key's failed job, as for an unknown one", async () => {
    const alice = await createTestKey(stack.database.db, 'alice');
    const bob = await createTestKey(stack.database.db, 'bob');
    const job = await createJob(stack.database.db, {
      model: 'a/b',
      prompt: 'alice failed',
      numOutputs: 1,
      seed: 1,
      outputFormat: 'png',
      owner: alice.id,
    });
    await finishJob(stack.database.db, job.id, { status: 'FAILED', errorMessage: 'scripted' });
    const reply = await postJson(stack.baseUrl, `/api/v1/jobs/${job.id}/retry`, { regenerate: true }, bob.auth);
    expect(reply.status).toBe(404);
    const regenerations = await stack.database.db.select().from(jobs).where(eq(jobs.retryOf, job.id));
    expect(regenerations).toHaveLength(0);
  });
});

describe('regenerating under MEDIA_RETENTION_SECONDS', () => {
  const stack = useTestStack({ worker: false, env: { MEDIA_RETENTION_SECONDS: '600' } });

  it("keeps a regenerated job's outputs no longer than the deployment allows now", async () => {
    // Failed jobs submitted before the deployment lowered its retention, or set one at all.
    for (const [retentionSeconds, expected] of [
      [undefined, 600],
      [86_400, 600],
      [60, 60],
    ] as const) {
      const job = await createJob(stack.database.db, {
        model: 'a/b',
        prompt: `kept ${retentionSeconds ?? 'forever'}`,
        numOutputs: 1,
        seed: 1,
        outputFormat: 'png',
        retentionSeconds,
      });
      await finishJob(stack.database.db, job.id, { status: 'FAILED', errorMessage: 'scripted' });
      const reply = await postJson(stack.baseUrl, `/api/v1/jobs/${job.id}/retry`, { regenerate: true });
      expect(reply.status).toBe(202);
      const [regenerated] = await stack.database.db.select().from(jobs).where(eq(jobs.retryOf, job.id));
      expect([retentionSeconds, regenerated!.retentionSeconds]).toEqual([retentionSeconds, expected]);
    }
  });
});
