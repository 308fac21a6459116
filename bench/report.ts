import type { BenchResult, DesignRun, ThroughputComparison } from './phases';
import type { ClosedLoopResult } from './load';
import { round } from './stats';

const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
const loop = (run: ClosedLoopResult) =>
  `${run.jobsPerS} jobs/s, p50 ${run.latency.p50Ms} ms, p99 ${run.latency.p99Ms} ms`;
const bad = (run: ClosedLoopResult) =>
  run.failed || run.unfinished
    ? `  [${run.failed} failed, ${run.unfinished} unfinished${run.errors.length ? `: ${run.errors.join('; ')}` : ''}]`
    : '';

function point(label: string, p: ThroughputComparison): string[] {
  return [
    `  ${label.padEnd(24)} service ${loop(p.service)}${bad(p.service)}`,
    `  ${''.padEnd(24)} bare    ${loop(p.bare)}${bad(p.bare)}   ratio ${p.ratio}`,
  ];
}

/** `temporal 52.1 ms, worker 60.3 ms, … = 170.2 ms`, largest first. */
export function formatCpu(perJob: Record<string, number>): string {
  const parts = Object.entries(perJob)
    // Parts of the stack the run did not use (under half a millisecond per job) are left out of the text.
    .filter(([group, ms]) => group !== 'total' && ms >= 0.5)
    .sort(([, a], [, b]) => b - a)
    .map(([group, ms]) => `${group} ${ms} ms`);
  return `${parts.join(', ')} = ${perJob.total} ms`;
}

