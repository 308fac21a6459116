import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { Pool } from 'pg';
import type { BenchS3Config } from '../large-output';
import { BENCH_PROMPT, STATUS_POLL_INTERVAL_MS, type JobRunner } from '../load';
import { sleep } from '../stats';
import { startWorkerProcess, stopWorkerProcess } from './child';
import { INSERT_JOB_SQL, JOB_STATUS_SQL } from './tables';

export const BULLMQ_QUEUES = { generate: 'generate', persist: 'persist', finish: 'finish' } as const;

/** Each step retries as the service's activities do: a few attempts, backing off. */
export const BULLMQ_RETRIES = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 200 },
  removeOnComplete: true,
  removeOnFail: 100,
};

/** What a job carries from the client to each step. */
export interface DesignJobData {
  jobId: string;
  numOutputs: number;
  prompt: string;
  seed: number;
}

/** What the worker process is given (in its environment, as JSON). */
export interface BullmqWorkerJob {
  redisUrl: string;
  /** The keys of this run: a prefix of its own, removed afterwards. */
  prefix: string;
  databaseUrl: string;
  s3: BenchS3Config;
  /** Jobs each of the three workers runs at once. */
  concurrency: number;
}

/** BullMQ's workers block on Redis: their connections must retry commands for ever (its docs). */
export function bullmqConnection(redisUrl: string): ConnectionOptions {
  const url = new URL(redisUrl);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    db: Number(url.pathname.slice(1) || 0),
    maxRetriesPerRequest: null,
  };
}

/** Whether a Redis answers at `redisUrl`: the BullMQ design needs one. */
export async function redisAnswers(redisUrl: string): Promise<boolean> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

const WORKER_SCRIPT = path.join(__dirname, 'bullmq-worker.ts');

/** The BullMQ design for one measured run: its worker process, its queue, and the client's pool. */
export interface BullmqDesign {
  runner(outputs: number): JobRunner;
  stop(): Promise<void>;
}

export async function startBullmqDesign(options: Omit<BullmqWorkerJob, 'prefix'> & { clients: number }) {
  const job: BullmqWorkerJob = { ...options, prefix: `bench-designs-${randomUUID()}` };
  const worker = await startWorkerProcess(process.execPath, ['--import', 'tsx', WORKER_SCRIPT], {
    ...process.env,
    BENCH_BULLMQ_WORKER: JSON.stringify(job),
    NODE_OPTIONS: '',
  });
  const queue = new Queue<DesignJobData>(BULLMQ_QUEUES.generate, {
    connection: bullmqConnection(job.redisUrl),
    prefix: job.prefix,
  });
  const db = new Pool({ connectionString: job.databaseUrl, max: options.clients });
  const design: BullmqDesign = {
    runner: (outputs) => async (sequence, signal) => {
      const jobId = randomUUID();
      await db.query(INSERT_JOB_SQL, [jobId, outputs]);
      await queue.add('generate', { jobId, numOutputs: outputs, prompt: BENCH_PROMPT, seed: sequence }, BULLMQ_RETRIES);
      for (;;) {
        await sleep(STATUS_POLL_INTERVAL_MS);
        if (signal.aborted) return { ok: false, error: 'still running when the drain ended' };
        const { rows } = await db.query<{ status: string }>(JOB_STATUS_SQL, [jobId]);
        if (rows[0]?.status === 'COMPLETED') return { ok: true };
      }
    },
    async stop() {
      await queue.close();
      await db.end();
      await stopWorkerProcess(worker);
      await removeKeys(job.redisUrl, job.prefix);
    },
  };
  return design;
}

/** Removes what a run left in Redis (its events streams, its queues' metadata). */
async function removeKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    for await (const keys of redis.scanStream({ match: `${prefix}:*`, count: 500 }) as AsyncIterable<string[]>)
      if (keys.length) await redis.unlink(...keys);
  } finally {
    redis.disconnect();
  }
}
