import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { reconcilerWorkflowId, workflowIdForJob } from '../../common/temporal';
import { jobs } from '../../db/schema';
import { ensureReconciler } from '../../worker/reconciler';
import { insertJobWithoutWorkflow, reconcileOnce, submitJob } from '../support/jobs';
import { ScriptedProvider } from '../support/scripted-provider';
import { waitForJob } from '../support/stack';
import { temporalCli, temporalCliJson } from '../support/temporal-cli';
import { useTestStack } from '../support/use-stack';
import { waitFor } from '../support/wait';

/** The operator guide's commands, run with the real `temporal` CLI, checked against Postgres. */
describe('operating jobs with the temporal CLI', () => {
  const provider = new ScriptedProvider({ latencyMs: 120_000 });
  // A database of its own: its reconciler passes end only this file's rows, and no other stack's pass ends them.
  const stack = useTestStack({ provider, ownDatabase: true });

  async function runningJob(): Promise<string> {
    const jobId = await submitJob(stack, { prompt: `operator ${randomUUID()}` });
    await waitForJob(stack.baseUrl, jobId, (job) => job.status === 'PROCESSING');
    return jobId;
  }

  it('queries a running job for its progress', async () => {
    const jobId = await runningJob();
    const progress = await waitFor(
      'the progress query to name the prediction',
      async () => {
        const reply = await temporalCliJson([
          'workflow',
          'query',
          '--workflow-id',
          workflowIdForJob(jobId),
          '--name',
          'progress',
        ]);
        return Boolean(reply.queryResult?.[0]?.predictionId) && reply;
      },
      20_000,
      250,
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
      jobId = await submitJob(stack, { prompt: `search ${randomUUID()}` });
      expect((await waitForJob(stack.baseUrl, jobId)).status).toBe('FAILED');
    } finally {
      provider.predictionError = undefined;
    }
    const workflowId = workflowIdForJob(jobId);
    const failed = await waitFor(
      'the job to be listed as FAILED',
      async () => {
        const list = await temporalCliJson<{ execution: { workflowId: string } }[]>([
          'workflow',
          'list',
          '--query',
          `MediaJobStatus="FAILED" AND WorkflowId="${workflowId}"`,
        ]);
        return list.length === 1 && list;
      },
      20_000,
      250,
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
      const job = await waitFor(
        'the reconciler to end the job',
        async () => {
          const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
          return row!.status !== 'PROCESSING' && row!;
        },
        30_000,
      );
      expect(job).toMatchObject({
        status: 'CANCELLED',
        errorMessage: 'The workflow was terminated: stuck on a bad model.',
      });
      await waitFor('the prediction to be cancelled', () => provider.cancelled.includes(job.predictionId!));
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
    const jobId = await insertJobWithoutWorkflow(stack.database.db);
    await reconcileOnce(stack);
    const [row] = await stack.database.db.select().from(jobs).where(eq(jobs.id, jobId));
    expect(row).toMatchObject({
      status: 'FAILED',
      errorMessage: 'The job was recorded but its workflow never started.',
    });
  });
});
