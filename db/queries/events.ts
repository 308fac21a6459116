import { and, asc, eq, gt, sql } from 'drizzle-orm';
import type { Database } from '../client';
import { jobEvents, jobs, type JobEventRow } from '../schema';

/** A database or an open transaction: events are appended in the transaction of the change they record. */
export type Executor = Pick<Database, 'update' | 'insert' | 'select' | 'execute'>;

export type JobEventType = JobEventRow['type'];

/** Bumps the job's sequence and records the change under the new number (locks the job row until commit). */
export async function appendJobEvent(tx: Executor, jobId: string, type: JobEventType, data: Record<string, unknown>): Promise<number | undefined> {
  const [row] = await tx
    .update(jobs)
    .set({ eventSeq: sql`${jobs.eventSeq} + 1` })
    .where(eq(jobs.id, jobId))
    .returning({ seq: jobs.eventSeq });
  if (!row) return undefined;
  await tx.insert(jobEvents).values({ jobId, seq: row.seq, type, data });
  return row.seq;
}

/** Takes the job's row lock first, so that every writer locks job then media, in that order. */
export async function lockJob(tx: Executor, jobId: string): Promise<void> {
  await tx.execute(sql`select 1 from ${jobs} where ${jobs.id} = ${jobId} for update`);
}

export async function listJobEvents(db: Database, jobId: string, afterSeq: number, limit = 500): Promise<JobEventRow[]> {
  return db
    .select()
    .from(jobEvents)
    .where(and(eq(jobEvents.jobId, jobId), gt(jobEvents.seq, afterSeq)))
    .orderBy(asc(jobEvents.seq))
    .limit(limit);
}
