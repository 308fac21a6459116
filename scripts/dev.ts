import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { prettyFactory } from 'pino-pretty';
import { loadConfigOrExit } from '../common/config';
import { applyBucketLifecycle, createS3Client, ensureBucket } from '../common/s3';
import { runMigrations } from '../db/migrate';
import { buildConsole, describeBuild, watchConsole } from './build-console';
import { clusterDatabaseUrl, DEFAULT_CLUSTER_PORTS, startCluster, type Cluster } from './cluster';
import { startS3Server, startTemporalDevServer } from './local-services';
import { isPortOpen, onEachLine, spawnPrefixed, stopProcess, waitForPort, WORKER_NODE_ARGS } from './processes';

const ROOT = path.join(__dirname, '..');
const DATA_DIR = path.join(ROOT, '.data');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const PORTS = { temporal: 7233, temporalUi: 8233, s3: 9000, s3Console: 9001, postgres: 5432 };

// The processes log JSON lines (what a log collector wants); here a person reads them.
const pretty = prettyFactory({
  colorize: Boolean(process.stdout.isTTY),
  translateTime: 'SYS:HH:MM:ss',
  ignore: 'pid,hostname,name',
  singleLine: true,
});
const prettyLine = (line: string): string => (line.startsWith('{') ? pretty(line) : line);

interface Supervised {
  name: string;
  start: () => ChildProcess;
  child?: ChildProcess;
  restarts: number;
  /** Resolves on the first line (of any run of the process) that matches `readyLine`. */
  ready: Promise<void>;
}

const supervised: Supervised[] = [];
let stopping = false;
let consoleWatch: { dispose: () => Promise<void> } | undefined;
let lastOutputAt = Date.now();
let cluster: Cluster | undefined;

/** Keeps a process running: one that dies is reported and restarted, with backoff, while the others keep going. */
function supervise(name: string, start: () => ChildProcess, readyLine?: RegExp): Supervised {
  let markReady = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const entry: Supervised = { name, start, restarts: 0, ready };
  const launch = () => {
    const startedAt = Date.now();
    const child = entry.start();
    entry.child = child;
    onEachLine(child, (line) => {
      lastOutputAt = Date.now();
      if (readyLine?.test(line)) markReady();
    });
    child.once('exit', (code, signal) => {
      if (stopping) return;
      if (Date.now() - startedAt > 30_000) entry.restarts = 0;
      const delay = Math.min(30_000, 1_000 * 2 ** entry.restarts++);
      console.error(`[dev] ${name} exited (${signal ?? `code ${code}`}); restarting in ${delay / 1000}s`);
      setTimeout(() => !stopping && launch(), delay);
    });
  };
  launch();
  supervised.push(entry);
  return entry;
}

