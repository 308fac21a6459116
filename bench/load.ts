import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import type { bareMediaShape } from './bare-workflow';
import type { JsonClient } from './http';
import { round, sleep, summarize, type LatencySummary } from './stats';

const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
export const STATUS_POLL_INTERVAL_MS = 100;
/** The prompt of every job the bench submits, the service's and the designs' alike. */
export const BENCH_PROMPT = 'bench: a lighthouse at dawn';

export type JobOutcome = { ok: true } | { ok: false; error: string };
/** Runs one job to its end; `signal` aborts when the bounded drain is over. */
export type JobRunner = (sequence: number, signal: AbortSignal) => Promise<JobOutcome>;

export interface ClosedLoopOptions {
  concurrency: number;
  durationMs: number;
  /** Completions before this share of the run are left out of jobs/s (the ramp-up). */
  warmupFraction?: number;
  /** Hard cap on submissions, so a fast stack cannot make a run unbounded. */
  maxJobs: number;
  /** How long jobs still running at the end of the run may take before they are abandoned. */
  drainTimeoutMs: number;
}

export interface ClosedLoopResult {
  concurrency: number;
  durationS: number;
  /** Completed jobs per second, counted in the steady window (after the warm-up share). */
  jobsPerS: number;
  /**
   * How jobs/s was counted: 'window' = completions between the warm-up share and the end of the
   * run, over that time (all clients busy); 'overall' = every completion over the time to the
   * last one, used when the run was too short for the window to see a completion.
   */
  jobsPerSBasis: 'window' | 'overall';
  submitted: number;
  completed: number;
  failed: number;
  /** Jobs still running when the drain gave up. */
  unfinished: number;
  /** End-to-end latency of completed jobs: submission to the client seeing the end. */
  latency: LatencySummary;
  errors: string[];
}

/** C clients, each running one job after another until the time is up (a closed loop). */
export async function runClosedLoop(options: ClosedLoopOptions, runJob: JobRunner): Promise<ClosedLoopResult> {
  const { concurrency, durationMs, maxJobs, drainTimeoutMs } = options;
  const warmupMs = durationMs * (options.warmupFraction ?? 0.2);
  const drain = new AbortController();
  // Each running job listens for the end of the drain.
  setMaxListeners(concurrency + 16, drain.signal);
  const latencies: number[] = [];
  const completionTimes: number[] = [];
  const errors = new Map<string, number>();
  let submitted = 0;
  let failed = 0;
  let unfinished = 0;
  let stoppedAt: number | undefined;

  const start = performance.now();
  const deadline = start + durationMs;
  const client = async () => {
    while (performance.now() < deadline && submitted < maxJobs) {
      const sequence = submitted++;
      const began = performance.now();
      let outcome: JobOutcome;
      try {
        outcome = await runJob(sequence, drain.signal);
      } catch (error) {
        outcome = { ok: false, error: error instanceof Error ? error.message : String(error) };
      }
      const ended = performance.now();
      if (outcome.ok) {
        latencies.push(ended - began);
        completionTimes.push(ended - start);
      } else if (drain.signal.aborted) {
        unfinished++;
      } else {
        failed++;
        const key = outcome.error.slice(0, 200);
        errors.set(key, (errors.get(key) ?? 0) + 1);
        // A failing stack answers fast: back off instead of spinning through the job budget.
        await sleep(STATUS_POLL_INTERVAL_MS);
      }
    }
    stoppedAt ??= performance.now();
  };
  const clients = Promise.all(Array.from({ length: concurrency }, client));
  const timer = setTimeout(() => drain.abort(), durationMs + drainTimeoutMs);
  await clients;
  clearTimeout(timer);

  const windowEnd = Math.min(durationMs, (stoppedAt ?? deadline) - start);
  const windowed = completionTimes.filter((t) => t >= warmupMs && t <= windowEnd).length;
  const windowS = (windowEnd - warmupMs) / 1000;
  const lastCompletionS = Math.max(0, ...completionTimes) / 1000;
  const useWindow = windowed >= Math.min(concurrency, 4) && windowS > 0;
  return {
    concurrency,
    durationS: round(durationMs / 1000, 2),
    jobsPerS: useWindow
      ? round(windowed / windowS, 2)
      : lastCompletionS > 0
        ? round(completionTimes.length / lastCompletionS, 2)
        : 0,
    jobsPerSBasis: useWindow ? 'window' : 'overall',
    submitted,
    completed: latencies.length,
    failed,
    unfinished,
    latency: summarize(latencies),
    errors: [...errors].map(([message, count]) => `${count}× ${message}`),
  };
}

