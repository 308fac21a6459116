import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import type { FaultInjectionPoint } from '../common/config';
import { NonRetryable } from '../common/errors';
import { isTerminalStatus, type JobStatus, type OutputFormat, type TerminalStatus } from '../common/statuses';
import { mediaObjectKey } from '../common/storage-keys';
import type { Database } from '../db/client';
import {
  getPredictionId,
  markJobProcessing,
  recordJobGenerated,
  recordPredictionId,
  type JobStart,
} from '../db/queries/jobs';
import {
  getMedia,
  markMediaCompleted,
  type OutputRecord,
  markMediaFailed,
  markMediaProcessing,
  recordMediaAttemptFailed,
} from '../db/queries/media';
import { databaseUnavailableReason } from '../db/availability';
import { heartbeatWhile, isRetryableFailure, pollRetryDelayMs, storableText, waitOutDatabaseOutage } from './helpers';
import { storeObject } from './object-storage';
import { reconcileUnfinishedJobs } from './reconcile';
import { abortStaleUploads, removeExpiredBatch, type RemovalBatch } from './retention';
import { finishJobFromWorkflow, settleDueJobs, type ReconcileResult } from '../jobs/lifecycle';
import { announceBatchEnd, announceOverdueBatches, type BatchWebhookDependencies } from '../jobs/batch-webhook';
import { deliverBatchWebhook, deliverWebhook, type DeliveryResult, type WebhookDependencies } from './webhook-delivery';
import type { ActivityPolicyOverrides, BatchWebhookMessage, WebhookMessage } from '../common/temporal';
import type { GenerationRequest, MediaProvider, PredictionState } from './providers/provider';

/** A prediction on record; with its outputs when it had already succeeded (a provider that may finish on create). */
export interface CreatedPrediction {
  predictionId: string;
  attempt: number;
  outputUrls?: string[];
}

/** startJobWithPrediction found the job ended already (the reconciler ended it): nothing was created. */
export interface AlreadyEnded {
  alreadyEnded: TerminalStatus;
}

/** startJobWithPrediction could not reach the database to start the job: nothing was created or written. */
export interface StartLeftToStartJob {
  databaseUnavailable: string;
}

export interface ActivityDependencies {
  db: Database;
  s3: S3Client;
  bucket: string;
  provider: MediaProvider;
  maxOutputBytes: number;
  logger: Logger;
  /** For the reconciler, which reads workflow states. */
  temporal?: Client;
  /** Policy overrides for the clean-up of jobs the reconciler ends (webhook retries). */
  settlePolicies?: ActivityPolicyOverrides;
  /** How often a waiting activity asks the provider about its prediction. */
  predictionPollIntervalMs?: number;
  /** Signing secret and address rules for webhooks; without them, deliveries fail (not retried). */
  webhooks?: WebhookDependencies;
  /** FAULT_INJECTION_PAUSE_AT: fault tests only; unset in any real deployment. */
  faultInjectionPauseAt?: FaultInjectionPoint;
}

export interface PersistOutputInput {
  jobId: string;
  outputIndex: number;
  sourceUrl: string;
  outputFormat: OutputFormat;
  /** Attempts failed on the source's or storage's own error before the output fails for good. */
  maxFailedAttempts?: number;
  /** Attempts made before this activity's own: a local attempt that did not store the output. */
  attemptsBefore?: number;
}

/** A small output, stored by a local activity when its source announces at most `maxBytes`. */
export interface PersistSmallOutputInput extends PersistOutputInput {
  maxBytes: number;
}

/** The local activity did not store the output, and why (no announced length, too large): persistOutput does. */
export interface HandedOver {
  handedOver: string;
}

/** PERSIST_MAX_ATTEMPTS unset: the output fails on the fifth failure of its own. */
export const DEFAULT_PERSIST_MAX_FAILED_ATTEMPTS = 5;
/** A duplicate prediction's cancel: tries, and the time each may take (within the create's 30 s). */
const DUPLICATE_CANCEL_TRIES = 3;
const DUPLICATE_CANCEL_TRY_MS = 3_000;
/** What a cancel's call to the provider leaves of its attempt's start-to-close: the attempt ends on its own, not by its timeout. */
const CANCEL_CALL_MARGIN_MS = 3_000;

