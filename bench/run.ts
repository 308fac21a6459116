/**
 * `npm run bench`: the benchmark against the running dev stack (`npm run dev`), beside a bare
 * workflow of the same shape on the same Temporal server; `npm run bench -- --cluster` against the
 * running production engine (`npm run dev -- --cluster`: its two API processes in turn). The last
 * line of output is one JSON object of figures; results go to bench/results/ (latest.json,
 * latest-cluster.json), the engine's figures table in bench/README.md and the two engines side by
 * side in README.md.
 *
 *   npm run bench                       # the full run (5-7 minutes)
 *   npm run bench -- --quick            # a smoke run: every phase, a few jobs (not saved as latest)
 *   npm run bench -- --concurrency 32 --outputs 4 --duration 30 --phases throughput,open-loop
 *
 * Flags (and environment variables): --concurrency (BENCH_CONCURRENCY), --outputs (BENCH_OUTPUTS),
 * --duration seconds (BENCH_DURATION), --open-duration (BENCH_OPEN_DURATION), --open-rate jobs/s
 * (BENCH_OPEN_RATE; default half the measured ceiling), --scaling-duration (BENCH_SCALING_DURATION),
 * --scaling-outputs 1,4,10 (BENCH_SCALING_OUTPUTS), --scaling-concurrency 4,16,64
 * (BENCH_SCALING_CONCURRENCY), --large-bytes 1GiB (BENCH_LARGE_BYTES), --max-jobs per run
 * (BENCH_MAX_JOBS), --drain seconds (BENCH_DRAIN), --warmup jobs (BENCH_WARMUP), --replays per
 * history (BENCH_REPLAYS), --phases throughput,open-loop,scaling,large-output (BENCH_PHASES),
 * --api-url (BENCH_API_URL; a comma-separated list for several API processes), --cluster (BENCH_CLUSTER=1),
 * --redis-url (BENCH_REDIS_URL; default redis://127.0.0.1:6379), --python (BENCH_PYTHON; default
 * /usr/bin/python3, Debian's, with python3-celery and friends), --celery-pool-sizes 2,4,8
 * (BENCH_CELERY_POOL_SIZES), --save / --no-save (write results; default on except with --quick).
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfigOrExit } from '../common/config';
import { clusterDatabaseUrl, DEFAULT_CLUSTER_PORTS } from '../scripts/cluster';
import { ALL_PHASES, DEFAULTS, QUICK, runBench, type BenchOptions, type BenchResult, type Phase } from './phases';
import { renderChart } from './chart';
import { formatEnginesTable, formatMarkdownTable, formatSummary } from './report';

const ROOT = path.join(__dirname, '..');
const RESULTS_DIR = path.join(__dirname, 'results');
const DOCS_FILE = path.join(__dirname, 'README.md');
const README_FILE = path.join(ROOT, 'README.md');
/** bench/README.md keeps one table per engine; README.md the two side by side. */
export const TABLE_MARKERS = {
  'dev-server': ['<!-- bench:table:start -->', '<!-- bench:table:end -->'],
  cluster: ['<!-- bench:cluster-table:start -->', '<!-- bench:cluster-table:end -->'],
  engines: ['<!-- bench:engines:start -->', '<!-- bench:engines:end -->'],
} as const;

/** Replaces what stands between a file's two markers; false when the file has no such markers. */
function replaceBetween(file: string, [start, end]: readonly [string, string], content: string): boolean {
  try {
    const text = readFileSync(file, 'utf8');
    const from = text.indexOf(start);
    const to = text.indexOf(end);
    if (from < 0 || to < from) return false;
    writeFileSync(file, `${text.slice(0, from)}${start}\n${content}\n${end}${text.slice(to + end.length)}`);
    return true;
  } catch {
    return false;
  }
}

function readResult(file: string): BenchResult | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as BenchResult;
  } catch {
    return undefined;
  }
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
};

export function parseBytes(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new Error(`not a size: '${text}' (try 1GiB, 64MiB or a number of bytes)`);
  return Math.round(Number(match[1]) * unit);
}