/** The readable summary: each figure beside its target and the bare baseline. */
export function formatSummary(result: BenchResult): string {
  const { targets } = result;
  const lines: string[] = [];
  lines.push('');
  lines.push(
    `== media-generation benchmark${result.quick ? ' (quick)' : ''}: ${result.settings.apiBaseUrls.join(', ')}, Temporal ${result.settings.temporalAddress} (${result.settings.engine === 'cluster' ? 'the production engine: Temporal server on Postgres' : 'dev server'})`,
  );
  lines.push(
    `   ${result.host.cpus} CPU ${result.host.cpuModel}, ${result.host.memoryGiB} GiB, Node ${result.host.node}; ${result.startedAt}`,
  );
  lines.push(
    `   load average (1/5/15 min) at start ${result.host.loadAverageAtStart.join(' / ')}, at end ${result.host.loadAverageAtEnd.join(' / ')}`,
  );

  const t = result.throughput;
  if (t) {
    lines.push('');
    lines.push(
      `Throughput, closed loop (${t.concurrency} clients × ${t.outputs} outputs, ${t.service.durationS}s each):`,
    );
    lines.push(`  service   ${loop(t.service)} (${t.service.completed} jobs)${bad(t.service)}`);
    lines.push(
      `  bare      ${loop(t.bare)} (${t.bare.completed} jobs)${bad(t.bare)}   <- the floor: same shape, no-op activities`,
    );
    if (t.bareAfter)
      lines.push(
        `  bare after ${loop(t.bareAfter)} (${t.bareAfter.completed} jobs)${bad(t.bareAfter)}; mean ${t.bareJobsPerS} jobs/s`,
      );
    lines.push(
      `  ratio     ${t.ratio} of bare          target >= ${targets.throughputRatio}: ${verdict(t.ratio >= targets.throughputRatio)}`,
    );
    if (t.cpuMsPerJob?.service) lines.push(`  CPU per job, service: ${formatCpu(t.cpuMsPerJob.service)}`);
    if (t.cpuMsPerJob?.bare) lines.push(`  CPU per job, bare:    ${formatCpu(t.cpuMsPerJob.bare)}`);
  }

  const a = result.apiLatency;
  if (a) {
    lines.push('');
    lines.push(
      `API latency, open loop (POST /api/v1/generate at ${a.ratePerS}/s${t ? ' = half the service ceiling' : ''}, ${a.durationS}s, ${a.submitted} requests):`,
    );
    lines.push(
      `  POST      p50 ${a.post.p50Ms} ms, p99 ${a.post.p99Ms} ms, max ${a.post.maxMs} ms   target p99 <= ${targets.postP99Ms} ms: ${verdict(a.post.p99Ms <= targets.postP99Ms)}`,
    );
    const { db, temporal } = a.serverTiming;
    if (db.count > 0)
      lines.push(
        `  of which, by the API's Server-Timing: recording the job p50 ${db.p50Ms} / p99 ${db.p99Ms} ms, starting its workflow p50 ${temporal.p50Ms} / p99 ${temporal.p99Ms} ms`,
      );
    if (a.post.count < 100)
      lines.push(
        `  (only ${a.post.count} accepted requests: the p99 is close to the max; raise --open-duration for a steadier figure)`,
      );
    lines.push(
      `  (${a.rejected} rejected; load generator lag max ${a.scheduleLagMaxMs} ms; drain: ${a.drain.completed} completed, ${a.drain.failed} failed, ${a.drain.unfinished} unfinished in ${a.drain.seconds}s)`,
    );
    if (a.errors.length) lines.push(`  errors: ${a.errors.join('; ')}`);
  }

  const s = result.scaling;
  if (s) {
    lines.push('');
    lines.push(`Scaling (${result.settings.scalingDurationS}s per point; the headline point is reused):`);
    for (const p of s.byOutputs) lines.push(...point(`${p.outputs} outputs × ${p.concurrency} clients`, p));
    for (const p of s.byConcurrency) lines.push(...point(`${p.concurrency} clients × ${p.outputs} outputs`, p));
  }

  if (result.clients?.length) {
    lines.push('');
    lines.push('Clients that wait or follow instead of polling (same clients and outputs as the headline):');
    for (const c of result.clients) {
      lines.push(
        `  ${c.kind === 'wait' ? 'Prefer: wait ' : 'SSE follow   '} ${c.jobsPerS} jobs/s, p99 ${c.latency.p99Ms} ms; bare ${c.bareJobsPerS} jobs/s; ratio ${c.ratio}   target >= ${targets.waitingRatio}: ${verdict(c.ratio >= targets.waitingRatio)}`,
      );
      if (c.cpuMsPerJob) lines.push(`    CPU per job: ${formatCpu(c.cpuMsPerJob)}`);
    }
  }
  const empty = result.emptyServiceShape;
  if (empty) {
    lines.push(
      `  The service's commands, empty (local activities, no work): ${empty.jobsPerS} jobs/s, p99 ${empty.latency.p99Ms} ms; bare ${empty.bareJobsPerS} jobs/s; ratio ${empty.ratio} (the most a waiter's ratio can reach here)`,
    );
    if (empty.cpuMsPerJob) lines.push(`    CPU per job: ${formatCpu(empty.cpuMsPerJob)}`);
  }
  if (result.designs?.length || result.designsSkipped?.length) {
    lines.push('');
    lines.push(
      'The designs the service is compared with, doing its work (polling clients, same clients and outputs as the headline):',
    );
    for (const d of result.designs ?? []) {
      lines.push(
        `  ${designLabel(d).padEnd(34)} ${d.jobsPerS} jobs/s, p50 ${d.latency.p50Ms} ms, p99 ${d.latency.p99Ms} ms; bare ${d.bareJobsPerS} jobs/s; ratio ${d.ratio}${d.failed || d.unfinished ? `  [${d.failed} failed, ${d.unfinished} unfinished${d.errors.length ? `: ${d.errors.join('; ')}` : ''}]` : ''}`,
      );
      if (d.cpuMsPerJob) lines.push(`    CPU per job: ${formatCpu(d.cpuMsPerJob)}`);
    }
    for (const reason of result.designsSkipped ?? []) lines.push(`  skipped: ${reason}`);
  }
  const replay = result.workflowReplay;
  if (replay) {
    lines.push('');
    lines.push(
      `Workflow code alone (one history of each replayed ${replay.replays} times in this process, no server):`,
    );
    lines.push(
      `  service job ${replay.cpuMsPerReplay.service} ms CPU per replay (${replay.events.service} events, ${replay.sandboxPromisesPerReplay.service} promises in the sandbox); bare shape ${replay.cpuMsPerReplay.bare} ms (${replay.events.bare} events, ${replay.sandboxPromisesPerReplay.bare} promises); ratio ${replay.ratio}`,
    );
  }
  const idle = result.idleStreams;
  if (idle) {
    lines.push('');
    lines.push(`Idle event streams (${idle.streamsOpen} of ${idle.streams} open, one API process):`);
    lines.push(
      `  API RSS ${idle.rssGrowthMiB >= 0 ? '+' : ''}${idle.rssGrowthMiB} MiB over ${idle.rssBeforeMiB} MiB   target < ${targets.idleStreamsRssGrowthMiB} MiB: ${verdict(idle.rssGrowthMiB < targets.idleStreamsRssGrowthMiB)}`,
    );
    lines.push(
      `  database ${idle.queriesPerS} transactions/s over ${idle.idleSeconds}s idle (the whole stack's)   target < ${targets.idleStreamsQueriesPerS}: ${verdict(idle.queriesPerS < targets.idleStreamsQueriesPerS)}`,
    );
    lines.push(`  change → event p50 ${idle.changeToEvent.p50Ms} ms, p99 ${idle.changeToEvent.p99Ms} ms`);
    const poll = idle.pendingStatusPoll;
    if (poll)
      lines.push(
        `  a PENDING job's status poll (${poll.polls} in a row): CPU per poll API ${poll.apiCpuMs} ms, Postgres ${poll.postgresCpuMs} ms, client ${poll.clientCpuMs} ms`,
      );
  }

  const l = result.largeOutput;
  if (l) {
    lines.push('');
    lines.push(
      `Large output (${round(l.bytes / 1024 ** 2)} MiB over HTTP into S3, each path in its own child process):`,
    );
    lines.push(
      `  storeObject   ${l.store.mbPerS} MB/s (${l.store.seconds}s), peak RSS +${l.store.peakRssGrowthMiB} MiB over ${l.store.baselineRssMiB} MiB   target < ${targets.largeOutputRssGrowthMiB} MiB: ${verdict(l.store.peakRssGrowthMiB < targets.largeOutputRssGrowthMiB)}`,
    );
    lines.push(
      `  plain Upload  ${l.plain.mbPerS} MB/s (${l.plain.seconds}s), peak RSS +${l.plain.peakRssGrowthMiB} MiB over ${l.plain.baselineRssMiB} MiB   <- the baseline`,
    );
    lines.push(
      `  ratio         ${l.ratio} of plain        target >= ${targets.largeOutputRatio}: ${verdict(l.ratio >= targets.largeOutputRatio)}`,
    );
  }

  lines.push('');
  const missed = result.checks.filter((check) => !check.met);
  lines.push(
    missed.length
      ? `Targets missed: ${missed.map((check) => `${check.name} = ${check.value} (${check.target})`).join('; ')}`
      : 'All targets met.',
  );
  return lines.join('\n');
}