/** How a client learns that its job ended: polling every 100 ms, `Prefer: wait`, or following its events. */
export type ClientKind = 'poll' | 'wait' | 'sse';
export const CLIENT_KINDS: readonly ClientKind[] = ['poll', 'wait', 'sse'];

/** One job through the public API, as a client of `kind` does it: POST, then wait for its end. */
export function serviceJobRunner(
  client: JsonClient,
  numOutputs: number,
  prompt = BENCH_PROMPT,
  kind: ClientKind = 'poll',
): JobRunner {
  return async (sequence, signal) => {
    const submitted = await client.request(
      'POST',
      '/api/v1/generate',
      { model: 'bench/fake', prompt, num_outputs: numOutputs, seed: sequence, output_format: 'png' },
      kind === 'wait' ? { Prefer: 'wait=60' } : {},
    );
    if (submitted.status !== 202)
      return { ok: false, error: `POST /api/v1/generate answered ${submitted.status}: ${describe(submitted.body)}` };
    const jobId = String(submitted.body.job_id);
    if (kind === 'poll') return waitForServiceJob(client, jobId, signal);
    if (kind === 'wait') {
      for (let reply = submitted; ;) {
        const status = String(reply.body.status);
        if (TERMINAL.has(status)) return endedAs(status, reply.body);
        if (signal.aborted) return { ok: false, error: 'still running when the drain ended' };
        reply = await client.request('GET', `/api/v1/status/${jobId}`, undefined, { Prefer: 'wait=60' });
        if (reply.status !== 200)
          return { ok: false, error: `GET /api/v1/status answered ${reply.status}: ${describe(reply.body)}` };
      }
    }
    let ended: string | undefined;
    await client.followEvents(
      `/api/v1/jobs/${jobId}/events`,
      (event) => {
        const status = event.event === 'status' ? String(JSON.parse(event.data).status) : undefined;
        if (status && TERMINAL.has(status)) ended = status;
        return ended !== undefined;
      },
      signal,
    );
    if (!ended)
      return {
        ok: false,
        error: signal.aborted ? 'still running when the drain ended' : 'the event stream ended early',
      };
    return endedAs(ended, {});
  };
}

function endedAs(status: string, body: Record<string, unknown>): JobOutcome {
  return status === 'COMPLETED'
    ? { ok: true }
    : { ok: false, error: `job ended ${status}: ${String(body.error_message ?? '')}` };
}

export async function waitForServiceJob(
  client: JsonClient,
  jobId: string,
  signal: AbortSignal,
  intervalMs = STATUS_POLL_INTERVAL_MS,
): Promise<JobOutcome> {
  for (;;) {
    await sleep(intervalMs);
    if (signal.aborted) return { ok: false, error: 'still running when the drain ended' };
    const reply = await client.request('GET', `/api/v1/status/${jobId}`);
    if (reply.status !== 200)
      return { ok: false, error: `GET /api/v1/status answered ${reply.status}: ${describe(reply.body)}` };
    const status = String(reply.body.status);
    if (!TERMINAL.has(status)) continue;
    return status === 'COMPLETED'
      ? { ok: true }
      : { ok: false, error: `job ended ${status}: ${reply.body.error_message ?? ''}` };
  }
}

