import { randomUUID } from 'node:crypto';
import { finishJob } from '../../db/queries/jobs';
import { beginDeliveryAttempt, finishDeliveryAttempt } from '../../db/queries/webhook-deliveries';
import { createTestKey } from '../support/public-api';
import { getJson, postJson, validRequest } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { sleep } from '../support/wait';

/** RATE_LIMIT_PER_MINUTE, shared through Postgres by every API process (two apps here). */
describe('RATE_LIMIT_PER_MINUTE', () => {
  const LIMIT = 5;
  const env = { RATE_LIMIT_PER_MINUTE: String(LIMIT), AUTH_MODE: 'required' };
  const first = useTestStack({ worker: false, env });
  const second = useTestStack({ worker: false, env });

  it('answers 429 with Retry-After and RateLimit headers past the limit, counted across API processes, per key', async () => {
    const key = await createTestKey(first.database.db, 'burst');
    let probe = await getJson(first.baseUrl, '/api/v1/jobs?limit=1', key.auth);
    expect(probe.status).toBe(200);
    expect(probe.headers.get('ratelimit-limit')).toBe(String(LIMIT));
    // Start the burst in a fresh minute window, so that all of it is counted in one.
    const reset = Number(probe.headers.get('ratelimit-reset'));
    expect(reset).toBeGreaterThanOrEqual(1);
    expect(reset).toBeLessThanOrEqual(60);
    await sleep(reset * 1000 + 300);
    probe = await getJson(first.baseUrl, '/api/v1/jobs?limit=1', key.auth);
    expect(probe.headers.get('ratelimit-remaining')).toBe(String(LIMIT - 1));

    const replies = [];
    for (let i = 0; i < 8; i++)
      replies.push(await getJson(i % 2 === 0 ? second.baseUrl : first.baseUrl, '/api/v1/jobs?limit=1', key.auth));
    expect(replies.map((reply) => reply.status)).toEqual([200, 200, 200, 200, 429, 429, 429, 429]);
    expect(replies.map((reply) => reply.headers.get('ratelimit-remaining'))).toEqual([
      '3',
      '2',
      '1',
      '0',
      '0',
      '0',
      '0',
      '0',
    ]);
    const limited = replies[4]!;
    expect(limited.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get('ratelimit-reset'))).toBeGreaterThanOrEqual(1);
    expect(limited.body!.detail).toMatch(/RATE_LIMIT_PER_MINUTE/);

    // Another key has its own budget.
    const other = await createTestKey(first.database.db, 'other');
    expect((await getJson(second.baseUrl, '/api/v1/jobs?limit=1', other.auth)).status).toBe(200);
  }, 90_000);
});

/**
 * RATE_LIMIT_PER_MINUTE bounds bursts too: a whole minute's budget cannot be spent in one second
 * (a fixed one-minute window let 135 requests through in a second at a limit of 120).
 */
describe('RATE_LIMIT_PER_MINUTE bursts', () => {
  const env = { RATE_LIMIT_PER_MINUTE: '60', AUTH_MODE: 'required' };
  const first = useTestStack({ worker: false, env });
  const second = useTestStack({ worker: false, env });

  it('refuses most of 30 requests fired at once at the start of a window, across API processes, and lets requests through again a second later', async () => {
    const key = await createTestKey(first.database.db, 'bursty');
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        getJson(i % 2 === 0 ? first.baseUrl : second.baseUrl, '/api/v1/jobs?limit=1', key.auth),
      ),
    );
    const statuses = replies.map((reply) => reply.status);
    const accepted = statuses.filter((status) => status === 200).length;
    const refused = statuses.filter((status) => status === 429).length;
    expect(accepted + refused).toBe(30);
    expect(accepted).toBeGreaterThanOrEqual(1);
    expect(refused).toBeGreaterThanOrEqual(20);
    const limited = replies.find((reply) => reply.status === 429)!;
    expect(limited.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited.headers.get('ratelimit-limit')).toBe('60');
    expect(limited.headers.get('ratelimit-remaining')).toBe('0');
    expect(limited.headers.get('ratelimit-policy')).toMatch(/^60;w=60\b/);
    expect(limited.body!.detail).toMatch(/RATE_LIMIT_PER_MINUTE/);

    // The burst allowance refills within seconds: the refused requests did not spend the minute.
    await sleep(Number(limited.headers.get('retry-after')) * 1000 + 200);
    expect((await getJson(second.baseUrl, '/api/v1/jobs?limit=1', key.auth)).status).toBe(200);
  });
});