/** Resolves once no process has printed for `quietMs` (or after `maxMs`): the lines of a start-up arrive a little late. */
async function outputSettled(quietMs = 400, maxMs = 3_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (Date.now() - lastOutputAt < quietMs && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function shutdown(exitCode = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log('\n[dev] stopping...');
  // Application processes first, so the worker finishes with the servers still up.
  const [apps, servers] = [
    supervised.filter((s) => ['api', 'worker'].includes(s.name)),
    supervised.filter((s) => !['api', 'worker'].includes(s.name)),
  ];
  await Promise.all(apps.map((s) => s.child && stopProcess(s.child)));
  await Promise.all(servers.map((s) => s.child && stopProcess(s.child)));
  await cluster?.stop();
  await consoleWatch?.dispose();
  process.exit(exitCode);
}

async function main(): Promise<void> {
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
  const clusterMode = process.argv.includes('--cluster');
  // The AWS SDK warns once per process on Node < 22; the supervisor says it once, for all of them.
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  if (nodeMajor < 22 && process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED !== 'true') {
    console.log(
      `[dev] note: Node ${process.version}: AWS SDK releases after January 2027 need Node 22 (see the README)`,
    );
  }
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const env = { ...process.env };
  if (clusterMode) return startProductionShape();

  if (!process.env.DATABASE_URL && !(await isPortOpen(PORTS.postgres))) {
    console.log(
      '[dev] no Postgres answers on 5432 and DATABASE_URL is unset: serving an embedded one (PGlite) from .data/pglite',
    );
    supervise('postgres', () =>
      spawnPrefixed(
        'postgres',
        TSX,
        [path.join(__dirname, 'embedded-postgres.ts'), path.join(DATA_DIR, 'pglite'), String(PORTS.postgres)],
        { format: prettyLine },
      ),
    );
    // PGlite holds a single database.
    env.DATABASE_URL = `postgres://postgres@127.0.0.1:${PORTS.postgres}/postgres`;
    await waitForPort(PORTS.postgres, 'the embedded Postgres', 120_000);
  }
  const config = loadConfigOrExit(env);

  if (await isPortOpen(PORTS.temporal)) {
    console.log(`[dev] something already listens on ${PORTS.temporal}: using it as Temporal`);
  } else {
    supervise('temporal', () =>
      startTemporalDevServer({
        port: PORTS.temporal,
        uiPort: PORTS.temporalUi,
        dbFile: path.join(DATA_DIR, 'temporal.db'),
      }),
    );
  }
  if (await isPortOpen(PORTS.s3)) {
    console.log(`[dev] something already listens on ${PORTS.s3}: using it as S3`);
  } else {
    supervise('s3', () =>
      startS3Server({
        port: PORTS.s3,
        consolePort: PORTS.s3Console,
        dataDir: path.join(DATA_DIR, 's3'),
        accessKey: config.S3_ACCESS_KEY_ID,
        secretKey: config.S3_SECRET_ACCESS_KEY,
      }),
    );
  }
  await Promise.all([waitForPort(PORTS.temporal, 'Temporal'), waitForPort(PORTS.s3, 'S3')]);

  await runMigrations(config.DATABASE_URL);
  console.log('[dev] database migrated');
  const s3 = createS3Client(config);
  await ensureBucket(s3, config.S3_BUCKET_NAME);
  const lifecycle = (await applyBucketLifecycle(s3, config.S3_BUCKET_NAME))
    ? 'its lifecycle rule aborts uploads left open'
    : 'the server has no lifecycle rules: the expiry sweep aborts uploads left open';
  console.log(`[dev] bucket '${config.S3_BUCKET_NAME}' ready (${lifecycle})`);

  // The console is rebuilt on every change of console/; a reload of the page shows it.
  consoleWatch = await watchConsole(
    (build) => console.log(`[dev] ${describeBuild(build)}`),
    (error) => console.error('[dev] the console did not build:', error instanceof Error ? error.message : error),
  );

  // --profile: the worker and the API run under V8's CPU profiler, each writing a .cpuprofile into
  // .data/profiles when it stops (Ctrl-C); Chrome DevTools or speedscope open them.
  const profileDir = process.argv.includes('--profile') ? path.join(DATA_DIR, 'profiles') : undefined;
  const spawnApp = (name: string, nodeArgs: string[]) =>
    spawnPrefixed(
      name,
      process.execPath,
      [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), ...nodeArgs],
      { env, cwd: ROOT, format: prettyLine },
    );
  const worker = supervise('worker', () => spawnApp('worker', WORKER_NODE_ARGS), /"msg":"worker started"/);
  supervise('api', () => spawnApp('api', ['--import', 'tsx', path.join(ROOT, 'api', 'main.ts')]));
  await Promise.all([waitForPort(config.PORT, 'the API'), worker.ready]);
  await outputSettled();

  const embedded = supervised.some((s) => s.name === 'postgres') ? ' (embedded PGlite, .data/pglite)' : '';
  const workerMetrics =
    config.WORKER_METRICS_PORT > 0 ? `, http://127.0.0.1:${config.WORKER_METRICS_PORT}/metrics (worker)` : '';
  console.log(`
[dev] the stack is up (Ctrl-C stops all of it):
  Web console      http://127.0.0.1:${config.PORT}/console
  API              http://127.0.0.1:${config.PORT}
  API docs         http://127.0.0.1:${config.PORT}/docs
  Temporal Web UI  http://127.0.0.1:${PORTS.temporalUi}
  Temporal gRPC    127.0.0.1:${PORTS.temporal}
  S3               ${config.S3_ENDPOINT_URL} (bucket '${config.S3_BUCKET_NAME}'; console http://127.0.0.1:${PORTS.s3Console})
  Postgres         ${config.DATABASE_URL.replace(/:[^:@/]+@/, ':***@')}${embedded}
  Metrics          http://127.0.0.1:${config.PORT}/metrics (API)${workerMetrics}
`);
}

/**
 * `npm run dev -- --cluster`: the production shape (scripts/cluster.ts) instead of the dev server: a
 * Temporal server on Postgres with its Web UI, Jaeger, two workers and two API processes.
 */
async function startProductionShape(): Promise<void> {
  const config = loadConfigOrExit();
  const ports = DEFAULT_CLUSTER_PORTS;
  const database = new URL(config.DATABASE_URL);
  if (!(await isPortOpen(Number(database.port || 5432), database.hostname))) {
    throw new Error(
      `the cluster's Temporal server keeps its data in Postgres, and none answers at ${database.host} (DATABASE_URL): start Postgres first`,
    );
  }
  const taken = [7233, ports.temporalUi, ports.s3, ...ports.apis, ports.jaegerOtlpHttp, ports.jaegerUi];
  for (const port of taken) {
    if (await isPortOpen(port))
      throw new Error(`port ${port} is taken: stop what listens there (another \`npm run dev\`?)`);
  }
  const adminUrl = new URL(config.DATABASE_URL);
  adminUrl.pathname = '/postgres';
  await buildConsole();
  cluster = await startCluster({
    ports,
    postgresAdminUrl: adminUrl.toString(),
    databaseUrl: clusterDatabaseUrl(config.DATABASE_URL),
    temporalDatabases: { default: 'temporal', visibility: 'temporal_visibility' },
    dataDir: path.join(DATA_DIR, 'cluster'),
    s3: { accessKey: config.S3_ACCESS_KEY_ID, secretKey: config.S3_SECRET_ACCESS_KEY, bucket: config.S3_BUCKET_NAME },
    restartOnExit: true,
    format: (line) => {
      lastOutputAt = Date.now();
      return prettyLine(line);
    },
    log: (message) => console.log(`[dev] ${message}`),
  });
  await outputSettled();
  console.log(`
[dev] the production shape is up (Ctrl-C stops all of it):
  API processes    ${cluster.apiUrls.join(', ')}   (each serves /console, /docs, /metrics)
  Workers          2, metrics on ${ports.workerMetrics.map((port) => `http://127.0.0.1:${port}/metrics`).join(', ')}
  Temporal server  ${cluster.temporalAddress} (Postgres: databases temporal, temporal_visibility; metrics http://127.0.0.1:9090/metrics)
  Temporal Web UI  ${cluster.temporalUiUrl}
  Jaeger (traces)  ${cluster.jaegerUiUrl}
  S3               ${cluster.s3Endpoint} (bucket '${config.S3_BUCKET_NAME}')
  Postgres         ${clusterDatabaseUrl(config.DATABASE_URL).replace(/:[^:@/]+@/, ':***@')}
`);
}

main().catch(async (error: unknown) => {
  console.error('[dev] failed to start:', error instanceof Error ? error.message : error);
  await shutdown(1);
});
