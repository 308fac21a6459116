import { WorkflowIdReusePolicy } from '@temporalio/client';
import {
  RETRY_FAILED_OUTPUTS_WORKFLOW_TYPE,
  settleOrphanedJobWorkflowId,
  workflowIdForJob,
  type RetryFailedOutputsInput,
} from '../common/temporal';
import { latestRetryOf } from '../db/queries/events';
import { withTemporalTimeout } from '../common/timeout';
import { TEMPORAL_START_DEADLINE_MS } from '../common/workflow-start';
import { reopenFailedJob } from '../db/queries/job-data';
import { finishJob, getJob, RunningJobsCapReached, type JobWithMedia, type RunningJobsCap } from '../db/queries/jobs';
import type { JobRow } from '../db/schema';
import {
  describeWorkflow,
  policyOverrides,
  startSettle,
  submitJob,
  temporalPriorityOf,
  webhookOf,
  type Fairness,
  type LifecycleDependencies,
  type SubmitOutcome,
} from './lifecycle';

/** A retry needs its objects kept this much longer at least, so that the expiry sweep cannot be removing them meanwhile. */
const RETRY_RETENTION_MARGIN_SECONDS = 60;

export type RetryOutcome =
  | { outcome: 'started'; retryCount: number; outputs: number[] }
  /** Not FAILED (or retried meanwhile): nothing to store again. */
  | { outcome: 'not-failed' }
  /** The recorded prediction cannot serve the failed outputs again: only a new prediction can. */
  | { outcome: 'outputs-gone'; reason: string }
  | { outcome: 'temporal-unavailable' }
  /** The job's workflow recorded FAILED but is still delivering its webhooks after the wait. */
  | { outcome: 'still-ending' }
  /** Running again would take its key past MAX_RUNNING_JOBS_PER_KEY. */
  | { outcome: 'running-jobs-cap'; running: number; limit: number };

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

/** How long a retry waits for the job's first run to close (its webhook deliveries) before it answers 409. */
const FIRST_RUN_CLOSE_WAIT_MS = 15_000;

/**
 * Whether the job's workflow has closed, however it ended, waiting up to `timeoutMs` for it (its
 * long poll then aborted); undefined when Temporal cannot say.
 */
async function workflowClosed(
  deps: LifecycleDependencies,
  workflowId: string,
  timeoutMs: number,
): Promise<boolean | undefined> {
  const running = async () => (await describeWorkflow(deps.temporal, workflowId))?.status.name === 'RUNNING';
  try {
    if (!(await running())) return true;
    await withTemporalTimeout(
      deps.temporal.connection,
      () => deps.temporal.workflow.getHandle(workflowId).result(),
      timeoutMs,
      deps.stopping,
    ).catch(() => undefined);
    return !(await running());
  } catch (error) {
    deps.logger.warn({ err: error, workflowId }, "could not tell whether the job's workflow has closed");
    return undefined;
  }
}

/**
 * Stores a FAILED job's failed outputs again from its recorded prediction: the job is PROCESSING
 * again with retry_count one higher, and a retryFailedOutputs workflow (under the job's workflow id)
 * stores them and ends it. No prediction is created.
 *
 * The job's first run records FAILED and stays open while it delivers its webhook messages; the
 * retry runs under the same workflow id, so it waits for that run to close, and only then reopens
 * the row and starts. Until then the job is FAILED to everyone: a cancel answers that it has ended
 * (a signal would reach the first run, whose work is over, not the retry), and the reconciler does
 * not take the first run's close for the end of a row reopened before it.
 */