/** `Celery chain and chord, pool of 4` or `BullMQ flow, concurrency 16`. */
export function designLabel(design: DesignRun): string {
  return design.design === 'celery'
    ? `Celery chain and chord, pool of ${design.concurrency}`
    : `BullMQ flow, concurrency ${design.concurrency}`;
}

/** The design's run with the most jobs/s (Celery runs once per pool size). */
export function bestDesign(result: BenchResult, design: DesignRun['design']): DesignRun | undefined {
  return (result.designs ?? [])
    .filter((candidate) => candidate.design === design)
    .reduce<DesignRun | undefined>(
      (best, candidate) => (best && best.jobsPerS >= candidate.jobsPerS ? best : candidate),
      undefined,
    );
}

const designCell = (design?: DesignRun) =>
  design &&
  `${design.jobsPerS} jobs/s (${design.ratio} × bare${design.design === 'celery' ? `, pool of ${design.concurrency}` : ''})`;

/** Milliseconds for a table: whole numbers from 100 ms up. */
const ms = (value: number) => (Math.abs(value) >= 100 ? String(Math.round(value)) : String(value));

/** Failed or abandoned jobs of a run, for a table cell. */
const losses = (run: Pick<ClosedLoopResult, 'failed' | 'unfinished'>) =>
  [run.failed ? `${run.failed} failed` : '', run.unfinished ? `${run.unfinished} unfinished` : '']
    .filter(Boolean)
    .map((text) => ` (${text})`)
    .join('');

