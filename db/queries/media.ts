import { and, eq, sql, type SQL } from 'drizzle-orm';
import { isTerminalStatus, TERMINAL_STATUSES } from '../../common/statuses';
import type { Database } from '../client';
import { jobEvents, jobs, media, type MediaRow } from '../schema';
import { outputEventJson } from './jobs';

interface OutputRef {
  jobId: string;
  outputIndex: number;
}

/**
 * Updates one media row and records its `output` event, in one statement: the job row is locked
 * first (every writer locks job, then media), the row is changed when `onlyIf` holds (and the job's
 * row `jobOnlyIf`), and the event takes the job's next sequence number. Returns whether the row changed.
 */
async function updateOutput(
  db: Database,
  ref: OutputRef,
  changes: SQL,
  onlyIf?: SQL,
  jobOnlyIf?: SQL,
): Promise<boolean> {
  const result = await db.execute<{ seq: number }>(sql`
    with locked as (
      select id from ${jobs} where id = ${ref.jobId}${jobOnlyIf ? sql` and ${jobOnlyIf}` : sql``} for update
    ), changed as (
      update ${media} set ${changes}, updated_at = now()
      where job_id = (select id from locked) and output_index = ${ref.outputIndex}${onlyIf ? sql` and ${onlyIf}` : sql``}
      returning job_id, output_index, status, s3_key, attempts, error_message
    ), bumped as (
      update ${jobs} set event_seq = event_seq + 1, updated_at = now()
      where id = (select job_id from changed)
      returning id, event_seq
    )
    insert into ${jobEvents} (job_id, seq, type, data)
    select bumped.id, bumped.event_seq, 'output', ${outputEventJson(sql.raw('changed'))}
    from changed, bumped
    returning seq`);
  return result.rows.length > 0;
}

const UNFINISHED = sql.raw(`status in ('PENDING', 'PROCESSING')`);

/**
 * Attempt `attempt` at storing an output begins: records it and where the output comes from. The
 * count is the activity's attempt number, not an increment, so a write repeated after a lost
 * answer (or a stale attempt beside a newer one) does not count twice.
 */
export async function markMediaProcessing(
  db: Database,
  ref: OutputRef,
  sourceUrl: string,
  attempt: number,
): Promise<void> {
  await updateOutput(
    db,
    ref,
    sql`status = 'PROCESSING', media_url = ${sourceUrl}, attempts = greatest(attempts, ${attempt}), error_message = null`,
    UNFINISHED,
  );
}

export async function getMedia(db: Database, ref: OutputRef): Promise<MediaRow | undefined> {
  const [row] = await db
    .select()
    .from(media)
    .where(and(eq(media.jobId, ref.jobId), eq(media.outputIndex, ref.outputIndex)));
  return row;
}

export interface StoredObject {
  contentType: string;
  sizeBytes: number;
  sha256: string;
}

const TERMINAL = sql.raw(TERMINAL_STATUSES.map((status) => `'${status}'`).join(', '));
/** A job takes its outputs' records until it has ended; a DELETE of a running job waits for its end to remove them. */
const JOB_NOT_ENDED = sql`status not in (${TERMINAL})`;

/**
 * What became of an attempt's record of its stored object: recorded (or already on record), or
 * refused because the job had ended, and then whether its outputs are being removed.
 */
export type OutputRecord = 'recorded' | 'job-ended' | 'removal-due';

/**
 * The object is in the bucket: while the job runs, that is the truth whatever the row said before,
 * so this sets COMPLETED whatever the status was. A row that already records this very object (an
 * attempt run again after its answer was lost, a local one among them) is left as it is, with no
 * second event. It records the attempt and the source too, for an attempt that stored the output
 * without marking it PROCESSING first.
 *
 * An attempt that outlived its job (one Temporal took for dead, a local one past its timeout)
 * records no output: the job's end stays its last event, and the status its end gave each output
 * stays. Only an output that is COMPLETED takes the facts of the object that is now under its key
 * (its size and hash), silently, since the object is what a download gets.
 */
