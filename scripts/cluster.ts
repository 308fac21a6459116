/**
 * The production engine on one machine, without Docker: the topology docker-compose.yml describes,
 * from the binaries its images ship. A Temporal server on Postgres (its schemas set up by
 * temporal-sql-tool with deploy/temporal-setup-schema.sh, as compose's admin-tools step does; its
 * config deploy/temporal-server.yaml, which compose mounts too), the Temporal Web UI server, Jaeger
 * as the OpenTelemetry collector, S3 (versitygw), and the application: two workers and two API
 * processes, all against the machine's Postgres. `npm run dev -- --cluster`, `npm run test:cluster`
 * and `npm run bench -- --cluster` run it.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { applyBucketLifecycle, createS3Client, ensureBucket } from '../common/s3';
import { runMigrations } from '../db/migrate';
import { resolveBinary } from './binaries';
import { SEARCH_ATTRIBUTES, startS3Server, TEMPORAL_DYNAMIC_CONFIG_FILE } from './local-services';
import { onEachLine, spawnPrefixed, stopProcess, waitForPort, WORKER_NODE_ARGS } from './processes';

const execFileAsync = promisify(execFile);
const ROOT = path.join(__dirname, '..');
const DEPLOY_DIR = path.join(ROOT, 'deploy');
/**
 * Node with tsx's loader, in the process itself: the `tsx` command runs the program in a child of
 * its own, and a SIGKILL to it would leave that child running on.
 */
const nodeWithTsx = (file: string): [string, string[]] => [process.execPath, ['--import', 'tsx', file]];

export interface ClusterPorts {
  /** Added to each of the Temporal server's ports (7233 frontend, 7234 history, 7235 matching, 7239 worker, 6933-6939 membership, 9090 metrics). */
  temporalOffset: number;
  temporalUi: number;
  s3: number;
  /** One API process per port. */
  apis: number[];
  /** One worker per port, which serves its /metrics there. */
  workerMetrics: number[];
  jaegerOtlpHttp: number;
  /** Jaeger's UI and its HTTP API (/api/traces). */
  jaegerUi: number;
  /** Jaeger's query API over gRPC. */
  jaegerQueryGrpc: number;
}

/** The local cluster's ports: Temporal's defaults, the APIs on 8000 and 8001, Jaeger's defaults. */
export const DEFAULT_CLUSTER_PORTS: ClusterPorts = {
  temporalOffset: 0,
  temporalUi: 8233,
  s3: 9000,
  apis: [8000, 8001],
  workerMetrics: [9464, 9465],
  jaegerOtlpHttp: 4318,
  jaegerUi: 16686,
  jaegerQueryGrpc: 16685,
};

/**
 * The cluster's own application database beside DATABASE_URL's (`media_generation` →
 * `media_generation_cluster`): its jobs' workflows live in the cluster's Temporal, and the dev
 * server's reconciler, seeing them missing there, would end them as never started.
 */
