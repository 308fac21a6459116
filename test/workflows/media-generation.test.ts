import {
  workflowIdForJob,
  progressQuery,
  cancelSignal,
  mediaJobStatusSearchAttribute,
  MEDIA_GENERATION_WORKFLOW_TYPE,
} from '../../common/temporal';
import { createJob, finishJob, getJob } from '../../db/queries/jobs';
import { closedWorkflowOf } from '../support/history';
import { submitJob, waitForPrediction } from '../support/jobs';
import { ScriptedProvider } from '../support/scripted-provider';
import { postJson, validRequest, waitForJob } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { waitFor } from '../support/wait';

/** The workflow on the real Temporal dev server, with a provider whose faults the tests script. */
describe('mediaGeneration workflow', () => {
  const provider = new ScriptedProvider();
  const stack = useTestStack({ provider, env: { PERSIST_MAX_ATTEMPTS: '2' } });
  afterEach(() => {
    provider.outputFailures.clear();
    provider.outputHangs.clear();
    provider.predictionError = undefined;
    provider.createDelayMs = 0;
    provider.createError = undefined;
  });

  /** MediaJobStatus once the workflow has ended (closedWorkflowOf). */
  async function searchStatus(jobId: string): Promise<unknown> {
    const description = await (await closedWorkflowOf(stack.client, jobId)).describe();
    return description.typedSearchAttributes.get(mediaJobStatusSearchAttribute);
  }

  it("shows the row's status when its end is refused: the job was ended before the workflow's first task", async () => {
    // The reconciler ended the row (its workflow had not started in time); the workflow's first task
    // comes after its deadline, and it ends the job as one that had not started: CANCELLED.
    const job = await createJob(stack.database.db, {
      model: 'a/b',
      prompt: `ended before its first task ${Date.now()}`,
      numOutputs: 1,
      seed: 1,
      outputFormat: 'png',
    });
    expect(await finishJob(stack.database.db, job.id, { status: 'FAILED', errorMessage: 'never started' })).toBe(true);
    const handle = await stack.client.workflow.start(MEDIA_GENERATION_WORKFLOW_TYPE, {
      taskQueue: stack.config.TEMPORAL_TASK_QUEUE,
      workflowId: workflowIdForJob(job.id),
      startDelay: '2s',
      args: [
        {
          jobId: job.id,
          model: 'a/b',
          prompt: job.prompt,
          numOutputs: 1,
          seed: 1,
          outputFormat: 'png',
          deadlineSeconds: 1,
        },
      ],
    });
    await handle.result();
    expect((await handle.describe()).typedSearchAttributes.get(mediaJobStatusSearchAttribute)).toBe('FAILED');
    expect(await getJob(stack.database.db, job.id)).toMatchObject({ status: 'FAILED', errorMessage: 'never started' });
  });

  it('retries a failing output and completes, counting the retry', async () => {
    provider.outputFailures.set(1, 1);
    const jobId = await submitJob(stack);
    const job = await waitForJob(stack.baseUrl, jobId);
    expect(job.status).toBe('COMPLETED');
    expect(job.retry_count).toBe(1);
    const progress = await stack.client.workflow.getHandle(workflowIdForJob(jobId)).query(progressQuery);
    expect(progress.outputs.map((output) => [output.state, output.attempts])).toEqual([
      ['stored', 1],
      ['stored', 2],
    ]);
    expect(await searchStatus(jobId)).toBe('COMPLETED');
    const memo = (await stack.client.workflow.getHandle(workflowIdForJob(jobId)).describe()).memo;
    expect(memo).toEqual({ model: validRequest.model, prompt: validRequest.prompt });
  });

  it('fails the job naming the output that exhausted its retries, and keeps the outputs that were stored', async () => {
    provider.outputFailures.set(1, Infinity);
    const jobId = await submitJob(stack, { num_outputs: 3 });
    const job = await waitForJob(stack.baseUrl, jobId);
    expect(job.status).toBe('FAILED');
    expect(job.error_message).toMatch(/1 of 3 outputs failed: output 1: output 1 is not ready/);
    expect(job.media.map((media: { status: string }) => media.status)).toEqual(['COMPLETED', 'FAILED', 'COMPLETED']);
    expect(job.media[1].error_message).toMatch(/not ready/);
    expect((await fetch(job.media[0].presigned_media_url)).status).toBe(200);
    expect(job.media[1].presigned_media_url).toBeNull();
    expect(await searchStatus(jobId)).toBe('FAILED');
  });

  it('keeps the error of an output that failed when a cancel then ends the others', async () => {
    provider.outputFailures.set(1, Infinity);
    provider.outputHangs.add(0);
    const prompt = `mixed outcome ${Date.now()}`;
    const jobId = await submitJob(stack, { prompt });
    const failingUrl = () =>
      provider.opened.filter(
        (url) => new URL(url).searchParams.get('prompt') === prompt && new URL(url).searchParams.get('index') === '1',
      );
    await waitForJob(stack.baseUrl, jobId, () => failingUrl().length >= 2);
    // The second failure is its last (PERSIST_MAX_ATTEMPTS=2): the workflow has taken it in.
    const handle = stack.client.workflow.getHandle(workflowIdForJob(jobId));
    await waitFor(
      'the workflow to see output 1 failed',
      async () => (await handle.query(progressQuery)).outputs[1]?.state === 'failed',
      15_000,
    );
    expect((await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/cancel`, { reason: 'taking too long' })).status).toBe(
      202,
    );
    const job = await waitForJob(stack.baseUrl, jobId);
    expect(job.status).toBe('CANCELLED');
    expect(job.error_message).toBe('taking too long');
    expect(job.media.map((media: { status: string }) => media.status)).toEqual(['CANCELLED', 'FAILED']);
    expect(job.media[1].error_message).toMatch(/output 1 is not ready/);
  });

  it('ends a job CANCELLED when its cancel arrives while the create is failing', async () => {
    // Longer than a workflow task is held open for a local activity (8 s): the cancel is seen while the create runs.
    provider.createDelayMs = 10_000;
    provider.createError = 'the model refused the prompt';
    const jobId = await submitJob(stack);
    await waitForJob(stack.baseUrl, jobId, () => provider.createdForJob(jobId) === 1);
    expect((await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/cancel`, { reason: 'changed my mind' })).status).toBe(
      202,
    );
    const job = await waitForJob(stack.baseUrl, jobId, undefined, 30_000);
    expect(job).toMatchObject({ status: 'CANCELLED', error_message: 'changed my mind' });
  });

  it('fails without retrying when the prediction fails upstream, with the provider reason', async () => {
    provider.predictionError = 'NSFW content detected';
    const jobId = await submitJob(stack);
    const job = await waitForJob(stack.baseUrl, jobId);
    expect(job.status).toBe('FAILED');
    expect(job.error_message).toBe('NSFW content detected');
    expect(job.media.every((media: { status: string }) => media.status === 'FAILED')).toBe(true);
    expect(provider.createdForJob(jobId)).toBe(1);
  });

  it('fails a workflow whose job has no row, without inventing one', async () => {
    const jobId = '00000000-0000-4000-8000-000000000000';
    const run = stack.client.workflow.execute(MEDIA_GENERATION_WORKFLOW_TYPE, {
      taskQueue: stack.config.TEMPORAL_TASK_QUEUE,
      workflowId: `${workflowIdForJob(jobId)}-orphan-${Date.now()}`,
      args: [{ jobId, model: 'a/b', prompt: 'x', numOutputs: 1, seed: 1, outputFormat: 'png' }],
    });
    await expect(run).rejects.toMatchObject({ cause: { type: 'JobNotFound' } });
  });
});