export async function markMediaCompleted(
  db: Database,
  ref: OutputRef,
  stored: StoredObject & { sourceUrl: string; attempt: number },
): Promise<OutputRecord> {
  const changed = await updateOutput(
    db,
    ref,
    sql`status = 'COMPLETED', content_type = ${stored.contentType}, size_bytes = ${stored.sizeBytes}, sha256 = ${stored.sha256},
        media_url = ${stored.sourceUrl}, attempts = greatest(attempts, ${stored.attempt}),
        error_message = null, completed_at = coalesce(completed_at, now())`,
    sql`not (status = 'COMPLETED' and sha256 is not distinct from ${stored.sha256} and size_bytes is not distinct from ${stored.sizeBytes})`,
    JOB_NOT_ENDED,
  );
  if (changed) return 'recorded';
  // Nothing changed (rare): the row records this object already, or the job has ended.
  const result = await db.execute<{ ended: boolean; removal_due: boolean }>(sql`
    select j.status in (${TERMINAL}) as ended,
      coalesce(j.data_removed_at is not null or j.expires_at <= now(), false) as removal_due
    from ${jobs} j where j.id = ${ref.jobId}`);
  const [job] = result.rows;
  if (!job) return 'job-ended';
  if (!job.ended) return 'recorded';
  if (job.removal_due) return 'removal-due';
  const corrected = await db
    .update(media)
    .set({ contentType: stored.contentType, sizeBytes: stored.sizeBytes, sha256: stored.sha256 })
    .where(
      and(
        eq(media.jobId, ref.jobId),
        eq(media.outputIndex, ref.outputIndex),
        eq(media.status, 'COMPLETED'),
        // Still ended: a retry that reopened the job meanwhile records its own objects.
        sql`exists (select 1 from ${jobs} where ${jobs.id} = ${ref.jobId} and ${jobs.status} in (${TERMINAL}))`,
      ),
    )
    .returning({ jobId: media.jobId });
  return corrected.length > 0 ? 'recorded' : 'job-ended';
}

/** The output failed for good; `attempts`, when given, is how many were made (a local one records none before). */
export async function markMediaFailed(db: Database, ref: OutputRef, errorMessage: string, attempts = 0): Promise<void> {
  await updateOutput(
    db,
    ref,
    sql`status = 'FAILED', error_message = ${errorMessage}, attempts = greatest(attempts, ${attempts})`,
    UNFINISHED,
  );
}

/**
 * Attempt `attempt` at storing the output failed on the source's or storage's own error: counts it
 * and returns the count. (A write repeated after a lost answer counts twice: it errs towards failing.)
 * Counted only on an output still to store of a job that has not ended: an attempt that outlived
 * its heartbeat and fails beside the one that stored (or failed) the output counts for nothing (`settled`), and
 * one whose job ended has nothing left to try for (`job-ended`). An output without a row counts as
 * out of attempts.
 */
export async function recordMediaAttemptFailed(
  db: Database,
  ref: OutputRef,
  attempt: number,
): Promise<number | 'settled' | 'job-ended'> {
  const [row] = await db
    .update(media)
    .set({ failedAttempts: sql`${media.failedAttempts} + 1`, attempts: sql`greatest(${media.attempts}, ${attempt})` })
    .where(
      and(
        eq(media.jobId, ref.jobId),
        eq(media.outputIndex, ref.outputIndex),
        UNFINISHED,
        sql`exists (select 1 from ${jobs} where ${jobs.id} = ${ref.jobId} and ${jobs.status} not in (${TERMINAL}))`,
      ),
    )
    .returning({ failedAttempts: media.failedAttempts });
  if (row) return row.failedAttempts;
  const [found] = await db
    .select({ jobStatus: jobs.status })
    .from(media)
    .innerJoin(jobs, eq(jobs.id, media.jobId))
    .where(and(eq(media.jobId, ref.jobId), eq(media.outputIndex, ref.outputIndex)));
  if (!found) return Number.MAX_SAFE_INTEGER;
  return isTerminalStatus(found.jobStatus) ? 'job-ended' : 'settled';
}
