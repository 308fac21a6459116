import { Client } from 'pg';

/** The service's tables that every job writes and every status read scans. */
const JOB_TABLES = ['jobs', 'media', 'job_events'];

/**
 * VACUUM (ANALYZE) of the job tables before a measured run of the service, as pgbench vacuums its
 * tables before a run: each job leaves dead row versions behind (a job row is updated three
 * times, an output's twice), and without a vacuum in between every run would start from the
 * previous runs' dead rows, and later phases would pay for earlier ones. A Postgres with
 * autovacuum on does the same within a minute under load; one with it off (as some CI setups
 * run) never does.
 */
export async function vacuumJobTables(databaseUrl: string): Promise<void> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`VACUUM (ANALYZE) ${JOB_TABLES.join(', ')}`);
  } finally {
    await client.end();
  }
}