export async function retryFailedJob(
  deps: LifecycleDependencies,
  job: JobWithMedia,
  fairness: Fairness,
  runningJobsCap?: RunningJobsCap,
): Promise<RetryOutcome> {
  if (job.status !== 'FAILED') return { outcome: 'not-failed' };
  const reason = whyOutputsAreGone(job);
  if (reason) return { outcome: 'outputs-gone', reason };
  const workflowId = workflowIdForJob(job.id);
  const closed = await workflowClosed(deps, workflowId, FIRST_RUN_CLOSE_WAIT_MS);
  if (closed === undefined) return { outcome: 'temporal-unavailable' };
  if (!closed) return { outcome: 'still-ending' };
  // The run before this retry may have ended outside its workflow: its settle announces that end
  // from the row, so it is started if it is still due, and the row is reopened only once it has
  // closed, as for the first run's own deliveries.
  if (job.settleDueAt) {
    try {
      await startSettle(deps, job);
    } catch (error) {
      deps.logger.warn({ err: error, jobId: job.id }, 'could not start the settle of the run before a retry');
      return { outcome: 'temporal-unavailable' };
    }
  }
  const settled = await workflowClosed(
    deps,
    settleOrphanedJobWorkflowId(job.id, await latestRetryOf(deps.db, job.id)),
    FIRST_RUN_CLOSE_WAIT_MS,
  );
  if (settled === undefined) return { outcome: 'temporal-unavailable' };
  if (!settled) return { outcome: 'still-ending' };
  let reopened: Awaited<ReturnType<typeof reopenFailedJob>>;
  try {
    reopened = await reopenFailedJob(deps.db, job.id, RETRY_RETENTION_MARGIN_SECONDS, runningJobsCap);
  } catch (error) {
    if (error instanceof RunningJobsCapReached)
      return { outcome: 'running-jobs-cap', running: error.running, limit: error.limit };
    throw error;
  }
  if (!reopened) {
    // Retried meanwhile, or its outputs set to go meanwhile (a DELETE): the row says which.
    const now = await getJob(deps.db, job.id);
    if (now?.status === 'FAILED' && now.settleDueAt) return { outcome: 'still-ending' };
    const goneReason = now?.status === 'FAILED' ? whyOutputsAreGone(now) : undefined;
    return goneReason ? { outcome: 'outputs-gone', reason: goneReason } : { outcome: 'not-failed' };
  }
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
          workflowId,
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
          args: [input],
          // Storing again is the job's work: it waits its turn like the job's first run.
          priority: temporalPriorityOf(job, fairness),
        }),
      TEMPORAL_START_DEADLINE_MS,
    );
  } catch (error) {
    // A start that failed or timed out may still have reached the server: a running workflow is this
    // retry (the first run had closed). When Temporal cannot say, the row stays PROCESSING: the
    // reconciler ends it if no run comes, once its grace period is over.
    const started = await describeWorkflow(deps.temporal, workflowId).then(
      (description) => description?.status.name === 'RUNNING',
      () => undefined,
    );
    if (started === undefined) {
      deps.logger.warn({ err: error, jobId: job.id }, 'could not tell whether the retry of a job started');
      return { outcome: 'temporal-unavailable' };
    }
    if (!started) {
      deps.logger.warn({ err: error, jobId: job.id }, 'could not start the retry of a job; it is FAILED again');
      // Not started: the job is FAILED again, as it was, with the retry not counted.
      await finishJob(
        deps.db,
        job.id,
        { status: 'FAILED', errorMessage: job.errorMessage, generationRetries: reopened.baseRetries - 1 },
        { uncountRetry: true },
      );
      return { outcome: 'temporal-unavailable' };
    }
    deps.logger.warn({ err: error, jobId: job.id }, 'the start of a retry failed, but its run exists: it is started');
  }
  return {
    outcome: 'started',
    retryCount: reopened.retryCount,
    outputs: reopened.outputs.map((output) => output.index),
  };
}

export type RegenerateOutcome =
  | Exclude<SubmitOutcome, { outcome: 'key-reused' }>
  /** Not FAILED: only a failed job is generated again. */
  | { outcome: 'not-failed' };

/** A retention within the deployment's: the shorter, where either is set. */
function retentionWithin(retentionSeconds: number | undefined, maxSeconds: number | undefined): number | undefined {
  if (maxSeconds === undefined) return retentionSeconds;
  return Math.min(retentionSeconds ?? maxSeconds, maxSeconds);
}

export interface Regenerator {
  /** Who asks: its address (the cap's subject when AUTH_MODE=off) and its share of the task queues. */
  clientAddress: string;
  fairness: Fairness;
  runningJobsCap?: RunningJobsCap;
  /** MEDIA_RETENTION_SECONDS now: the new job keeps its outputs no longer, whatever the failed job kept. */
  maxRetentionSeconds?: number;
}

/**
 * A new job with a FAILED job's request (model, prompt, outputs, seed, format, priority, webhook,
 * deadline and retention), linked to it by retry_of and submitted as POST /api/v1/generate submits:
 * recorded, then started as its own workflow, with a new prediction. A failed job is regenerated
 * once: asking again answers with the job the first request made ('replayed'), so a client that
 * repeats the request is not billed twice; a regeneration that fails too is regenerated in turn.
 */
export async function regenerateFailedJob(
  deps: LifecycleDependencies,
  job: JobRow,
  regenerator: Regenerator,
): Promise<RegenerateOutcome> {
  if (job.status !== 'FAILED') return { outcome: 'not-failed' };
  const submitted = await submitJob(deps, {
    job: {
      model: job.model,
      prompt: job.prompt,
      numOutputs: job.numOutputs,
      seed: job.seed,
      outputFormat: job.outputFormat,
      owner: job.owner,
      clientAddress: regenerator.clientAddress,
      webhookUrl: job.webhookUrl ?? undefined,
      webhookEvents: job.webhookEvents ?? undefined,
      deadlineSeconds: job.deadlineSeconds ?? undefined,
      retentionSeconds: retentionWithin(job.retentionSeconds ?? undefined, regenerator.maxRetentionSeconds),
      priority: job.priority,
      retryOf: job.id,
    },
    fairness: regenerator.fairness,
    requestHash: job.requestHash ?? undefined,
    runningJobsCap: regenerator.runningJobsCap,
  });
  // Without an Idempotency-Key, a submission is never refused for another request's key.
  if (submitted.outcome === 'key-reused') return { outcome: 'replayed', job: submitted.job };
  return submitted;
}
