import { WorkflowIdReusePolicy } from '@temporalio/client';
import { RETRY_FAILED_OUTPUTS_WORKFLOW_TYPE, workflowIdForJob, type RetryFailedOutputsInput } from '../common/temporal';
import { withTemporalTimeout } from '../common/timeout';
import { reopenFailedJob } from '../db/queries/job-data';
import { finishJob, type JobWithMedia } from '../db/queries/jobs';
import { policyOverrides, temporalPriorityOf, webhookOf, type Fairness, type LifecycleDependencies } from './lifecycle';

/** A retry needs its objects kept this much longer at least, so that the expiry sweep cannot be removing them meanwhile. */
const RETRY_RETENTION_MARGIN_SECONDS = 60;
const TEMPORAL_START_DEADLINE_MS = 5_000;

export type RetryOutcome =
  | { outcome: 'started'; retryCount: number; outputs: number[] }
  /** Not FAILED (or retried meanwhile): nothing to store again. */
  | { outcome: 'not-failed' }
  /** The recorded prediction cannot serve the failed outputs again: only a new prediction can. */
  | { outcome: 'outputs-gone'; reason: string }
  | { outcome: 'temporal-unavailable' };

/** Why the recorded prediction cannot give the failed outputs again, if it cannot. */
export function whyOutputsAreGone(job: JobWithMedia, now = new Date()): string | undefined {
  if (job.dataRemovedAt) return "the job's stored outputs were removed (DELETE or their retention)";
  if (!job.predictionId || !job.generatedAt) return 'the job failed before its prediction succeeded';
  if (job.providerOutputsExpireAt && job.providerOutputsExpireAt <= now)
    return `the provider stopped serving the prediction's outputs at ${job.providerOutputsExpireAt.toISOString()} (Replicate deletes them an hour after the prediction)`;
  const missing = job.media.filter((row) => row.status !== 'COMPLETED' && !row.mediaUrl);
  if (missing.length > 0)
    return `the prediction gave no output for ${missing.map((row) => `output ${row.outputIndex}`).join(', ')}`;
  if (job.expiresAt && job.expiresAt.getTime() <= now.getTime() + RETRY_RETENTION_MARGIN_SECONDS * 1000)
    return "the job's stored outputs expire within a minute";
  return undefined;
}

/**
 * Stores a FAILED job's failed outputs again from its recorded prediction: the job is PROCESSING
 * again with retry_count one higher, and a retryFailedOutputs workflow (under the job's workflow id)
 * stores them and ends it. No prediction is created.
 */
export async function retryFailedJob(
  deps: LifecycleDependencies,
  job: JobWithMedia,
  fairness: Fairness,
): Promise<RetryOutcome> {
  if (job.status !== 'FAILED') return { outcome: 'not-failed' };
  const reason = whyOutputsAreGone(job);
  if (reason) return { outcome: 'outputs-gone', reason };
  const reopened = await reopenFailedJob(deps.db, job.id, RETRY_RETENTION_MARGIN_SECONDS);
  if (!reopened) return { outcome: 'not-failed' };
  const input: RetryFailedOutputsInput = {
    jobId: job.id,
    numOutputs: job.numOutputs,
    outputFormat: job.outputFormat,
    outputs: reopened.outputs,
    baseRetries: reopened.baseRetries,
    retryCount: reopened.retryCount,
    ...(webhookOf(job) ? { webhook: webhookOf(job) } : {}),
    policies: policyOverrides(deps.config),
  };
  try {
    await withTemporalTimeout(
      deps.temporal.connection,
      () =>
        deps.temporal.workflow.start(RETRY_FAILED_OUTPUTS_WORKFLOW_TYPE, {
          taskQueue: deps.config.TEMPORAL_TASK_QUEUE,
          workflowId: workflowIdForJob(job.id),
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
          args: [input],
          // Storing again is the job's work: it waits its turn like the job's first run.
          priority: temporalPriorityOf(job, fairness),
        }),
      TEMPORAL_START_DEADLINE_MS,
    );
  } catch (error) {
    deps.logger.warn({ err: error, jobId: job.id }, 'could not start the retry of a job; it is FAILED again');
    // Not started: the job is FAILED again, as it was, with the retry not counted.
    await finishJob(deps.db, job.id, {
      status: 'FAILED',
      errorMessage: job.errorMessage,
      generationRetries: reopened.baseRetries - 1,
    });
    return { outcome: 'temporal-unavailable' };
  }
  return {
    outcome: 'started',
    retryCount: reopened.retryCount,
    outputs: reopened.outputs.map((output) => output.index),
  };
}