/** The table of latest figures for bench/README.md. */
/**
 * The headline figures of the two engines side by side (README.md): the latest full run on the dev
 * server and the latest on the production engine, each beside the bare workflow on its own server.
 */
const serverCpu = (cpu?: Record<string, number>) => cpu && `${cpu.temporal ?? 0} ms; ${cpu.postgres ?? 0} ms`;

export function formatEnginesTable(devServer?: BenchResult, cluster?: BenchResult): string {
  const runs = [devServer, cluster];
  const cell = (run: BenchResult | undefined, pick: (run: BenchResult) => string | undefined) =>
    (run && pick(run)) ?? '–';
  const client = (kind: string) => (run: BenchResult) => {
    const entry = run.clients?.find((candidate) => candidate.kind === kind);
    return entry && `${entry.jobsPerS} jobs/s (${entry.ratio} × bare)`;
  };
  const rows: [string, (run: BenchResult) => string | undefined][] = [
    [
      'Bare workflow (same shape, no-op activities)',
      (run) => run.throughput && `${run.throughput.bareJobsPerS ?? run.throughput.bare.jobsPerS} jobs/s`,
    ],
    [
      'Service, pollers',
      (run) => run.throughput && `${run.throughput.service.jobsPerS} jobs/s (${run.throughput.ratio} × bare)`,
    ],
    ['Service, waiters (`Prefer: wait`)', client('wait')],
    ['Service, SSE followers', client('sse')],
    [
      "The service's commands, empty (the waiters' ceiling)",
      (run) =>
        run.emptyServiceShape && `${run.emptyServiceShape.jobsPerS} jobs/s (${run.emptyServiceShape.ratio} × bare)`,
    ],
    ['The design it replaces: a Celery chain and chord, its best pool', (run) => designCell(bestDesign(run, 'celery'))],
    ['A BullMQ flow doing the same work', (run) => designCell(bestDesign(run, 'bullmq'))],
    ['POST p99 at half the ceiling', (run) => run.apiLatency && `${ms(run.apiLatency.post.p99Ms)} ms`],
    ['CPU per service job: Temporal server; Postgres', (run) => serverCpu(run.throughput?.cpuMsPerJob?.service)],
    ['CPU per bare job: Temporal server; Postgres', (run) => serverCpu(run.throughput?.cpuMsPerJob?.bare)],
    ['Run', (run) => `${run.startedAt.slice(0, 16).replace('T', ' ')} UTC, load ${run.host.loadAverageAtStart[0]}`],
  ];
  return [
    '| | dev server (SQLite, one process) | production engine (Temporal server on Postgres, 2 APIs, 2 workers) |',
    '|---|---|---|',
    ...rows.map(([label, pick]) => `| ${label} | ${runs.map((run) => cell(run, pick)).join(' | ')} |`),
  ].join('\n');
}