/** Redelivering a webhook is limited per job (WEBHOOK_REDELIVERIES_PER_MINUTE, 5 by default). */
describe('webhook redelivery limit', () => {
  const stack = useTestStack({ worker: false });

  async function jobWithDelivery(): Promise<{ jobId: string; deliveryId: string }> {
    const jobId = (await postJson(stack.baseUrl, '/api/v1/generate', validRequest)).body!.job_id as string;
    const delivery = await beginDeliveryAttempt(stack.database.db, {
      jobId,
      messageId: `msg_${jobId}_completed`,
      event: 'completed',
      url: 'https://receiver.example/hooks/media',
    });
    await finishDeliveryAttempt(stack.database.db, delivery.id, { statusCode: 500 });
    return { jobId, deliveryId: delivery.id };
  }

  it('answers 429 with Retry-After past 5 redeliveries of a job in a minute; another job is not affected', async () => {
    const { jobId, deliveryId } = await jobWithDelivery();
    const path = `/api/v1/jobs/${jobId}/webhook-deliveries/${deliveryId}/redeliver`;
    const replies = [];
    for (let i = 0; i < 7; i++) replies.push(await postJson(stack.baseUrl, path, {}));
    expect(replies.map((reply) => reply.status)).toEqual([202, 202, 202, 202, 202, 429, 429]);
    const limited = replies[5]!;
    expect(limited.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(limited.body!.detail).toMatch(/5 redeliveries.*WEBHOOK_REDELIVERIES_PER_MINUTE=5/);

    const other = await jobWithDelivery();
    expect(
      (
        await postJson(
          stack.baseUrl,
          `/api/v1/jobs/${other.jobId}/webhook-deliveries/${other.deliveryId}/redeliver`,
          {},
        )
      ).status,
    ).toBe(202);
  });
});

/** MAX_RUNNING_JOBS_PER_KEY: a cap on PENDING and PROCESSING jobs. No worker, so jobs stay PENDING until cancelled. */
describe('MAX_RUNNING_JOBS_PER_KEY', () => {
  const stack = useTestStack({ worker: false, env: { MAX_RUNNING_JOBS_PER_KEY: '2', AUTH_MODE: 'required' } });

  it('refuses a third unfinished job with a 429 problem saying so, also under concurrent submits, and counts per key', async () => {
    const key = await createTestKey(stack.database.db, 'capped');
    const prompt = `capped ${randomUUID()}`;
    const replies = await Promise.all(
      Array.from({ length: 5 }, () =>
        postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, prompt }, key.auth),
      ),
    );
    expect(replies.map((reply) => reply.status).sort()).toEqual([202, 202, 429, 429, 429]);
    const refused = replies.find((reply) => reply.status === 429)!;
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(refused.body!.detail).toMatch(/already has 2 jobs PENDING or PROCESSING.*MAX_RUNNING_JOBS_PER_KEY=2/);
    const listed = await getJson(stack.baseUrl, '/api/v1/jobs?limit=100', key.auth);
    expect(listed.body!.jobs).toHaveLength(2);

    // Another key is not affected.
    const other = await createTestKey(stack.database.db, 'other');
    expect((await postJson(stack.baseUrl, '/api/v1/generate', validRequest, other.auth)).status).toBe(202);

    // Once a job ends (no worker polls here, so it is ended as its workflow would), there is room again.
    const ended = replies.find((reply) => reply.status === 202)!.body!.job_id as string;
    expect(await finishJob(stack.database.db, ended, { status: 'COMPLETED' })).toBe(true);
    expect((await postJson(stack.baseUrl, '/api/v1/generate', validRequest, key.auth)).status).toBe(202);
  });

  it('answers concurrent repeats of one Idempotency-Key with its job, not a 429, when that job takes the last place', async () => {
    const key = await createTestKey(stack.database.db, 'capped-replays');
    expect((await postJson(stack.baseUrl, '/api/v1/generate', validRequest, key.auth)).status).toBe(202);
    // One place left: the first of the repeats takes it, and the others are repeats of that job.
    const headers = { ...key.auth, 'Idempotency-Key': `last-place-${randomUUID()}` };
    const replies = await Promise.all(
      Array.from({ length: 6 }, () => postJson(stack.baseUrl, '/api/v1/generate', validRequest, headers)),
    );
    expect(replies.map((reply) => reply.status).sort()).toEqual([200, 200, 200, 200, 200, 202]);
    expect(new Set(replies.map((reply) => reply.body!.job_id)).size).toBe(1);
    expect(replies.filter((reply) => reply.headers.get('idempotent-replayed') === 'true')).toHaveLength(5);
    const listed = await getJson(stack.baseUrl, '/api/v1/jobs?limit=100', key.auth);
    expect(listed.body!.jobs).toHaveLength(2);
  });
});
