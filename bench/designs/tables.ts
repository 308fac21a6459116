import { Client } from 'pg';

/**
 * The tables of the designs the service is compared with: a job row and a row per output, in a
 * schema of their own in the stack's database, so that they never touch the service's tables.
 */
export const DESIGN_SCHEMA = 'bench_designs';

export async function prepareDesignTables(databaseUrl: string): Promise<void> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`
      create schema if not exists ${DESIGN_SCHEMA};
      create table if not exists ${DESIGN_SCHEMA}.jobs (
        id uuid primary key,
        status text not null,
        num_outputs integer not null,
        created_at timestamptz not null default now(),
        started_at timestamptz,
        completed_at timestamptz
      );
      create table if not exists ${DESIGN_SCHEMA}.media (
        job_id uuid not null references ${DESIGN_SCHEMA}.jobs (id) on delete cascade,
        output_index integer not null,
        status text not null,
        s3_key text not null,
        size_bytes integer,
        sha256 text,
        primary key (job_id, output_index)
      );
      truncate ${DESIGN_SCHEMA}.jobs cascade;
    `);
  } finally {
    await client.end();
  }
}

/**
 * What a design's runs left: the jobs it completed and the outputs they stored (a row marked
 * stored, with its size), read before the tables are emptied for the next design.
 */
export async function takeDesignTotals(databaseUrl: string): Promise<{ jobsCompleted: number; outputsStored: number }> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ jobs: number; outputs: number }>(`
      select
        (select count(*) from ${DESIGN_SCHEMA}.jobs where status = 'COMPLETED')::int as jobs,
        (select count(*) from ${DESIGN_SCHEMA}.media m join ${DESIGN_SCHEMA}.jobs j on j.id = m.job_id
          where j.status = 'COMPLETED' and m.status = 'COMPLETED' and m.size_bytes > 0)::int as outputs`);
    await client.query(`truncate ${DESIGN_SCHEMA}.jobs cascade`);
    return { jobsCompleted: rows[0]!.jobs, outputsStored: rows[0]!.outputs };
  } finally {
    await client.end();
  }
}

/** A job and its outputs, written in one statement, as the service's submission does. */
export const INSERT_JOB_SQL = `
  with job as (
    insert into ${DESIGN_SCHEMA}.jobs (id, status, num_outputs) values ($1, 'PENDING', $2) returning id
  )
  insert into ${DESIGN_SCHEMA}.media (job_id, output_index, status, s3_key)
  select job.id, index, 'PENDING', 'designs/' || job.id || '/' || index || '.png'
  from job, generate_series(0, $2 - 1) as index`;

export const JOB_STATUS_SQL = `select status from ${DESIGN_SCHEMA}.jobs where id = $1`;
export const START_JOB_SQL = `update ${DESIGN_SCHEMA}.jobs set status = 'PROCESSING', started_at = now() where id = $1`;
export const STORE_OUTPUT_SQL = `update ${DESIGN_SCHEMA}.media set status = 'COMPLETED', size_bytes = $3, sha256 = $4 where job_id = $1 and output_index = $2`;
export const FINISH_JOB_SQL = `update ${DESIGN_SCHEMA}.jobs set status = 'COMPLETED', completed_at = now() where id = $1`;
