import { randomBytes } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { cancelSignal, workflowIdForJob } from '../../common/temporal';
import { deliverWebhook } from '../../activities/webhook-delivery';
import { createJob } from '../../db/queries/jobs';
import { listDeliveries } from '../../db/queries/webhook-deliveries';
import { startWebhookReceiver, verifyWebhook } from '../support/public-api';
import { ScriptedProvider } from '../support/scripted-provider';
import { getJson, postJson, startTestStack, validRequest, waitForJob, type TestStack } from '../support/stack';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

async function waitForDeliveries(
  stack: TestStack,
  jobId: string,
  count: number,
  timeoutMs = 30_000,
): Promise<Array<Record<string, any>>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await getJson(stack.baseUrl, `/api/v1/jobs/${jobId}/webhook-deliveries`);
    if (body!.deliveries.length >= count) return body!.deliveries;
    if (Date.now() > deadline) throw new Error(`only ${body!.deliveries.length} of ${count} deliveries were recorded`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Signed webhooks to a local receiver (MEDIA_FETCH_ALLOW_PRIVATE=true), with retries shortened to 1 s, 2 s, … */
describe('webhooks', () => {
  let stack: TestStack;
  const provider = new ScriptedProvider();
  afterEach(() => {
    provider.predictionError = undefined;
  });
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

  it('retries a failing receiver, then delivers the signed status reply; every attempt is listed and one can be redelivered', async () => {
    const receiver = await startWebhookReceiver(2);
    try {
      const reply = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, webhook_url: receiver.url });
      expect(reply.status).toBe(202);
      const jobId = reply.body!.job_id as string;
      const received = await receiver.waitFor(3);
      expect(received.map((request) => request.answeredWith)).toEqual([500, 500, 200]);

      const delivered = received[2]!;
      expect(verifyWebhook(SECRET, delivered.headers, delivered.body)).toBe(true);
      expect(verifyWebhook(SECRET, delivered.headers, delivered.body.replace('COMPLETED', 'FAILED'))).toBe(false);
      expect(verifyWebhook(`whsec_${randomBytes(32).toString('base64')}`, delivered.headers, delivered.body)).toBe(
        false,
      );
      expect(delivered.headers['webhook-id']).toBe(`msg_${jobId}_completed`);
      expect(new Set(received.map((request) => request.headers['webhook-id']))).toEqual(
        new Set([`msg_${jobId}_completed`]),
      );
      expect(delivered.headers['content-type']).toBe('application/json');

      // The body is the status reply (the same serializer as GET /status, presigned URLs included) plus `event`.
      const body = JSON.parse(delivered.body) as Record<string, any>;
      const status = (await getJson(stack.baseUrl, `/api/v1/status/${jobId}`)).body!;
      expect(body.event).toBe('completed');
      expect(
        Object.keys(body)
          .filter((key) => key !== 'event')
          .sort(),
      ).toEqual(Object.keys(status).sort());
      expect(body).toMatchObject({
        job_id: jobId,
        status: 'COMPLETED',
        model: status.model,
        seed: status.seed,
        completed_at: status.completed_at,
      });
      expect(body.media).toHaveLength(2);
      expect((await fetch(body.media[0].presigned_media_url)).status).toBe(200);

      const deliveries = await waitForDeliveries(stack, jobId, 3);
      expect(
        deliveries.map((delivery) => [delivery.event, delivery.attempt, delivery.status_code, delivery.succeeded]),
      ).toEqual([
        ['completed', 1, 500, false],
        ['completed', 2, 500, false],
        ['completed', 3, 200, true],
      ]);
      expect(deliveries[0]).toMatchObject({
        error: 'the receiver answered 500',
        response_snippet: 'receiver is down (scripted)',
        url: receiver.url,
      });
      expect(deliveries[2]).toMatchObject({
        error: null,
        response_snippet: 'thanks',
        message_id: `msg_${jobId}_completed`,
      });

      const redelivery = await postJson(
        stack.baseUrl,
        `/api/v1/jobs/${jobId}/webhook-deliveries/${deliveries[0]!.delivery_id}/redeliver`,
        {},
      );
      expect(redelivery.status).toBe(202);
      expect(redelivery.body).toMatchObject({
        delivery_id: deliveries[0]!.delivery_id,
        message_id: `msg_${jobId}_completed`,
        workflow_id: expect.any(String),
      });
      const again = (await receiver.waitFor(4))[3]!;
      expect(again.headers['webhook-id']).toBe(`msg_${jobId}_completed`);
      expect(verifyWebhook(SECRET, again.headers, again.body)).toBe(true);
      const after = await waitForDeliveries(stack, jobId, 4);
      expect(after[3]).toMatchObject({ event: 'completed', attempt: 4, status_code: 200, succeeded: true });

      const unknown = await postJson(
        stack.baseUrl,
        `/api/v1/jobs/${jobId}/webhook-deliveries/00000000-0000-4000-8000-000000000000/redeliver`,
        {},
      );
      expect(unknown.status).toBe(404);
    } finally {
      await receiver.close();
    }
  });

  it('sends one `output` message per stored output when asked, and only the events asked for', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const reply = await postJson(stack.baseUrl, '/api/v1/generate', {
        ...validRequest,
        num_outputs: 2,
        webhook_url: receiver.url,
        webhook_events_filter: ['output'],
      });
      const jobId = reply.body!.job_id as string;
      await waitForJob(stack.baseUrl, jobId);
      const received = await receiver.waitFor(2);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(received).toHaveLength(2);
      const bodies = received
        .map((request) => JSON.parse(request.body) as Record<string, any>)
        .sort((a, b) => a.output_index - b.output_index);
      expect(bodies.map((body) => [body.event, body.output_index])).toEqual([
        ['output', 0],
        ['output', 1],
      ]);
      for (const body of bodies) expect(body.media[body.output_index].presigned_media_url).toEqual(expect.any(String));
      expect(new Set(received.map((request) => request.headers['webhook-id']))).toEqual(
        new Set([`msg_${jobId}_output_0`, `msg_${jobId}_output_1`]),
      );
      for (const request of received) expect(verifyWebhook(SECRET, request.headers, request.body)).toBe(true);
    } finally {
      await receiver.close();
    }
  });

  it('announces a failed job with a `failed` message', async () => {
    const receiver = await startWebhookReceiver();
    try {
      provider.predictionError = 'NSFW content detected (scripted)';
      const reply = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, webhook_url: receiver.url });
      const job = await waitForJob(stack.baseUrl, reply.body!.job_id as string);
      expect(job.status).toBe('FAILED');
      const [message] = await receiver.waitFor(1);
      const body = JSON.parse(message!.body) as Record<string, any>;
      expect(body).toMatchObject({
        event: 'failed',
        status: 'FAILED',
        error_message: 'NSFW content detected (scripted)',
      });
      expect(message!.headers['webhook-id']).toBe(`msg_${job.job_id}_failed`);
    } finally {
      await receiver.close();
    }
  });

  it.each([
    ['an operator signal', (handle: WorkflowHandle) => handle.signal(cancelSignal, { reason: 'duplicate job' })],
    ['a workflow cancel request', (handle: WorkflowHandle) => handle.cancel()],
  ])('announces a job cancelled by %s with a `cancelled` message', async (_how, cancel) => {
    const slow = await startTestStack({
      provider: new ScriptedProvider({ latencyMs: 60_000 }),
      env: {
        WEBHOOK_SIGNING_SECRET: SECRET,
        MEDIA_FETCH_ALLOW_PRIVATE: 'true',
        WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS: '1',
      },
    });
    const receiver = await startWebhookReceiver();
    try {
      const reply = await postJson(slow.baseUrl, '/api/v1/generate', { ...validRequest, webhook_url: receiver.url });
      const jobId = reply.body!.job_id as string;
      const handle = slow.client.workflow.getHandle(workflowIdForJob(jobId));
      await waitForJob(slow.baseUrl, jobId, (job) => job.status === 'PROCESSING', 20_000);
      await cancel(handle);
      const [message] = await receiver.waitFor(1);
      expect(JSON.parse(message!.body)).toMatchObject({ event: 'cancelled', status: 'CANCELLED', job_id: jobId });
      expect(message!.headers['webhook-id']).toBe(`msg_${jobId}_cancelled`);
      expect(verifyWebhook(SECRET, message!.headers, message!.body)).toBe(true);
    } finally {
      await receiver.close();
      await slow.stop();
    }
  });

  it('rejects webhook fields it cannot honour with 422', async () => {
    const filterOnly = await postJson(stack.baseUrl, '/api/v1/generate', {
      ...validRequest,
      webhook_events_filter: ['completed'],
    });
    expect(filterOnly.status).toBe(422);
    expect(filterOnly.body!.errors).toEqual([{ field: 'webhook_events_filter', message: 'needs webhook_url' }]);
    const badEvent = await postJson(stack.baseUrl, '/api/v1/generate', {
      ...validRequest,
      webhook_url: 'https://example.com/h',
      webhook_events_filter: ['started'],
    });
    expect(badEvent.status).toBe(422);
    expect(badEvent.body!.errors[0].field).toBe('webhook_events_filter.0');
  });
});

