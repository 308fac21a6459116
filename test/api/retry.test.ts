import { asc, eq, sql } from 'drizzle-orm';
import { jobEvents, jobs } from '../../db/schema';
import {
  mediaJobStatusSearchAttribute,
  RETRY_FAILED_OUTPUTS_WORKFLOW_TYPE,
  settleOrphanedJobWorkflowId,
  workflowIdForJob,
} from '../../common/temporal';
import { reopenFailedJob, type ReopenedJob } from '../../db/queries/job-data';
import { endJobOutsideWorkflow, reconcileJob } from '../../jobs/lifecycle';
import { sleep, waitFor } from '../support/wait';
import { ScriptedProvider } from '../support/scripted-provider';
import { getJson, postJson, silentLogger, validRequest, waitForJob } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { createTestKey, readEvents } from '../support/public-api';
import { createJob, finishJob } from '../../db/queries/jobs';
import { updateApiKeyScheduling } from '../../db/queries/api-keys';
import { createS3Client } from '../../common/s3';
import { deleteJobData } from '../../jobs/data-removal';
import {
  TEST_WEBHOOK_SECRET,
  useWebhookReceivers,
  verifyWebhook,
  WEBHOOKS_TO_LOCAL_RECEIVERS,
} from '../support/webhooks';

