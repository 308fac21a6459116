import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Worker } from '@temporalio/worker';
import type { BareActivities } from './bare-workflow';
import { JsonClient } from './http';
import { runLargeOutput, type BenchS3Config, type LargeOutputResult } from './large-output';
import { cpuMsPerJob, cpuSnapshot } from './cpu';
import {
  bareJobRunner,
  runClosedLoop,
  runOpenLoop,
  serviceJobRunner,
  type ClientKind,
  type ClosedLoopOptions,
  type ClosedLoopResult,
  type JobRunner,
  type OpenLoopResult,
} from './load';
import { runDesigns } from './designs/run';
import { runIdleStreams, type IdleStreamsResult } from './idle-streams';
import { vacuumJobTables } from './vacuum';
import { measureWorkflowReplay, type WorkflowReplayResult } from './workflow-replay';
import { ratio, round } from './stats';

export const TARGETS = {
  /** Service jobs/s over bare-workflow jobs/s, closed loop, same concurrency and outputs (clients polling). */
  throughputRatio: 0.8,
  /** The same for clients that wait with `Prefer: wait` or follow the job's events (SSE). */
  waitingRatio: 1.4,
  /** 1,000 idle event streams held by one API process: its RSS growth, and database queries per second. */
  idleStreamsRssGrowthMiB: 50,
  idleStreamsQueriesPerS: 5,
  /** POST /api/v1/generate p99 at half the measured ceiling, open loop. */
  postP99Ms: 25,
  /** Peak RSS growth of the process storing one large output. */
  largeOutputRssGrowthMiB: 64,
  /** storeObject MB/s over a plain lib-storage Upload of the same bytes. */
  largeOutputRatio: 0.8,
} as const;

export type Phase =
  'throughput' | 'clients' | 'designs' | 'workflow-replay' | 'open-loop' | 'scaling' | 'idle-streams' | 'large-output';
export const ALL_PHASES: readonly Phase[] = [
  'throughput',
  'clients',
  'designs',
  'workflow-replay',
  'open-loop',
  'scaling',
  'idle-streams',
  'large-output',
];

export interface BenchOptions {
  /** The API processes; requests go to each in turn, as a round-robin load balancer sends them. */
  apiBaseUrls: string[];
  /** Which Temporal the stack runs on: the dev server (`npm run dev`) or the production engine (`npm run dev -- --cluster`). */
  engine: 'dev-server' | 'cluster';
  temporalAddress: string;
  namespace: string;
  s3: BenchS3Config;
  /** The stack's database: the idle-streams phase counts its transactions and runs an API process of its own on it. */
  databaseUrl: string;
  /** Closed-loop clients and outputs per job of the headline run. */
  concurrency: number;
  outputs: number;
  durationS: number;
  /** Open loop: rate defaults to half the measured service ceiling. */
  openLoopDurationS: number;
  openLoopRatePerS?: number;
  /** Scaling points: outputs at the headline concurrency, concurrency at the headline outputs. */
  scalingDurationS: number;
  scalingOutputs: number[];
  scalingConcurrency: number[];
  /** Size of the one large output (bytes). */
  largeOutputBytes: number;
  /** Bounds: jobs submitted per closed-loop run, and how long running jobs may take to drain. */
  maxJobsPerRun: number;
  drainTimeoutS: number;
  /** Jobs of each kind run before measuring (connections, caches, JIT). */
  warmupJobs: number;
  /** Replays of each history in the workflow-replay phase. */
  replays: number;
  /** The designs phase: the Redis both designs use, the Python that runs Celery, the pool sizes it tries. */
  designs: { redisUrl: string; python: string; celeryPoolSizes: number[] };
  phases: readonly Phase[];
  quick: boolean;
  log: (line: string) => void;
}

/** Defaults of the full run; every figure is overridable from the CLI. */
export const DEFAULTS = {
  concurrency: 16,
  outputs: 4,
  durationS: 20,
  openLoopDurationS: 20,
  scalingDurationS: 8,
  scalingOutputs: [1, 4, 10],
  scalingConcurrency: [4, 16, 64],
  largeOutputBytes: 1024 ** 3,
  maxJobsPerRun: 5_000,
  drainTimeoutS: 60,
  warmupJobs: 160,
  replays: 300,
  celeryPoolSizes: [2, 4, 8],
} as const;

