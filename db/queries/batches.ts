import { randomUUID } from 'node:crypto';
import { and, asc, eq, inArray, isNotNull, isNull, lt, notExists, sql } from 'drizzle-orm';
import { mediaObjectKey } from '../../common/storage-keys';
import type { Database } from '../client';
import { batches, jobEvents, jobs, media, type BatchRow, type JobRow } from '../schema';
import { checkRunningJobsCap, violatesUniqueIndex, type JobWithMedia, type NewJob, type RunningJobsCap } from './jobs';

export interface NewBatch {
  owner: string;
  idempotencyKey?: string;
  requestHash: string;
  webhookUrl?: string;
}

/**
 * Inserts the batch and every one of its jobs (each with its PENDING media rows and its first event)
 * in one transaction: all of them, or nothing. With a cap, the jobs count against it together. A
 * second batch with the same (owner, idempotency key) fails on the unique index:
 * see isBatchIdempotencyConflict.
 */
export async function createBatch(
  db: Database,
  batch: NewBatch,
  requests: NewJob[],
  cap?: RunningJobsCap,
): Promise<{ batch: BatchRow; jobs: JobRow[] }> {
  // Millisecond precision, so that list cursors (JavaScript dates) compare exactly.
  const now = new Date();
  const batchId = randomUUID();
  const planned = requests.map((request, batchIndex) => ({
    ...request,
    id: randomUUID(),
    batchId,
    batchIndex,
    owner: batch.owner,
    // The job's sequence starts at 1: its first event is written below.
    eventSeq: 1,
    createdAt: now,
    updatedAt: now,
  }));
  return db.transaction(async (tx) => {
    if (cap) await checkRunningJobsCap(tx, cap, requests.length);
    const [inserted] = await tx
      .insert(batches)
      .values({ id: batchId, ...batch, createdAt: now })
      .returning();
    const insertedJobs = await tx.insert(jobs).values(planned).returning();
    await tx.insert(media).values(
      planned.flatMap((job) =>
        Array.from({ length: job.numOutputs }, (_, outputIndex) => ({
          jobId: job.id,
          outputIndex,
          s3Key: mediaObjectKey(job.id, outputIndex, job.outputFormat),
          createdAt: now,
          updatedAt: now,
        })),
      ),
    );
    await tx.insert(jobEvents).values(
      planned.map((job) => ({
        jobId: job.id,
        seq: 1,
        type: 'status' as const,
        data: { status: 'PENDING', error_message: null },
      })),
    );
    insertedJobs.sort((a, b) => a.batchIndex! - b.batchIndex!);
    return { batch: inserted!, jobs: insertedJobs };
  });
}

/** Whether an error is the unique index on (owner, idempotency_key) of batches refusing a second batch. */
export function isBatchIdempotencyConflict(error: unknown): boolean {
  return violatesUniqueIndex(error, 'batches_owner_idempotency_key_idx');
}

export async function findBatchByIdempotencyKey(
  db: Database,
  owner: string,
  idempotencyKey: string,
): Promise<BatchRow | undefined> {
  const [batch] = await db
    .select()
    .from(batches)
    .where(and(eq(batches.owner, owner), eq(batches.idempotencyKey, idempotencyKey)));
  return batch;
}

export async function getBatch(db: Database, batchId: string): Promise<BatchRow | undefined> {
  const [batch] = await db.select().from(batches).where(eq(batches.id, batchId));
  return batch;
}

/** The batch's jobs in the order of the request's `jobs`, each with its media. */
export async function listBatchJobs(db: Database, batchId: string): Promise<JobWithMedia[]> {
  const jobRows = await db.select().from(jobs).where(eq(jobs.batchId, batchId)).orderBy(asc(jobs.batchIndex));
  if (jobRows.length === 0) return [];
  const mediaRows = await db
    .select()
    .from(media)
    .where(
      inArray(
        media.jobId,
        jobRows.map((job) => job.id),
      ),
    )
    .orderBy(asc(media.outputIndex));
  return jobRows.map((job) => ({ ...job, media: mediaRows.filter((row) => row.jobId === job.id) }));
}

/** Removes a batch none of whose jobs is left (its submission was undone); returns whether it did. */
export async function deleteEmptyBatch(db: Database, batchId: string): Promise<boolean> {
  const deleted = await db
    .delete(batches)
    .where(and(eq(batches.id, batchId), notExists(db.select().from(jobs).where(eq(jobs.batchId, batchId)))))
    .returning({ id: batches.id });
  return deleted.length > 0;
}

/** A batch whose webhook is due: it has ended, has a webhook_url, and its delivery has not been started. */
export type DueBatchWebhook = Pick<BatchRow, 'id'> & { webhookUrl: string };

const webhookDue = and(isNotNull(batches.endedAt), isNotNull(batches.webhookUrl), isNull(batches.webhookStartedAt));

/** The batch of this job when its webhook is due (see DueBatchWebhook). */
export async function dueWebhookOfJobBatch(db: Database, jobId: string): Promise<DueBatchWebhook | undefined> {
  const [row] = await db
    .select({ id: batches.id, webhookUrl: batches.webhookUrl })
    .from(jobs)
    .innerJoin(batches, eq(batches.id, jobs.batchId))
    .where(and(eq(jobs.id, jobId), webhookDue));
  return row ? { id: row.id, webhookUrl: row.webhookUrl! } : undefined;
}

/** Batches whose webhook has been due for over `olderThanSeconds` (its announcer was cut off), oldest first. */
export async function listDueBatchWebhooks(
  db: Database,
  olderThanSeconds: number,
  limit: number,
): Promise<DueBatchWebhook[]> {
  const rows = await db
    .select({ id: batches.id, webhookUrl: batches.webhookUrl })
    .from(batches)
    .where(and(webhookDue, lt(batches.endedAt, sql`now() - ${olderThanSeconds} * interval '1 second'`)))
    .orderBy(asc(batches.endedAt))
    .limit(limit);
  return rows.map((row) => ({ id: row.id, webhookUrl: row.webhookUrl! }));
}

/** Records that the batch's webhook delivery has been started; the first time stays. */
export async function markBatchWebhookStarted(db: Database, batchId: string): Promise<void> {
  await db
    .update(batches)
    .set({ webhookStartedAt: sql`coalesce(${batches.webhookStartedAt}, now())` })
    .where(eq(batches.id, batchId));
}
