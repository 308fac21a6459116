import { execFileSync, spawn } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { createDatabase } from '../db/client';
import { createJob } from '../db/queries/jobs';
import { findFreePort, waitForPort } from '../scripts/processes';
import { cpuMsPerJob, cpuSnapshot } from './cpu';
import { JsonClient } from './http';
import { round, sleep, summarize, type LatencySummary } from './stats';

export interface IdleStreamsResult {
  streams: number;
  /** Streams that were open (had their first event) when the idle window began. */
  streamsOpen: number;
  /** Resident memory of the API process, before the streams and with them all open. */
  rssBeforeMiB: number;
  rssGrowthMiB: number;
  /** Transactions per second committed in the stack's database while every stream's job was idle. */
  queriesPerS: number;
  idleSeconds: number;
  /** From a change committed in Postgres to its event reaching a client of the stream. */
  changeToEvent: LatencySummary;
  /**
   * One client polling a PENDING job's status, one request after another (each reply carries its
   * queue position): milliseconds of CPU per poll in the API and in Postgres, and in this process.
   */
  pendingStatusPoll?: { polls: number; apiCpuMs: number; postgresCpuMs: number; clientCpuMs: number };
}

const ROOT = path.join(__dirname, '..');
const STREAMS_PER_JOB = 10;
const IDLE_WINDOW_S = 10;
const LATENCY_SAMPLES = 20;
const STATUS_POLLS = 1_000;

/**
 * `streams` event streams held by one API process of its own (on the stack's database, with
 * stream caps that allow them), on jobs that nobody works on (rows without a workflow, which the
 * reconciler fails a minute later): what they cost while idle, and how fast a change reaches them.
 */
export async function runIdleStreams(options: {
  streams: number;
  databaseUrl: string;
  log: (line: string) => void;
}): Promise<IdleStreamsResult> {
  const { streams, databaseUrl } = options;
  const port = await findFreePort();
  const api = spawn(path.join(ROOT, 'node_modules', '.bin', 'tsx'), [path.join(ROOT, 'api', 'main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      LOG_LEVEL: 'warn',
      SSE_MAX_STREAMS: String(streams + 10),
      SSE_MAX_STREAMS_PER_KEY: String(streams + 10),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const database = createDatabase({ url: databaseUrl, poolSize: 2 });
  const admin = new Client({ connectionString: databaseUrl });
  const http = new JsonClient(`http://127.0.0.1:${port}`);
  const closing = new AbortController();
  // Every stream listens for it: Node's warning about more than 10 listeners does not apply.
  setMaxListeners(streams + 1, closing.signal);
  try {
    await waitForPort(port, 'the idle-streams API');
    await admin.connect();
    const jobIds: string[] = [];
    for (let i = 0; i < Math.ceil(streams / STREAMS_PER_JOB); i++) {
      const job = await createJob(database.db, {
        model: 'bench/idle',
        prompt: 'bench: an idle stream',
        numOutputs: 1,
        seed: i,
        outputFormat: 'png',
      });
      jobIds.push(job.id);
    }
    // Start-up's garbage is collected by then, so that it does not pass for the streams' cost.
    await sleep(5_000);
    const rssBefore = rssMiB(api.pid!);

    // Each stream remembers when it saw each event id, for the change → event latency.
    const seen = new Map<string, Map<string, number>>();
    let opened = 0;
    for (let i = 0; i < streams; i++) {
      const jobId = jobIds[i % jobIds.length]!;
      const ofJob = seen.get(jobId) ?? new Map<string, number>();
      seen.set(jobId, ofJob);
      let first = true;
      void http
        .followEvents(
          `/api/v1/jobs/${jobId}/events`,
          (event) => {
            if (first) {
              first = false;
              opened++;
            }
            if (event.id && !ofJob.has(event.id)) ofJob.set(event.id, performance.now());
            return false;
          },
          closing.signal,
        )
        .catch(() => undefined);
    }
    for (const until = Date.now() + 60_000; opened < streams && Date.now() < until;) await sleep(100);
    const streamsOpen = opened;
    // Postgres adds an idle backend's transactions to pg_stat_database up to 10 s late
    // (PGSTAT_IDLE_INTERVAL): the streams' opening reads must be counted before the window.
    await sleep(11_000);

    const commits = async () =>
      Number(
        (
          await admin.query<{ xact: string }>(
            'select xact_commit + xact_rollback as xact from pg_stat_database where datname = current_database()',
          )
        ).rows[0]?.xact ?? 0,
      );
    const before = await commits();
    await sleep(IDLE_WINDOW_S * 1000);
    // Counts the whole database (the rest of the stack too, e.g. its reconciler); the counting query is left out.
    const queriesPerS = ((await commits()) - before - 1) / IDLE_WINDOW_S;
    const rssWith = rssMiB(api.pid!);

    const latencies: number[] = [];
    for (let sample = 0; sample < LATENCY_SAMPLES; sample++) {
      const jobId = jobIds[sample % jobIds.length]!;
      const started = performance.now();
      const written = await admin.query<{ seq: number }>(
        `with bumped as (update jobs set event_seq = event_seq + 1 where id = $1 returning id, event_seq)
         insert into job_events (job_id, seq, type, data)
         select id, event_seq, 'status', '{"status":"PENDING"}' from bumped returning seq`,
        [jobId],
      );
      const id = String(written.rows[0]?.seq);
      const ofJob = seen.get(jobId)!;
      for (const until = Date.now() + 5_000; !ofJob.has(id) && Date.now() < until;) await sleep(1);
      const at = ofJob.get(id);
      if (at !== undefined) latencies.push(at - started);
    }

    // The rest of the stack is idle now: what the API and Postgres spend here is the polls'.
    const beforePolls = cpuSnapshot();
    for (let poll = 0; poll < STATUS_POLLS; poll++) {
      const reply = await http.request('GET', `/api/v1/status/${jobIds[0]}`);
      if (reply.status !== 200) throw new Error(`a status poll answered ${reply.status}`);
    }
    // The milliseconds all the polls took, per group, then per poll.
    const allPolls = cpuMsPerJob(beforePolls, cpuSnapshot(), 1);
    const perPoll = (group: string) => round((allPolls?.[group] ?? 0) / STATUS_POLLS, 2);
    return {
      streams,
      streamsOpen,
      rssBeforeMiB: round(rssBefore),
      rssGrowthMiB: round(rssWith - rssBefore),
      queriesPerS: round(queriesPerS, 2),
      idleSeconds: IDLE_WINDOW_S,
      changeToEvent: summarize(latencies),
      ...(allPolls
        ? {
            pendingStatusPoll: {
              polls: STATUS_POLLS,
              apiCpuMs: perPoll('api'),
              postgresCpuMs: perPoll('postgres'),
              clientCpuMs: perPoll('bench'),
            },
          }
        : {}),
    };
  } finally {
    closing.abort();
    http.close();
    await admin.end().catch(() => undefined);
    await database.close();
    killTree(api.pid);
  }
}

/** The resident memory of the API: tsx runs it in a child process of its own. */
function rssMiB(tsxPid: number): number {
  const pids = [tsxPid, ...childPids(tsxPid)];
  return Math.max(...pids.map((pid) => statusKiB(pid, 'VmRSS') / 1024));
}

function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function statusKiB(pid: number, field: string): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

function killTree(pid: number | undefined): void {
  if (!pid) return;
  for (const child of childPids(pid)) killTree(child);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
