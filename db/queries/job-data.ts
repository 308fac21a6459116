import { and, asc, eq, inArray, isNull, lte, sql } from 'drizzle-orm';
import { TERMINAL_STATUSES } from '../../common/statuses';
import type { Database } from '../client';
import { jobs, media } from '../schema';

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
