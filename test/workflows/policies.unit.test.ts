import { ActivityCancellationType } from '@temporalio/workflow';
import { NonRetryable } from '../../common/errors';
import { activityPolicies } from '../../workflows/policies';

describe('activity policies', () => {
  const defaults = activityPolicies();

  it('sets a start-to-close timeout on every policy', () => {
    for (const [name, policy] of Object.entries(defaults))
      expect({ name, startToCloseTimeout: policy.startToCloseTimeout }).toEqual({
        name,
        startToCloseTimeout: expect.stringMatching(/^\d+(ms|s|m|h)$/),
      });
  });

  it('gives a small output one local attempt of at most 3 s, which waits for its cancel to end', () => {
    expect(defaults.persistLocally).toEqual({
      startToCloseTimeout: '3s',
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { maximumAttempts: 1 },
    });
  });

  it('bounds persist by a schedule-to-close budget (6 h), not by attempts, and heartbeats', () => {
    expect(defaults.persist).toMatchObject({
      startToCloseTimeout: '1h',
      scheduleToCloseTimeout: '21600s',
      heartbeatTimeout: '10s',
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
    expect(defaults.persist.retry).not.toHaveProperty('maximumAttempts');
    expect(defaults.persist.retry!.nonRetryableErrorTypes).toEqual(
      expect.arrayContaining([
        NonRetryable.OutputExpired,
        NonRetryable.OutputTooLarge,
        NonRetryable.UnsupportedMediaType,
        NonRetryable.ForbiddenSource,
        NonRetryable.OutputAttemptsExhausted,
      ]),
    );
  });

  it('waits for a prediction within a time budget (2 h), heartbeating, and never retries a failed prediction', () => {
    expect(defaults.awaitPrediction).toMatchObject({
      startToCloseTimeout: '7200s',
      scheduleToCloseTimeout: '7200s',
      heartbeatTimeout: '10s',
    });
    expect(defaults.awaitPrediction.retry).not.toHaveProperty('maximumAttempts');
    expect(defaults.awaitPrediction.retry!.nonRetryableErrorTypes).toEqual(
      expect.arrayContaining([NonRetryable.PredictionFailed, NonRetryable.PredictionCanceled]),
    );
  });

  it('creates a prediction in at most 8 attempts, never retrying an input the provider refused', () => {
    expect(defaults.createPrediction.retry).toMatchObject({ maximumAttempts: 8 });
    expect(defaults.createPrediction.retry!.nonRetryableErrorTypes).toEqual(
      expect.arrayContaining([NonRetryable.InvalidInput, NonRetryable.JobNotFound]),
    );
    expect(defaults.createPrediction.cancellationType).toBe(ActivityCancellationType.WAIT_CANCELLATION_COMPLETED);
  });

  it('retries database writes until the database answers, except for a job that has no row', () => {
    expect(defaults.database.retry).not.toHaveProperty('maximumAttempts');
    expect(defaults.database.retry!.nonRetryableErrorTypes).toEqual([NonRetryable.JobNotFound]);
    expect(defaults.cancelPrediction.retry).toBe(defaults.database.retry);
  });

  it('retries webhooks from 30 s up to an hour for a day, never to an address that may not be called', () => {
    expect(defaults.webhook).toMatchObject({
      scheduleToCloseTimeout: '24h',
      retry: { initialInterval: '30s', backoffCoefficient: 2, maximumInterval: '3600s' },
    });
    expect(defaults.webhook.retry!.nonRetryableErrorTypes).toContain(NonRetryable.ForbiddenWebhookUrl);
  });

  it('applies the overrides a job carries, and only to the policies they name', () => {
    const overridden = activityPolicies({
      generateMaxAttempts: 2,
      persistBudgetSeconds: 600,
      predictionWaitSeconds: 4,
      heartbeatTimeoutSeconds: 2,
      webhookInitialIntervalSeconds: 1,
    });
    expect(overridden.createPrediction.retry!.maximumAttempts).toBe(2);
    expect(overridden.persist).toMatchObject({ scheduleToCloseTimeout: '600s', heartbeatTimeout: '2s' });
    expect(overridden.awaitPrediction).toMatchObject({
      startToCloseTimeout: '4s',
      scheduleToCloseTimeout: '4s',
      heartbeatTimeout: '2s',
    });
    expect(overridden.webhook.retry).toMatchObject({ initialInterval: '1s', maximumInterval: '3600s' });
    expect(activityPolicies({ webhookInitialIntervalSeconds: 7200 }).webhook.retry!.maximumInterval).toBe('7200s');
    expect(overridden.database).toEqual(defaults.database);
  });
});
