import { and, asc, eq, gt, sql, type SQL } from 'drizzle-orm';
import type { JobStatus } from '../../common/statuses';
import type { Database } from '../client';
import { jobEvents, jobs, type JobEventRow } from '../schema';

/** A database or an open transaction: events are appended in the transaction of the change they record. */
export type Executor = Pick<Database, 'update' | 'insert' | 'select' | 'execute'>;

export type JobEventType = JobEventRow['type'];

/**
 * Bumps the job's sequence and records the change under the new number, in one statement (the
 * bump locks the job row until commit).
 */
export async function appendJobEvent(
  tx: Executor,
  jobId: string,
  type: JobEventType,
  data: Record<string, unknown>,
): Promise<number | undefined> {
  const result = await tx.execute<{ seq: number }>(sql`
    with bumped as (
      update ${jobs} set event_seq = event_seq + 1, updated_at = now() where id = ${jobId} returning id, event_seq
    )
    insert into ${jobEvents} (job_id, seq, type, data)
    select id, event_seq, ${type}, ${JSON.stringify(data)}::jsonb from bumped
    returning seq`);
  return result.rows[0]?.seq;
}

/** The most events one read returns: a longer history is read page by page. */
export const JOB_EVENTS_PAGE_SIZE = 500;

export async function listJobEvents(
  db: Database,
  jobId: string,
  afterSeq: number,
  limit = JOB_EVENTS_PAGE_SIZE,
): Promise<JobEventRow[]> {
  return db
    .select()
    .from(jobEvents)
    .where(and(eq(jobEvents.jobId, jobId), gt(jobEvents.seq, afterSeq)))
    .orderBy(asc(jobEvents.seq))
    .limit(limit);
}

/** The number of the job's latest retry (POST …/retry): its retry_count, which the event that reopened the job records. */
const LATEST_RETRY = (jobId: SQL) => sql`(select (data->'retry'->>'retry_count')::int from ${jobEvents}
    where job_id = ${jobId} and type = 'status' and data ? 'retry' order by seq desc limit 1)`;

/** The number of the job's latest retry; undefined for a job never retried. Its messages and its settle carry it. */
export async function latestRetryOf(db: Database, jobId: string): Promise<number | undefined> {
  const result = await db.execute<{ retry: number | null }>(sql`select ${LATEST_RETRY(sql`${jobId}`)} as retry`);
  return result.rows[0]?.retry ?? undefined;
}

export interface DueSettle {
  status: JobStatus;
  retry?: number;
  /** The mark itself, to the microsecond: clearing it clears this mark only, not a later end's. */
  dueAt: string;
}

/**
 * A job whose settle is due (ended outside its workflow, its settleOrphanedJob not started yet):
 * its status and the run that ended, read in one statement. While the mark is set no retry reopens
 * the job (reopenFailedJob), so the two name the same end. Undefined when no settle is due.
 */
export async function dueSettleOf(db: Database, jobId: string): Promise<DueSettle | undefined> {
  const result = await db.execute<{ status: JobStatus; retry: number | null; due_at: string }>(sql`
    select status, ${LATEST_RETRY(sql.raw('jobs.id'))} as retry, settle_due_at::text as due_at from ${jobs}
    where id = ${jobId} and settle_due_at is not null`);
  const row = result.rows[0];
  if (!row) return undefined;
  return { status: row.status, dueAt: row.due_at, ...(row.retry === null ? {} : { retry: row.retry }) };
}
