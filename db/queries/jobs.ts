import { randomUUID } from 'node:crypto';
import { and, asc, count, desc, eq, inArray, lt, notInArray, or, sql } from 'drizzle-orm';
import { TERMINAL_STATUSES, type JobStatus, type OutputFormat, type TerminalStatus } from '../../common/statuses';
import { mediaObjectKey } from '../../common/storage-keys';
import type { Database } from '../client';
import { jobs, media, type JobRow, type MediaRow } from '../schema';
import { appendJobEvent } from './events';

export interface NewJob {
  model: string;
  prompt: string;
  numOutputs: number;
  seed: number;
  outputFormat: OutputFormat;
  owner?: string;
  clientAddress?: string;
  idempotencyKey?: string;
  requestHash?: string;
  webhookUrl?: string;
  webhookEvents?: string[];
  deadlineSeconds?: number;
}

export type JobWithMedia = JobRow & { media: MediaRow[] };

/** Who a running-jobs cap counts against: an owner (API key), or a client address. */
export type RunningJobsCap = { limit: number } & ({ owner: string } | { clientAddress: string });

/** The subject already has `limit` unfinished jobs: nothing was created. */
export class RunningJobsCapReached extends Error {
  override readonly name = 'RunningJobsCapReached';
  constructor(
    readonly limit: number,
    readonly running: number,
  ) {
    super(`${running} jobs are already PENDING or PROCESSING (the limit is ${limit})`);
  }
}

/**
 * Inserts the job and one PENDING media row per output in one transaction. With a cap, counts the
 * subject's unfinished jobs under a transaction-scoped advisory lock first, so that concurrent
 * submits (from any number of API processes) cannot pass it together. A second submit with the
 * same (owner, idempotency key) fails on the unique index: see findJobByIdempotencyKey.
 */
export async function createJob(db: Database, request: NewJob, cap?: RunningJobsCap): Promise<JobWithMedia> {
  const id = randomUUID();
  // Millisecond precision, so that list cursors (JavaScript dates) compare exactly.
  const now = new Date();
  return db.transaction(async (tx) => {
    if (cap) {
      const subject = 'owner' in cap ? eq(jobs.owner, cap.owner) : eq(jobs.clientAddress, cap.clientAddress);
      const lockKey = 'owner' in cap ? `owner:${cap.owner}` : `address:${cap.clientAddress}`;
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${lockKey}))`);
      const [row] = await tx
        .select({ running: count() })
        .from(jobs)
        .where(and(subject, inArray(jobs.status, ['PENDING', 'PROCESSING'])));
      if ((row?.running ?? 0) >= cap.limit) throw new RunningJobsCapReached(cap.limit, row?.running ?? 0);
    }
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
    const eventSeq = await appendJobEvent(tx, id, 'status', { status: 'PENDING', error_message: null });
    return { ...job!, eventSeq: eventSeq ?? job!.eventSeq, media: mediaRows };
  });
}

export async function findJobByIdempotencyKey(db: Database, owner: string, idempotencyKey: string): Promise<JobRow | undefined> {
  const [job] = await db
    .select()
    .from(jobs)
    .where(and(eq(jobs.owner, owner), eq(jobs.idempotencyKey, idempotencyKey)));
  return job;
}

/** Whether an error is the unique index on (owner, idempotency_key) refusing a second job. */
export function isIdempotencyConflict(error: unknown): boolean {
  for (let current = error as { code?: string; constraint?: string; cause?: unknown } | undefined; current; current = current.cause as typeof current) {
    if (current.code === '23505' && current.constraint === 'jobs_owner_idempotency_key_idx') return true;
  }
  return false;
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
  /** Only this owner's jobs (AUTH_MODE=required). */
  owner?: string;
  limit: number;
  cursor?: { createdAt: Date; id: string };
}

/** Newest first, keyset-paginated on (created_at, id); returns at most `limit` jobs with their media. */
export async function listJobs(db: Database, { status, owner, limit, cursor }: ListJobsParams): Promise<JobWithMedia[]> {
  const conditions = [
    status ? eq(jobs.status, status) : undefined,
    owner !== undefined ? eq(jobs.owner, owner) : undefined,
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
  await db.transaction(async (tx) => {
    const started = await tx
      .update(jobs)
      .set({ status: 'PROCESSING', startedAt: sql`coalesce(${jobs.startedAt}, now())` })
      .where(and(eq(jobs.id, jobId), eq(jobs.status, 'PENDING')))
      .returning({ id: jobs.id });
    if (started.length > 0) await appendJobEvent(tx, jobId, 'status', { status: 'PROCESSING', error_message: null });
  });
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
    const settled = await tx
      .update(media)
      .set({
        status: unsettledStatus,
        errorMessage: sql`coalesce(${media.errorMessage}, ${outcome.errorMessage ?? null})`,
      })
      .where(and(eq(media.jobId, jobId), inArray(media.status, ['PENDING', 'PROCESSING'])))
      .returning();
    for (const row of settled.sort((a, b) => a.outputIndex - b.outputIndex)) {
      await appendJobEvent(tx, jobId, 'output', outputEventData(row));
    }
    // The terminal status is the stream's last event.
    await appendJobEvent(tx, jobId, 'status', { status: outcome.status, error_message: outcome.errorMessage ?? null });
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

/** What an `output` event says about one media row. */
export function outputEventData(row: MediaRow): Record<string, unknown> {
  return {
    index: row.outputIndex,
    status: row.status,
    s3_key: row.s3Key,
    attempts: row.attempts,
    error_message: row.errorMessage,
  };
}

/** Unfinished (PENDING or PROCESSING) jobs of one owner. */
export async function countRunningJobs(db: Database, owner: string): Promise<number> {
  const [row] = await db
    .select({ running: count() })
    .from(jobs)
    .where(and(eq(jobs.owner, owner), inArray(jobs.status, ['PENDING', 'PROCESSING'])));
  return row?.running ?? 0;
}

/** Jobs per status, for the jobs gauge. */
export async function countJobsByStatus(db: Database): Promise<Array<{ status: JobStatus; jobs: number }>> {
  return db.select({ status: jobs.status, jobs: count() }).from(jobs).groupBy(jobs.status);
}
