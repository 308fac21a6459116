import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { Pool } from 'pg';
import * as schema from './schema';

export type Database = NodePgDatabase<typeof schema>;

export interface DatabaseHandle {
  db: Database;
  pool: Pool;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  url: string;
  poolSize?: number;
  /** Called for connection errors of the pool's clients (a restarted server); without a listener they crash the process. */
  onIdleClientError?: (error: Error) => void;
}

/**
 * The pg Pool under a Database (drizzle's node-postgres driver keeps it as `$client`), for a
 * library that speaks to the pool itself (rate-limiter-flexible's RateLimiterPostgres).
 */
export function poolOf(db: Database): Pool {
  const pool = (db as Database & { $client?: Pool }).$client;
  if (!pool) throw new Error('this Database has no pg Pool under it');
  return pool;
}

export function createDatabase({ url, poolSize = 10, onIdleClientError }: DatabaseOptions): DatabaseHandle {
  const pool = new Pool({
    connectionString: url,
    max: poolSize,
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
    // A statement that hangs on a half-dead connection must fail, not stall an API request or activity.
    query_timeout: 10_000,
  });
  pool.on('error', (error) => onIdleClientError?.(error));
  // The pool listens for errors only on idle clients. A connection cut while a client is checked
  // out between two statements (in a transaction) emits 'error' on that client, which with no
  // listener crashes the process; its statements fail on their own, and the pool drops it.
  pool.on('connect', (client) => client.on('error', (error) => onIdleClientError?.(error)));
  const db = drizzle(pool, { schema });
  return { db, pool, close: () => pool.end() };
}
