import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { resolveBinary } from './binaries';
import { spawnPrefixed } from './processes';

export const SEARCH_ATTRIBUTES = ['MediaJobStatus=Keyword'];

/** The server's dynamic config, shared with docker-compose.yml (task-queue priority and fairness). */
export const TEMPORAL_DYNAMIC_CONFIG_FILE = path.join(__dirname, '..', 'deploy', 'temporal-dynamic-config.yaml');

/**
 * The dynamic config file as dev-server flags: each key's unconstrained value, as JSON
 * (`--dynamic-config-value matching.enableFairness=true`); `except` leaves keys at the server's default.
 */
export function dynamicConfigArgs(options: { except?: string[] } = {}): string[] {
  const settings = parse(readFileSync(TEMPORAL_DYNAMIC_CONFIG_FILE, 'utf8')) as Record<
    string,
    { value: unknown; constraints?: unknown }[]
  >;
  return Object.entries(settings).flatMap(([key, entries]) => {
    if (options.except?.includes(key)) return [];
    const entry = entries.find((candidate) => candidate.constraints === undefined);
    return entry ? ['--dynamic-config-value', `${key}=${JSON.stringify(entry.value)}`] : [];
  });
}

/** `temporal server start-dev`, persisting to `dbFile`, with the search attribute registered at start and the dynamic config. */
export function startTemporalDevServer(options: { port: number; uiPort?: number; dbFile?: string; quiet?: boolean }) {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(options.port), '--log-level', 'warn'];
  for (const attribute of SEARCH_ATTRIBUTES) args.push('--search-attribute', attribute);
  args.push(...dynamicConfigArgs());
  if (options.dbFile) {
    mkdirSync(path.dirname(options.dbFile), { recursive: true });
    // WAL with normal sync: without them SQLite syncs to disk on every commit, and each workflow start waits for it.
    args.push(
      '--db-filename',
      options.dbFile,
      '--sqlite-pragma',
      'journal_mode=wal',
      '--sqlite-pragma',
      'synchronous=normal',
    );
  }
  if (options.uiPort) args.push('--ui-port', String(options.uiPort));
  else args.push('--headless');
  return spawnPrefixed('temporal', resolveBinary('temporal'), args, { quiet: options.quiet });
}

/** versitygw serving a folder over S3 on `port` (path-style), with its web console on `consolePort`. */
export function startS3Server(options: {
  port: number;
  dataDir: string;
  accessKey: string;
  secretKey: string;
  consolePort?: number;
  quiet?: boolean;
}) {
  mkdirSync(options.dataDir, { recursive: true });
  // Keep-alive is off by default in versitygw: each S3 request would then be a new TCP connection
  // (about a third of a small upload's CPU in the worker, and more in versitygw).
  const args = ['--port', `127.0.0.1:${options.port}`, '--quiet', '--keep-alive'];
  // The console's origin needs CORS; '*' is versitygw's default, named here so that it does not warn about it.
  if (options.consolePort)
    args.push('--webui', `127.0.0.1:${options.consolePort}`, '--webui-no-tls', '--cors-allow-origin', '*');
  args.push('posix', options.dataDir);
  return spawnPrefixed('s3', resolveBinary('versitygw'), args, {
    quiet: options.quiet,
    env: { ...process.env, ROOT_ACCESS_KEY: options.accessKey, ROOT_SECRET_KEY: options.secretKey },
  });
}
