import { and, asc, eq, inArray, isNull, lte, sql } from 'drizzle-orm';
import { TERMINAL_STATUSES } from '../../common/statuses';
import type { Database } from '../client';
import { jobs, media } from '../schema';
import { appendJobEvent } from './events';
import { checkRunningJobsCap, outputEventData, type RunningJobsCap } from './jobs';

/** The job's outputs are to go now: once it has ended, whichever removal comes first takes them. */
export async function expireJobDataNow(db: Database, jobId: string): Promise<void> {
  await db
    .update(jobs)
    .set({ expiresAt: sql`least(${jobs.expiresAt}, now())` })
    .where(and(eq(jobs.id, jobId), isNull(jobs.dataRemovedAt)));
}

/** Records that the job's objects are gone; only an ended job's (nothing writes them any more). */
export async function markJobDataRemoved(db: Database, jobId: string): Promise<boolean> {
  const marked = await db
    .update(jobs)
    .set({ dataRemovedAt: sql`now()` })
    .where(and(eq(jobs.id, jobId), inArray(jobs.status, [...TERMINAL_STATUSES]), isNull(jobs.dataRemovedAt)))
    .returning({ id: jobs.id });
  if (marked.length > 0) return true;
  // Already recorded: the row is left as it is (its updated_at too).
  const [row] = await db.select({ removedAt: jobs.dataRemovedAt }).from(jobs).where(eq(jobs.id, jobId));
  return row?.removedAt != null;
}

/** The object keys of a job's outputs. */
export async function jobObjectKeys(db: Database, jobId: string): Promise<string[]> {
  const rows = await db.select({ s3Key: media.s3Key }).from(media).where(eq(media.jobId, jobId));
  return rows.map((row) => row.s3Key);
}

/** Ended jobs whose outputs have expired and are still stored, soonest expired first, `limit` at a time. */
export async function listExpiredJobs(db: Database, limit: number): Promise<string[]> {
  const rows = await db
    .select({ id: jobs.id })
    .from(jobs)
    .where(
      and(lte(jobs.expiresAt, sql`now()`), isNull(jobs.dataRemovedAt), inArray(jobs.status, [...TERMINAL_STATUSES])),
    )
    .orderBy(asc(jobs.expiresAt))
    .limit(limit);
  return rows.map((row) => row.id);
}

export interface ReopenedJob {
  outputs: Array<{ index: number; sourceUrl: string }>;
  retryCount: number;
  baseRetries: number;
}

/**
 * FAILED → PROCESSING for a retry of its failed outputs, in one transaction: retry_count counts
 * the retry, the failed outputs are PENDING again (their attempts start over), and the events say
 * so. Only while its objects are kept for another `marginSeconds` at least, so that the expiry
 * sweep cannot be removing them while the retry writes. Undefined when the job is not in that state.
 * With a cap, the job runs again only if its subject has room for one more unfinished job
 * (RunningJobsCapReached otherwise), counted as a submit counts.
 */
export async function reopenFailedJob(
  db: Database,
  jobId: string,
  marginSeconds: number,
  cap?: RunningJobsCap,
): Promise<ReopenedJob | undefined> {
  return db.transaction(async (tx) => {
    if (cap) await checkRunningJobsCap(tx, cap);
    const [job] = await tx
      .update(jobs)
      .set({
        status: 'PROCESSING',
        errorMessage: null,
        completedAt: null,
        expiresAt: null,
        retryCount: sql`${jobs.retryCount} + 1`,
      })
      .where(
        and(
          eq(jobs.id, jobId),
          eq(jobs.status, 'FAILED'),
          isNull(jobs.dataRemovedAt),
          // An end made outside the workflow is announced first, for the run it ended (startSettle).
          isNull(jobs.settleDueAt),
          sql`(${jobs.expiresAt} is null or ${jobs.expiresAt} > now() + ${marginSeconds} * interval '1 second')`,
        ),
      )
      .returning({ retryCount: jobs.retryCount });
    if (!job) return undefined;
    const reopened = await tx
      .update(media)
      .set({ status: 'PENDING', errorMessage: null, attempts: 0, failedAttempts: 0 })
      .where(and(eq(media.jobId, jobId), inArray(media.status, ['FAILED', 'CANCELLED', 'PENDING', 'PROCESSING'])))
      .returning();
    const [kept] = await tx
      .select({ retries: sql<string>`coalesce(sum(greatest(${media.attempts} - 1, 0)), 0)` })
      .from(media)
      .where(eq(media.jobId, jobId));
    for (const row of reopened.sort((a, b) => a.outputIndex - b.outputIndex)) {
      await appendJobEvent(tx, jobId, 'output', outputEventData(row));
    }
    await appendJobEvent(tx, jobId, 'status', {
      status: 'PROCESSING',
      error_message: null,
      retry: { retry_count: job.retryCount, outputs: reopened.map((row) => row.outputIndex).sort() },
    });
    return {
      outputs: reopened.map((row) => ({ index: row.outputIndex, sourceUrl: row.mediaUrl ?? '' })),
      retryCount: job.retryCount,
      baseRetries: job.retryCount - Number(kept?.retries ?? 0),
    };
  });
}
