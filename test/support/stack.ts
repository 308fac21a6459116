import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import pino from 'pino';
import { Client as PgClient } from 'pg';
import { createApp } from '../../api/app';
import { drainServer } from '../../api/shutdown';
import { answerUnparsableRequestsWithProblems } from '../../api/client-errors';
import { FakeProvider } from '../../activities/providers/fake-provider';
import type { MediaProvider } from '../../activities/providers/provider';
import { parseConfig, type Config } from '../../common/config';
import { createS3Client } from '../../common/s3';
import { createPresigner } from '../../common/presigner';
import { createDatabase, type DatabaseHandle } from '../../db/client';
import { JobChanges } from '../../db/job-changes';
import { runMigrations } from '../../db/migrate';
import { createMediaWorker, type MediaWorkerOptions } from '../../worker/create-worker';
import { createWorkerMetrics, type WorkerMetrics } from '../../worker/metrics';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import { startTracing } from '../../common/tracing';
import { TEST_S3_CREDENTIALS, testServers } from './servers';

export const silentLogger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Configuration pointing at the shared test servers, with a task queue of its own. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  const servers = testServers();
  return parseConfig({
    DATABASE_URL: servers.databaseUrl,
    TEMPORAL_ADDRESS: servers.temporalAddress,
    TEMPORAL_TASK_QUEUE: `test-${randomUUID()}`,
    S3_ENDPOINT_URL: servers.s3Endpoint,
    S3_ACCESS_KEY_ID: TEST_S3_CREDENTIALS.accessKey,
    S3_SECRET_ACCESS_KEY: TEST_S3_CREDENTIALS.secretKey,
    S3_BUCKET_NAME: servers.bucket,
    ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS: '5',
    ...overrides,
  });
}

export interface TestStack {
  config: Config;
  database: DatabaseHandle;
  client: Client;
  baseUrl: string;
  worker?: Worker;
  /** The in-process worker's Prometheus registry (activity durations and failures). */
  workerMetrics: WorkerMetrics;
  /** The API's change feed. */
  changes: JobChanges;
  /** The API's part of a shutdown, as api/main.ts does it on SIGTERM: resolves once every request was answered. */
  drainApi(): Promise<void>;
  stop(): Promise<void>;
}

export interface TestStackOptions {
  env?: Record<string, string>;
  provider?: MediaProvider;
  /** false: no worker polls the task queue (jobs stay PENDING). */
  worker?: boolean;
  /** The worker's slots (a small worker makes a backlog on purpose). */
  workerTuning?: MediaWorkerOptions['tuning'];
  /** Where the API's Temporal client connects, when it must differ (an unreachable address). */
  apiTemporalAddress?: string;
  /** gRPC interceptors of the API's own Temporal connection (they replace the client's default retry interceptor). */
  apiTemporalInterceptors?: ConnectionOptions['interceptors'];
  /** Tracing on, exporting to this span processor (the API's client, its requests, the worker). */
  tracing?: { spanProcessor: SpanProcessor };
  /**
   * A database of its own, migrated at start and dropped at stop, instead of the shared one: for
   * tests of the reconciler, whose passes read every unfinished row and due batch webhook of the
   * database they run on, and start their clean-up on their own task queue. On the shared
   * database they would take up other stacks' rows, and other stacks' passes theirs.
   */
  ownDatabase?: boolean;
}

