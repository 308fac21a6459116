import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { closedWorkflowOf } from '../support/history';
import { submitJob } from '../support/jobs';
import { useReplicateStack } from '../support/replicate-stack';
import { postJson, validRequest, waitForJob } from '../support/stack';

const TOKEN = 'r8_e2e-secret-token-5f1c2a9b7d3e';
const VERSION = '5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa';

describe('Replicate provider in the real pipeline (API, Temporal, Postgres, S3, stand-in)', () => {
  const stack = useReplicateStack({ token: TOKEN, env: { REPLICATE_PREDICTION_DEADLINE_SECONDS: '900' } });
  beforeEach(() => {
    stack.standIn.behaviour = { runMs: 300 };
  });

  async function submit(overrides: Record<string, unknown> = {}) {
    const before = { creates: stack.standIn.createCalls.length, predictions: stack.standIn.predictions.length };
    const jobId = await submitJob(stack, overrides);
    return {
      jobId,
      creates: () => stack.standIn.createCalls.slice(before.creates),
      predictions: () => stack.standIn.predictions.slice(before.predictions),
    };
  }

  async function expectStoredImages(job: Record<string, any>, format: string) {
    for (const media of job.media) {
      expect(media.status).toBe('COMPLETED');
      const bytes = Buffer.from(await (await fetch(media.presigned_media_url)).arrayBuffer());
      expect((await sharp(bytes).metadata()).format).toBe(format);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(media.sha256);
    }
  }

  it('generates by model name: one prediction, the inputs passed, a deadline sent, media stored', async () => {
    const job = await submit({ model: 'acme/painter', num_outputs: 2, seed: 42, output_format: 'png' });
    const finished = await waitForJob(stack.baseUrl, job.jobId);
    expect(finished.status).toBe('COMPLETED');
    expect(finished.media).toHaveLength(2);
    await expectStoredImages(finished, 'png');
    expect(job.creates()).toHaveLength(1);
    expect(job.predictions()).toEqual([
      expect.objectContaining({
        route: 'model',
        model: 'acme/painter',
        input: { prompt: validRequest.prompt, num_outputs: 2, seed: 42, output_format: 'png' },
        cancelAfter: '900s',
      }),
    ]);
    expect(finished.media[0].media_url).toContain(`/files/${job.predictions()[0]!.id}/0.png`);
  });

  it('generates by model version through the predictions endpoint', async () => {
    const job = await submit({ model: `acme/painter:${VERSION}`, num_outputs: 1, output_format: 'webp' });
    const finished = await waitForJob(stack.baseUrl, job.jobId);
    expect(finished.status).toBe('COMPLETED');
    await expectStoredImages(finished, 'webp');
    expect(job.predictions()).toEqual([
      expect.objectContaining({ route: 'version', version: VERSION, cancelAfter: '900s' }),
    ]);
    expect(job.creates()).toHaveLength(1);
  });

  it('waits out a 429 for as long as Retry-After asks, then creates exactly one prediction', async () => {
    stack.standIn.failNextCreates(1, { status: 429, retryAfterSeconds: 3 });
    const job = await submit({ num_outputs: 1 });
    const finished = await waitForJob(stack.baseUrl, job.jobId);
    expect(finished.status).toBe('COMPLETED');
    const [limited, created] = job.creates();
    expect([limited?.status, created?.status]).toEqual([429, 201]);
    // The policy alone would retry after 1s.
    expect(created!.at - limited!.at).toBeGreaterThanOrEqual(2_900);
    expect(job.predictions()).toHaveLength(1);
  });

  it('retries 5xx answers to the create', async () => {
    stack.standIn.failNextCreates(2, { status: 502 });
    const job = await submit({ num_outputs: 1 });
    const finished = await waitForJob(stack.baseUrl, job.jobId);
    expect(finished.status).toBe('COMPLETED');
    expect(job.creates().map((call) => call.status)).toEqual([502, 502, 201]);
    expect(job.predictions()).toHaveLength(1);
    expect(finished.retry_count).toBe(2);
  });

  it('fails a job the provider rejects with its own detail, without retrying', async () => {
    const detail = '- input.num_outputs: Must be less than or equal to 1';
    stack.standIn.failNextCreates(1, { status: 422, detail });
    const job = await submit({ num_outputs: 2 });
    const finished = await waitForJob(stack.baseUrl, job.jobId);
    expect(finished.status).toBe('FAILED');
    expect(finished.error_message).toBe(detail);
    expect(job.creates()).toHaveLength(1);
    expect(job.predictions()).toHaveLength(0);
  });

  it('fails a job whose prediction fails upstream with the upstream error', async () => {
    stack.standIn.behaviour = {
      runMs: 200,
      predictionError: 'NSFW content detected. Try running it again, or try a different prompt.',
    };
    const job = await submit({ num_outputs: 1 });
    const finished = await waitForJob(stack.baseUrl, job.jobId);
    expect(finished.status).toBe('FAILED');
    expect(finished.error_message).toBe('NSFW content detected. Try running it again, or try a different prompt.');
    expect(job.creates()).toHaveLength(1);
  });

  it('fails fast, without looping, when an output URL has expired', async () => {
    stack.standIn.behaviour = { runMs: 200, outputStatus: 410 };
    const filesBefore = stack.standIn.fileRequests.length;
    const started = Date.now();
    const job = await submit({ num_outputs: 2 });
    const finished = await waitForJob(stack.baseUrl, job.jobId);
    expect(finished.status).toBe('FAILED');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(finished.media.map((media: any) => media.status)).toEqual(['FAILED', 'FAILED']);
    expect(finished.media[0].error_message).toMatch(/answered 410: it has expired/);
    // One request per output: not retried.
    expect(stack.standIn.fileRequests.length - filesBefore).toBe(2);
  });

  it('cancels the prediction upstream when the job is cancelled', async () => {
    stack.standIn.behaviour = { runMs: 60_000 };
    const job = await submit({ num_outputs: 1 });
    await waitForJob(
      stack.baseUrl,
      job.jobId,
      () => stack.standIn.statusOf(job.predictions()[0]?.id ?? '') === 'processing',
    );
    const cancelled = await postJson(stack.baseUrl, `/api/v1/jobs/${job.jobId}/cancel`, { reason: 'changed my mind' });
    expect(cancelled.status).toBe(202);
    const finished = await waitForJob(stack.baseUrl, job.jobId);
    expect(finished.status).toBe('CANCELLED');
    const predictionId = job.predictions()[0]!.id;
    expect(stack.standIn.cancelRequests).toContain(predictionId);
    expect(stack.standIn.statusOf(predictionId)).toBe('canceled');
  });

  it('still ends a cancelled job CANCELLED when Replicate cannot take the cancel', async () => {
    stack.standIn.behaviour = { runMs: 60_000, cancelStatus: 503 };
    const job = await submit({ num_outputs: 1 });
    await waitForJob(
      stack.baseUrl,
      job.jobId,
      () => stack.standIn.statusOf(job.predictions()[0]?.id ?? '') === 'processing',
    );
    await postJson(stack.baseUrl, `/api/v1/jobs/${job.jobId}/cancel`, {});
    const finished = await waitForJob(stack.baseUrl, job.jobId, undefined, 20_000);
    expect(finished.status).toBe('CANCELLED');
    const predictionId = job.predictions()[0]!.id;
    // Tried on the way out of the wait, then by the cancel activity until it gave up.
    expect(stack.standIn.cancelRequests.filter((id) => id === predictionId).length).toBeGreaterThanOrEqual(5);
  });

  it('keeps the API token out of workflow history, on success and on a refused token', async () => {
    const ok = await submit({ num_outputs: 1 });
    expect((await waitForJob(stack.baseUrl, ok.jobId)).status).toBe('COMPLETED');
    stack.standIn.failNextCreates(1, { status: 401, detail: 'You did not pass a valid authentication token' });
    const refused = await submit({ num_outputs: 1 });
    const refusedJob = await waitForJob(stack.baseUrl, refused.jobId);
    expect(refusedJob.status).toBe('FAILED');
    expect(refusedJob.error_message).toBe('You did not pass a valid authentication token');

    for (const jobId of [ok.jobId, refused.jobId]) {
      const history = JSON.stringify(await (await closedWorkflowOf(stack.client, jobId)).fetchHistory());
      // Payloads are base64: read them decoded, alongside the rest.
      const decoded = [...history.matchAll(/"data":"([A-Za-z0-9+/=]+)"/g)].map((match) =>
        Buffer.from(match[1]!, 'base64').toString('utf8'),
      );
      const text = [history, ...decoded].join('\n');
      expect(text).toContain(`"jobId":"${jobId}"`);
      expect(text).not.toContain(TOKEN);
    }
  });
});
