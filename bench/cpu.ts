import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { round } from './stats';

/**
 * Where the CPU goes: the processes of the stack, grouped by what they are (from their command
 * lines), and this process (the load generator, and the bare workflow's worker while it runs).
 * Read from /proc, so Linux only; elsewhere the figures are left out.
 */
const GROUPS: ReadonlyArray<readonly [group: string, pattern: RegExp]> = [
  // The dev server, or the cluster's Temporal server (scripts/cluster.ts).
  ['temporal', /\btemporal\S* server start-dev\b|\btemporal-server\b.* start\b/],
  ['s3', /\bversitygw\b/],
  ['postgres', /^postgres[: ]/],
  ['worker', /\bworker\/main\.[jt]s\b/],
  ['api', /\bapi\/main\.[jt]s\b/],
  // The designs the service is compared with (bench/designs): their broker, their workers, and the
  // Celery design's clients, a load generator like this process.
  ['redis', /\bredis-server\b/],
  ['bullmq', /\bdesigns\/bullmq-worker\.ts\b/],
  ['celery', /\bcelery_design\.py worker\b/],
  ['bench', /\bcelery_design\.py run\b/],
];

/** CPU seconds (user + system) used so far by each process of the stack, by pid, with its group. */
export type CpuSnapshot = Map<number, { group: string; seconds: number }>;

let clockTicksPerSecond: number | undefined;
function ticksPerSecond(): number {
  if (clockTicksPerSecond === undefined) {
    try {
      clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicksPerSecond = 100;
    }
  }
  return clockTicksPerSecond;
}

export function cpuSnapshot(): CpuSnapshot | undefined {
  if (process.platform !== 'linux') return undefined;
  const ticks = ticksPerSecond();
  const snapshot: CpuSnapshot = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const group =
        Number(entry) === process.pid
          ? 'bench'
          : groupOf(readFileSync(`/proc/${entry}/cmdline`, 'latin1').replaceAll('\0', ' '));
      if (!group) continue;
      // The command name (2nd field) may hold spaces: the fields are counted after its closing parenthesis.
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const seconds = (Number(fields[11]) + Number(fields[12])) / ticks;
      snapshot.set(Number(entry), { group, seconds });
    } catch {
      // The process ended while it was read.
    }
  }
  return snapshot;
}

function groupOf(commandLine: string): string | undefined {
  return GROUPS.find(([, pattern]) => pattern.test(commandLine))?.[0];
}

/**
 * Milliseconds of CPU per completed job between two snapshots, per group, with their `total`,
 * counted process by process: a process that started in between counts whole, one that ended
 * in between (a pooled Postgres connection closed, say) is missing from the second snapshot and
 * its share of the interval is lost, rather than taken off its group's.
 */
export function cpuMsPerJob(
  before: CpuSnapshot | undefined,
  after: CpuSnapshot | undefined,
  jobs: number,
): Record<string, number> | undefined {
  if (!before || !after || jobs <= 0) return undefined;
  const used = new Map<string, number>();
  for (const [pid, { group, seconds }] of after) {
    const earlier = before.get(pid);
    const spent = earlier && earlier.group === group ? seconds - earlier.seconds : seconds;
    used.set(group, (used.get(group) ?? 0) + Math.max(0, spent));
  }
  const perJob: Record<string, number> = {};
  let total = 0;
  for (const [group, seconds] of used) {
    perJob[group] = round((seconds * 1000) / jobs, 1);
    total += seconds;
  }
  perJob.total = round((total * 1000) / jobs, 1);
  return perJob;
}