/** A new, migrated database beside the shared one; `drop` removes it, connections and all. */
async function createOwnDatabase(sharedUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const url = new URL(sharedUrl);
  const name = `${url.pathname.slice(1)}_own_${randomUUID().replaceAll('-', '')}`;
  url.pathname = `/${name}`;
  await runMigrations(url.toString());
  return {
    url: url.toString(),
    async drop() {
      const admin = new URL(sharedUrl);
      admin.pathname = '/postgres';
      const client = new PgClient({ connectionString: admin.toString() });
      await client.connect();
      try {
        await client.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** The API (on a random port) and a worker, in this process, against the shared real servers. */
export async function startTestStack(options: TestStackOptions = {}): Promise<TestStack> {
  const servers = testServers();
  const ownDatabase = options.ownDatabase ? await createOwnDatabase(servers.databaseUrl) : undefined;
  const config = testConfig({ ...options.env, ...(ownDatabase ? { DATABASE_URL: ownDatabase.url } : {}) });
  // A small pool unless the test asks for DATABASE_POOL_SIZE itself.
  const database = createDatabase({
    url: config.DATABASE_URL,
    poolSize: options.env?.DATABASE_POOL_SIZE ? config.DATABASE_POOL_SIZE : 5,
  });
  const s3 = createS3Client(config);
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });

  let worker: Worker | undefined;
  let workerRun: Promise<void> | undefined;
  let nativeConnection: NativeConnection | undefined;
  const workerMetrics = createWorkerMetrics();
  const tracing = options.tracing
    ? startTracing('media-generation-test', { spanProcessor: options.tracing.spanProcessor })
    : undefined;
  if (options.worker !== false) {
    nativeConnection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
    worker = await createMediaWorker({
      connection: nativeConnection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      workflowBundlePath: servers.workflowBundlePath,
      activityDependencies: {
        db: database.db,
        s3,
        bucket: config.S3_BUCKET_NAME,
        provider: options.provider ?? new FakeProvider({ latencyMs: config.FAKE_PROVIDER_LATENCY_MS }),
        maxOutputBytes: config.MEDIA_MAX_BYTES,
        logger: silentLogger,
        predictionPollIntervalMs: 100,
        temporal: client,
        settlePolicies: { webhookInitialIntervalSeconds: config.WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS },
        webhooks: {
          signingSecret: config.WEBHOOK_SIGNING_SECRET,
          allowPrivate: config.MEDIA_FETCH_ALLOW_PRIVATE,
          presigner: createPresigner(config, s3),
        },
      },
      metrics: workerMetrics,
      tracing,
      tuning: { shutdownGraceTime: '1s', ...options.workerTuning },
    });
    workerRun = worker.run();
  }

  const apiConnection = options.apiTemporalAddress
    ? Connection.lazy({ address: options.apiTemporalAddress, connectTimeout: '1s' })
    : options.apiTemporalInterceptors
      ? await Connection.connect({ address: config.TEMPORAL_ADDRESS, interceptors: options.apiTemporalInterceptors })
      : connection;
  const changes = new JobChanges({ url: config.DATABASE_URL });
  await changes.start();
  const stopping = new AbortController();
  const app = createApp({
    changes,
    stopping: stopping.signal,
    config,
    db: database.db,
    temporal: new Client({
      connection: apiConnection,
      namespace: config.TEMPORAL_NAMESPACE,
      ...(tracing ? { interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] } } : {}),
    }),
    tracing: Boolean(tracing),
    s3,
    presigner: createPresigner(config, s3),
    logger: silentLogger,
  });
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  answerUnparsableRequestsWithProblems(server);
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    config,
    database,
    client,
    baseUrl,
    worker,
    workerMetrics,
    changes,
    drainApi: () => drainServer(server, stopping),
    async stop() {
      if (server.listening) await new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      if (worker && worker.getState() === 'RUNNING') worker.shutdown();
      await workerRun?.catch(() => undefined);
      await nativeConnection?.close();
      if (options.apiTemporalInterceptors && !options.apiTemporalAddress) await apiConnection.close();
      // The unreachable-Temporal connection is left open: closing it while the client's retry loop
      // still waits to call again makes that retry throw from a timer, in whatever test runs next.
      await connection.close();
      await changes.stop();
      await database.close();
      await ownDatabase?.drop();
      await tracing?.shutdown();
    },
  };
}

export async function postJson(baseUrl: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text ? (JSON.parse(text) as Record<string, any>) : undefined,
  };
}

export async function getJson(baseUrl: string, path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${baseUrl}${path}`, { headers });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text ? (JSON.parse(text) as Record<string, any>) : undefined,
  };
}

/** Polls a job's status until `done` holds, as a client would. */
export async function waitForJob(
  baseUrl: string,
  jobId: string,
  done: (job: Record<string, any>) => boolean = (job) => ['COMPLETED', 'FAILED', 'CANCELLED'].includes(job.status),
  timeoutMs = 30_000,
): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await getJson(baseUrl, `/api/v1/status/${jobId}`);
    if (body && done(body)) return body;
    if (Date.now() > deadline)
      throw new Error(`job ${jobId} did not reach the expected state; last seen: ${JSON.stringify(body)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export const validRequest = {
  model: 'test/model',
  prompt: 'a lighthouse at dawn',
  num_outputs: 2,
  seed: 7,
  output_format: 'png',
};
