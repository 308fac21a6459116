import { sql } from 'drizzle-orm';
import type { Database } from '../client';
import { jobs, media } from '../schema';

export interface UsageFigures {
  jobs: number;
  outputs: number;
  bytesStored: number;
  predictionSeconds: number;
}

export interface UsageRow extends UsageFigures {
  /** The UTC day the jobs were submitted, YYYY-MM-DD. */
  day: string;
  model: string;
}

export interface UsageParams {
  /** Only this owner's jobs; every job when undefined. */
  owner?: string;
  /** Jobs submitted at or after `from` and before `to`; all of them when unset. */
  from?: Date;
  to?: Date;
}

/**
 * Jobs, stored outputs, their bytes and the seconds spent generating, per UTC day of submission and
 * model. Outputs and bytes count what was stored, also when its objects were removed since.
 */
export async function usageByDayAndModel(db: Database, { owner, from, to }: UsageParams): Promise<UsageRow[]> {
  const conditions = [
    owner !== undefined ? sql`j.owner = ${owner}` : undefined,
    from ? sql`j.created_at >= ${from.toISOString()}::timestamptz` : undefined,
    to ? sql`j.created_at < ${to.toISOString()}::timestamptz` : undefined,
  ].filter((condition) => condition !== undefined);
  const where = conditions.length > 0 ? sql`where ${sql.join(conditions, sql` and `)}` : sql``;
  const result = await db.execute<{
    day: string;
    model: string;
    jobs: string;
    outputs: string;
    bytes_stored: string;
    prediction_seconds: string;
  }>(sql`
    select to_char(j.created_at at time zone 'UTC', 'YYYY-MM-DD') as day, j.model,
      count(*) as jobs,
      coalesce(sum(stored.outputs), 0) as outputs,
      coalesce(sum(stored.bytes), 0) as bytes_stored,
      coalesce(sum(extract(epoch from (j.generated_at - j.started_at))), 0) as prediction_seconds
    from ${jobs} j
    left join lateral (
      select count(*) as outputs, sum(m.size_bytes) as bytes from ${media} m
      where m.job_id = j.id and m.status = 'COMPLETED'
    ) stored on true
    ${where}
    group by 1, 2
    order by 1, 2`);
  return result.rows.map((row) => ({
    day: row.day,
    model: row.model,
    jobs: Number(row.jobs),
    outputs: Number(row.outputs),
    bytesStored: Number(row.bytes_stored),
    predictionSeconds: Number(row.prediction_seconds),
  }));
}
