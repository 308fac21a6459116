import { Client, Connection } from '@temporalio/client';
import { eq, sql } from 'drizzle-orm';
import { retentionScheduleId } from '../../common/temporal';
import { jobs } from '../../db/schema';
import { ensureRetentionSchedule } from '../../worker/retention-schedule';
import { ScriptedProvider } from '../support/scripted-provider';
import { getJson, postJson, validRequest, waitForJob } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { objectExists as objectExistsIn } from '../support/jobs';

/** retention_seconds and MEDIA_RETENTION_SECONDS: the retention Schedule removes expired outputs, never a running job's. */
describe('retention', () => {
  const provider = new ScriptedProvider();
  const stack = useTestStack({ provider, env: { MEDIA_RETENTION_SECONDS: '3600' } });
  beforeAll(async () => {
    await ensureRetentionSchedule(stack.client, { taskQueue: stack.config.TEMPORAL_TASK_QUEUE, everySeconds: 1 });
  });
  // Its own connection: the stack's is closed by the time this runs.
  afterAll(async () => {
    const connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
    const client = new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE });
    await client.schedule.getHandle(retentionScheduleId(stack.config.TEMPORAL_TASK_QUEUE)).delete();
    await connection.close();
  });

  const objectExists = (key: string) => objectExistsIn(stack.config, key);

  it('removes the objects of a job kept for 2 s once they expire, and says so in the status reply', async () => {
    const submitted = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, retention_seconds: 2 });
    expect(submitted.status).toBe(202);
    const jobId = submitted.body!.job_id as string;
    const done = await waitForJob(stack.baseUrl, jobId);
    expect(done.status).toBe('COMPLETED');
    expect(Date.parse(done.expires_at) - Date.parse(done.completed_at)).toBe(2000);
    expect(done.data_removed).toBe(false);
    for (const media of done.media) expect(await objectExists(media.s3_key)).toBe(true);

    const removed = await waitForJob(stack.baseUrl, jobId, (job) => job.data_removed === true, 20_000);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(done.expires_at));
    expect(removed.status).toBe('COMPLETED');
    for (const media of removed.media) {
      expect(media.presigned_media_url).toBeNull();
      expect(media.sha256).toBeTruthy();
      expect(await objectExists(media.s3_key)).toBe(false);
    }
  }, 40_000);

  it("keeps outputs for the deployment's MEDIA_RETENTION_SECONDS by default, and refuses a longer retention_seconds", async () => {
    const submitted = await postJson(stack.baseUrl, '/api/v1/generate', validRequest);
    const done = await waitForJob(stack.baseUrl, submitted.body!.job_id as string);
    expect(Date.parse(done.expires_at) - Date.parse(done.completed_at)).toBe(3600 * 1000);

    const refused = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, retention_seconds: 3601 });
    expect(refused.status).toBe(422);
    expect(refused.body!.errors).toEqual([
      { field: 'retention_seconds', message: "must be at most 3600, this server's MEDIA_RETENTION_SECONDS" },
    ]);
  });

  it('removes nothing of a job that still runs, however expired, until it has ended', async () => {
    provider.outputHangs.add(0);
    try {
      const submitted = await postJson(stack.baseUrl, '/api/v1/generate', validRequest);
      const jobId = submitted.body!.job_id as string;
      const running = await waitForJob(stack.baseUrl, jobId, (job) => job.media[1].status === 'COMPLETED');
      await stack.database.db
        .update(jobs)
        .set({ expiresAt: sql`now() - interval '1 minute'` })
        .where(eq(jobs.id, jobId));
      // Several runs of the 1 s Schedule.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const still = (await getJson(stack.baseUrl, `/api/v1/status/${jobId}`)).body!;
      expect(still.status).toBe('PROCESSING');
      expect(still.data_removed).toBe(false);
      expect(await objectExists(running.media[1].s3_key)).toBe(true);

      await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/cancel`, {});
      const removed = await waitForJob(stack.baseUrl, jobId, (job) => job.data_removed === true, 20_000);
      expect(removed.status).toBe('CANCELLED');
      expect(await objectExists(running.media[1].s3_key)).toBe(false);
    } finally {
      provider.outputHangs.clear();
    }
  }, 40_000);
});