/** The smoke run: every phase, a few jobs each, a small large output. */
export const QUICK = {
  concurrency: 4,
  outputs: 2,
  durationS: 2,
  openLoopDurationS: 1.5,
  scalingDurationS: 1,
  scalingOutputs: [1, 4],
  scalingConcurrency: [2, 8],
  largeOutputBytes: 8 * 1024 * 1024,
  maxJobsPerRun: 200,
  drainTimeoutS: 20,
  warmupJobs: 2,
  replays: 20,
  celeryPoolSizes: [2],
} as const;

export interface ThroughputComparison {
  outputs: number;
  concurrency: number;
  service: ClosedLoopResult;
  /** The bare shape's run before the service's. */
  bare: ClosedLoopResult;
  /** The headline's: the bare shape's run after the service's, and the mean jobs/s of the two. */
  bareAfter?: ClosedLoopResult;
  bareJobsPerS?: number;
  /** service jobs/s over bare jobs/s (the mean of both bare runs when there are two). */
  ratio: number;
  /**
   * Milliseconds of CPU per job, per part of the stack (Linux: from /proc), during each run:
   * where the difference between the two comes from. `bench` is this process.
   */
  cpuMsPerJob?: { service?: Record<string, number>; bare?: Record<string, number> };
}

/** A closed-loop run between two runs of the bare shape (bareJobsPerS: their mean). */
export interface RunBesideBare {
  jobsPerS: number;
  bareJobsPerS: number;
  ratio: number;
  latency: ClosedLoopResult['latency'];
  failed: number;
  unfinished: number;
  /** Milliseconds of CPU per job, per part of the stack, during this run (Linux). */
  cpuMsPerJob?: Record<string, number>;
}

export interface BenchResult {
  version: 1;
  startedAt: string;
  finishedAt: string;
  quick: boolean;
  host: {
    cpus: number;
    cpuModel: string;
    memoryGiB: number;
    node: string;
    platform: string;
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
  };
  settings: Omit<BenchOptions, 's3' | 'log' | 'phases' | 'databaseUrl' | 'designs'> & {
    designs: Omit<BenchOptions['designs'], 'redisUrl'>;
    phases: Phase[];
    bareTaskQueue: string;
  };
  targets: typeof TARGETS;
  throughput?: ThroughputComparison;
  apiLatency?: OpenLoopResult;
  scaling?: { byOutputs: ThroughputComparison[]; byConcurrency: ThroughputComparison[] };
  largeOutput?: LargeOutputResult;
  /** The headline run again with clients that wait (`Prefer: wait`) and that follow events (SSE), each between two bare runs. */
  clients?: (RunBesideBare & { kind: ClientKind })[];
  /**
   * The service's own commands with nothing in them (bench/bare-workflow.ts `emptyServiceShape`:
   * local activities, the client waiting for the result), between two bare runs: the most jobs/s
   * any service job can reach on this server and SDK, so the ceiling of the waiters' ratio.
   */
  emptyServiceShape?: RunBesideBare;
  /**
   * The designs the service is compared with, doing a job's work (rows in Postgres, the PNGs
   * rendered and stored in S3, the client polling the job's row every 100 ms, no HTTP layer), each
   * run between two bare runs: a BullMQ flow, and the Celery chain and chord of the service it
   * replaces at each pool size tried. `skipped` says why a design did not run.
   */
  designs?: DesignRun[];
  designsSkipped?: string[];
  /** One job's history and one of the bare shape's, replayed through the workflow sandbox alone. */
  workflowReplay?: WorkflowReplayResult;
  idleStreams?: IdleStreamsResult;
  /** Each target and whether this run met it (absent when its phase did not run). */
  checks: { name: string; value: number; target: string; met: boolean }[];
}

export interface DesignRun {
  design: 'bullmq' | 'celery';
  /** Celery: its prefork pool's size; BullMQ: the jobs each of its three workers runs at once. */
  concurrency: number;
  jobsPerS: number;
  bareJobsPerS: number;
  ratio: number;
  completed: number;
  failed: number;
  unfinished: number;
  errors: string[];
  latency: { p50Ms: number; p99Ms: number };
  cpuMsPerJob?: Record<string, number>;
  /** What the design's runs (its warm-up included) did: jobs completed, outputs recorded as stored, objects in S3. */
  jobsCompleted: number;
  outputsStored: number;
  objectsStored: number;
}

