import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import type { BenchS3Config } from '../large-output';
import { BENCH_PROMPT, type ClosedLoopResult } from '../load';
import { REPO_ROOT, startWorkerProcess, stopWorkerProcess } from './child';

const SCRIPT = path.join(__dirname, 'celery_design.py');

/** The Debian packages the Celery design imports, for the message when one is missing. */
export const CELERY_PACKAGES = 'python3-celery python3-redis python3-psycopg2 python3-boto3 python3-pil';

/** Why `python` cannot run the Celery design, or undefined when it can. */
export async function celeryMissing(python: string): Promise<string | undefined> {
  try {
    await promisify(execFile)(python, ['-c', 'import celery, redis, psycopg2, boto3, PIL'], { timeout: 30_000 });
    return undefined;
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr?.trim().split('\n').at(-1) ?? String(error);
    return `${python} cannot import what it needs (${detail}); on Debian: apt-get install ${CELERY_PACKAGES}`;
  }
}

export interface CeleryDesignSettings {
  python: string;
  redisUrl: string;
  databaseUrl: string;
  s3: BenchS3Config;
  poolSize: number;
}

export interface CeleryRun {
  clients: number;
  outputs: number;
  durationS: number;
  maxJobs: number;
  drainS: number;
}

/** What the Celery client measured: the closed loop's figures (bench/load.ts), from its last line. */
export type CeleryResult = Pick<
  ClosedLoopResult,
  'jobsPerS' | 'submitted' | 'completed' | 'failed' | 'unfinished' | 'errors'
> & {
  latency: { count: number; p50Ms: number; p99Ms: number };
  /** The client process's own CPU over the run: it has exited before the bench reads /proc again. */
  clientCpuMs: number;
};

/**
 * The Celery design's worker (a prefork pool of `poolSize`), and closed-loop runs of its clients,
 * each run in a client process of its own: a warm-up run, then the measured one, on the same worker.
 */
export async function startCeleryDesign(settings: CeleryDesignSettings) {
  const common = {
    redisUrl: settings.redisUrl,
    databaseUrl: settings.databaseUrl,
    s3: settings.s3,
    queue: `bench-designs-${randomUUID()}`,
    poolSize: settings.poolSize,
    prompt: BENCH_PROMPT,
  };
  const worker = await startWorkerProcess(settings.python, [SCRIPT, 'worker'], {
    ...process.env,
    BENCH_CELERY: JSON.stringify(common),
  });
  return {
    async run(run: CeleryRun): Promise<CeleryResult> {
      const { stdout } = await promisify(execFile)(settings.python, [SCRIPT, 'run'], {
        cwd: REPO_ROOT,
        env: { ...process.env, BENCH_CELERY: JSON.stringify({ ...common, run }) },
        timeout: (run.durationS + run.drainS + 600) * 1000,
        maxBuffer: 16 * 1024 * 1024,
      });
      return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as CeleryResult;
    },
    async stop() {
      await stopWorkerProcess(worker);
      // Kombu keeps a binding set per queue in Redis: each run's queue is its own, so it goes with the run.
      const redis = new Redis(settings.redisUrl);
      await redis.unlink(`_kombu.binding.${common.queue}`, common.queue).finally(() => redis.disconnect());
    },
  };
}