export function clusterDatabaseUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}_cluster`;
  return url.toString();
}

export interface ClusterOptions {
  ports: ClusterPorts;
  /** The server's Postgres, as a URL with an admin user (the databases below are created on it). */
  postgresAdminUrl: string;
  /** The application's database (created and migrated when missing). */
  databaseUrl: string;
  /** Temporal's two databases. */
  temporalDatabases: { default: string; visibility: string };
  /** S3's data and the processes' scratch files. */
  dataDir: string;
  s3: { accessKey: string; secretKey: string; bucket: string };
  /** Variables of every worker and API process, on top of the topology's own. */
  appEnv?: NodeJS.ProcessEnv;
  /** A process that exits on its own is started again (with backoff), as a container's restart policy does. */
  restartOnExit?: boolean;
  quiet?: boolean;
  /** Rewrites each line a process prints (the JSON log lines into readable ones). */
  format?: (line: string) => string;
  log?: (message: string) => void;
}

/** A process of the cluster that can be killed, stopped and started again (what the fault tests do to it). */
export class ClusterProcess {
  child?: ChildProcess;
  private stopping = false;
  private restarts = 0;

  constructor(
    readonly name: string,
    private readonly launch: () => ChildProcess,
    private readonly options: { restartOnExit: boolean; log: (message: string) => void; started?: ClusterProcess[] },
  ) {}

  start(): this {
    this.stopping = false;
    if (this.options.started && !this.options.started.includes(this)) this.options.started.push(this);
    const startedAt = Date.now();
    const child = this.launch();
    this.child = child;
    child.once('exit', (code, signal) => {
      if (this.stopping || !this.options.restartOnExit || this.child !== child) return;
      if (Date.now() - startedAt > 30_000) this.restarts = 0;
      const delay = Math.min(30_000, 1_000 * 2 ** this.restarts++);
      this.options.log(`${this.name} exited (${signal ?? `code ${code}`}); restarting in ${delay / 1000}s`);
      setTimeout(() => !this.stopping && this.child === child && this.start(), delay);
    });
    return this;
  }

  get running(): boolean {
    return Boolean(this.child && this.child.exitCode === null && this.child.signalCode === null);
  }

  /** SIGKILL: the process gets no chance to finish anything (a crash, an OOM kill, a lost machine). */
  async kill(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child || !this.running) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 15_000): Promise<void> {
    this.stopping = true;
    if (this.child) await stopProcess(this.child, timeoutMs);
  }
}

export interface Cluster {
  temporalAddress: string;
  temporalUiUrl: string;
  apiUrls: string[];
  s3Endpoint: string;
  jaegerUiUrl: string;
  otlpEndpoint: string;
  temporal: ClusterProcess;
  workers: ClusterProcess[];
  apis: ClusterProcess[];
  /** Every process, the servers first. */
  processes: ClusterProcess[];
  /** Resolves once the worker has logged that it started (after a start or a restart). */
  workerStarted(worker: ClusterProcess, timeoutMs?: number): Promise<void>;
  /** Resolves once the API answers /healthz. */
  apiReady(api: ClusterProcess, timeoutMs?: number): Promise<void>;
  /** Resolves once the Temporal frontend answers (after a start or a restart). */
  temporalReady(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export function databaseUrlFor(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function retry<T>(what: string, attempt: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`${what}: gave up after ${timeoutMs / 1000}s: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
}