const bareActivities: BareActivities = {
  async bareFirst() {},
  async bareOutput() {},
  async bareFinish() {},
};

let bundlePromise: Promise<string> | undefined;
/** The bare workflow, bundled once per process. */
export function bareWorkflowBundle(): Promise<string> {
  bundlePromise ??= bundleWorkflowCode({
    workflowsPath: path.join(__dirname, 'bare-workflow.ts'),
    logger: new DefaultLogger('WARN'),
  }).then((bundle) => bundle.code);
  return bundlePromise;
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const startedAt = new Date();
  const { log } = options;
  const phases = new Set(options.phases);
  const http = new JsonClient(options.apiBaseUrls);
  const bareTaskQueue = `bench-bare-${randomUUID()}`;

  // One readiness check per API process (the client sends each request to the next one).
  let ready: { status: number; body: unknown } = { status: 200, body: undefined };
  for (let index = 0; index < options.apiBaseUrls.length && ready.status === 200; index++)
    ready = await http.request('GET', '/readyz').catch((error: unknown) => ({ status: 0, body: String(error) }));
  if (ready.status !== 200) {
    http.close();
    throw new Error(
      `the API at ${options.apiBaseUrls.join(', ')} is not ready (${ready.status}: ${JSON.stringify(ready.body)}); is the stack running (${options.engine === 'cluster' ? 'npm run dev -- --cluster' : 'npm run dev'})?`,
    );
  }

  const result: BenchResult = {
    version: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: '',
    quick: options.quick,
    host: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGiB: round(os.totalmem() / 1024 ** 3),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      // The stack shares these CPUs with anything else running: a busy machine shows here.
      loadAverageAtStart: os.loadavg().map((load) => round(load, 2)),
      loadAverageAtEnd: [],
    },
    settings: {
      apiBaseUrls: options.apiBaseUrls,
      engine: options.engine,
      temporalAddress: options.temporalAddress,
      namespace: options.namespace,
      concurrency: options.concurrency,
      outputs: options.outputs,
      durationS: options.durationS,
      openLoopDurationS: options.openLoopDurationS,
      openLoopRatePerS: options.openLoopRatePerS,
      scalingDurationS: options.scalingDurationS,
      scalingOutputs: options.scalingOutputs,
      scalingConcurrency: options.scalingConcurrency,
      largeOutputBytes: options.largeOutputBytes,
      maxJobsPerRun: options.maxJobsPerRun,
      drainTimeoutS: options.drainTimeoutS,
      warmupJobs: options.warmupJobs,
      replays: options.replays,
      designs: { python: options.designs.python, celeryPoolSizes: options.designs.celeryPoolSizes },
      quick: options.quick,
      phases: [...phases],
      bareTaskQueue,
    },
    targets: TARGETS,
    checks: [],
  };

  // Every phase that runs jobs (the bare shape's, or the service's through Temporal).
  const needsTemporal = (['throughput', 'clients', 'designs', 'workflow-replay', 'scaling', 'open-loop'] as const).some(
    (phase) => phases.has(phase),
  );
  let connection: Connection | undefined;
  let nativeConnection: NativeConnection | undefined;
  let worker: Worker | undefined;
  let workerRun: Promise<void> | undefined;
  try {
    if (needsTemporal) {
      log(`bundling the bare workflow and starting its worker on task queue ${bareTaskQueue}...`);
      const code = await bareWorkflowBundle();
      connection = await Connection.connect({ address: options.temporalAddress });
      nativeConnection = await NativeConnection.connect({ address: options.temporalAddress });
      worker = await Worker.create({
        connection: nativeConnection,
        namespace: options.namespace,
        taskQueue: bareTaskQueue,
        workflowBundle: { code },
        activities: bareActivities,
      });
      workerRun = worker.run();
    }
    const temporal = connection ? new Client({ connection, namespace: options.namespace }) : undefined;

    const loop = (concurrency: number, durationS: number): ClosedLoopOptions => ({
      concurrency,
      durationMs: durationS * 1000,
      maxJobs: options.maxJobsPerRun,
      drainTimeoutMs: options.drainTimeoutS * 1000,
    });
    const runBare = async (outputs: number, concurrency: number, durationS: number) => {
      const before = cpuSnapshot();
      const run = await runClosedLoop(loop(concurrency, durationS), bareJobRunner(temporal!, bareTaskQueue, outputs));
      log(`    bare:    ${describeLoop(run)}`);
      return { run, cpuMs: cpuMsPerJob(before, cpuSnapshot(), run.completed) };
    };
    // The bare shape's last run at the headline's settings: the bare run after one service run is
    // the bare run before the next, so each service run sits between two bare runs.
    let bareBeforeNext: Awaited<ReturnType<typeof runBare>> | undefined;
    const compare = async (
      outputs: number,
      concurrency: number,
      durationS: number,
      bareOnBothSides = false,
    ): Promise<ThroughputComparison> => {
      const bare = (bareOnBothSides && bareBeforeNext) || (await runBare(outputs, concurrency, durationS));
      await vacuumJobTables(options.databaseUrl);
      const beforeService = cpuSnapshot();
      const service = await runClosedLoop(loop(concurrency, durationS), serviceJobRunner(http, outputs));
      log(`    service: ${describeLoop(service)}`);
      const serviceCpuMs = cpuMsPerJob(beforeService, cpuSnapshot(), service.completed);
      const bareAfter = bareOnBothSides ? await runBare(outputs, concurrency, durationS) : undefined;
      if (bareOnBothSides) bareBeforeNext = bareAfter;
      const bareJobsPerS = bareAfter ? round((bare.run.jobsPerS + bareAfter.run.jobsPerS) / 2) : bare.run.jobsPerS;
      return {
        outputs,
        concurrency,
        service,
        bare: bare.run,
        ...(bareAfter ? { bareAfter: bareAfter.run, bareJobsPerS } : {}),
        ratio: ratio(service.jobsPerS, bareJobsPerS),
        ...(serviceCpuMs || bare.cpuMs ? { cpuMsPerJob: { service: serviceCpuMs, bare: bare.cpuMs } } : {}),
      };
    };

    if (temporal && options.warmupJobs > 0) {
      log(`warming up (${options.warmupJobs} jobs of each kind)...`);
      const warm = Math.max(1, Math.min(options.warmupJobs, options.concurrency));
      const warmLoop = { ...loop(warm, 600), maxJobs: options.warmupJobs };
      await runClosedLoop(warmLoop, bareJobRunner(temporal, bareTaskQueue, options.outputs));
      await runClosedLoop(warmLoop, serviceJobRunner(http, options.outputs));
      if (phases.has('clients'))
        await runClosedLoop(warmLoop, bareJobRunner(temporal, bareTaskQueue, options.outputs, 'emptyServiceShape'));
    }

    if (phases.has('throughput') && temporal) {
      log(
        `throughput: ${options.concurrency} clients × ${options.outputs} outputs for ${options.durationS}s each (bare, service, bare again)...`,
      );
      result.throughput = await compare(options.outputs, options.concurrency, options.durationS, true);
    }

    if (phases.has('clients') && temporal) {
      // Each run between two bare runs: the bare run after one is the bare run before the next.
      const besideBare = async (label: string, runner: JobRunner, prepare?: () => Promise<void>) => {
        const bareBefore = bareBeforeNext ?? (await runBare(options.outputs, options.concurrency, options.durationS));
        await prepare?.();
        const before = cpuSnapshot();
        const run = await runClosedLoop(loop(options.concurrency, options.durationS), runner);
        const cpuMs = cpuMsPerJob(before, cpuSnapshot(), run.completed);
        log(`    ${label}:    ${describeLoop(run)}`);
        bareBeforeNext = await runBare(options.outputs, options.concurrency, options.durationS);
        const bare = round((bareBefore.run.jobsPerS + bareBeforeNext.run.jobsPerS) / 2);
        return {
          jobsPerS: run.jobsPerS,
          bareJobsPerS: bare,
          ratio: ratio(run.jobsPerS, bare),
          latency: run.latency,
          failed: run.failed,
          unfinished: run.unfinished,
          ...(cpuMs ? { cpuMsPerJob: cpuMs } : {}),
        } satisfies RunBesideBare;
      };
      result.clients = [];
      for (const kind of ['wait', 'sse'] as const) {
        log(
          `clients: ${options.concurrency} clients that ${kind === 'wait' ? 'wait (Prefer: wait)' : 'follow events (SSE)'}, ${options.durationS}s, between two runs of the bare shape...`,
        );
        const runner = serviceJobRunner(http, options.outputs, undefined, kind);
        result.clients.push({ kind, ...(await besideBare(kind, runner, () => vacuumJobTables(options.databaseUrl))) });
      }
      log(
        `clients: the service's commands with nothing in them (local activities), ${options.concurrency} clients waiting for the result, ${options.durationS}s, between two runs of the bare shape...`,
      );
      result.emptyServiceShape = await besideBare(
        'empty service shape',
        bareJobRunner(temporal, bareTaskQueue, options.outputs, 'emptyServiceShape'),
      );
    }

    if (phases.has('designs') && temporal) {
      log(
        `designs: a BullMQ flow and the Celery chain and chord it replaces, doing a job's work, ${options.concurrency} polling clients × ${options.outputs} outputs, ${options.durationS}s each, each between two runs of the bare shape...`,
      );
      const { designs, skipped } = await runDesigns({
        ...options,
        bareBefore: async () =>
          (bareBeforeNext ?? (await runBare(options.outputs, options.concurrency, options.durationS))).run,
        bareAfter: async () => {
          bareBeforeNext = await runBare(options.outputs, options.concurrency, options.durationS);
          return bareBeforeNext.run;
        },
      });
      result.designs = designs;
      if (skipped.length) result.designsSkipped = skipped;
      for (const reason of skipped) log(`    skipped: ${reason}`);
    }

    if (phases.has('workflow-replay') && temporal) {
      log(
        `workflow replay: one job of ${options.outputs} outputs and one bare workflow, ${options.replays} replays each...`,
      );
      result.workflowReplay = await measureWorkflowReplay({
        http,
        temporal,
        bareTaskQueue,
        bareWorkflowCode: await bareWorkflowBundle(),
        outputs: options.outputs,
        replays: options.replays,
      });
      const { cpuMsPerReplay, sandboxPromisesPerReplay: promises } = result.workflowReplay;
      log(
        `    service ${cpuMsPerReplay.service} ms CPU per replay (${promises.service} promises), bare ${cpuMsPerReplay.bare} ms (${promises.bare} promises)`,
      );
    }

    if (phases.has('open-loop')) {
      const ceiling = result.throughput?.service.jobsPerS;
      const rate = options.openLoopRatePerS ?? (ceiling ? ceiling / 2 : undefined);
      if (!rate || rate <= 0)
        throw new Error('the open-loop phase needs the throughput phase (or --open-rate) to set its rate');
      log(`API latency: POST at ${round(rate, 2)}/s (open loop) for ${options.openLoopDurationS}s...`);
      result.apiLatency = await runOpenLoop(http, {
        ratePerS: rate,
        durationMs: options.openLoopDurationS * 1000,
        numOutputs: options.outputs,
        drainTimeoutMs: options.drainTimeoutS * 1000,
        maxJobs: options.maxJobsPerRun,
      });
      const { post, drain } = result.apiLatency;
      const { db, temporal } = result.apiLatency.serverTiming;
      log(
        `    POST p50 ${post.p50Ms} ms, p99 ${post.p99Ms} ms, max ${post.maxMs} ms (recording p99 ${db.p99Ms} ms, workflow start p99 ${temporal.p99Ms} ms); drained ${drain.completed} jobs in ${drain.seconds}s`,
      );
    }

    if (phases.has('scaling') && temporal) {
      const reuse = (outputs: number, concurrency: number) =>
        result.throughput && result.throughput.outputs === outputs && result.throughput.concurrency === concurrency
          ? result.throughput
          : undefined;
      const byOutputs: ThroughputComparison[] = [];
      for (const outputs of options.scalingOutputs) {
        log(`scaling: ${outputs} outputs × ${options.concurrency} clients, ${options.scalingDurationS}s...`);
        byOutputs.push(
          reuse(outputs, options.concurrency) ??
            (await compare(outputs, options.concurrency, options.scalingDurationS)),
        );
      }
      const byConcurrency: ThroughputComparison[] = [];
      for (const concurrency of options.scalingConcurrency) {
        log(`scaling: ${options.outputs} outputs × ${concurrency} clients, ${options.scalingDurationS}s...`);
        const same =
          reuse(options.outputs, concurrency) ??
          byOutputs.find((point) => point.outputs === options.outputs && point.concurrency === concurrency);
        byConcurrency.push(same ?? (await compare(options.outputs, concurrency, options.scalingDurationS)));
      }
      result.scaling = { byOutputs, byConcurrency };
    }
  } finally {
    if (worker && worker.getState() === 'RUNNING') worker.shutdown();
    await workerRun?.catch(() => undefined);
    await nativeConnection?.close().catch(() => undefined);
    await connection?.close().catch(() => undefined);
    http.close();
  }

  if (phases.has('idle-streams')) {
    const streams = options.quick ? 50 : 1000;
    log(`idle streams: ${streams} event streams held by one API process on jobs that do not change...`);
    result.idleStreams = await runIdleStreams({ streams, databaseUrl: options.databaseUrl, log });
    const idle = result.idleStreams;
    log(
      `    ${idle.streamsOpen} streams open; API RSS +${idle.rssGrowthMiB} MiB; ${idle.queriesPerS} database transactions/s while idle; change → event p50 ${idle.changeToEvent.p50Ms} ms, p99 ${idle.changeToEvent.p99Ms} ms`,
    );
  }

  if (phases.has('large-output')) {
    log(
      `large output: ${round(options.largeOutputBytes / 1024 ** 2)} MiB through storeObject and through a plain Upload, each in a child process...`,
    );
    result.largeOutput = await runLargeOutput({ bytes: options.largeOutputBytes, s3: options.s3, log });
  }

  result.checks = checks(result);
  result.host.loadAverageAtEnd = os.loadavg().map((load) => round(load, 2));
  result.finishedAt = new Date().toISOString();
  return result;
}

