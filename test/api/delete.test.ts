import { applyBucketLifecycle, createS3Client } from '../../common/s3';
import { ScriptedProvider } from '../support/scripted-provider';
import { createTestKey } from '../support/public-api';
import { getJson, postJson, validRequest } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { objectExists as objectExistsIn } from '../support/jobs';

/** DELETE /api/v1/jobs/{id}: the objects go, the row stays (data_removed), a running job is cancelled first. */
describe('deleting a job', () => {
  const provider = new ScriptedProvider();
  const stack = useTestStack({ provider, env: { AUTH_MODE: 'required' } });
  let auth: Record<string, string>;
  beforeAll(async () => {
    auth = (await createTestKey(stack.database.db, 'delete')).auth;
  });

  const status = async (jobId: string) => (await getJson(stack.baseUrl, `/api/v1/status/${jobId}`, auth)).body!;
  const until = async (jobId: string, done: (job: Record<string, any>) => boolean) => {
    for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
      const job = await status(jobId);
      if (done(job)) return job;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`job ${jobId} did not reach the expected state`);
  };
  const remove = async (jobId: string, headers = auth) => {
    const response = await fetch(`${stack.baseUrl}/api/v1/jobs/${jobId}`, { method: 'DELETE', headers });
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };
  const objectExists = (key: string) => objectExistsIn(stack.config, key);

  it("deletes an ended job's objects and keeps its row; a second DELETE answers the same", async () => {
    const submitted = await postJson(stack.baseUrl, '/api/v1/generate', validRequest, auth);
    const jobId = submitted.body!.job_id as string;
    const before = await until(jobId, (job) => job.status === 'COMPLETED');
    for (const media of before.media) expect(await objectExists(media.s3_key)).toBe(true);
    expect(before.data_removed).toBe(false);

    const deleted = await remove(jobId);
    expect(deleted.status).toBe(200);
    expect(deleted.body.data_removed).toBe(true);
    expect(deleted.body.status).toBe('COMPLETED');
    expect(deleted.body.metrics).toEqual(before.metrics);
    for (const [index, media] of deleted.body.media.entries()) {
      expect(media.presigned_media_url).toBeNull();
      expect(media.sha256).toBe(before.media[index].sha256);
      expect(await objectExists(media.s3_key)).toBe(false);
    }
    expect((await remove(jobId)).body).toEqual(deleted.body);
    expect((await status(jobId)).data_removed).toBe(true);
  });

  it('cancels a running job, waits for it to end, then deletes what it stored', async () => {
    provider.outputHangs.add(0);
    try {
      const submitted = await postJson(stack.baseUrl, '/api/v1/generate', validRequest, auth);
      const jobId = submitted.body!.job_id as string;
      const running = await until(jobId, (job) => job.media[1].status === 'COMPLETED');
      expect(running.status).toBe('PROCESSING');
      expect(await objectExists(running.media[1].s3_key)).toBe(true);

      const deleted = await remove(jobId);
      expect(deleted.status).toBe(200);
      expect(deleted.body.status).toBe('CANCELLED');
      expect(deleted.body.data_removed).toBe(true);
      expect(deleted.body.error_message).toBe('Deleted through the API');
      expect(deleted.body.media.map((media: any) => media.status)).toEqual(['CANCELLED', 'COMPLETED']);
      for (const media of deleted.body.media) expect(await objectExists(media.s3_key)).toBe(false);
    } finally {
      provider.outputHangs.clear();
    }
  });

  it("answers 404 for another key's job and for an unknown one, and deletes nothing", async () => {
    const submitted = await postJson(stack.baseUrl, '/api/v1/generate', validRequest, auth);
    const jobId = submitted.body!.job_id as string;
    await until(jobId, (job) => job.status === 'COMPLETED');
    const other = await createTestKey(stack.database.db, 'delete-other');
    expect((await remove(jobId, other.auth)).status).toBe(404);
    expect((await remove('00000000-0000-4000-8000-000000000000')).status).toBe(404);
    const after = await status(jobId);
    expect(after.data_removed).toBe(false);
    expect(await objectExists(after.media[0].s3_key)).toBe(true);
  });

  it('sets the lifecycle rule for uploads left open where the server has lifecycle rules', async () => {
    const s3 = createS3Client(stack.config);
    // versitygw (the test server) has none: the expiry sweep aborts such uploads instead.
    await expect(applyBucketLifecycle(s3, stack.config.S3_BUCKET_NAME)).resolves.toBe(false);
    s3.destroy();
  });
});
