import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import { ActivityCancellationType } from '@temporalio/workflow';
import { NonRetryable } from '../common/errors';
import type { ActivityPolicyOverrides } from '../common/temporal';

/**
 * The named retry and timeout policies, one per kind of activity. Long activities heartbeat,
 * so a dead worker is noticed after `heartbeatTimeout` rather than after `startToCloseTimeout`.
 *
 * Short steps (`database`, `createPrediction`, `persistLocally`) run as local activities: inside the workflow task of
 * the worker that runs the workflow, recorded as a marker in the history, without a task of their
 * own on the server. A worker that dies during one is noticed when that workflow task times out
 * (10 s), and the step runs again on the next worker, which every one of them is written to allow.
 */
export function activityPolicies(overrides: ActivityPolicyOverrides = {}) {
  const heartbeatTimeout = `${overrides.heartbeatTimeoutSeconds ?? 10}s` as const;

  /** Conditional updates of rows: quick, and retried until the database answers. */
  const database: LocalActivityOptions = {
    startToCloseTimeout: '15s',
    // The workflow moves on only once the write has really ended, so a late write cannot land after a newer one.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '200ms',
      backoffCoefficient: 2,
      maximumInterval: '10s',
      nonRetryableErrorTypes: [NonRetryable.JobNotFound],
    },
  };

  /** Cancelling a prediction upstream: a provider call, retried like a database write (a few times). */
  const cancelPrediction: ActivityOptions = {
    startToCloseTimeout: '15s',
    retry: database.retry,
  };

  /** Creating the prediction: one short, billed call, recorded in Postgres before it returns. */
  const createPrediction: LocalActivityOptions = {
    startToCloseTimeout: '30s',
    // A cancelled job waits for the create to end, so the prediction it made is on record when the job cancels it.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: overrides.generateMaxAttempts ?? 8,
      nonRetryableErrorTypes: [NonRetryable.InvalidInput, NonRetryable.JobNotFound],
    },
  };

  /**
   * Waiting for the prediction: as long as the model runs, heartbeating. The provider's trouble on a
   * poll is waited out inside the activity, so what is left to retry here is the worker's own end
   * (killed, stopped by a deploy): any number of times, within the wait's time budget.
   */
  const awaitPrediction: ActivityOptions = {
    startToCloseTimeout: `${overrides.predictionWaitSeconds ?? 7200}s`,
    scheduleToCloseTimeout: `${overrides.predictionWaitSeconds ?? 7200}s`,
    heartbeatTimeout,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '10s',
      nonRetryableErrorTypes: [
        NonRetryable.PredictionFailed,
        NonRetryable.PredictionCanceled,
        NonRetryable.InvalidInput,
      ],
    },
  };

  /**
   * Streaming one output into S3; heartbeats while bytes flow. Interruptions (a worker killed or
   * stopped mid-upload: a heartbeat timeout) are bounded by the time budget, not counted: the
   * activity counts the source's and storage's own errors and fails for good on the
   * `persistMaxAttempts`th (PersistOutputInput.maxFailedAttempts).
   */
  const persist: ActivityOptions = {
    startToCloseTimeout: '1h',
    scheduleToCloseTimeout: `${overrides.persistBudgetSeconds ?? 21600}s`,
    heartbeatTimeout,
    // The job is only ended once every upload has really stopped, so no row changes after it.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      nonRetryableErrorTypes: [
        NonRetryable.OutputExpired,
        NonRetryable.OutputTooLarge,
        NonRetryable.UnsupportedMediaType,
        NonRetryable.ForbiddenSource,
        NonRetryable.OutputAttemptsExhausted,
      ],
    },
  };

  /**
   * Storing a small output (one that announces at most `persistLocallyMaxBytes`) inside the workflow
   * task, as persistOutput does, without a task of its own: one attempt of at most 3 s. Whatever
   * stops it short (the source's or storage's own error, a slow source, the worker stopping) hands
   * the output to persistOutput, the regular heartbeating activity with the retry policy above.
   * Short, because while a local activity runs its workflow task stays open: a signal (a cancel)
   * or another output's result is taken in when it ends, at most 3 s later.
   */
  const persistLocally: LocalActivityOptions = {
    startToCloseTimeout: '3s',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 1 },
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
      nonRetryableErrorTypes: [
        NonRetryable.ForbiddenWebhookUrl,
        NonRetryable.WebhookNotConfigured,
        NonRetryable.JobNotFound,
        NonRetryable.BatchNotFound,
      ],
    },
  };

  return { database, cancelPrediction, createPrediction, awaitPrediction, persist, persistLocally, webhook };
}
