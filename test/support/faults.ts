import type { Pool } from 'pg';
import type { SubmissionLedger } from './ledger';
import { validRequest } from './stack';
import { waitFor } from './wait';

export interface JobState {
  id: string;
  status: string;
  error_message: string | null;
  prediction_id: string | null;
  completed_at: Date | null;
  media: { output_index: number; status: string; attempts: number; error_message: string | null }[];
}

/** A job's row and its media rows, read from Postgres directly (not through the API under test). */
export async function jobState(pool: Pool, jobId: string): Promise<JobState | undefined> {
  const { rows } = await pool.query<Omit<JobState, 'media'>>(
    'select id, status, error_message, prediction_id, completed_at from jobs where id = $1',
    [jobId],
  );
  if (!rows[0]) return undefined;
  const media = await pool.query<JobState['media'][number]>(
    'select output_index, status, attempts, error_message from media where job_id = $1 order by output_index',
    [jobId],
  );
  return { ...rows[0], media: media.rows };
}

/** Resolves once every job has ended; returns when each did (ms since the epoch). */
export async function waitForJobsToEnd(
  pool: Pool,
  jobIds: string[],
  timeoutMs: number,
): Promise<Map<string, { status: string; endedAt: number }>> {
  const ended = new Map<string, { status: string; endedAt: number }>();
  await waitFor(
    `${jobIds.length} job(s) to end`,
    async () => {
      const { rows } = await pool.query<{ id: string; status: string }>(
        `select id, status from jobs where id = any($1::uuid[]) and status in ('COMPLETED', 'FAILED', 'CANCELLED')`,
        [jobIds],
      );
      for (const row of rows) if (!ended.has(row.id)) ended.set(row.id, { status: row.status, endedAt: Date.now() });
      return ended.size === jobIds.length;
    },
    timeoutMs,
    100,
  ).catch(async (error: Error) => {
    const { rows } = await pool.query<{ id: string; status: string }>(
      'select id, status from jobs where id = any($1::uuid[])',
      [jobIds],
    );
    throw new Error(`${error.message}; jobs: ${rows.map((row) => `${row.id}=${row.status}`).join(', ')}`);
  });
  return ended;
}

/** A unique marker for one run of a fault test file, put in every prompt it submits. */
export function runMarker(family: string): string {
  return `fault-${family}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/** Submits one-output jobs until the API accepts one again (after an outage); the accepted submission. */
export function submitUntilAccepted(ledger: SubmissionLedger, baseUrl: string, timeoutMs: number) {
  return waitFor(
    'the API to accept a job again',
    async () => {
      const reply = await ledger.submit(baseUrl, { ...validRequest, num_outputs: 1 });
      return reply.status === 202 ? reply : undefined;
    },
    timeoutMs,
    500,
  );
}
