import { ApplicationFailure } from '@temporalio/activity';
import { deliverBatchWebhook, deliverWebhook, retryDelaySeconds } from '../../activities/webhook-delivery';
import { NonRetryable } from '../../common/errors';
import type { Database } from '../../db/client';

/** Without the worker's signing secret no message goes out, and none is retried: it is configuration, not a fault. */
describe('webhook delivery without WEBHOOK_SIGNING_SECRET', () => {
  // Never reached: the missing secret is found before the database is asked anything.
  const db = new Proxy(
    {},
    {
      get: () => {
        throw new Error('the database was used');
      },
    },
  ) as Database;
  const signal = new AbortController().signal;
  const notConfigured = expect.objectContaining({
    type: NonRetryable.WebhookNotConfigured,
    nonRetryable: true,
    message: 'WEBHOOK_SIGNING_SECRET is not set on the worker',
  });

  it.each([undefined, { allowPrivate: false }])('refuses a job message (settings %p)', async (deps) => {
    const delivery = deliverWebhook(
      db,
      deps as never,
      {
        jobId: '00000000-0000-4000-8000-000000000000',
        messageId: 'msg_1',
        event: 'completed',
        url: 'https://receiver.example/hooks',
      },
      signal,
    );
    await expect(delivery).rejects.toBeInstanceOf(ApplicationFailure);
    await expect(delivery).rejects.toEqual(notConfigured);
  });

  it('refuses a batch message', async () => {
    const delivery = deliverBatchWebhook(
      db,
      undefined,
      {
        batchId: '00000000-0000-4000-8000-000000000000',
        messageId: 'msg_batch_1',
        url: 'https://receiver.example/hooks',
      },
      signal,
    );
    await expect(delivery).rejects.toEqual(notConfigured);
  });
});

/** A receiver's Retry-After against the webhook policy (30 s, doubling, up to an hour). */
describe("the delay a receiver's Retry-After sets", () => {
  const retryPolicy = { initialInterval: '30s', backoffCoefficient: 2, maximumInterval: '1h' } as const;

  it('takes a Retry-After longer than the next backoff', () => {
    expect(retryDelaySeconds('120', { attempt: 1, retryPolicy })).toBe(120);
    expect(retryDelaySeconds('7200', { attempt: 20, retryPolicy })).toBe(7200);
  });

  it("leaves the policy's backoff when Retry-After asks for less", () => {
    expect(retryDelaySeconds('1', { attempt: 1, retryPolicy })).toBeUndefined();
    // Attempt 4 backs off 240 s: 200 is less.
    expect(retryDelaySeconds('200', { attempt: 4, retryPolicy })).toBeUndefined();
    expect(retryDelaySeconds(undefined, { attempt: 1, retryPolicy })).toBeUndefined();
  });

  it('takes Retry-After as it is when the attempt does not say its policy', () => {
    expect(retryDelaySeconds('1', { attempt: 1, retryPolicy: undefined })).toBe(1);
  });

  it('cuts a Retry-After longer than the retries have left to what is left, less one attempt', () => {
    // Scheduled 23 h ago with a day to close and 30 s per attempt: 3570 s are left for the next one.
    const scheduledTimestampMs = 1_000_000_000_000;
    const now = scheduledTimestampMs + 23 * 3600_000;
    const late = { scheduledTimestampMs, scheduleToCloseTimeoutMs: 24 * 3600_000, startToCloseTimeoutMs: 30_000 };
    expect(retryDelaySeconds('90000', { attempt: 3, retryPolicy, ...late }, now)).toBe(3570);
    expect(retryDelaySeconds('600', { attempt: 3, retryPolicy, ...late }, now)).toBe(600);
    // Less left than the policy's own backoff: the policy's backoff, which the server then judges.
    expect(retryDelaySeconds('90000', { attempt: 3, retryPolicy, ...late }, now + 3500_000)).toBeUndefined();
  });
});
