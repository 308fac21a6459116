import { randomUUID } from 'node:crypto';
import { and, asc, desc, eq, inArray, lt, notInArray, or, sql } from 'drizzle-orm';
import { TERMINAL_STATUSES, type JobStatus, type OutputFormat, type TerminalStatus } from '../../common/statuses';
import { mediaObjectKey } from '../../common/storage-keys';
import type { Database } from '../client';
import { jobs, media, type JobRow, type MediaRow } from '../schema';

export interface NewJob {
  model: string;
  prompt: string;
  numOutputs: number;
  seed: number;
  outputFormat: OutputFormat;
}

export type JobWithMedia = JobRow & { media: MediaRow[] };

/** Inserts the job and one PENDING media row per output in one transaction. */
export async function createJob(db: Database, request: NewJob): Promise<JobWithMedia> {
  const id = randomUUID();
  // Millisecond precision, so that list cursors (JavaScript dates) compare exactly.
  const now = new Date();
  return db.transaction(async (tx) => {
    const [job] = await tx
      .insert(jobs)
      .values({ id, ...request, createdAt: now, updatedAt: now })
      .returning();
    const mediaRows = await tx
      .insert(media)
      .values(
        Array.from({ length: request.numOutputs }, (_, outputIndex) => ({
          jobId: id,
          outputIndex,
          s3Key: mediaObjectKey(id, outputIndex, request.outputFormat),
          createdAt: now,
          updatedAt: now,
        })),
      )
      .returning();
    return { ...job!, media: mediaRows };
  });
}

/** Removes a job whose workflow could not be started, so that a rejected request leaves nothing. */
export async function deleteJob(db: Database, jobId: string): Promise<void> {
  await db.delete(jobs).where(eq(jobs.id, jobId));
}

export async function getJob(db: Database, jobId: string): Promise<JobWithMedia | undefined> {
  const [job] = await db.select().from(jobs).where(eq(jobs.id, jobId));
  if (!job) return undefined;
  const mediaRows = await db.select().from(media).where(eq(media.jobId, jobId)).orderBy(asc(media.outputIndex));
  return { ...job, media: mediaRows };
}

export interface ListJobsParams {
  status?: JobStatus;
  limit: number;
  cursor?: { createdAt: Date; id: string };
}

/** Newest first, keyset-paginated on (created_at, id); returns at most `limit` jobs with their media. */
export async function listJobs(db: Database, { status, limit, cursor }: ListJobsParams): Promise<JobWithMedia[]> {
  const conditions = [
    status ? eq(jobs.status, status) : undefined,
    cursor
      ? or(lt(jobs.createdAt, cursor.createdAt), and(eq(jobs.createdAt, cursor.createdAt), lt(jobs.id, cursor.id)))
      : undefined,
  ].filter((condition) => condition !== undefined);
  const jobRows = await db
    .select()
    .from(jobs)
    .where(conditions.length > 0 ? and(...conditions) : undefined)
    .orderBy(desc(jobs.createdAt), desc(jobs.id))
    .limit(limit);
  if (jobRows.length === 0) return [];
  const mediaRows = await db
    .select()
    .from(media)
    .where(inArray(media.jobId, jobRows.map((job) => job.id)))
    .orderBy(asc(media.outputIndex));
  return jobRows.map((job) => ({ ...job, media: mediaRows.filter((row) => row.jobId === job.id) }));
}

/**
 * PENDING → PROCESSING. Idempotent; returns the job's status afterwards, or undefined when the
 * job does not exist.
 */
export async function markJobProcessing(db: Database, jobId: string): Promise<JobStatus | undefined> {
  await db
    .update(jobs)
    .set({ status: 'PROCESSING', startedAt: sql`coalesce(${jobs.startedAt}, now())` })
    .where(and(eq(jobs.id, jobId), eq(jobs.status, 'PENDING')));
  const [row] = await db.select({ status: jobs.status }).from(jobs).where(eq(jobs.id, jobId));
  return row?.status;
}

/**
 * Records the upstream prediction for a job, keeping the first one recorded: returns the id that
 * is on record afterwards.
 */
export async function recordPredictionId(db: Database, jobId: string, predictionId: string): Promise<string | undefined> {
  await db
    .update(jobs)
    .set({ predictionId })
    .where(and(eq(jobs.id, jobId), sql`${jobs.predictionId} is null`));
  return getPredictionId(db, jobId);
}

export async function getPredictionId(db: Database, jobId: string): Promise<string | undefined> {
  const [row] = await db.select({ predictionId: jobs.predictionId }).from(jobs).where(eq(jobs.id, jobId));
  return row?.predictionId ?? undefined;
}

export interface JobOutcome {
  status: TerminalStatus;
  errorMessage?: string | null;
  /** Retries spent on generation; the outputs' retries are counted from their rows. */
  generationRetries?: number;
}

/**
 * Ends a job and settles every output that did not end on its own (CANCELLED with the job, or
 * FAILED). A job that already ended keeps its first outcome, so running this twice changes nothing.
 * Returns whether this call ended the job.
 */
export async function finishJob(db: Database, jobId: string, outcome: JobOutcome): Promise<boolean> {
  return db.transaction(async (tx) => {
    const ended = await tx
      .update(jobs)
      .set({
        status: outcome.status,
        errorMessage: outcome.errorMessage ?? null,
        retryCount: sql`${outcome.generationRetries ?? 0} + coalesce((select sum(greatest(${media.attempts} - 1, 0)) from ${media} where ${media.jobId} = ${jobId}), 0)`,
        completedAt: sql`now()`,
      })
      .where(and(eq(jobs.id, jobId), notInArray(jobs.status, [...TERMINAL_STATUSES])))
      .returning({ id: jobs.id });
    if (ended.length === 0) return false;
    const unsettledStatus = outcome.status === 'CANCELLED' ? 'CANCELLED' : 'FAILED';
    await tx
      .update(media)
      .set({
        status: unsettledStatus,
        errorMessage: sql`coalesce(${media.errorMessage}, ${outcome.errorMessage ?? null})`,
      })
      .where(and(eq(media.jobId, jobId), inArray(media.status, ['PENDING', 'PROCESSING'])));
    return true;
  });
}

/** Non-terminal jobs created before `olderThan`, oldest first: candidates for reconciliation. */
export async function listUnfinishedJobs(db: Database, olderThan: Date, limit: number): Promise<JobRow[]> {
  return db
    .select()
    .from(jobs)
    .where(and(notInArray(jobs.status, [...TERMINAL_STATUSES]), lt(jobs.createdAt, olderThan)))
    .orderBy(asc(jobs.createdAt))
    .limit(limit);
}
