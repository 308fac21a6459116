import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/**
 * Postgres for `npm run dev` on a machine without one: PGlite (Postgres compiled to WebAssembly)
 * served over the wire protocol. One database; connections are served one query at a time.
 */
async function main(): Promise<void> {
  const [dataDir = '.data/pglite', port = '5432'] = process.argv.slice(2);
  mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir);
  const server = new PGLiteSocketServer({ db, port: Number(port), host: '127.0.0.1', maxConnections: 50 });
  await server.start();
  console.log(`embedded Postgres (PGlite) serving ${dataDir} on 127.0.0.1:${port}`);
  const stop = async () => {
    await server.stop();
    await db.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main().catch((error: unknown) => {
  console.error('embedded Postgres failed:', error);
  process.exit(1);
});