describe('mediaGeneration cancellation and queries', () => {
  const provider = new ScriptedProvider({ latencyMs: 60_000 });
  const stack = useTestStack({ provider });

  /** A job whose prediction has been created and is running. */
  async function submitRunning(): Promise<string> {
    const jobId = await submitJob(stack);
    await waitForPrediction(stack, jobId);
    return jobId;
  }

  it('answers the progress query while the prediction runs', async () => {
    const jobId = await submitRunning();
    const handle = stack.client.workflow.getHandle(workflowIdForJob(jobId));
    const progress = await handle.query(progressQuery);
    expect(progress).toMatchObject({ jobId, phase: 'generating', predictionId: expect.stringMatching(/^fake-/) });
    expect(progress.outputs.map((output) => output.state)).toEqual(['pending', 'pending']);
    await handle.cancel();
  });

  it('ends CANCELLED everywhere on a workflow cancel request, and cancels the prediction upstream', async () => {
    const jobId = await submitRunning();
    const handle = stack.client.workflow.getHandle(workflowIdForJob(jobId));
    await handle.cancel();
    const job = await waitForJob(stack.baseUrl, jobId);
    expect(job.status).toBe('CANCELLED');
    expect(job.error_message).toMatch(/workflow cancellation/);
    expect(job.media.map((media: { status: string }) => media.status)).toEqual(['CANCELLED', 'CANCELLED']);
    await expect(handle.result()).rejects.toMatchObject({ cause: { name: 'CancelledFailure' } });
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect((await handle.describe()).typedSearchAttributes.get(mediaJobStatusSearchAttribute)).toBe('CANCELLED');
    const progress = await handle.query(progressQuery);
    expect(provider.cancelled).toContain(progress.predictionId);
  });

  it('records the reason given with the cancel signal', async () => {
    const jobId = await submitRunning();
    const handle = stack.client.workflow.getHandle(workflowIdForJob(jobId));
    await handle.signal(cancelSignal, { reason: 'customer asked to stop' });
    const job = await waitForJob(stack.baseUrl, jobId);
    expect(job.status).toBe('CANCELLED');
    expect(job.error_message).toBe('customer asked to stop');
    expect(await handle.result()).toMatchObject({ phase: 'cancelled', cancelReason: 'customer asked to stop' });
  });

  it('cancels through the API, and answers 409 once the job has ended', async () => {
    const jobId = await submitRunning();
    const first = await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/cancel`, { reason: 'no longer needed' });
    expect(first.status).toBe(202);
    const job = await waitForJob(stack.baseUrl, jobId);
    expect(job).toMatchObject({ status: 'CANCELLED', error_message: 'no longer needed' });
    const again = await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/cancel`, {});
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(again.body!.detail).toMatch(/already CANCELLED/);
  });
});
