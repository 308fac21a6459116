import { DeleteObjectsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { benchS3Client, type BenchS3Config } from '../large-output';
import { cpuMsPerJob, cpuSnapshot } from '../cpu';
import { runClosedLoop, type ClosedLoopResult } from '../load';
import type { BenchOptions, DesignRun } from '../phases';
import { ratio, round } from '../stats';
import { redisAnswers, startBullmqDesign } from './bullmq';
import { celeryMissing, startCeleryDesign } from './celery';
import { prepareDesignTables, takeDesignTotals } from './tables';

/** What a design's measured run reports; the rest of its DesignRun is added around it. */
type DesignFigures = Pick<
  DesignRun,
  'jobsPerS' | 'completed' | 'failed' | 'unfinished' | 'errors' | 'latency' | 'cpuMsPerJob'
>;

type DesignsOptions = Pick<
  BenchOptions,
  | 'concurrency'
  | 'outputs'
  | 'durationS'
  | 'maxJobsPerRun'
  | 'drainTimeoutS'
  | 'warmupJobs'
  | 'databaseUrl'
  | 's3'
  | 'designs'
  | 'log'
> & {
  /** The bare shape's run just before a design's (the last one, when there is one) and a new one after it. */
  bareBefore: () => Promise<ClosedLoopResult>;
  bareAfter: () => Promise<ClosedLoopResult>;
};

/**
 * A BullMQ flow, then the Celery design at each pool size, each doing a job's work with polling
 * clients and run between two runs of the bare shape, on the same machine as the service.
 */
export async function runDesigns(options: DesignsOptions): Promise<{ designs: DesignRun[]; skipped: string[] }> {
  const { log, designs: settings } = options;
  const designs: DesignRun[] = [];
  const skipped: string[] = [];
  if (!(await redisAnswers(settings.redisUrl))) {
    skipped.push(`no Redis answers at ${settings.redisUrl} (BENCH_REDIS_URL): both designs need one`);
    return { designs, skipped };
  }
  await prepareDesignTables(options.databaseUrl);
  const measured = { concurrency: options.concurrency, durationMs: options.durationS * 1000 };
  const bounds = { maxJobs: options.maxJobsPerRun, drainTimeoutMs: options.drainTimeoutS * 1000 };
  const warmupJobs = Math.max(1, options.warmupJobs);

  const between = async (design: DesignRun['design'], concurrency: number, run: () => Promise<DesignFigures>) => {
    const bare = (await options.bareBefore()).jobsPerS;
    const figures = await run();
    const totals = { ...(await takeDesignTotals(options.databaseUrl)), objectsStored: await removeObjects(options.s3) };
    const bareJobsPerS = round((bare + (await options.bareAfter()).jobsPerS) / 2);
    const entry: DesignRun = {
      design,
      concurrency,
      ...figures,
      ...totals,
      bareJobsPerS,
      ratio: ratio(figures.jobsPerS, bareJobsPerS),
    };
    log(
      `    ${design} (${concurrency}): ${entry.jobsPerS} jobs/s, p50 ${entry.latency.p50Ms} ms, p99 ${entry.latency.p99Ms} ms (${entry.completed} jobs${entry.failed ? `, ${entry.failed} FAILED: ${entry.errors.join('; ')}` : ''}); bare ${bareJobsPerS}; ratio ${entry.ratio}`,
    );
    designs.push(entry);
  };

  const bullmqConcurrency = options.concurrency;
  await between('bullmq', bullmqConcurrency, async () => {
    const bullmq = await startBullmqDesign({
      redisUrl: settings.redisUrl,
      databaseUrl: options.databaseUrl,
      s3: options.s3,
      concurrency: bullmqConcurrency,
      clients: options.concurrency,
    });
    try {
      const warm = Math.min(options.concurrency, warmupJobs);
      await runClosedLoop(
        { concurrency: warm, durationMs: 600_000, ...bounds, maxJobs: warmupJobs },
        bullmq.runner(options.outputs),
      );
      const before = cpuSnapshot();
      const run = await runClosedLoop({ ...measured, ...bounds }, bullmq.runner(options.outputs));
      return { ...figuresOf(run), cpuMsPerJob: cpuMsPerJob(before, cpuSnapshot(), run.completed) };
    } finally {
      await bullmq.stop();
    }
  });

  const missing = await celeryMissing(settings.python);
  if (missing) skipped.push(`Celery: ${missing}`);
  for (const poolSize of missing ? [] : settings.celeryPoolSizes) {
    await between('celery', poolSize, async () => {
      const celery = await startCeleryDesign({
        python: settings.python,
        redisUrl: settings.redisUrl,
        databaseUrl: options.databaseUrl,
        s3: options.s3,
        poolSize,
      });
      try {
        const run = { clients: options.concurrency, outputs: options.outputs, drainS: options.drainTimeoutS };
        await celery.run({
          ...run,
          clients: Math.min(options.concurrency, warmupJobs),
          durationS: 600,
          maxJobs: warmupJobs,
        });
        const before = cpuSnapshot();
        const result = await celery.run({ ...run, durationS: options.durationS, maxJobs: options.maxJobsPerRun });
        const { clientCpuMs, ...figures } = result;
        return {
          ...figures,
          latency: { p50Ms: result.latency.p50Ms, p99Ms: result.latency.p99Ms },
          cpuMsPerJob: withClientCpu(
            cpuMsPerJob(before, cpuSnapshot(), result.completed),
            clientCpuMs,
            result.completed,
          ),
        };
      } finally {
        await celery.stop();
      }
    });
  }
  return { designs, skipped };
}

/** Adds a load generator's own CPU (a process that ended before the second snapshot) to `bench`. */
function withClientCpu(perJob: Record<string, number> | undefined, clientCpuMs: number, jobs: number) {
  if (!perJob || jobs <= 0) return perJob;
  const share = clientCpuMs / jobs;
  return { ...perJob, bench: round((perJob.bench ?? 0) + share, 1), total: round((perJob.total ?? 0) + share, 1) };
}

/** Deletes what the designs stored (under `designs/`) and counts it. */
async function removeObjects(s3: BenchS3Config): Promise<number> {
  const client = benchS3Client(s3);
  let removed = 0;
  try {
    for (;;) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'designs/' }));
      const keys = (page.Contents ?? []).map((object) => ({ Key: object.Key! }));
      if (keys.length === 0) return removed;
      await client.send(new DeleteObjectsCommand({ Bucket: s3.bucket, Delete: { Objects: keys, Quiet: true } }));
      removed += keys.length;
    }
  } finally {
    client.destroy();
  }
}

function figuresOf(run: ClosedLoopResult): DesignFigures {
  const { jobsPerS, completed, failed, unfinished, errors } = run;
  return {
    jobsPerS,
    completed,
    failed,
    unfinished,
    errors,
    latency: { p50Ms: run.latency.p50Ms, p99Ms: run.latency.p99Ms },
  };
}
