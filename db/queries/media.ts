import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Database } from '../client';
import { media } from '../schema';
import { appendJobEvent, lockJob } from './events';
import { outputEventData } from './jobs';

interface OutputRef {
  jobId: string;
  outputIndex: number;
}

/** An attempt at storing an output begins; counts attempts and remembers where it comes from. */
export async function markMediaProcessing(db: Database, ref: OutputRef, sourceUrl: string): Promise<void> {
  await db.transaction(async (tx) => {
    await lockJob(tx, ref.jobId);
    const [row] = await tx
      .update(media)
      .set({ status: 'PROCESSING', mediaUrl: sourceUrl, attempts: sql`${media.attempts} + 1`, errorMessage: null })
      .where(and(eq(media.jobId, ref.jobId), eq(media.outputIndex, ref.outputIndex), inArray(media.status, ['PENDING', 'PROCESSING'])))
      .returning();
    if (row) await appendJobEvent(tx, ref.jobId, 'output', outputEventData(row));
  });
}

export interface StoredObject {
  contentType: string;
  sizeBytes: number;
  sha256: string;
}

/**
 * The object is in the bucket: that is the truth whatever the row said before, so this sets
 * COMPLETED unconditionally (running it twice writes the same values).
 */
export async function markMediaCompleted(db: Database, ref: OutputRef, stored: StoredObject): Promise<void> {
  await db.transaction(async (tx) => {
    await lockJob(tx, ref.jobId);
    const [row] = await tx
      .update(media)
      .set({ status: 'COMPLETED', ...stored, errorMessage: null, completedAt: sql`coalesce(${media.completedAt}, now())` })
      .where(and(eq(media.jobId, ref.jobId), eq(media.outputIndex, ref.outputIndex)))
      .returning();
    if (row) await appendJobEvent(tx, ref.jobId, 'output', outputEventData(row));
  });
}

export async function markMediaFailed(db: Database, ref: OutputRef, errorMessage: string): Promise<void> {
  await db.transaction(async (tx) => {
    await lockJob(tx, ref.jobId);
    const [row] = await tx
      .update(media)
      .set({ status: 'FAILED', errorMessage })
      .where(and(eq(media.jobId, ref.jobId), eq(media.outputIndex, ref.outputIndex), inArray(media.status, ['PENDING', 'PROCESSING'])))
      .returning();
    if (row) await appendJobEvent(tx, ref.jobId, 'output', outputEventData(row));
  });
}