export function formatMarkdownTable(result: BenchResult): string {
  const rows: string[][] = [];
  const t = result.throughput;
  if (t) {
    rows.push([
      `Throughput, ${t.concurrency} clients × ${t.outputs} outputs`,
      `${t.service.jobsPerS} jobs/s${losses(t.service)}`,
      `${t.bareJobsPerS ?? t.bare.jobsPerS} jobs/s${losses(t.bare)}${t.bareAfter ? losses(t.bareAfter) : ''}`,
      `≥ ${result.targets.throughputRatio} × bare`,
      `${t.ratio} ${result.targets.throughputRatio <= t.ratio ? '✅' : '❌'}`,
    ]);
    rows.push([
      'End-to-end p50 / p99',
      `${ms(t.service.latency.p50Ms)} / ${ms(t.service.latency.p99Ms)} ms`,
      `${ms(t.bare.latency.p50Ms)} / ${ms(t.bare.latency.p99Ms)} ms`,
      '',
      '',
    ]);
    const cpu = t.cpuMsPerJob;
    if (cpu?.service && cpu.bare)
      rows.push(['CPU per job, all processes', formatCpu(cpu.service), formatCpu(cpu.bare), '', '']);
  }
  const a = result.apiLatency;
  if (a) {
    const met = a.post.p99Ms <= result.targets.postP99Ms;
    rows.push([
      `POST /api/v1/generate at ${a.ratePerS}/s (p50 / p99 / max)`,
      `${ms(a.post.p50Ms)} / ${ms(a.post.p99Ms)} / ${ms(a.post.maxMs)} ms`,
      '',
      `p99 ≤ ${result.targets.postP99Ms} ms`,
      met ? '✅' : '❌',
    ]);
    const postParts = a.serverTiming;
    if (postParts.db.count > 0) {
      rows.push([
        '… of which recording the job (p50 / p99)',
        `${ms(postParts.db.p50Ms)} / ${ms(postParts.db.p99Ms)} ms`,
        '',
        '',
        '',
      ]);
      rows.push([
        '… of which starting its workflow (p50 / p99)',
        `${ms(postParts.temporal.p50Ms)} / ${ms(postParts.temporal.p99Ms)} ms`,
        '',
        '',
        '',
      ]);
    }
  }
  for (const p of result.scaling?.byOutputs ?? []) {
    rows.push([
      `${p.outputs} outputs × ${p.concurrency} clients (jobs/s, p99)`,
      `${p.service.jobsPerS}, ${ms(p.service.latency.p99Ms)} ms${losses(p.service)}`,
      `${p.bare.jobsPerS}, ${ms(p.bare.latency.p99Ms)} ms${losses(p.bare)}`,
      '',
      `${p.ratio}`,
    ]);
  }
  for (const p of result.scaling?.byConcurrency ?? []) {
    if (p.concurrency === result.settings.concurrency) continue;
    rows.push([
      `${p.concurrency} clients × ${p.outputs} outputs (jobs/s, p99)`,
      `${p.service.jobsPerS}, ${ms(p.service.latency.p99Ms)} ms${losses(p.service)}`,
      `${p.bare.jobsPerS}, ${ms(p.bare.latency.p99Ms)} ms${losses(p.bare)}`,
      '',
      `${p.ratio}`,
    ]);
  }
  for (const c of result.clients ?? []) {
    rows.push([
      `${result.throughput?.concurrency ?? ''} clients that ${c.kind === 'wait' ? 'wait (Prefer: wait)' : 'follow events (SSE)'} (jobs/s, p99)`,
      `${c.jobsPerS}, ${ms(c.latency.p99Ms)} ms`,
      `${c.bareJobsPerS}`,
      `≥ ${result.targets.waitingRatio} × bare`,
      `${c.ratio} ${c.ratio >= result.targets.waitingRatio ? '✅' : '❌'}`,
    ]);
    if (c.cpuMsPerJob) rows.push([`… CPU per job, all processes`, formatCpu(c.cpuMsPerJob), '', '', '']);
  }
  const empty = result.emptyServiceShape;
  if (empty) {
    rows.push([
      `The service's commands, empty (local activities, no work), ${result.settings.concurrency} waiting clients (jobs/s, p99)`,
      `${empty.jobsPerS}, ${ms(empty.latency.p99Ms)} ms${losses(empty)}`,
      `${empty.bareJobsPerS}`,
      '',
      `${empty.ratio}`,
    ]);
    if (empty.cpuMsPerJob) rows.push([`… CPU per job, all processes`, formatCpu(empty.cpuMsPerJob), '', '', '']);
  }
  for (const d of result.designs ?? []) {
    rows.push([
      `${designLabel(d)}, ${result.settings.concurrency} polling clients (jobs/s, p99)`,
      `${d.jobsPerS}, ${ms(d.latency.p99Ms)} ms${d.failed ? ` (${d.failed} failed)` : ''}`,
      `${d.bareJobsPerS}`,
      '',
      `${d.ratio}`,
    ]);
    if (d.cpuMsPerJob) rows.push([`… CPU per job, all processes`, formatCpu(d.cpuMsPerJob), '', '', '']);
  }
  const replay = result.workflowReplay;
  if (replay) {
    rows.push([
      'Workflow code alone: CPU per replay of one history (events, sandbox promises)',
      `${replay.cpuMsPerReplay.service} ms (${replay.events.service}, ${replay.sandboxPromisesPerReplay.service})`,
      `${replay.cpuMsPerReplay.bare} ms (${replay.events.bare}, ${replay.sandboxPromisesPerReplay.bare})`,
      '',
      `${replay.ratio}`,
    ]);
  }
  const idle = result.idleStreams;
  if (idle) {
    rows.push([
      `${idle.streamsOpen} idle event streams: API RSS growth; database transactions/s`,
      `${idle.rssGrowthMiB} MiB; ${idle.queriesPerS}/s`,
      '',
      `< ${result.targets.idleStreamsRssGrowthMiB} MiB; < ${result.targets.idleStreamsQueriesPerS}/s`,
      idle.rssGrowthMiB < result.targets.idleStreamsRssGrowthMiB &&
      idle.queriesPerS < result.targets.idleStreamsQueriesPerS
        ? '✅'
        : '❌',
    ]);
    rows.push([
      'Row change → SSE event (p50 / p99)',
      `${ms(idle.changeToEvent.p50Ms)} / ${ms(idle.changeToEvent.p99Ms)} ms`,
      '',
      '',
      '',
    ]);
    const poll = idle.pendingStatusPoll;
    if (poll)
      rows.push([
        "A PENDING job's status poll: CPU per poll (API; Postgres; client)",
        `${poll.apiCpuMs} ms; ${poll.postgresCpuMs} ms; ${poll.clientCpuMs} ms`,
        '',
        '',
        '',
      ]);
  }
  const l = result.largeOutput;
  if (l) {
    const size = `${round(l.bytes / 1024 ** 3, 2)} GiB`;
    rows.push([
      `One ${size} output: MB/s (plain Upload as baseline)`,
      `${l.store.mbPerS} MB/s`,
      `${l.plain.mbPerS} MB/s`,
      `≥ ${result.targets.largeOutputRatio} × plain`,
      `${l.ratio} ${l.ratio >= result.targets.largeOutputRatio ? '✅' : '❌'}`,
    ]);
    const met = l.store.peakRssGrowthMiB < result.targets.largeOutputRssGrowthMiB;
    rows.push([
      `One ${size} output: peak RSS growth`,
      `${l.store.peakRssGrowthMiB} MiB`,
      `${l.plain.peakRssGrowthMiB} MiB`,
      `< ${result.targets.largeOutputRssGrowthMiB} MiB`,
      met ? '✅' : '❌',
    ]);
  }
  const header = ['Figure', 'Service', 'Bare / plain baseline', 'Target', 'Ratio / met'];
  return [header, header.map(() => '---'), ...rows].map((row) => `| ${row.join(' | ')} |`).join('\n');
}
