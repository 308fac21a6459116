import path from 'node:path';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { Client } from 'pg';
import { loadConfigOrExit } from '../common/config';
import { createDatabase } from './client';

export const MIGRATIONS_FOLDER = path.join(__dirname, 'migrations');

/** Creates the database named in the URL when the server lacks it (a fresh local Postgres). */
export async function ensureDatabaseExists(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!name) return;
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    const existing = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (existing.rowCount === 0) {
      await client.query(`create database "${name.replaceAll('"', '""')}"`).catch((error: { code?: string }) => {
        // 42P04: created concurrently by another process.
        if (error.code !== '42P04') throw error;
      });
    }
  } finally {
    await client.end();
  }
}

export async function runMigrations(url: string): Promise<void> {
  await ensureDatabaseExists(url);
  const handle = createDatabase({ url, poolSize: 1 });
  try {
    await migrate(handle.db, { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await handle.close();
  }
}

if (require.main === module) {
  const config = loadConfigOrExit();
  runMigrations(config.DATABASE_URL).then(
    () => console.log('migrations applied'),
    (error: unknown) => {
      console.error('migration failed:', error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