/** POST /api/v1/jobs/{id}/retry: a FAILED job's failed outputs stored again from its recorded prediction. */
describe('retrying a failed job', () => {
  const provider = new ScriptedProvider();
  const stack = useTestStack({ provider, env: { PERSIST_MAX_ATTEMPTS: '2', ...WEBHOOKS_TO_LOCAL_RECEIVERS } });
  const receivers = useWebhookReceivers();

  const failedJob = async (fields: Record<string, unknown> = {}) => {
    provider.outputFailures.set(1, Number.POSITIVE_INFINITY);
    const submitted = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, ...fields });
    const jobId = submitted.body!.job_id as string;
    const failed = await waitForJob(stack.baseUrl, jobId);
    provider.outputFailures.delete(1);
    expect(failed.status).toBe('FAILED');
    expect(failed.media.map((media: any) => media.status)).toEqual(['COMPLETED', 'FAILED']);
    return failed;
  };

  /** A retry's run started by hand on a reopened row, as POST …/retry starts it. */
  async function startRetryRun(jobId: string, reopened: ReopenedJob, options: { startDelay?: '2s' } = {}) {
    return stack.client.workflow.start(RETRY_FAILED_OUTPUTS_WORKFLOW_TYPE, {
      taskQueue: stack.config.TEMPORAL_TASK_QUEUE,
      workflowId: workflowIdForJob(jobId),
      ...options,
      args: [
        {
          jobId,
          numOutputs: 2,
          outputFormat: validRequest.output_format,
          outputs: reopened.outputs,
          baseRetries: reopened.baseRetries,
          retryCount: reopened.retryCount,
        },
      ],
    });
  }

  it('stores only the failed output again, with no new prediction, and ends COMPLETED', async () => {
    const failed = await failedJob();
    const jobId = failed.job_id as string;
    const opened = provider.opened.length;

    const retried = await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/retry`, {});
    expect(retried.status).toBe(202);
    expect(retried.body!.status).toBe('PROCESSING');
    expect(retried.body!.retry_count).toBe(failed.retry_count + 1);

    const done = await waitForJob(stack.baseUrl, jobId);
    expect(done.status).toBe('COMPLETED');
    expect(done.error_message).toBeNull();
    expect(done.media.map((media: any) => media.status)).toEqual(['COMPLETED', 'COMPLETED']);
    expect(done.media[0].sha256).toBe(failed.media[0].sha256);
    expect(done.media[1].presigned_media_url).toBeTruthy();
    expect(done.retry_count).toBe(failed.retry_count + 1);
    // The retry is the workflow's latest run: the Web UI finds it by how the job ended.
    await waitFor(
      'the retry run to close',
      async () => (await stack.client.workflow.getHandle(workflowIdForJob(jobId)).describe()).status.name !== 'RUNNING',
    );
    const run = await stack.client.workflow.getHandle(workflowIdForJob(jobId)).describe();
    expect(run.type).toBe('retryFailedOutputs');
    expect(run.typedSearchAttributes.get(mediaJobStatusSearchAttribute)).toBe('COMPLETED');
    // One prediction for the job, before and after; only output 1 was fetched again.
    expect(provider.createdForJob(jobId)).toBe(1);
    expect(provider.opened.slice(opened).map((url) => new URL(url).searchParams.get('index'))).toEqual(['1']);

    const events = await stack.database.db
      .select()
      .from(jobEvents)
      .where(eq(jobEvents.jobId, jobId))
      .orderBy(asc(jobEvents.seq));
    const statuses = events.filter((event) => event.type === 'status').map((event) => event.data as any);
    expect(statuses.map((event) => event.status)).toEqual([
      'PENDING',
      'PROCESSING',
      'FAILED',
      'PROCESSING',
      'COMPLETED',
    ]);
    expect(statuses[3].retry).toEqual({ retry_count: failed.retry_count + 1, outputs: [1] });
  });

  it("tells the job's webhook how the retry ended, in messages of the retry's own", async () => {
    const receiver = await receivers.start();
    const failed = await failedJob({
      webhook_url: receiver.url,
      webhook_events_filter: ['completed', 'failed', 'output'],
    });
    const jobId = failed.job_id as string;
    const before = await receiver.waitFor(2);
    expect(before.map((message) => message.headers['webhook-id']).sort()).toEqual(
      [`msg_${jobId}_failed`, `msg_${jobId}_output_0`].sort(),
    );

    const retried = await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/retry`, {});
    expect(retried.status).toBe(202);
    const retryCount = retried.body!.retry_count as number;
    const after = (await receiver.waitFor(4)).slice(2);
    // Two messages in flight at once: either may arrive first.
    expect(after.map((message) => message.headers['webhook-id']).sort()).toEqual([
      `msg_${jobId}_retry_${retryCount}_completed`,
      `msg_${jobId}_retry_${retryCount}_output_1`,
    ]);
    const ended = after.find((message) => message.headers['webhook-id']!.toString().endsWith('_completed'))!;
    expect(verifyWebhook(TEST_WEBHOOK_SECRET, ended.headers, ended.body)).toBe(true);
    expect(JSON.parse(ended.body)).toMatchObject({ event: 'completed', job_id: jobId, status: 'COMPLETED' });
  });

  it("keeps a retried job's event stream open past the first run's end, until the retry ends", async () => {
    const failed = await failedJob();
    const jobId = failed.job_id as string;
    // The retry's output hangs: the job stays PROCESSING while a new client reads its whole history.
    provider.outputHangs.add(1);
    try {
      const retried = await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/retry`, {});
      expect(retried.status).toBe(202);
      const url = `${stack.baseUrl}/api/v1/jobs/${jobId}/events`;
      const followed = await readEvents(url, { timeoutMs: 3000 });
      const statuses = followed.events
        .filter((event) => event.event === 'status')
        .map((event) => JSON.parse(event.data).status);
      expect(statuses).toEqual(['PENDING', 'PROCESSING', 'FAILED', 'PROCESSING']);
      // The FAILED in the history was the first run's end, not the job's: the stream is still open.
      expect(followed.ended).toBe(false);

      const cancelled = await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/cancel`, {});
      expect(cancelled.status).toBe(202);
      const rest = await readEvents(url, { headers: { 'Last-Event-ID': followed.events.at(-1)!.id! } });
      expect(rest.ended).toBe(true);
      expect(JSON.parse(rest.events.at(-1)!.data).status).toBe('CANCELLED');
    } finally {
      provider.outputHangs.delete(1);
    }
  });

  it("waits for the job's first run to close while it still delivers its webhook messages", async () => {
    // The receiver refuses its first message: the failed job's workflow stays open to retry it.
    const receiver = await receivers.start(1);
    const failed = await failedJob({ webhook_url: receiver.url, webhook_events_filter: ['failed'] });
    const jobId = failed.job_id as string;
    const retried = await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/retry`, {});
    expect(retried.status).toBe(202);
    expect(retried.body!.retry_count).toBe(failed.retry_count + 1);
    expect(await receiver.waitFor(2)).toHaveLength(2);
    expect((await waitForJob(stack.baseUrl, jobId)).status).toBe('COMPLETED');
  });

  it('keeps the job FAILED until its retry starts: a cancel while the first run still closes answers 409', async () => {
    // The receiver refuses two messages: the first run stays open for seconds to deliver them again.
    const receiver = await receivers.start(2);
    const failed = await failedJob({ webhook_url: receiver.url, webhook_events_filter: ['failed'] });
    const jobId = failed.job_id as string;
    await receiver.waitFor(1);
    const retrying = postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/retry`, {});
    await sleep(300);
    // The cancel would reach the first run, whose work is over, and not the retry that follows it.
    const cancelled = await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/cancel`, {});
    expect(cancelled.status).toBe(409);
    expect((await retrying).status).toBe(202);
    expect((await waitForJob(stack.baseUrl, jobId)).status).toBe('COMPLETED');
  });

  it("answers 409 for a job that did not fail, and for one whose provider's outputs are gone", async () => {
    const submitted = await postJson(stack.baseUrl, '/api/v1/generate', validRequest);
    const completed = await waitForJob(stack.baseUrl, submitted.body!.job_id as string);
    const notFailed = await postJson(stack.baseUrl, `/api/v1/jobs/${completed.job_id}/retry`, {});
    expect(notFailed.status).toBe(409);

    const failed = await failedJob();
    await stack.database.db
      .update(jobs)
      .set({ providerOutputsExpireAt: sql`now() - interval '1 second'` })
      .where(eq(jobs.id, failed.job_id as string));
    const gone = await postJson(stack.baseUrl, `/api/v1/jobs/${failed.job_id}/retry`, {});
    expect(gone.status).toBe(409);
    expect(gone.body!.detail).toMatch(/stopped serving the prediction's outputs.*\{"regenerate": true\}/);
    expect(provider.createdForJob(failed.job_id as string)).toBe(1);

    const unknownField = await postJson(stack.baseUrl, `/api/v1/jobs/${failed.job_id}/retry`, { again: true });
    expect(unknownField.status).toBe(422);
  });

  it('lets no retry reopen a job whose DELETE is removing its objects: no URL names an object that is gone', async () => {
    const failed = await failedJob();
    const jobId = failed.job_id as string;
    // The DELETE's object removals are held until the retry has answered.
    const storage = createS3Client(stack.config);
    let reachedRemoval!: () => void;
    const removalReached = new Promise<void>((resolve) => (reachedRemoval = resolve));
    let releaseRemovals!: () => void;
    const removalsReleased = new Promise<void>((resolve) => (releaseRemovals = resolve));
    storage.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DeleteObjectCommand') {
          reachedRemoval();
          await removalsReleased;
        }
        return next(args);
      },
      { step: 'initialize', name: 'holdRemovals' },
    );
    const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
    const deleting = deleteJobData(
      {
        db: stack.database.db,
        temporal: stack.client,
        config: stack.config,
        logger: silentLogger,
        changes: stack.changes,
        s3: storage,
        bucket: stack.config.S3_BUCKET_NAME,
      },
      row!,
    );
    await removalReached;
    const retried = await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/retry`, {});
    releaseRemovals();
    expect(await deleting).toEqual({ outcome: 'removed' });
    expect(retried.status).toBe(409);
    expect(retried.body!.detail).toMatch(/expire/);

    const ended = await waitForJob(stack.baseUrl, jobId);
    expect(ended).toMatchObject({ status: 'FAILED', data_removed: true });
    // Its outputs are removed: no URL is handed out, so none names an object that is gone.
    expect(ended.media.map((output: { presigned_media_url: string | null }) => output.presigned_media_url)).toEqual([
      null,
      null,
    ]);
    storage.destroy();
  });

  it('runs nothing for a retry whose job was cancelled between its reopen and its start', async () => {
    const failed = await failedJob();
    const jobId = failed.job_id as string;
    const handle = stack.client.workflow.getHandle(workflowIdForJob(jobId));
    await handle.result();
    // POST …/retry reopens the row, then starts the run; a cancel in between finds no run to signal
    // and ends the job without one, as the API's cancel does (endJobOutsideWorkflow).
    const reopened = (await reopenFailedJob(stack.database.db, jobId, 60))!;
    const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
    await endJobOutsideWorkflow({ db: stack.database.db, temporal: stack.client, config: stack.config }, row!, {
      status: 'CANCELLED',
      errorMessage: 'cancelled before its retry started',
    });
    const opened = provider.opened.length;
    const retry = await startRetryRun(jobId, reopened);
    await retry.result();
    expect(provider.opened.length).toBe(opened);
    expect((await retry.describe()).typedSearchAttributes.get(mediaJobStatusSearchAttribute)).toBe('CANCELLED');
    const ended = await waitForJob(stack.baseUrl, jobId);
    expect(ended).toMatchObject({ status: 'CANCELLED', error_message: 'cancelled before its retry started' });
    expect(ended.media.map((media: any) => media.status)).toEqual(['COMPLETED', 'CANCELLED']);
  });

  it('ends the job CANCELLED when a workflow cancel request waits for the retry run before it starts', async () => {
    const failed = await failedJob();
    const jobId = failed.job_id as string;
    await stack.client.workflow.getHandle(workflowIdForJob(jobId)).result();
    // Its first workflow task comes after the cancel request: the run starts already cancelled.
    const retry = await startRetryRun(jobId, (await reopenFailedJob(stack.database.db, jobId, 60))!, {
      startDelay: '2s',
    });
    await retry.cancel();
    await retry.result().catch(() => undefined);
    const ended = await waitForJob(stack.baseUrl, jobId);
    expect(ended).toMatchObject({
      status: 'CANCELLED',
      error_message: 'Cancelled by an operator (workflow cancellation)',
    });
    expect((await retry.describe()).typedSearchAttributes.get(mediaJobStatusSearchAttribute)).toBe('CANCELLED');
  });

  it('is not ended by a reconciler pass that listed the row before a retry reopened it', async () => {
    const failed = await failedJob();
    const jobId = failed.job_id as string;
    await stack.client.workflow.getHandle(workflowIdForJob(jobId)).result();
    // The pass listed the row while its first run still ran; the run closed, and a retry reopened it.
    const [ended] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
    const listed = { ...ended!, status: 'PROCESSING' as const, completedAt: null };
    expect(await reopenFailedJob(stack.database.db, jobId, 60)).toBeDefined();
    const deps = { db: stack.database.db, temporal: stack.client, config: stack.config };
    expect(await reconcileJob(deps, listed)).toBeUndefined();
    const [now] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
    expect(now).toMatchObject({ status: 'PROCESSING', settleDueAt: null });
    // No run follows the reopen here: the job is ended as a retry whose start failed would leave it.
    await finishJob(stack.database.db, jobId, { status: 'FAILED', errorMessage: failed.error_message });
  });

  it("shows the row's status when a retry run's end is refused: the job was ended without it as it started", async () => {
    const failed = await failedJob();
    const jobId = failed.job_id as string;
    await stack.client.workflow.getHandle(workflowIdForJob(jobId)).result();
    // The retry's output fails twice (its last attempt, PERSIST_MAX_ATTEMPTS=2), and in between the
    // job is ended by a cancel that found no run to signal (it came before the run existed).
    provider.outputFailures.set(1, Number.POSITIVE_INFINITY);
    const opened = provider.opened.length;
    const retry = await startRetryRun(jobId, (await reopenFailedJob(stack.database.db, jobId, 60))!);
    await waitFor('the retry to fetch its output', () => provider.opened.length > opened);
    const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
    await endJobOutsideWorkflow({ db: stack.database.db, temporal: stack.client, config: stack.config }, row!, {
      status: 'CANCELLED',
      errorMessage: 'cancelled as its retry started',
    });
    await retry.result();
    provider.outputFailures.delete(1);
    expect((await retry.describe()).typedSearchAttributes.get(mediaJobStatusSearchAttribute)).toBe('CANCELLED');
    expect(await waitForJob(stack.baseUrl, jobId)).toMatchObject({
      status: 'CANCELLED',
      error_message: 'cancelled as its retry started',
    });
  });

  it('announces the end of the run before a retry, still due, before it reopens the job: the message says FAILED', async () => {
    const receiver = await receivers.start();
    const failed = await failedJob({ webhook_url: receiver.url });
    const jobId = failed.job_id as string;
    await stack.client.workflow.getHandle(workflowIdForJob(jobId)).result();
    await receiver.waitFor(1);
    // As if the job had ended outside its workflow and its settle's start had not got through.
    await stack.database.db
      .update(jobs)
      .set({ settleDueAt: sql`now()` })
      .where(eq(jobs.id, jobId));
    const retried = await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/retry`, {});
    expect(retried.status).toBe(202);
    const settle = await stack.client.workflow.getHandle(settleOrphanedJobWorkflowId(jobId)).describe();
    expect(settle).toMatchObject({ type: 'settleOrphanedJob', status: { name: 'COMPLETED' } });
    const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
    expect(row!.settleDueAt).toBeNull();
    expect((await waitForJob(stack.baseUrl, jobId)).status).toBe('COMPLETED');
    // The first run's message and the settle's, under one id: both tell of the end they announce.
    const endMessages = (await receiver.waitFor(2)).filter(
      (message) => message.headers['webhook-id'] === `msg_${jobId}_failed`,
    );
    expect(endMessages).toHaveLength(2);
    for (const message of endMessages) expect(JSON.parse(message.body)).toMatchObject({ status: 'FAILED' });
  });
});

/** A retry runs the job again: under its key's limits now (MAX_RUNNING_JOBS_PER_KEY, --max-priority), as a submit does. */
describe("retrying a failed job under its key's limits", () => {
  const provider = new ScriptedProvider();
  const stack = useTestStack({
    provider,
    env: { PERSIST_MAX_ATTEMPTS: '2', MAX_RUNNING_JOBS_PER_KEY: '1', AUTH_MODE: 'required' },
  });

  it('answers 403 for a job whose priority the key may no longer ask for, and changes nothing', async () => {
    const key = await createTestKey(stack.database.db, 'retry-priority');
    await updateApiKeyScheduling(stack.database.db, key.id, { maxPriority: 'high' });
    provider.outputFailures.set(1, Number.POSITIVE_INFINITY);
    const submitted = await postJson(
      stack.baseUrl,
      '/api/v1/generate',
      { ...validRequest, priority: 'high' },
      key.auth,
    );
    expect(submitted.status).toBe(202);
    const jobId = submitted.body!.job_id as string;
    const failed = await waitFor('the job to fail', async () => {
      const { body } = await getJson(stack.baseUrl, `/api/v1/status/${jobId}`, key.auth);
      return body?.status === 'FAILED' ? body : undefined;
    });
    provider.outputFailures.delete(1);

    // The operator lowers what the key may ask for.
    await updateApiKeyScheduling(stack.database.db, key.id, { maxPriority: 'normal' });
    const refused = await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/retry`, {}, key.auth);
    expect(refused.status).toBe(403);
    expect(refused.body!.detail).toMatch(/may ask for priority 'normal' at most, not 'high'/);
    const unchanged = await getJson(stack.baseUrl, `/api/v1/status/${jobId}`, key.auth);
    expect(unchanged.body).toMatchObject({ status: 'FAILED', retry_count: failed.retry_count });
  });

  it('answers 429 while the key has no place left, changes nothing, and retries once a place is free', async () => {
    const key = await createTestKey(stack.database.db, 'retry-cap');
    const ended = (jobId: string) =>
      waitFor('the job to end', async () => {
        const { body } = await getJson(stack.baseUrl, `/api/v1/status/${jobId}`, key.auth);
        return ['COMPLETED', 'FAILED', 'CANCELLED'].includes(body?.status) ? body! : undefined;
      });
    provider.outputFailures.set(1, Number.POSITIVE_INFINITY);
    const submitted = await postJson(stack.baseUrl, '/api/v1/generate', validRequest, key.auth);
    expect(submitted.status).toBe(202);
    const jobId = submitted.body!.job_id as string;
    const failed = await ended(jobId);
    provider.outputFailures.delete(1);
    expect(failed.status).toBe('FAILED');

    // The key's one place is taken by a job that has not ended (no workflow runs it).
    const running = await createJob(stack.database.db, {
      model: 'a/b',
      prompt: 'holds the place',
      numOutputs: 1,
      seed: 1,
      outputFormat: 'png',
      owner: key.id,
    });
    const refused = await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/retry`, {}, key.auth);
    expect(refused.status).toBe(429);
    expect(refused.body!.detail).toMatch(/already has 1 jobs PENDING or PROCESSING.*MAX_RUNNING_JOBS_PER_KEY=1/);
    const unchanged = await getJson(stack.baseUrl, `/api/v1/status/${jobId}`, key.auth);
    expect(unchanged.body).toMatchObject({ status: 'FAILED', retry_count: failed.retry_count });

    expect(await finishJob(stack.database.db, running.id, { status: 'CANCELLED' })).toBe(true);
    const retried = await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/retry`, {}, key.auth);
    expect(retried.status).toBe(202);
    expect((await ended(jobId)).status).toBe('COMPLETED');
  });
});