function describeLoop(run: ClosedLoopResult): string {
  const failures = run.failed ? `, ${run.failed} FAILED (${run.errors.join('; ')})` : '';
  const unfinished = run.unfinished ? `, ${run.unfinished} unfinished` : '';
  return `${run.jobsPerS} jobs/s, p50 ${run.latency.p50Ms} ms, p99 ${run.latency.p99Ms} ms (${run.completed} jobs${failures}${unfinished})`;
}

export function checks(result: BenchResult): BenchResult['checks'] {
  const list: BenchResult['checks'] = [];
  if (result.throughput) {
    list.push({
      name: 'throughput ratio (service / bare)',
      value: result.throughput.ratio,
      target: `>= ${TARGETS.throughputRatio}`,
      met: result.throughput.ratio >= TARGETS.throughputRatio,
    });
  }
  if (result.apiLatency) {
    const p99 = result.apiLatency.post.p99Ms;
    list.push({
      name: 'POST p99 (ms) at half the ceiling',
      value: p99,
      target: `<= ${TARGETS.postP99Ms}`,
      met: p99 <= TARGETS.postP99Ms,
    });
  }
  for (const client of result.clients ?? []) {
    list.push({
      name: `throughput ratio, clients that ${client.kind === 'wait' ? 'wait' : 'follow events'} (service / bare)`,
      value: client.ratio,
      target: `>= ${TARGETS.waitingRatio}`,
      met: client.ratio >= TARGETS.waitingRatio,
    });
  }
  if (result.idleStreams) {
    list.push({
      name: `idle streams: API RSS growth (MiB) with ${result.idleStreams.streamsOpen} open`,
      value: result.idleStreams.rssGrowthMiB,
      target: `< ${TARGETS.idleStreamsRssGrowthMiB}`,
      met: result.idleStreams.rssGrowthMiB < TARGETS.idleStreamsRssGrowthMiB,
    });
    list.push({
      name: 'idle streams: database transactions/s while idle',
      value: result.idleStreams.queriesPerS,
      target: `< ${TARGETS.idleStreamsQueriesPerS}`,
      met: result.idleStreams.queriesPerS < TARGETS.idleStreamsQueriesPerS,
    });
  }
  if (result.largeOutput) {
    const growth = result.largeOutput.store.peakRssGrowthMiB;
    list.push({
      name: 'large output peak RSS growth (MiB)',
      value: growth,
      target: `< ${TARGETS.largeOutputRssGrowthMiB}`,
      met: growth < TARGETS.largeOutputRssGrowthMiB,
    });
    list.push({
      name: 'large output MB/s ratio (store / plain)',
      value: result.largeOutput.ratio,
      target: `>= ${TARGETS.largeOutputRatio}`,
      met: result.largeOutput.ratio >= TARGETS.largeOutputRatio,
    });
  }
  return list;
}
