import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WorkflowHandle } from '@temporalio/client';
import { cancelSignal, workflowIdForJob } from '../../common/temporal';
import { deliverWebhook } from '../../activities/webhook-delivery';
import { createJob } from '../../db/queries/jobs';
import { listDeliveries } from '../../db/queries/webhook-deliveries';
import { submitJob } from '../support/jobs';
import { ScriptedProvider } from '../support/scripted-provider';
import { getJson, postJson, validRequest, waitForJob, type TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { sleep, waitFor } from '../support/wait';
import {
  TEST_WEBHOOK_SECRET as SECRET,
  useWebhookReceivers,
  verifyWebhook,
  WEBHOOKS_TO_LOCAL_RECEIVERS,
} from '../support/webhooks';

/** The job's delivery attempts, once at least `count` are listed. */
function waitForDeliveries(stack: TestStack, jobId: string, count: number): Promise<Array<Record<string, any>>> {
  return waitFor(`${count} webhook deliveries of job ${jobId}`, async () => {
    const { body } = await getJson(stack.baseUrl, `/api/v1/jobs/${jobId}/webhook-deliveries`);
    return body!.deliveries.length >= count && (body!.deliveries as Array<Record<string, any>>);
  });
}

/** Signed webhooks to a local receiver (MEDIA_FETCH_ALLOW_PRIVATE=true), with retries shortened to 1 s, 2 s, … */
describe('webhooks', () => {
  const provider = new ScriptedProvider();
  const stack = useTestStack({ provider, env: WEBHOOKS_TO_LOCAL_RECEIVERS });
  const receivers = useWebhookReceivers();
  afterEach(() => {
    provider.predictionError = undefined;
  });

  it('retries a failing receiver, then delivers the signed status reply; every attempt is listed and one can be redelivered', async () => {
    const receiver = await receivers.start(2);
    const jobId = await submitJob(stack, { webhook_url: receiver.url });
    const received = await receiver.waitFor(3);
    expect(received.map((request) => request.answeredWith)).toEqual([500, 500, 200]);

    const delivered = received[2]!;
    expect(verifyWebhook(SECRET, delivered.headers, delivered.body)).toBe(true);
    expect(verifyWebhook(SECRET, delivered.headers, delivered.body.replace('COMPLETED', 'FAILED'))).toBe(false);
    expect(verifyWebhook(`whsec_${randomBytes(32).toString('base64')}`, delivered.headers, delivered.body)).toBe(false);
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
  });

  it('sends one `output` message per stored output when asked, and only the events asked for', async () => {
    const receiver = await receivers.start();
    const jobId = await submitJob(stack, {
      num_outputs: 2,
      webhook_url: receiver.url,
      webhook_events_filter: ['output'],
    });
    await waitForJob(stack.baseUrl, jobId);
    const received = await receiver.waitFor(2);
    await sleep(1_000);
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
  });

  it('announces a failed job with a `failed` message', async () => {
    const receiver = await receivers.start();
    provider.predictionError = 'NSFW content detected (scripted)';
    const job = await waitForJob(stack.baseUrl, await submitJob(stack, { webhook_url: receiver.url }));
    expect(job.status).toBe('FAILED');
    const [message] = await receiver.waitFor(1);
    const body = JSON.parse(message!.body) as Record<string, any>;
    expect(body).toMatchObject({
      event: 'failed',
      status: 'FAILED',
      error_message: 'NSFW content detected (scripted)',
    });
    expect(message!.headers['webhook-id']).toBe(`msg_${job.job_id}_failed`);
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

/** Jobs cancelled while their predictions run (a minute each), announced to a local receiver. */
describe('webhooks of cancelled jobs', () => {
  const stack = useTestStack({
    provider: new ScriptedProvider({ latencyMs: 60_000 }),
    env: WEBHOOKS_TO_LOCAL_RECEIVERS,
  });
  const receivers = useWebhookReceivers();

  it.each([
    ['an operator signal', (handle: WorkflowHandle) => handle.signal(cancelSignal, { reason: 'duplicate job' })],
    ['a workflow cancel request', (handle: WorkflowHandle) => handle.cancel()],
  ])('announces a job cancelled by %s with a `cancelled` message', async (_how, cancel) => {
    const receiver = await receivers.start();
    const jobId = await submitJob(stack, { webhook_url: receiver.url });
    await waitForJob(stack.baseUrl, jobId, (job) => job.status === 'PROCESSING', 20_000);
    await cancel(stack.client.workflow.getHandle(workflowIdForJob(jobId)));
    const [message] = await receiver.waitFor(1);
    expect(JSON.parse(message!.body)).toMatchObject({ event: 'cancelled', status: 'CANCELLED', job_id: jobId });
    expect(message!.headers['webhook-id']).toBe(`msg_${jobId}_cancelled`);
    expect(verifyWebhook(SECRET, message!.headers, message!.body)).toBe(true);
  });
});

describe('webhook address rules and configuration', () => {
  const strict = useTestStack({ worker: false, env: { WEBHOOK_SIGNING_SECRET: SECRET } });
  const unsigned = useTestStack({ worker: false });

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

  /** A job of its own, and one `completed` message of it delivered by the activity to `url`. */
  const deliveryOf = async (prompt: string) => {
    const job = await createJob(strict.database.db, {
      model: 'a/b',
      prompt,
      numOutputs: 1,
      seed: 1,
      outputFormat: 'png',
    });
    const presigner = { client: undefined as never, bucket: 'unused', expiresInSeconds: 60 };
    const deliver = (url: string, options: { allowPrivate: boolean; timeoutMs?: number }) =>
      deliverWebhook(
        strict.database.db,
        { signingSecret: SECRET, presigner, ...options },
        { jobId: job.id, messageId: `msg_${job.id}_completed`, event: 'completed', url },
        new AbortController().signal,
      );
    return { job, deliver, deliveries: () => listDeliveries(strict.database.db, job.id) };
  };

  /** A receiver on 127.0.0.1 answering with `handler` while `run` runs with its URL. */
  async function withReceiver(handler: http.RequestListener, run: (url: string) => Promise<void>): Promise<void> {
    const receiver = http.createServer(handler);
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      await run(`http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`);
    } finally {
      receiver.closeAllConnections();
      await new Promise((resolve) => receiver.close(resolve));
    }
  }

  it('refuses, at delivery, a name that resolves to a private address, without retrying, and records why', async () => {
    const { deliver, deliveries } = await deliveryOf('rebinding');
    await expect(deliver('https://localhost:9/hook', { allowPrivate: false })).rejects.toMatchObject({
      type: 'ForbiddenWebhookUrl',
      nonRetryable: true,
      message: expect.stringMatching(/localhost resolves to (127\.0\.0\.1|::1), which is not public/),
    });
    const [recorded] = await deliveries();
    expect(recorded).toMatchObject({ attempt: 1, statusCode: null, error: expect.stringMatching(/not public/) });
  });

  it('records an attempt before it sends it: one cut off with its worker stays listed, unfinished', async () => {
    const { deliver, deliveries } = await deliveryOf('an attempt in flight');
    // The receiver holds its answer until the test has seen the attempt listed.
    let answer: (() => void) | undefined;
    const holdAnswer: http.RequestListener = (_request, response) => {
      answer = () => response.writeHead(204).end();
    };
    await withReceiver(holdAnswer, async (url) => {
      const delivery = deliver(url, { allowPrivate: true, timeoutMs: 10_000 });
      await waitFor('the receiver to hold the message', () => answer, 5_000);
      const [inFlight] = await deliveries();
      expect(inFlight).toMatchObject({ attempt: 1, statusCode: null, error: null, finishedAt: null });
      answer!();
      expect(await delivery).toEqual({ statusCode: 204, attempt: 1 });
      const [finished] = await deliveries();
      expect(finished).toMatchObject({ id: inFlight!.id, attempt: 1, statusCode: 204, finishedAt: expect.any(Date) });
    });
  });

  it('takes a 2xx whose body never ends as delivered, and records what the receiver answered', async () => {
    const { deliver, deliveries } = await deliveryOf('a body that never ends');
    // The receiver takes the message (200), then keeps its answer's body open, a byte every 100 ms.
    const trickleForever: http.RequestListener = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' });
      const trickle = setInterval(() => response.write('.'), 100);
      response.on('close', () => clearInterval(trickle));
    };
    await withReceiver(trickleForever, async (url) => {
      expect(await deliver(url, { allowPrivate: true, timeoutMs: 1_000 })).toEqual({ statusCode: 200, attempt: 1 });
      const [recorded] = await deliveries();
      expect(recorded).toMatchObject({ attempt: 1, statusCode: 200, error: null });
      expect(recorded!.responseSnippet).toMatch(/^\.+$/);
    });
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