/**
 * Starts the whole topology and resolves once a job can be submitted to every API process. A step
 * that fails stops what was started before it throws.
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const started: ClusterProcess[] = [];
  try {
    return await startTopology(options, started);
  } catch (error) {
    await Promise.all(started.reverse().map((process) => process.stop(5_000)));
    throw error;
  }
}

async function startTopology(options: ClusterOptions, started: ClusterProcess[]): Promise<Cluster> {
  const { ports } = options;
  const log = options.log ?? ((message: string) => console.log(`[cluster] ${message}`));
  const processOptions = { restartOnExit: options.restartOnExit ?? false, log, started };
  const spawnOptions = { quiet: options.quiet, format: options.format };
  mkdirSync(options.dataDir, { recursive: true });
  const temporalAddress = `127.0.0.1:${7233 + ports.temporalOffset}`;
  const temporalCli = resolveBinary('temporal');
  const admin = new URL(options.postgresAdminUrl);
  const temporalDbEnv = {
    TEMPORAL_DB_HOST: admin.hostname,
    TEMPORAL_DB_PORT: admin.port || '5432',
    TEMPORAL_DB_USER: decodeURIComponent(admin.username || 'postgres'),
    SQL_PASSWORD: decodeURIComponent(admin.password),
    TEMPORAL_DB_PASSWORD: decodeURIComponent(admin.password),
    TEMPORAL_DB_NAME: options.temporalDatabases.default,
    TEMPORAL_VISIBILITY_DB_NAME: options.temporalDatabases.visibility,
  };

  // Temporal's schemas, exactly as compose's temporal-admin-tools step sets them up.
  await execFileAsync('sh', [path.join(DEPLOY_DIR, 'temporal-setup-schema.sh')], {
    env: { ...process.env, ...temporalDbEnv, TEMPORAL_SQL_TOOL: resolveBinary('temporal-sql-tool') },
  });
  log(`Temporal schemas ready in ${options.temporalDatabases.default} and ${options.temporalDatabases.visibility}`);
  await runMigrations(options.databaseUrl);

  const temporal = new ClusterProcess(
    'temporal',
    () =>
      spawnPrefixed(
        'temporal',
        resolveBinary('temporal-server'),
        ['--root', ROOT, '--config', 'deploy', '--env', 'temporal-server', '--allow-no-auth', 'start'],
        {
          ...spawnOptions,
          cwd: ROOT,
          env: {
            ...process.env,
            ...temporalDbEnv,
            TEMPORAL_PORT_OFFSET: String(ports.temporalOffset),
            TEMPORAL_DYNAMIC_CONFIG_FILE,
          },
        },
      ),
    processOptions,
  ).start();

  const temporalCommand = (args: string[]) =>
    execFileAsync(temporalCli, [...args, '--address', temporalAddress, '--namespace', 'default']);
  const temporalReady = async (timeoutMs = 120_000) => {
    await waitForPort(7233 + ports.temporalOffset, 'the Temporal server', timeoutMs);
    await retry(
      'the Temporal server',
      async () => {
        const { stdout } = await execFileAsync(temporalCli, [
          'operator',
          'cluster',
          'health',
          '--address',
          temporalAddress,
        ]);
        if (!stdout.includes('SERVING')) throw new Error(stdout.trim());
        await temporalCommand(['workflow', 'list', '--limit', '1']);
      },
      timeoutMs,
    );
  };
  await waitForPort(7233 + ports.temporalOffset, 'the Temporal server', 120_000);
  // The namespace and the search attribute, as compose's temporal-create-namespace step makes them.
  await retry(
    'the default namespace',
    () =>
      temporalCommand(['operator', 'namespace', 'describe']).catch(() =>
        temporalCommand(['operator', 'namespace', 'create', '--retention', '72h']),
      ),
    120_000,
  );
  for (const attribute of SEARCH_ATTRIBUTES) {
    const [name, type] = attribute.split('=') as [string, string];
    await retry(
      `the ${name} search attribute`,
      async () => {
        const { stdout } = await temporalCommand(['operator', 'search-attribute', 'list']);
        if (!new RegExp(`${name}\\s+${type}`).test(stdout))
          await temporalCommand(['operator', 'search-attribute', 'create', '--name', name, '--type', type]);
      },
      60_000,
    );
  }
  await temporalReady();
  log(`Temporal server on ${temporalAddress} (Postgres), namespace default ready`);

  const temporalUi = new ClusterProcess(
    'temporal-ui',
    () =>
      spawnPrefixed(
        'temporal-ui',
        resolveBinary('temporal-ui-server'),
        ['--root', ROOT, '--config', 'deploy', '--env', 'temporal-ui-server', 'start'],
        {
          ...spawnOptions,
          cwd: ROOT,
          env: { ...process.env, TEMPORAL_ADDRESS: temporalAddress, TEMPORAL_UI_PORT: String(ports.temporalUi) },
        },
      ),
    processOptions,
  ).start();

  const jaeger = new ClusterProcess(
    'jaeger',
    () =>
      spawnPrefixed('jaeger', resolveBinary('jaeger'), ['--config', path.join(DEPLOY_DIR, 'jaeger.yaml')], {
        ...spawnOptions,
        env: {
          ...process.env,
          JAEGER_OTLP_HTTP_PORT: String(ports.jaegerOtlpHttp),
          JAEGER_UI_PORT: String(ports.jaegerUi),
          JAEGER_GRPC_PORT: String(ports.jaegerQueryGrpc),
        },
      }),
    processOptions,
  ).start();

  const s3Endpoint = `http://127.0.0.1:${ports.s3}`;
  const s3 = new ClusterProcess(
    's3',
    () =>
      startS3Server({
        port: ports.s3,
        dataDir: path.join(options.dataDir, 's3'),
        accessKey: options.s3.accessKey,
        secretKey: options.s3.secretKey,
        quiet: options.quiet,
      }),
    processOptions,
  ).start();
  await waitForPort(ports.s3, 'S3');
  const s3Client = createS3Client({
    S3_ENDPOINT_URL: s3Endpoint,
    S3_REGION: 'us-east-1',
    S3_ACCESS_KEY_ID: options.s3.accessKey,
    S3_SECRET_ACCESS_KEY: options.s3.secretKey,
    S3_FORCE_PATH_STYLE: true,
  });
  await ensureBucket(s3Client, options.s3.bucket);
  await applyBucketLifecycle(s3Client, options.s3.bucket);
  await Promise.all([
    waitForPort(ports.temporalUi, 'the Temporal Web UI'),
    waitForPort(ports.jaegerOtlpHttp, 'Jaeger (OTLP)'),
    waitForPort(ports.jaegerUi, 'Jaeger (UI)'),
  ]);

  const otlpEndpoint = `http://127.0.0.1:${ports.jaegerOtlpHttp}`;
  const temporalUiUrl = `http://127.0.0.1:${ports.temporalUi}`;
  const appEnv: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    DATABASE_URL: options.databaseUrl,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_UI_URL: temporalUiUrl,
    S3_ENDPOINT_URL: s3Endpoint,
    S3_PUBLIC_ENDPOINT_URL: s3Endpoint,
    S3_ACCESS_KEY_ID: options.s3.accessKey,
    S3_SECRET_ACCESS_KEY: options.s3.secretKey,
    S3_BUCKET_NAME: options.s3.bucket,
    S3_FORCE_PATH_STYLE: 'true',
    OTEL_EXPORTER_OTLP_ENDPOINT: otlpEndpoint,
    // Four application processes and the server's 48 share Postgres's 100 connections.
    DATABASE_POOL_SIZE: process.env.DATABASE_POOL_SIZE ?? '8',
    ...options.appEnv,
    // The cluster learns from the workers' info lines that they have started.
    LOG_LEVEL: 'info',
  };
  const workers = ports.workerMetrics.map(
    (metricsPort, index) =>
      new ClusterProcess(
        `worker-${index + 1}`,
        () =>
          spawnPrefixed(`worker-${index + 1}`, process.execPath, WORKER_NODE_ARGS, {
            ...spawnOptions,
            cwd: ROOT,
            env: { ...appEnv, WORKER_METRICS_PORT: String(metricsPort) },
          }),
        processOptions,
      ),
  );
  const apis = ports.apis.map(
    (port, index) =>
      new ClusterProcess(
        `api-${index + 1}`,
        () =>
          spawnPrefixed(`api-${index + 1}`, ...nodeWithTsx(path.join(ROOT, 'api', 'main.ts')), {
            ...spawnOptions,
            cwd: ROOT,
            env: { ...appEnv, PORT: String(port) },
          }),
        processOptions,
      ),
  );

  const workerStarted = (worker: ClusterProcess, timeoutMs = 180_000) =>
    new Promise<void>((resolve, reject) => {
      const child = worker.child;
      if (!child) return reject(new Error(`${worker.name} is not running`));
      const timer = setTimeout(
        () => reject(new Error(`${worker.name} did not start within ${timeoutMs / 1000}s`)),
        timeoutMs,
      );
      onEachLine(child, (line) => {
        if (line.includes('"msg":"worker started"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${worker.name} exited before it started (${signal ?? `code ${code}`})`));
      });
    });
  const apiReady = async (api: ClusterProcess, timeoutMs = 120_000) => {
    const port = ports.apis[apis.indexOf(api)]!;
    await retry(
      api.name,
      async () => {
        const response = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (!response.ok) throw new Error(`/healthz answered ${response.status}`);
      },
      timeoutMs,
    );
  };

  // The workers bundle their workflows at start (with tracing's interceptors): one after the other, so that two bundlings do not share two cores.
  for (const worker of workers) {
    await workerStarted(worker.start());
  }
  for (const api of apis) api.start();
  await Promise.all(apis.map((api) => apiReady(api)));
  log(`${workers.length} workers and ${apis.length} API processes ready`);

  const processes = [temporal, temporalUi, jaeger, s3, ...workers, ...apis];
  return {
    temporalAddress,
    temporalUiUrl,
    apiUrls: ports.apis.map((port) => `http://127.0.0.1:${port}`),
    s3Endpoint,
    jaegerUiUrl: `http://127.0.0.1:${ports.jaegerUi}`,
    otlpEndpoint,
    temporal,
    workers,
    apis,
    processes,
    workerStarted,
    apiReady,
    temporalReady,
    async stop() {
      // The application first, so that the workers finish with the servers still up.
      await Promise.all([...apis, ...workers].map((process) => process.stop()));
      await Promise.all([temporal, temporalUi, jaeger, s3].map((process) => process.stop()));
    },
  };
}
