import { progressQuery } from '../../common/temporal';
import { closedWorkflowOf } from '../support/history';
import { submitJob } from '../support/jobs';
import { ScriptedProvider } from '../support/scripted-provider';
import { postJson, startTestStack, validRequest, waitForJob, type TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { sleep } from '../support/wait';

/** deadline_seconds: past it the work is cancelled, upstream included, and the job ends FAILED with a message saying so. */
describe('deadline_seconds', () => {
  // Predictions take a minute: far longer than the deadlines below.
  const provider = new ScriptedProvider({ latencyMs: 60_000 });
  const stack = useTestStack({ provider });

  it('ends a job that overruns its deadline FAILED, saying so, and cancels the prediction upstream', async () => {
    const started = Date.now();
    const jobId = await submitJob(stack, { deadline_seconds: 2 });
    const job = await waitForJob(stack.baseUrl, jobId, undefined, 20_000);
    const elapsed = Date.now() - started;
    expect(job.status).toBe('FAILED');
    expect(job.error_message).toBe('The job did not finish within its deadline of 2 s (deadline_seconds).');
    expect(job.media.map((media: { status: string }) => media.status)).toEqual(['FAILED', 'FAILED']);
    expect(elapsed).toBeGreaterThanOrEqual(2_000);
    expect(elapsed).toBeLessThan(15_000);
    const handle = await closedWorkflowOf(stack.client, jobId);
    const progress = await handle.query(progressQuery);
    expect(progress.phase).toBe('failed');
    expect(provider.cancelled).toContain(progress.predictionId);
    expect((await handle.describe()).status.name).toBe('COMPLETED');
  });

  it('counts the deadline from the submission: a job no worker picked up in time ends CANCELLED without a prediction', async () => {
    const idle = await startTestStack({ worker: false });
    let late: TestStack | undefined;
    try {
      const jobId = await submitJob(idle, { deadline_seconds: 1 });
      await sleep(2_000);
      // A worker comes up on the job's task queue after its deadline.
      const fresh = new ScriptedProvider();
      late = await startTestStack({ provider: fresh, env: { TEMPORAL_TASK_QUEUE: idle.config.TEMPORAL_TASK_QUEUE } });
      const job = await waitForJob(idle.baseUrl, jobId, undefined, 20_000);
      expect(job.status).toBe('CANCELLED');
      expect(job.error_message).toBe(
        'The job did not finish within its deadline of 1 s (deadline_seconds); it had not started.',
      );
      expect(job.started_at).toBeNull();
      expect(job.media.map((media: { status: string }) => media.status)).toEqual(['CANCELLED', 'CANCELLED']);
      expect(fresh.createdForJob(jobId)).toBe(0);
    } finally {
      await late?.stop();
      await idle.stop();
    }
  });

  it('leaves a job that finishes in time alone', async () => {
    const fast = new ScriptedProvider();
    const quick = await startTestStack({ provider: fast });
    try {
      const job = await waitForJob(quick.baseUrl, await submitJob(quick, { deadline_seconds: 60 }));
      expect(job).toMatchObject({ status: 'COMPLETED', error_message: null });
      expect(fast.cancelled).toEqual([]);
    } finally {
      await quick.stop();
    }
  });

  it('rejects a deadline out of range with a 422 naming the field', async () => {
    for (const deadline of [0, 1.5, 7 * 24 * 3600 + 1]) {
      const reply = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, deadline_seconds: deadline });
      expect(reply.status).toBe(422);
      expect(reply.body!.errors.map((error: { field: string }) => error.field)).toEqual(['deadline_seconds']);
    }
  });
});