describe('webhook address rules and configuration', () => {
  let strict: TestStack;
  let unsigned: TestStack;
  beforeAll(async () => {
    [strict, unsigned] = await Promise.all([
      startTestStack({ worker: false, env: { WEBHOOK_SIGNING_SECRET: SECRET } }),
      startTestStack({ worker: false }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([strict?.stop(), unsigned?.stop()]);
  });

  it.each([
    ['plain http', 'http://example.com/hook', /https/],
    ['a loopback address', 'https://127.0.0.1/hook', /not a public address/],
    ['a private address', 'https://10.1.2.3/hook', /not a public address/],
    ['localhost', 'https://localhost/hook', /not a public address/],
  ])('refuses %s unless MEDIA_FETCH_ALLOW_PRIVATE', async (_label, url, message) => {
    const reply = await postJson(strict.baseUrl, '/api/v1/generate', { ...validRequest, webhook_url: url });
    expect(reply.status).toBe(422);
    expect(reply.body!.errors).toEqual([{ field: 'webhook_url', message: expect.stringMatching(message) }]);
  });

  it('refuses, at delivery, a name that resolves to a private address, without retrying, and records why', async () => {
    const job = await createJob(strict.database.db, {
      model: 'a/b',
      prompt: 'rebinding',
      numOutputs: 1,
      seed: 1,
      outputFormat: 'png',
    });
    const message = {
      jobId: job.id,
      messageId: `msg_${job.id}_completed`,
      event: 'completed' as const,
      url: 'https://localhost:9/hook',
    };
    const presigner = { client: undefined as never, bucket: 'unused', expiresInSeconds: 60 };
    await expect(
      deliverWebhook(
        strict.database.db,
        { signingSecret: SECRET, allowPrivate: false, presigner },
        message,
        new AbortController().signal,
      ),
    ).rejects.toMatchObject({
      type: 'ForbiddenWebhookUrl',
      nonRetryable: true,
      message: expect.stringMatching(/localhost resolves to (127\.0\.0\.1|::1), which is not public/),
    });
    const [recorded] = await listDeliveries(strict.database.db, job.id);
    expect(recorded).toMatchObject({ attempt: 1, statusCode: null, error: expect.stringMatching(/not public/) });
  });

  it('refuses webhooks when WEBHOOK_SIGNING_SECRET is not set', async () => {
    const reply = await postJson(unsigned.baseUrl, '/api/v1/generate', {
      ...validRequest,
      webhook_url: 'https://example.com/hook',
    });
    expect(reply.status).toBe(422);
    expect(reply.body!.detail).toMatch(/WEBHOOK_SIGNING_SECRET/);
  });
});