function positive(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, not '${text}'`);
  return value;
}

function integers(name: string, text: string): number[] {
  const values = text.split(',').map((part) => Math.round(positive(name, part.trim())));
  if (values.length === 0) throw new Error(`--${name} needs at least one value`);
  return values;
}

export function buildOptions(argv: string[], env: NodeJS.ProcessEnv): { options: BenchOptions; save: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      concurrency: { type: 'string' },
      outputs: { type: 'string' },
      duration: { type: 'string' },
      'open-duration': { type: 'string' },
      'open-rate': { type: 'string' },
      'scaling-duration': { type: 'string' },
      'scaling-outputs': { type: 'string' },
      'scaling-concurrency': { type: 'string' },
      'large-bytes': { type: 'string' },
      'max-jobs': { type: 'string' },
      drain: { type: 'string' },
      warmup: { type: 'string' },
      replays: { type: 'string' },
      phases: { type: 'string' },
      'api-url': { type: 'string' },
      cluster: { type: 'boolean' },
      'redis-url': { type: 'string' },
      python: { type: 'string' },
      'celery-pool-sizes': { type: 'string' },
      save: { type: 'boolean' },
      'no-save': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    const header = readFileSync(__filename, 'utf8').split('*/')[0]!;
    process.stdout.write(`${header.replace(/^\/\*\*?|^ \* ?/gm, '')}\n`);
    process.exit(0);
  }
  const quick = values.quick ?? ['1', 'true'].includes(env.BENCH_QUICK ?? '');
  const base = quick ? QUICK : DEFAULTS;
  const pick = (flag: string | undefined, envName: string) => flag ?? env[envName];
  const num = (name: string, envName: string, fallback: number) => {
    const text = pick(values[name as keyof typeof values] as string | undefined, envName);
    return text === undefined ? fallback : positive(name, text);
  };
  const list = (name: string, envName: string, fallback: readonly number[]) => {
    const text = pick(values[name as keyof typeof values] as string | undefined, envName);
    return text === undefined ? [...fallback] : integers(name, text);
  };
  const phasesText = pick(values.phases, 'BENCH_PHASES');
  const phases = phasesText ? (phasesText.split(',').map((p) => p.trim()) as Phase[]) : [...ALL_PHASES];
  const unknown = phases.filter((p) => !ALL_PHASES.includes(p));
  if (unknown.length) throw new Error(`unknown phase(s) ${unknown.join(', ')}; phases are ${ALL_PHASES.join(', ')}`);
  const largeText = pick(values['large-bytes'], 'BENCH_LARGE_BYTES');

  const config = loadConfigOrExit(env);
  const cluster = values.cluster ?? ['1', 'true'].includes(env.BENCH_CLUSTER ?? '');
  const options: BenchOptions = {
    apiBaseUrls: (
      pick(values['api-url'], 'BENCH_API_URL') ??
      (cluster ? DEFAULT_CLUSTER_PORTS.apis : [config.PORT]).map((port) => `http://127.0.0.1:${port}`).join(',')
    )
      .split(',')
      .map((url) => url.trim()),
    engine: cluster ? 'cluster' : 'dev-server',
    temporalAddress: config.TEMPORAL_ADDRESS,
    databaseUrl: cluster ? clusterDatabaseUrl(config.DATABASE_URL) : config.DATABASE_URL,
    namespace: config.TEMPORAL_NAMESPACE,
    s3: {
      endpoint: config.S3_ENDPOINT_URL,
      region: config.S3_REGION,
      accessKeyId: config.S3_ACCESS_KEY_ID,
      secretAccessKey: config.S3_SECRET_ACCESS_KEY,
      forcePathStyle: config.S3_FORCE_PATH_STYLE,
      bucket: config.S3_BUCKET_NAME,
    },
    concurrency: Math.round(num('concurrency', 'BENCH_CONCURRENCY', base.concurrency)),
    outputs: Math.round(num('outputs', 'BENCH_OUTPUTS', base.outputs)),
    durationS: num('duration', 'BENCH_DURATION', base.durationS),
    openLoopDurationS: num('open-duration', 'BENCH_OPEN_DURATION', base.openLoopDurationS),
    openLoopRatePerS:
      pick(values['open-rate'], 'BENCH_OPEN_RATE') === undefined ? undefined : num('open-rate', 'BENCH_OPEN_RATE', 1),
    scalingDurationS: num('scaling-duration', 'BENCH_SCALING_DURATION', base.scalingDurationS),
    scalingOutputs: list('scaling-outputs', 'BENCH_SCALING_OUTPUTS', base.scalingOutputs),
    scalingConcurrency: list('scaling-concurrency', 'BENCH_SCALING_CONCURRENCY', base.scalingConcurrency),
    largeOutputBytes: largeText === undefined ? base.largeOutputBytes : parseBytes(largeText),
    maxJobsPerRun: Math.round(num('max-jobs', 'BENCH_MAX_JOBS', base.maxJobsPerRun)),
    drainTimeoutS: num('drain', 'BENCH_DRAIN', base.drainTimeoutS),
    warmupJobs: Math.round(num('warmup', 'BENCH_WARMUP', base.warmupJobs)),
    replays: Math.round(num('replays', 'BENCH_REPLAYS', base.replays)),
    designs: {
      redisUrl: pick(values['redis-url'], 'BENCH_REDIS_URL') ?? 'redis://127.0.0.1:6379',
      python: pick(values.python, 'BENCH_PYTHON') ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'),
      celeryPoolSizes: list('celery-pool-sizes', 'BENCH_CELERY_POOL_SIZES', base.celeryPoolSizes),
    },
    phases,
    quick,
    log: (line) => process.stdout.write(`${line}\n`),
  };
  const save = values['no-save'] ? false : (values.save ?? !quick);
  return { options, save };
}

