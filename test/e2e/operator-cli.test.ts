import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { reconcilerWorkflowId, workflowIdForJob } from '../../common/temporal';
import { createJob } from '../../db/queries/jobs';
import { jobs } from '../../db/schema';
import { ensureReconciler } from '../../worker/reconciler';
import { ScriptedProvider } from '../support/scripted-provider';
import { postJson, startTestStack, validRequest, waitForJob, type TestStack } from '../support/stack';
import { temporalCli, temporalCliJson } from '../support/temporal-cli';

async function eventually<T>(
  probe: () => Promise<T> | T,
  accept: (value: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`condition not met in ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The operator guide's commands, run with the real `temporal` CLI, checked against Postgres. */
describe('operating jobs with the temporal CLI', () => {
  let stack: TestStack;
  let provider: ScriptedProvider;

  beforeAll(async () => {
    provider = new ScriptedProvider({ latencyMs: 120_000 });
    stack = await startTestStack({ provider });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function runningJob(): Promise<string> {
    const { body } = await postJson(stack.baseUrl, '/api/v1/generate', {
      ...validRequest,
      prompt: `operator ${randomUUID()}`,
    });
    const jobId = body!.job_id as string;
    await waitForJob(stack.baseUrl, jobId, (job) => job.status === 'PROCESSING');
    return jobId;
  }

  it('queries a running job for its progress', async () => {
    const jobId = await runningJob();
    const progress = await eventually(
      () => temporalCliJson(['workflow', 'query', '--workflow-id', workflowIdForJob(jobId), '--name', 'progress']),
      (reply) => Boolean(reply.queryResult?.[0]?.predictionId),
    );
    expect(progress.queryResult[0]).toMatchObject({
      jobId,
      phase: 'generating',
      outputs: [
        { index: 0, state: 'pending' },
        { index: 1, state: 'pending' },
      ],
    });
    await temporalCli(['workflow', 'cancel', '--workflow-id', workflowIdForJob(jobId)]);
  });

  it('cancels a job with a recorded reason through the cancel signal', async () => {
    const jobId = await runningJob();
    const signalled = await temporalCli([
      'workflow',
      'signal',
      '--workflow-id',
      workflowIdForJob(jobId),
      '--name',
      'cancel',
      '--input',
      '{"reason":"duplicate of another job"}',
    ]);
    expect(signalled.status).toBe(0);
    const job = await waitForJob(stack.baseUrl, jobId);
    expect(job).toMatchObject({ status: 'CANCELLED', error_message: 'duplicate of another job' });
  });

  it('cancels a job with temporal workflow cancel, settling every output', async () => {
    const jobId = await runningJob();
    expect((await temporalCli(['workflow', 'cancel', '--workflow-id', workflowIdForJob(jobId)])).status).toBe(0);
    const job = await waitForJob(stack.baseUrl, jobId);
    expect(job.status).toBe('CANCELLED');
    expect(job.media.map((media: { status: string }) => media.status)).toEqual(['CANCELLED', 'CANCELLED']);
    const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
    expect(row!.completedAt).not.toBeNull();
  });

  it('finds jobs by MediaJobStatus with temporal workflow list', async () => {
    provider.predictionError = 'the model rejected the prompt';
    let jobId: string;
    try {
      const { body } = await postJson(stack.baseUrl, '/api/v1/generate', {
        ...validRequest,
        prompt: `search ${randomUUID()}`,
      });
      jobId = body!.job_id as string;
      expect((await waitForJob(stack.baseUrl, jobId)).status).toBe('FAILED');
    } finally {
      provider.predictionError = undefined;
    }
    const workflowId = workflowIdForJob(jobId);
    const failed = await eventually(
      () =>
        temporalCliJson<{ execution: { workflowId: string } }[]>([
          'workflow',
          'list',
          '--query',
          `MediaJobStatus="FAILED" AND WorkflowId="${workflowId}"`,
        ]),
      (list) => list.length === 1,
    );
    expect(failed[0]!.execution.workflowId).toBe(workflowId);
    const processing = await temporalCliJson<unknown[]>([
      'workflow',
      'list',
      '--query',
      `MediaJobStatus="PROCESSING" AND WorkflowId="${workflowId}"`,
    ]);
    expect(processing).toEqual([]);
    const described = await temporalCliJson(['workflow', 'describe', '--workflow-id', workflowId]);
    expect(JSON.stringify(described)).toContain('MediaJobStatus');
  });

  it('ends a terminated job in Postgres through the reconciler, and cancels its prediction', async () => {
    const jobId = await runningJob();
    const taskQueue = stack.config.TEMPORAL_TASK_QUEUE;
    expect(
      (
        await temporalCli([
          'workflow',
          'terminate',
          '--workflow-id',
          workflowIdForJob(jobId),
          '--reason',
          'stuck on a bad model',
        ])
      ).status,
    ).toBe(0);
    // Every worker ensures it at start; the second finds the first running.
    await ensureReconciler(stack.client, { taskQueue, intervalSeconds: 1 });
    await ensureReconciler(stack.client, { taskQueue, intervalSeconds: 1 });
    try {
      const job = await eventually(
        async () => (await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId)))[0]!,
        (row) => row.status !== 'PROCESSING',
        30_000,
      );
      expect(job).toMatchObject({
        status: 'CANCELLED',
        errorMessage: 'The workflow was terminated: stuck on a bad model.',
      });
      await eventually(
        () => provider.cancelled,
        (cancelled) => cancelled.includes(job.predictionId!),
      );
      const reconcilers = await temporalCliJson<unknown[]>([
        'workflow',
        'list',
        '--query',
        `WorkflowId="${reconcilerWorkflowId(taskQueue)}"`,
      ]);
      expect(reconcilers).toHaveLength(1);
    } finally {
      await temporalCli([
        'workflow',
        'terminate',
        '--workflow-id',
        reconcilerWorkflowId(taskQueue),
        '--reason',
        'test over',
      ]);
    }
  });

  it('ends a job whose workflow never started', async () => {
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
    await stack.client.workflow.execute('reconcileJobs', {
      taskQueue: stack.config.TEMPORAL_TASK_QUEUE,
      workflowId: `reconcile-${randomUUID()}`,
    });
    const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, job.id));
    expect(row).toMatchObject({
      status: 'FAILED',
      errorMessage: 'The job was recorded but its workflow never started.',
    });
  });
});
