import {
  createBatch,
  deleteEmptyBatch,
  findBatchByIdempotencyKey,
  isBatchIdempotencyConflict,
  listBatchJobs,
  type NewBatch,
} from '../db/queries/batches';
import { deleteJob, RunningJobsCapReached, type NewJob, type RunningJobsCap } from '../db/queries/jobs';
import type { BatchRow, JobRow } from '../db/schema';
import { ensureWorkflowStarted, type Fairness, type LifecycleDependencies } from './lifecycle';

/**
 * A batch's life outside its jobs' workflows: submitting it (all of its jobs or none, replaying an
 * Idempotency-Key) and what it says of its jobs. Each job of a batch is an ordinary job: one row,
 * one workflow, the same limits and priorities.
 */

/** Workflow starts in flight at once: a batch of 100 starts in well under a second, without flooding the server. */
const CONCURRENT_STARTS = 8;

export interface BatchSubmission {
  batch: NewBatch;
  /** Its jobs, in the request's order. */
  jobs: NewJob[];
  fairness: Fairness;
  runningJobsCap?: RunningJobsCap;
}

export type BatchOutcome =
  | { outcome: 'accepted'; batch: BatchRow }
  /** The Idempotency-Key already made this batch, with the same request. */
  | { outcome: 'replayed'; batch: BatchRow }
  /** The Idempotency-Key already made a batch from another request. */
  | { outcome: 'key-reused'; batch: BatchRow }
  | { outcome: 'running-jobs-cap'; running: number; limit: number }
  /** Temporal did not start every job's workflow: nothing was kept, or only the jobs a worker had already started. */
  | { outcome: 'not-started'; kept?: { batch: BatchRow; jobs: number } };

/** Runs `start` for every job, `CONCURRENT_STARTS` at a time; the jobs it failed for. */
async function startEach(jobs: JobRow[], start: (job: JobRow) => Promise<void>): Promise<JobRow[]> {
  const failed: JobRow[] = [];
  for (let first = 0; first < jobs.length; first += CONCURRENT_STARTS) {
    const round = jobs.slice(first, first + CONCURRENT_STARTS);
    const outcomes = await Promise.allSettled(round.map(start));
    outcomes.forEach((outcome, index) => outcome.status === 'rejected' && failed.push(round[index]!));
  }
  return failed;
}

/**
 * Records the batch and all its jobs in one transaction, then starts each job's workflow. With an
 * Idempotency-Key, a repeat answers with the first batch. When Temporal does not start every
 * workflow, the submission is undone as far as it can be: every job no worker has started yet is
 * removed (a workflow that did start finds no row and ends before anything is billed), and the
 * batch with them when none is left.
 */
export async function submitBatch(deps: LifecycleDependencies, submission: BatchSubmission): Promise<BatchOutcome> {
  const { db, logger } = deps;
  const { owner, idempotencyKey, requestHash } = submission.batch;
  if (idempotencyKey) {
    const existing = await findBatchByIdempotencyKey(db, owner, idempotencyKey);
    if (existing) return replayBatch(deps, existing, requestHash, submission.fairness);
  }

  let created: Awaited<ReturnType<typeof createBatch>>;
  try {
    created = await createBatch(db, submission.batch, submission.jobs, submission.runningJobsCap);
  } catch (error) {
    if (error instanceof RunningJobsCapReached)
      return { outcome: 'running-jobs-cap', running: error.running, limit: error.limit };
    if (idempotencyKey && isBatchIdempotencyConflict(error)) {
      // A concurrent request with the same key won the insert: answer with its batch.
      const existing = await findBatchByIdempotencyKey(db, owner, idempotencyKey);
      if (existing) return replayBatch(deps, existing, requestHash, submission.fairness);
      // Its batch is gone already: it was removed because its workflows could not be started.
      return { outcome: 'not-started' };
    }
    throw error;
  }

  const failed = await startEach(created.jobs, (job) => ensureWorkflowStarted(deps, job, submission.fairness));
  if (failed.length === 0) return { outcome: 'accepted', batch: created.batch };

  logger.warn(
    { batchId: created.batch.id, notStarted: failed.length },
    'could not start every workflow of a batch; removing its jobs',
  );
  let kept = 0;
  for (const job of created.jobs) {
    const removed = await deleteJob(db, job.id).catch((error: unknown) => {
      logger.error({ err: error, jobId: job.id }, 'could not remove a job of the batch');
      return false;
    });
    if (!removed) kept += 1;
  }
  if (kept === 0 && (await deleteEmptyBatch(db, created.batch.id).catch(() => false)))
    return { outcome: 'not-started' };
  return { outcome: 'not-started', kept: { batch: created.batch, jobs: kept } };
}

/** The batch an Idempotency-Key already made; its PENDING jobs have their starts attempted again. */
async function replayBatch(
  deps: LifecycleDependencies,
  batch: BatchRow,
  requestHash: string,
  fairness: Fairness,
): Promise<BatchOutcome> {
  if (batch.requestHash !== requestHash) return { outcome: 'key-reused', batch };
  // As for a replayed job: the first request may have died between its insert and its starts. Rows are kept (the
  // first request may still be starting them; the reconciler fails a row whose workflow never started).
  const recorded = await listBatchJobs(deps.db, batch.id);
  // A batch has a job at least: none left means the first request is removing them (its starts failed).
  if (recorded.length === 0) return { outcome: 'not-started' };
  const pending = recorded.filter((job) => job.status === 'PENDING');
  const failed = await startEach(pending, (job) =>
    ensureWorkflowStarted(deps, job, fairness, { rejectDuplicate: true }),
  );
  if (failed.length > 0) {
    deps.logger.warn(
      { batchId: batch.id, notStarted: failed.length },
      'could not start the workflows of a replayed batch',
    );
    return { outcome: 'not-started' };
  }
  // As for a job: what the first request removed meanwhile is not replayed as accepted.
  if (pending.length > 0 && (await listBatchJobs(deps.db, batch.id)).length < recorded.length)
    return { outcome: 'not-started' };
  return { outcome: 'replayed', batch };
}
