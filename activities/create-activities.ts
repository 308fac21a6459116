import type { S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import { NonRetryable } from '../common/errors';
import type { JobStatus, OutputFormat, TerminalStatus } from '../common/statuses';
import { mediaObjectKey } from '../common/storage-keys';
import type { Database } from '../db/client';
import { finishJob, getPredictionId, markJobProcessing, recordPredictionId } from '../db/queries/jobs';
import { markMediaCompleted, markMediaFailed, markMediaProcessing } from '../db/queries/media';
import { storeObject } from './object-storage';
import { reconcileUnfinishedJobs, type ReconcileResult } from './reconcile';
import type { GenerationRequest, MediaProvider } from './providers/provider';

export interface ActivityDependencies {
  db: Database;
  s3: S3Client;
  bucket: string;
  provider: MediaProvider;
  maxOutputBytes: number;
  logger: Logger;
  /** For the reconciler, which reads workflow states. */
  temporal?: Client;
  /** How often a waiting activity asks the provider about its prediction. */
  predictionPollIntervalMs?: number;
}

export interface PersistOutputInput {
  jobId: string;
  outputIndex: number;
  sourceUrl: string;
  outputFormat: OutputFormat;
}

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
}

/**
 * Every side effect of a job. Each activity can be run twice or cut off at any line: database
 * writes are conditional updates, objects are overwritten under the same key, and the only billed
 * call (creating a prediction) is recorded before anything else can happen.
 */
export function createActivities(deps: ActivityDependencies) {
  const { db, s3, bucket, provider, maxOutputBytes, logger } = deps;
  const pollIntervalMs = deps.predictionPollIntervalMs ?? 1_000;

  return {
    /** PENDING → PROCESSING; returns the status on record, so a job that already ended is left alone. */
    async startJob(jobId: string): Promise<JobStatus> {
      const status = await markJobProcessing(db, jobId);
      if (!status) {
        throw ApplicationFailure.create({ type: NonRetryable.JobNotFound, message: `job ${jobId} has no row in the database`, nonRetryable: true });
      }
      return status;
    },

    /**
     * The billed step, kept short. A retry finds the prediction already on record and returns it.
     * The one window left: a worker killed after the provider answered and before the id was
     * written; the provider's deadline (Cancel-After) bounds what such an orphan can cost.
     */
    async createPrediction(request: GenerationRequest): Promise<{ predictionId: string; attempt: number }> {
      const attempt = Context.current().info.attempt;
      const existing = await getPredictionId(db, request.jobId);
      if (existing) return { predictionId: existing, attempt };
      const created = await provider.createPrediction(request);
      const recorded = await recordPredictionId(db, request.jobId, created);
      if (recorded !== created) {
        logger.warn({ jobId: request.jobId, created, recorded }, 'a prediction was already on record; cancelling the new one');
        await provider.cancelPrediction(created).catch(() => undefined);
      }
      return { predictionId: recorded ?? created, attempt };
    },

    /** Waits for the prediction, heartbeating, so a dead worker is noticed in seconds and cancellation reaches it. */
    async awaitPrediction(input: { jobId: string; predictionId: string }): Promise<{ outputUrls: string[]; attempt: number }> {
      const context = Context.current();
      try {
        for (;;) {
          const state = await provider.getPrediction(input.predictionId, context.cancellationSignal);
          context.heartbeat({ predictionStatus: state.status });
          switch (state.status) {
            case 'succeeded':
              return { outputUrls: state.outputUrls, attempt: context.info.attempt };
            case 'failed':
              throw ApplicationFailure.create({ type: NonRetryable.PredictionFailed, message: state.error, nonRetryable: true });
            case 'canceled':
              throw ApplicationFailure.create({ type: NonRetryable.PredictionCanceled, message: 'the prediction was cancelled upstream', nonRetryable: true });
            case 'running':
              await context.sleep(pollIntervalMs);
          }
        }
      } catch (error) {
        if (context.cancellationSignal.aborted) {
          await provider.cancelPrediction(input.predictionId).catch((cancelError: unknown) => {
            logger.warn({ jobId: input.jobId, err: cancelError }, 'could not cancel the prediction upstream');
          });
        }
        throw error;
      }
    },

    async cancelPrediction(jobId: string): Promise<void> {
      const predictionId = await getPredictionId(db, jobId);
      if (predictionId) await provider.cancelPrediction(predictionId);
    },

    /** Streams one output into S3 under its derived key, then records it. Safe to repeat. */
    async persistOutput(input: PersistOutputInput): Promise<PersistOutputResult> {
      const context = Context.current();
      const ref = { jobId: input.jobId, outputIndex: input.outputIndex };
      const key = mediaObjectKey(input.jobId, input.outputIndex, input.outputFormat);
      await markMediaProcessing(db, ref, input.sourceUrl);
      const source = await provider.openOutput(input.sourceUrl, context.cancellationSignal);
      if (source.declaredLength !== undefined && source.declaredLength > maxOutputBytes) {
        source.body.destroy();
        throw ApplicationFailure.create({
          type: NonRetryable.OutputTooLarge,
          message: `the output is ${source.declaredLength} bytes, over the ${maxOutputBytes}-byte limit (MEDIA_MAX_BYTES)`,
          nonRetryable: true,
        });
      }
      context.heartbeat({ bytesStored: 0 });
      const stored = await storeObject({
        client: s3,
        bucket,
        key,
        source: source.body,
        maxBytes: maxOutputBytes,
        signal: context.cancellationSignal,
        onProgress: (bytesStored) => context.heartbeat({ bytesStored }),
      });
      await markMediaCompleted(db, ref, stored);
      return { s3Key: key, ...stored, attempt: context.info.attempt };
    },

    async recordOutputFailure(input: { jobId: string; outputIndex: number; errorMessage: string }): Promise<void> {
      await markMediaFailed(db, input, input.errorMessage);
    },

    async finishJob(input: FinishJobInput): Promise<boolean> {
      const { jobId, ...outcome } = input;
      return finishJob(db, jobId, outcome);
    },

    async reconcileJobs(): Promise<ReconcileResult[]> {
      if (!deps.temporal) throw new Error('the reconciler needs a Temporal client');
      return reconcileUnfinishedJobs({ db, temporal: deps.temporal, provider, logger });
    },
  };
}

export type MediaActivities = ReturnType<typeof createActivities>;
