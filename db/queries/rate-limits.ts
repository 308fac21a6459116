import { lt, sql } from 'drizzle-orm';
import type { Database } from '../client';
import { rateLimitWindows } from '../schema';

export interface WindowCount {
  /** Requests counted in the current window, this one included. */
  count: number;
  /** Seconds until the window ends. */
  resetSeconds: number;
}

/**
 * Counts one request in the subject's current one-minute window (fixed windows on the database's
 * clock, so every API process shares them).
 */
export async function countRequest(db: Database, subject: string): Promise<WindowCount> {
  const result = await db.execute<{ count: number; reset_seconds: string }>(sql`
    insert into ${rateLimitWindows} (subject, window_start, count)
    values (${subject}, date_trunc('minute', now()), 1)
    on conflict (subject, window_start) do update set count = ${rateLimitWindows}.count + 1
    returning count, extract(epoch from (window_start + interval '1 minute' - now())) as reset_seconds`);
  const row = result.rows[0]!;
  return { count: Number(row.count), resetSeconds: Math.max(1, Math.ceil(Number(row.reset_seconds))) };
}

/** Drops windows that ended long ago. */
export async function pruneRateLimitWindows(db: Database): Promise<void> {
  await db.delete(rateLimitWindows).where(lt(rateLimitWindows.windowStart, sql`now() - interval '10 minutes'`));
}