/** One workflow of a bare shape (bench/bare-workflow.ts) through the Temporal client, waiting for its result. */
export function bareJobRunner(
  client: Client,
  taskQueue: string,
  numOutputs: number,
  shape: 'bareMediaShape' | 'emptyServiceShape' = 'bareMediaShape',
): JobRunner {
  return async (_sequence, signal) => {
    const run = client.workflow.execute<typeof bareMediaShape>(shape, {
      taskQueue,
      workflowId: `bench-bare-${randomUUID()}`,
      args: [numOutputs],
      workflowExecutionTimeout: '5m',
    });
    let onAbort = () => undefined as void;
    const aborted = new Promise<JobOutcome>((resolve) => {
      onAbort = () => resolve({ ok: false, error: 'still running when the drain ended' });
      if (signal.aborted) onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([run.then((): JobOutcome => ({ ok: true })), aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  };
}

export interface OpenLoopOptions {
  ratePerS: number;
  durationMs: number;
  numOutputs: number;
  /** How long to wait for the submitted jobs to end before the next phase. */
  drainTimeoutMs: number;
  maxJobs: number;
}

export interface OpenLoopResult {
  ratePerS: number;
  durationS: number;
  submitted: number;
  accepted: number;
  rejected: number;
  /** POST /api/v1/generate latency, from the request leaving to the 202 arriving. */
  post: LatencySummary;
  /** The API's own account of each accepted POST (its Server-Timing header): recording the job, starting its workflow. */
  serverTiming: { db: LatencySummary; temporal: LatencySummary };
  /** How late the load generator sent requests against its schedule (its own health). */
  scheduleLagMaxMs: number;
  drain: { completed: number; failed: number; unfinished: number; seconds: number };
  errors: string[];
}

/** Submissions at a fixed rate whatever the answers (an open loop), then a bounded drain. */
export async function runOpenLoop(client: JsonClient, options: OpenLoopOptions): Promise<OpenLoopResult> {
  const { ratePerS, durationMs, numOutputs, drainTimeoutMs } = options;
  const count = Math.min(options.maxJobs, Math.max(1, Math.floor((ratePerS * durationMs) / 1000)));
  const intervalMs = 1000 / ratePerS;
  const latencies: number[] = [];
  const serverTiming = { db: [] as number[], temporal: [] as number[] };
  const jobIds: string[] = [];
  const errors = new Map<string, number>();
  let scheduleLagMaxMs = 0;
  const inFlight: Promise<void>[] = [];

  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const due = start + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const sent = performance.now();
    scheduleLagMaxMs = Math.max(scheduleLagMaxMs, sent - due);
    inFlight.push(
      client
        .request('POST', '/api/v1/generate', {
          model: 'bench/fake',
          prompt: 'bench: open loop',
          num_outputs: numOutputs,
          seed: i,
          output_format: 'png',
        })
        .then(
          (reply) => {
            if (reply.status === 202) {
              latencies.push(performance.now() - sent);
              jobIds.push(String(reply.body.job_id));
              const timing = parseServerTiming(reply.headers['server-timing']);
              if (timing.db !== undefined) serverTiming.db.push(timing.db);
              if (timing.temporal !== undefined) serverTiming.temporal.push(timing.temporal);
            } else {
              const key = `POST answered ${reply.status}: ${describe(reply.body)}`;
              errors.set(key, (errors.get(key) ?? 0) + 1);
            }
          },
          (error: unknown) => {
            const key = error instanceof Error ? error.message : String(error);
            errors.set(key, (errors.get(key) ?? 0) + 1);
          },
        ),
    );
  }
  await Promise.all(inFlight);

  // Let the jobs end before the next phase measures anything, without waiting forever.
  const drainStart = performance.now();
  const drain = new AbortController();
  const timer = setTimeout(() => drain.abort(), drainTimeoutMs);
  const outcome = { completed: 0, failed: 0, unfinished: 0 };
  const queue = [...jobIds];
  await Promise.all(
    Array.from({ length: Math.min(8, queue.length) }, async () => {
      for (let jobId = queue.shift(); jobId !== undefined; jobId = queue.shift()) {
        const result = await waitForServiceJob(client, jobId, drain.signal, 50).catch((error: unknown) => ({
          ok: false as const,
          error: String(error),
        }));
        if (result.ok) outcome.completed++;
        else if (drain.signal.aborted) outcome.unfinished++;
        else outcome.failed++;
      }
    }),
  );
  clearTimeout(timer);

  return {
    ratePerS: round(ratePerS, 2),
    durationS: round(durationMs / 1000, 2),
    submitted: count,
    accepted: latencies.length,
    rejected: count - latencies.length,
    post: summarize(latencies),
    serverTiming: { db: summarize(serverTiming.db), temporal: summarize(serverTiming.temporal) },
    scheduleLagMaxMs: round(scheduleLagMaxMs),
    drain: { ...outcome, seconds: round((performance.now() - drainStart) / 1000, 2) },
    errors: [...errors].map(([message, count]) => `${count}× ${message.slice(0, 200)}`),
  };
}

/** `db;dur=1.2, temporal;dur=5.3` → { db: 1.2, temporal: 5.3 } */
export function parseServerTiming(header: string | string[] | undefined): Record<string, number> {
  const entries: Record<string, number> = {};
  for (const metric of [header ?? []].flat().join(',').split(',')) {
    const [name, ...params] = metric.trim().split(';');
    const duration = params.map((param) => param.trim()).find((param) => param.startsWith('dur='));
    if (name && duration) entries[name] = Number(duration.slice(4));
  }
  return entries;
}

function describe(body: unknown): string {
  if (body && typeof body === 'object' && 'detail' in body) return String((body as { detail: unknown }).detail);
  return typeof body === 'string' ? body.slice(0, 200) : (JSON.stringify(body)?.slice(0, 200) ?? '');
}