/**
 * Writes the run's JSON, the engine's latest result and chart, its figures table in bench/README.md
 * and the two engines side by side in README.md; returns what it wrote.
 */
export function saveResults(result: BenchResult): string[] {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = result.startedAt.replace(/[:.]/g, '-');
  const cluster = result.settings.engine === 'cluster';
  const suffix = cluster ? '-cluster' : '';
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const written = [path.join(RESULTS_DIR, `${stamp}${suffix}${result.quick ? '-quick' : ''}.json`)];
  writeFileSync(written[0]!, json);
  if (result.quick) return written;
  const latest = path.join(RESULTS_DIR, `latest${suffix}.json`);
  writeFileSync(latest, json);
  writeFileSync(path.join(RESULTS_DIR, `chart${suffix}.svg`), renderChart(result));
  written.push(latest, path.join(RESULTS_DIR, `chart${suffix}.svg`));
  const load = `load average ${result.host.loadAverageAtStart[0]} at the start, ${result.host.loadAverageAtEnd[0]} at the end`;
  const stampLine = `_Latest run: ${result.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${result.host.cpus} CPU ${result.host.cpuModel}, Node ${result.host.node}, ${load}._`;
  if (
    replaceBetween(DOCS_FILE, TABLE_MARKERS[result.settings.engine], `${stampLine}\n\n${formatMarkdownTable(result)}`)
  )
    written.push(DOCS_FILE);
  const engines = formatEnginesTable(
    readResult(path.join(RESULTS_DIR, 'latest.json')),
    readResult(path.join(RESULTS_DIR, 'latest-cluster.json')),
  );
  if (replaceBetween(README_FILE, TABLE_MARKERS.engines, engines)) written.push(README_FILE);
  return written;
}

async function main(): Promise<void> {
  const { options, save } = buildOptions(process.argv.slice(2), process.env);
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // Already installed.
  }
  const result = await runBench(options);
  const written = save ? saveResults(result) : [];
  process.stdout.write(`${formatSummary(result)}\n`);
  if (written.length) process.stdout.write(`\nwrote ${written.map((file) => path.relative(ROOT, file)).join(', ')}\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
