import type { ActivityOptions } from '@temporalio/workflow';
import { ActivityCancellationType } from '@temporalio/workflow';
import { NonRetryable } from '../common/errors';
import type { ActivityPolicyOverrides } from '../common/temporal';

/**
 * The named retry and timeout policies, one per kind of activity. Long activities heartbeat,
 * so a dead worker is noticed after `heartbeatTimeout` rather than after `startToCloseTimeout`.
 */
export function activityPolicies(overrides: ActivityPolicyOverrides = {}) {
  const heartbeatTimeout = `${overrides.heartbeatTimeoutSeconds ?? 10}s` as const;

  /** Conditional updates of a row: quick, and retried until the database answers. */
  const database: ActivityOptions = {
    startToCloseTimeout: '15s',
    retry: {
      initialInterval: '200ms',
      backoffCoefficient: 2,
      maximumInterval: '10s',
      nonRetryableErrorTypes: [NonRetryable.JobNotFound],
    },
  };

  /** Creating the prediction: one short, billed call. */
  const createPrediction: ActivityOptions = {
    startToCloseTimeout: '30s',
    // It heartbeats while it waits on the provider and the database: a dead worker is noticed in seconds.
    heartbeatTimeout,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: overrides.generateMaxAttempts ?? 8,
      nonRetryableErrorTypes: [NonRetryable.InvalidInput, NonRetryable.JobNotFound],
    },
  };

  /** Waiting for the prediction: as long as the model runs, heartbeating on every poll. */
  const awaitPrediction: ActivityOptions = {
    startToCloseTimeout: '2h',
    heartbeatTimeout,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: overrides.generateMaxAttempts ?? 8,
      nonRetryableErrorTypes: [NonRetryable.PredictionFailed, NonRetryable.PredictionCanceled, NonRetryable.InvalidInput],
    },
  };

  /** Streaming one output into S3; heartbeats while bytes flow. */
  const persist: ActivityOptions = {
    startToCloseTimeout: '1h',
    heartbeatTimeout,
    // The job is only ended once every upload has really stopped, so no row changes after it.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: overrides.persistMaxAttempts ?? 5,
      nonRetryableErrorTypes: [
        NonRetryable.OutputExpired,
        NonRetryable.OutputTooLarge,
        NonRetryable.UnsupportedMediaType,
        NonRetryable.ForbiddenSource,
      ],
    },
  };

  /**
   * Delivering a webhook: a receiver may be down for hours, so retries back off from 30 s to an
   * hour and give up after a day. Addresses that may never be called are not retried.
   */
  const initialSeconds = overrides.webhookInitialIntervalSeconds ?? 30;
  const webhook: ActivityOptions = {
    startToCloseTimeout: '30s',
    scheduleToCloseTimeout: '24h',
    retry: {
      initialInterval: `${initialSeconds}s`,
      backoffCoefficient: 2,
      maximumInterval: `${Math.max(initialSeconds, 3600)}s`,
      nonRetryableErrorTypes: [NonRetryable.ForbiddenWebhookUrl, NonRetryable.WebhookNotConfigured, NonRetryable.JobNotFound],
    },
  };

  return { database, createPrediction, awaitPrediction, persist, webhook };
}
