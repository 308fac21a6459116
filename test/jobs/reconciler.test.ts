import { randomBytes, randomUUID } from 'node:crypto';
import { eq, inArray } from 'drizzle-orm';
import { mediaJobStatusSearchAttribute, workflowIdForJob } from '../../common/temporal';
import { createJob } from '../../db/queries/jobs';
import { jobs } from '../../db/schema';
import { startWebhookReceiver, verifyWebhook } from '../support/public-api';
import { ScriptedProvider } from '../support/scripted-provider';
import { postJson, startTestStack, validRequest, waitForJob, type TestStack } from '../support/stack';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

/** The reconciler against real Temporal and Postgres: every stuck row, whatever Temporal's list says. */
describe('the reconciler', () => {
  let stack: TestStack;
  const provider = new ScriptedProvider({ latencyMs: 120_000 });

  beforeAll(async () => {
    stack = await startTestStack({
      provider,
      env: {
        WEBHOOK_SIGNING_SECRET: SECRET,
        MEDIA_FETCH_ALLOW_PRIVATE: 'true',
        WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS: '1',
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const reconcileOnce = () =>
    stack.client.workflow.execute('reconcileJobs', {
      taskQueue: stack.config.TEMPORAL_TASK_QUEUE,
      workflowId: `reconcile-${randomUUID()}`,
    });

  async function oldRowWithoutWorkflow(): Promise<string> {
    const job = await createJob(stack.database.db, {
      model: 'a/b',
      prompt: `orphan ${randomUUID()}`,
      numOutputs: 1,
      seed: 1,
      outputFormat: 'png',
    });
    await stack.database.db
      .update(jobs)
      .set({ createdAt: new Date(Date.now() - 5 * 60_000) })
      .where(eq(jobs.id, job.id));
    return job.id;
  }

  it('ends every unfinished row in one run, not only the first hundred', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 130; i++) ids.push(await oldRowWithoutWorkflow());
    await reconcileOnce();
    const rows = await stack.database.db.select({ status: jobs.status }).from(jobs).where(inArray(jobs.id, ids));
    expect(rows.filter((row) => row.status === 'FAILED')).toHaveLength(130);
  }, 60_000);

  it('ends a row whose workflow closed although its search attribute says the job ended', async () => {
    const jobId = await oldRowWithoutWorkflow();
    await stack.database.db.update(jobs).set({ status: 'PROCESSING' }).where(eq(jobs.id, jobId));
    // A workflow that recorded COMPLETED in Temporal and was then terminated before the row had it.
    const handle = await stack.client.workflow.start('mediaGeneration', {
      taskQueue: `no-worker-${randomUUID()}`,
      workflowId: workflowIdForJob(jobId),
      args: [{ jobId }],
      typedSearchAttributes: [{ key: mediaJobStatusSearchAttribute, value: 'COMPLETED' }],
    });
    await handle.terminate('lost its worker mid-finish');
    await reconcileOnce();
    const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
    expect(row).toMatchObject({
      status: 'CANCELLED',
      errorMessage: 'The workflow was terminated: lost its worker mid-finish.',
    });
  });

  it('announces a terminated job with its terminal webhook, once, and cancels its prediction', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const { body } = await postJson(stack.baseUrl, '/api/v1/generate', {
        ...validRequest,
        webhook_url: receiver.url,
      });
      const jobId = body!.job_id as string;
      const running = await waitForJob(
        stack.baseUrl,
        jobId,
        (job) => job.status === 'PROCESSING' && provider.createdForJob(jobId) === 1,
      );
      expect(running.status).toBe('PROCESSING');
      await stack.client.workflow.getHandle(workflowIdForJob(jobId)).terminate('operator gave up');
      await reconcileOnce();
      await reconcileOnce();
      const [message] = await receiver.waitFor(1);
      expect(message!.headers['webhook-id']).toBe(`msg_${jobId}_cancelled`);
      expect(verifyWebhook(SECRET, message!.headers, message!.body)).toBe(true);
      expect(JSON.parse(message!.body)).toMatchObject({ event: 'cancelled', job_id: jobId, status: 'CANCELLED' });
      const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
      await waitUntil(() => provider.cancelled.includes(row!.predictionId!));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(receiver.received).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });

  it('announces a job cancelled through the API after its workflow was gone, and cancels its prediction', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const { body } = await postJson(stack.baseUrl, '/api/v1/generate', {
        ...validRequest,
        webhook_url: receiver.url,
      });
      const jobId = body!.job_id as string;
      await waitForJob(
        stack.baseUrl,
        jobId,
        (job) => job.status === 'PROCESSING' && provider.createdForJob(jobId) === 1,
      );
      await stack.client.workflow.getHandle(workflowIdForJob(jobId)).terminate('gone');
      const cancelled = await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/cancel`, { reason: 'no longer needed' });
      expect(cancelled.status).toBe(202);
      const [message] = await receiver.waitFor(1);
      expect(JSON.parse(message!.body)).toMatchObject({
        event: 'cancelled',
        status: 'CANCELLED',
        error_message: 'no longer needed',
      });
      const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
      await waitUntil(() => provider.cancelled.includes(row!.predictionId!));
    } finally {
      await receiver.close();
    }
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !condition();) {
    if (Date.now() > deadline) throw new Error('the condition did not hold in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
