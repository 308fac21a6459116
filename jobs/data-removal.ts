import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { isTerminalStatus } from '../common/statuses';
import type { JobChanges } from '../db/job-changes';
import { expireJobDataNow, jobObjectKeys, markJobDataRemoved } from '../db/queries/job-data';
import { getJob, getJobStatus } from '../db/queries/jobs';
import type { JobRow } from '../db/schema';
import { cancelJob, waitUntilJobEnds, type LifecycleDependencies } from './lifecycle';

export interface StorageDependencies {
  s3: S3Client;
  bucket: string;
}

/** How long a DELETE waits for a running job to end before it leaves the removal to the expiry sweep. */
const DELETE_WAIT_MS = 30_000;

/**
 * Deletes an ended job's objects, then records it. Safe to repeat: deleting a missing object
 * succeeds, and the record keeps its first time. A job that has not ended is left alone, since its
 * workflow may still write them.
 */
export async function removeJobData(
  deps: StorageDependencies & { db: LifecycleDependencies['db'] },
  jobId: string,
): Promise<boolean> {
  const keys = await jobObjectKeys(deps.db, jobId);
  const status = await getJobStatus(deps.db, jobId);
  if (!status || !isTerminalStatus(status)) return false;
  await Promise.all(keys.map((key) => deps.s3.send(new DeleteObjectCommand({ Bucket: deps.bucket, Key: key }))));
  return markJobDataRemoved(deps.db, jobId);
}

export type DeleteOutcome =
  /** Its objects are gone and the row says so. */
  | { outcome: 'removed' }
  /** Still ending after the wait: the expiry sweep removes its objects once it has ended. */
  | { outcome: 'ending' }
  | { outcome: 'temporal-unavailable' };

/**
 * DELETE of a job: cancels it if it runs, waits for it to end (its workflow stops writing), then
 * removes its objects. The row stays, with its status, timings and hashes.
 */
export async function deleteJobData(
  deps: LifecycleDependencies & StorageDependencies & { changes: JobChanges },
  requested: JobRow,
): Promise<DeleteOutcome> {
  // First, so that a request cut off from here on still has the job's objects removed once it ends,
  // and so that a retry of a failed job cannot reopen it from here on (it needs its objects kept a
  // while longer). The row is read again after it: a retry that reopened the job before runs, and
  // is cancelled like any running job rather than having its objects removed under it.
  await expireJobDataNow(deps.db, requested.id);
  const job = (await getJob(deps.db, requested.id)) ?? requested;
  if (!isTerminalStatus(job.status)) {
    const cancelled = await cancelJob(deps, job, 'Deleted through the API');
    if (cancelled.outcome === 'temporal-unavailable') return cancelled;
    // A process shutting down answers at once: the job is still ending (202), its objects go once it has.
    await waitUntilJobEnds(deps, job.id, DELETE_WAIT_MS, deps.stopping);
  }
  return (await removeJobData(deps, job.id)) ? { outcome: 'removed' } : { outcome: 'ending' };
}