export interface PersistOutputResult {
  s3Key: string;
  contentType: string;
  sizeBytes: number;
  sha256: string;
  attempt: number;
}

export interface FinishJobInput {
  jobId: string;
  status: TerminalStatus;
  errorMessage?: string;
  generationRetries?: number;
  /** false: the job belongs to no batch (MediaGenerationInput.inBatch); unset: looked up. */
  inBatch?: boolean;
}

/**
 * Every side effect of a job. Each activity can be run twice or cut off at any line: database
 * writes are conditional updates, objects are overwritten under the same key, and the only billed
 * call (creating a prediction) is recorded before anything else can happen.
 */
export function createActivities(deps: ActivityDependencies) {
  const { db, s3, bucket, provider, maxOutputBytes, logger } = deps;
  const pollIntervalMs = deps.predictionPollIntervalMs ?? 1_000;
  const untilDatabaseAnswers = <T>(write: () => Promise<T>): Promise<T> => waitOutDatabaseOutage(write, logger);
  /** Fault tests only: stops the activity at `point` until the worker is killed (or the activity cancelled). */
  const pauseForFaultInjection = async (point: FaultInjectionPoint): Promise<void> => {
    if (deps.faultInjectionPauseAt !== point) return;
    logger.warn({ point }, `fault injection: paused at ${point}`);
    await Context.current().sleep(2 ** 31 - 1);
  };

  /** Where a batch's webhook workflow runs (this activity's task queue) and how its delivery retries. */
  const batchWebhookDependencies = (temporal: Client): BatchWebhookDependencies => ({
    db,
    temporal,
    config: {
      TEMPORAL_TASK_QUEUE: Context.current().info.taskQueue,
      WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS: deps.settlePolicies?.webhookInitialIntervalSeconds,
    },
  });

  /**
   * One attempt at storing an output: its source streamed into S3, then its row. `localMaxBytes`
   * (a local attempt) hands over a source that does not announce a length within it, unread.
   */
  const storeOutput = async (
    input: PersistOutputInput,
    context: Context,
    ref: { jobId: string; outputIndex: number },
    localMaxBytes?: number,
  ): Promise<PersistOutputResult> => {
    const key = mediaObjectKey(input.jobId, input.outputIndex, input.outputFormat);
    const attempt = outputAttempt(input, context);
    let bytesStored = 0;
    // Heartbeats for as long as it runs, not only as bytes flow: a source slow to answer or a part
    // upload slower than the heartbeat timeout is not a dead worker. A stalled source or S3
    // connection fails on its own idle timeout (safe-download, common/s3.ts) and is retried.
    return heartbeatWhile(
      async () => {
        if (attempt > 1) {
          // An earlier attempt stored it and its answer was lost (its worker died after the record):
          // the output is not fetched again, whatever its source says by now.
          const row = await untilDatabaseAnswers(() => getMedia(db, ref));
          if (row?.status === 'COMPLETED' && row.contentType && row.sizeBytes !== null && row.sha256) {
            return {
              s3Key: row.s3Key,
              contentType: row.contentType,
              sizeBytes: row.sizeBytes,
              sha256: row.sha256,
              attempt,
            };
          }
        }
        // A local attempt lasts a moment: its output goes from PENDING to COMPLETED in one write (and
        // one event). An attempt of persistOutput, which may stream for minutes, says it is under way.
        if (!context.info.isLocal)
          await untilDatabaseAnswers(() => markMediaProcessing(db, ref, input.sourceUrl, attempt));
        const source = await provider.openOutput(input.sourceUrl, context.cancellationSignal);
        if (
          localMaxBytes !== undefined &&
          !(source.declaredLength !== undefined && source.declaredLength <= localMaxBytes)
        ) {
          source.body.destroy();
          throw new HandOver(
            source.declaredLength === undefined
              ? 'the source announces no length'
              : `the source announces ${source.declaredLength} bytes, over ${localMaxBytes} (PERSIST_LOCALLY_MAX_BYTES)`,
          );
        }
        if (source.declaredLength !== undefined && source.declaredLength > maxOutputBytes) {
          source.body.destroy();
          throw ApplicationFailure.create({
            type: NonRetryable.OutputTooLarge,
            message: `the output is ${source.declaredLength} bytes, over the ${maxOutputBytes}-byte limit (MEDIA_MAX_BYTES)`,
            nonRetryable: true,
          });
        }
        const stored = await storeObject({
          client: s3,
          bucket,
          key,
          source: source.body,
          maxBytes: maxOutputBytes,
          signal: context.cancellationSignal,
          earlierAttempts: attempt > 1,
          onProgress: (bytes) => {
            bytesStored = bytes;
          },
        });
        await pauseForFaultInjection('after-upload');
        const recorded = await untilDatabaseAnswers(() =>
          markMediaCompleted(db, ref, { ...stored, sourceUrl: input.sourceUrl, attempt }),
        );
        if (recorded !== 'recorded') await discardOutlivedOutput(recorded, key);
        return { s3Key: key, ...stored, attempt };
      },
      () => ({ bytesStored }),
    );
  };

  /**
   * An attempt that stored its object after its job had ended: nothing records the object. One whose
   * job's outputs are being removed (a DELETE, the retention) removes it again, since the removal
   * may already have passed its key. One whose job ended without that leaves it to the job's
   * removal: under the same key a retry of the job may be storing its own. Either way the attempt
   * ends for good, and nothing more is written to the output's row.
   */
  const discardOutlivedOutput = async (refused: Exclude<OutputRecord, 'recorded'>, key: string): Promise<never> => {
    if (refused === 'removal-due') {
      await s3
        .send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
        .catch((error: unknown) =>
          logger.warn(
            { err: error, key },
            "could not remove an object stored after its job's outputs were removed; it stays in the bucket",
          ),
        );
      throw ApplicationFailure.create({
        type: NonRetryable.JobEnded,
        message:
          "the job's outputs are being removed (a DELETE or their retention): the stored object is removed again",
        nonRetryable: true,
      });
    }
    throw ApplicationFailure.create({
      type: NonRetryable.JobEnded,
      message: 'the job ended before this output was recorded',
      nonRetryable: true,
    });
  };

  /**
   * `store`, counting the failures that are the source's or storage's own on the output's row: the
   * one that reaches `maxFailedAttempts` fails the output for good. Cancellations are not counted.
   */
  const countingOwnFailures = async <T>(input: PersistOutputInput, context: Context, store: () => Promise<T>) => {
    try {
      return await store();
    } catch (error) {
      if (context.cancellationSignal.aborted || !isRetryableFailure(error) || error instanceof HandOver) throw error;
      const ref = { jobId: input.jobId, outputIndex: input.outputIndex };
      const attempt = outputAttempt(input, context);
      // Heartbeating while the count waits out a database outage: the server would start another attempt beside it.
      const failedAttempts = await heartbeatWhile(() =>
        untilDatabaseAnswers(() => recordMediaAttemptFailed(db, ref, attempt)),
      );
      // The job ended meanwhile (a cancel, the reconciler): nothing is left to try for.
      if (failedAttempts === 'job-ended')
        throw ApplicationFailure.create({
          type: NonRetryable.JobEnded,
          message: `the job ended while this output was stored: ${error instanceof Error ? error.message : String(error)}`,
          nonRetryable: true,
          cause: error instanceof Error ? error : undefined,
        });
      if (
        failedAttempts === 'settled' ||
        failedAttempts < (input.maxFailedAttempts ?? DEFAULT_PERSIST_MAX_FAILED_ATTEMPTS)
      )
        throw error;
      throw ApplicationFailure.create({
        type: NonRetryable.OutputAttemptsExhausted,
        message: error instanceof Error ? error.message : String(error),
        details: [{ failedAttempts }],
        nonRetryable: true,
        cause: error instanceof Error ? error : undefined,
      });
    }
  };

  /**
   * Cancels a prediction known to be a duplicate (another is the job's, on record): it would be billed
   * for nothing. A few short tries, since the provider's trouble is what made the duplicate; past
   * them it is logged by id, and its Cancel-After deadline ends it.
   */
  const cancelDuplicate = async (jobId: string, predictionId: string): Promise<void> => {
    for (let tryNumber = 1; ; tryNumber++) {
      try {
        await provider.cancelPrediction(predictionId, AbortSignal.timeout(DUPLICATE_CANCEL_TRY_MS));
        return;
      } catch (error) {
        if (tryNumber >= DUPLICATE_CANCEL_TRIES) {
          logger.error(
            { jobId, predictionId, err: error },
            'could not cancel a duplicate prediction; its Cancel-After deadline will end it',
          );
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 500 * tryNumber));
      }
    }
  };

  /**
   * The billed step, kept short. A retry finds the prediction already on record (`existing`) and
   * returns it. The windows left (docs/replicate.md): a worker killed after the provider answered and
   * before the id was written, a create whose answer was lost, and a record the database could not
   * confirm; the provider's deadline (Cancel-After) bounds what such an orphan can cost.
   */
  const createRecordedPrediction = async (
    request: GenerationRequest,
    existing: string | undefined,
  ): Promise<CreatedPrediction> => {
    const attempt = Context.current().info.attempt;
    if (existing) return { predictionId: existing, attempt };
    const created = await provider.createPrediction(request);
    let recorded: string | undefined;
    try {
      await pauseForFaultInjection('after-create');
      recorded = await untilDatabaseAnswers(() => recordPredictionId(db, request.jobId, created));
    } catch (error) {
      // Cut off around the record (its timeout, a database error): the retry creates another unless
      // this one is on record, so it is cancelled, but only when a read shows that the record did
      // not commit. A write whose answer was lost may have committed, and then this is the job's one
      // prediction: when the database cannot say, it is left running (the retry finds it on record,
      // or else the provider's deadline, Cancel-After, bounds what it costs).
      const onRecord = await getPredictionId(db, request.jobId).then(
        (predictionId) => ({ predictionId }),
        () => undefined,
      );
      if (onRecord && onRecord.predictionId !== created) await cancelDuplicate(request.jobId, created);
      else if (!onRecord)
        logger.warn(
          { jobId: request.jobId, predictionId: created },
          'cut off while recording its prediction, and the database cannot say whether the record committed; leaving the prediction running',
        );
      throw error;
    }
    if (recorded !== created) {
      logger.warn(
        { jobId: request.jobId, created, recorded },
        recorded
          ? 'a prediction was already on record; cancelling the new one'
          : 'the job ended while its prediction was created; cancelling the prediction',
      );
      await cancelDuplicate(request.jobId, created);
    }
    const predictionId = recorded ?? created;
    if (!provider.mayFinishOnCreate) return { predictionId, attempt };
    // One look, no waiting: anything but outputs already there (still running, an error, a failed
    // prediction) is left to awaitPrediction, which knows how to wait and how to fail.
    const state = await provider.getPrediction(predictionId).catch(() => undefined);
    if (state?.status !== 'succeeded') return { predictionId, attempt };
    await untilDatabaseAnswers(() => recordJobGenerated(db, request.jobId, provider.outputLifetimeSeconds));
    return { predictionId, attempt, outputUrls: state.outputUrls };
  };

  /** What markJobProcessing found, or the failure of a job without a row (for good). */
  const jobRowOf = (jobId: string, started: JobStart | undefined): JobStart => {
    if (!started) {
      throw ApplicationFailure.create({
        type: NonRetryable.JobNotFound,
        message: `job ${jobId} has no row in the database`,
        nonRetryable: true,
      });
    }
    return started;
  };

  return {
    /** PENDING → PROCESSING; returns the status on record, so a job that already ended is left alone. */
    async startJob(jobId: string): Promise<JobStatus> {
      // Retried by its local activity's policy (workflows/policies.ts, database) until the database answers.
      return jobRowOf(jobId, await markJobProcessing(db, jobId)).status;
    },

    /**
     * startJob, then createPrediction, in one local activity: one step fewer per job. The row's
     * one statement both starts the job and finds a prediction an earlier attempt recorded; a job
     * that had already ended (the reconciler ended it) is left alone and creates nothing.
     */
    async startJobWithPrediction(
      request: GenerationRequest,
    ): Promise<CreatedPrediction | AlreadyEnded | StartLeftToStartJob> {
      let started: JobStart | undefined;
      try {
        started = await markJobProcessing(db, request.jobId);
      } catch (error) {
        // Waiting out an outage here would spend the attempts meant for the provider
        // (GENERATE_MAX_ATTEMPTS): the workflow starts the job with startJob, which waits as long as it takes.
        const unavailable = databaseUnavailableReason(error);
        if (unavailable !== undefined) return { databaseUnavailable: unavailable };
        throw error;
      }
      const row = jobRowOf(request.jobId, started);
      if (isTerminalStatus(row.status)) return { alreadyEnded: row.status };
      return createRecordedPrediction(request, row.predictionId);
    },

    /** The prediction of a job that startJob started (jobs recorded before startJobWithPrediction). */
    async createPrediction(request: GenerationRequest): Promise<CreatedPrediction> {
      return createRecordedPrediction(request, await untilDatabaseAnswers(() => getPredictionId(db, request.jobId)));
    },

    /**
     * Waits for the prediction, heartbeating while it waits (a poll in flight included), so a dead
     * worker is noticed in seconds and cancellation reaches it. The provider's own trouble on a poll
     * (429, 5xx, a network error) is waited out here, with backoff: a wait may last hours and its
     * attempts are for the worker's sake. Only a cancelled job cancels its prediction upstream: a
     * worker that stops (a deploy), misses its heartbeats or loses the attempt leaves it running for
     * the next attempt, which resumes it by id.
     */
    async awaitPrediction(input: {
      jobId: string;
      predictionId: string;
    }): Promise<{ outputUrls: string[]; attempt: number }> {
      const context = Context.current();
      let predictionStatus = 'starting';
      try {
        return await heartbeatWhile(
          async () => {
            for (let troubles = 0; ;) {
              let state: PredictionState;
              try {
                state = await provider.getPrediction(input.predictionId, context.cancellationSignal);
                troubles = 0;
              } catch (error) {
                if (context.cancellationSignal.aborted || !isRetryableFailure(error)) throw error;
                troubles += 1;
                const delayMs = pollRetryDelayMs(error, troubles, pollIntervalMs);
                logger.warn(
                  { jobId: input.jobId, predictionId: input.predictionId, err: error, retryInMs: delayMs },
                  'the provider did not answer a status poll; polling again',
                );
                await context.sleep(delayMs);
                continue;
              }
              predictionStatus = state.status;
              switch (state.status) {
                case 'succeeded':
                  await untilDatabaseAnswers(() => recordJobGenerated(db, input.jobId, provider.outputLifetimeSeconds));
                  return { outputUrls: state.outputUrls, attempt: context.info.attempt };
                case 'failed':
                  throw ApplicationFailure.create({
                    type: NonRetryable.PredictionFailed,
                    message: state.error,
                    nonRetryable: true,
                  });
                case 'canceled':
                  throw ApplicationFailure.create({
                    type: NonRetryable.PredictionCanceled,
                    message: 'the prediction was cancelled upstream',
                    nonRetryable: true,
                  });
                case 'running':
                  await context.sleep(pollIntervalMs);
              }
            }
          },
          () => ({ predictionStatus }),
        );
      } catch (error) {
        if (context.cancellationDetails?.cancelRequested) {
          await provider.cancelPrediction(input.predictionId).catch((cancelError: unknown) => {
            logger.warn({ jobId: input.jobId, err: cancelError }, 'could not cancel the prediction upstream');
          });
        }
        throw error;
      }
    },

    async cancelPrediction(jobId: string): Promise<void> {
      const predictionId = await getPredictionId(db, jobId);
      if (!predictionId) return;
      // Retried without end (its policy in workflows/policies.ts) while the job waits to be CANCELLED; the
      // prediction's Cancel-After deadline bounds its cost, so an unreachable provider is given up on.
      // Each call ends before the attempt's start-to-close does: a provider that never answers would
      // otherwise time every attempt out, and the fifth would never get to give up.
      const { info, cancellationSignal } = Context.current();
      const budgetMs = Math.max(1_000, info.startToCloseTimeoutMs - CANCEL_CALL_MARGIN_MS);
      const signal = AbortSignal.any([cancellationSignal, AbortSignal.timeout(budgetMs)]);
      await provider.cancelPrediction(predictionId, signal).catch((error: unknown) => {
        if (info.attempt < 5) throw error;
        logger.warn(
          { jobId, predictionId, err: error },
          'could not cancel the prediction upstream; its deadline will end it',
        );
      });
    },

    /**
     * Streams one output into S3 under its derived key, then records it. Safe to repeat.
     *
     * Its retry policy bounds interruptions by time (a schedule-to-close budget): a worker that dies
     * or stops mid-upload costs a retry, never the output. The attempts that count are the ones that
     * failed on the source's or storage's own error, recorded on the output's row: the one that
     * reaches `maxFailedAttempts` fails the output for good.
     */
    async persistOutput(input: PersistOutputInput): Promise<PersistOutputResult> {
      const context = Context.current();
      const ref = { jobId: input.jobId, outputIndex: input.outputIndex };
      return countingOwnFailures(input, context, () => storeOutput(input, context, ref));
    },

    /**
     * persistOutput's first attempt at a small output, run as a local activity: the same steps and
     * the same count of own failures, without a task on the server. A source that does not announce
     * a length within `maxBytes` is handed over unread, and any failure that may pass on a retry
     * hands the output to persistOutput too (the workflow), which counts this attempt as its first.
     */
    async persistSmallOutput(input: PersistSmallOutputInput): Promise<PersistOutputResult | HandedOver> {
      const context = Context.current();
      const ref = { jobId: input.jobId, outputIndex: input.outputIndex };
      try {
        return await countingOwnFailures(input, context, () => storeOutput(input, context, ref, input.maxBytes));
      } catch (error) {
        if (error instanceof HandOver) return { handedOver: error.message };
        throw error;
      }
    },

    async recordOutputFailure(input: {
      jobId: string;
      outputIndex: number;
      errorMessage: string;
      attempts?: number;
    }): Promise<void> {
      await markMediaFailed(db, input, storableText(input.errorMessage), input.attempts);
    },

    /**
     * Ends the job; returns whether it now has this outcome because of this workflow, so that the
     * workflow announces it. While the workflow runs nothing else ends its job, so a job already in
     * this status was ended by an earlier run of this step whose result was lost (its worker died
     * before the workflow task completed): that run's announcement is made now.
     */
    async finishJob(input: FinishJobInput): Promise<boolean> {
      const { jobId, inBatch, ...outcome } = input;
      const ended = await finishJobFromWorkflow(db, jobId, {
        ...outcome,
        errorMessage: outcome.errorMessage === undefined ? undefined : storableText(outcome.errorMessage),
      });
      // The last job of a batch to end starts the batch's webhook; a failure here retries this step, which
      // finds the job ended and the batch still due.
      if (deps.temporal && inBatch !== false) await announceBatchEnd(batchWebhookDependencies(deps.temporal), jobId);
      return ended;
    },

    /** One webhook message, signed with the worker's secret; each attempt is recorded. */
    async deliverWebhook(message: WebhookMessage): Promise<DeliveryResult> {
      return deliverWebhook(db, deps.webhooks, message, Context.current().cancellationSignal);
    },

    /** A batch's one webhook, once all its jobs have ended, signed like a job's messages. */
    async deliverBatchWebhook(message: BatchWebhookMessage): Promise<{ statusCode: number }> {
      return deliverBatchWebhook(db, deps.webhooks, message, Context.current().cancellationSignal);
    },

    /** One bounded batch of the retention sweep (the retention Schedule's workflow). */
    async removeExpiredMedia(batchSize: number): Promise<RemovalBatch> {
      return removeExpiredBatch({ db, s3, bucket, logger }, batchSize);
    },

    async abortStaleUploads(): Promise<number> {
      return abortStaleUploads({ s3, bucket });
    },

    async reconcileJobs(): Promise<ReconcileResult[]> {
      if (!deps.temporal) throw new Error('the reconciler needs a Temporal client');
      const settling = {
        db,
        temporal: deps.temporal,
        logger,
        config: {
          TEMPORAL_TASK_QUEUE: Context.current().info.taskQueue,
          WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS: deps.settlePolicies?.webhookInitialIntervalSeconds,
        },
      };
      const reconciled = await reconcileUnfinishedJobs(settling);
      // The settles that a round (or the API's cancel) could not start, once they are overdue.
      await settleDueJobs(settling);
      await announceOverdueBatches({ ...batchWebhookDependencies(deps.temporal), logger });
      return reconciled;
    },
  };
}

export type MediaActivities = ReturnType<typeof createActivities>;

/** The output's attempt this is: the activity's own, after those made before it (a local one). */
function outputAttempt(input: PersistOutputInput, context: Context): number {
  return (input.attemptsBefore ?? 0) + context.info.attempt;
}

/** A local attempt leaves the output to persistOutput; not a failure of the output's own. */
class HandOver extends Error {}
