import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Config } from '../../common/config';
import { testServers } from './servers';
import { onEachLine, WORKER_NODE_ARGS } from '../../scripts/processes';

const ROOT = path.join(__dirname, '..', '..');

/** The environment a worker process needs to join a test stack: its servers, its task queue, the prebuilt workflow bundle. */
export function workerProcessEnv(config: Config, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: config.DATABASE_URL,
    TEMPORAL_ADDRESS: config.TEMPORAL_ADDRESS,
    TEMPORAL_NAMESPACE: config.TEMPORAL_NAMESPACE,
    TEMPORAL_TASK_QUEUE: config.TEMPORAL_TASK_QUEUE,
    S3_ENDPOINT_URL: config.S3_ENDPOINT_URL,
    S3_REGION: config.S3_REGION,
    S3_ACCESS_KEY_ID: config.S3_ACCESS_KEY_ID,
    S3_SECRET_ACCESS_KEY: config.S3_SECRET_ACCESS_KEY,
    S3_BUCKET_NAME: config.S3_BUCKET_NAME,
    WORKFLOW_BUNDLE_PATH: testServers().workflowBundlePath,
    LOG_LEVEL: 'info',
    // Several worker processes may run at once (and a dev stack beside them): no fixed metrics port.
    WORKER_METRICS_PORT: '0',
    // The test database is shared: a worker process's reconciler would take up other stacks' rows (a
    // due batch webhook, an orphaned job) and start their clean-up on this task queue, whose worker
    // refuses their receivers or is killed by its test. A test that needs it sets it.
    RECONCILE_INTERVAL_SECONDS: '0',
    ...overrides,
  };
}

/**
 * `npm run worker` as a real child process, so that a test can kill it the way a machine dies.
 * The process gets a group of its own, so that a SIGKILL to the group reaches whatever it started.
 */
export class WorkerProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private lines: string[] = [];
  private listeners: ((line: string) => void)[] = [];

  constructor(private readonly baseEnv: Record<string, string>) {}

  /** Everything the current process printed, stdout and stderr, one entry a line. */
  get output(): readonly string[] {
    return this.lines;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the worker and resolves once it says it polls its task queue. */
  async start(envOverrides: Record<string, string> = {}, timeoutMs = 60_000): Promise<void> {
    if (this.running) throw new Error('the worker process is already running');
    this.lines = [];
    const child = spawn(process.execPath, WORKER_NODE_ARGS, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...this.baseEnv, ...envOverrides },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child = child;
    // A test run that ends abruptly (jest's forceExit, a timeout) must not leave a worker polling behind.
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    process.once('exit', killGroup);
    child.once('exit', () => process.off('exit', killGroup));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.record(`[worker process ${child.pid} exited: code ${code}, signal ${signal}]`);
        resolve();
      }),
    );
    onEachLine(child, (line) => this.record(line));
    await this.waitForLog(/worker started/, timeoutMs);
  }

  /** Resolves with the first line of the current process matching `pattern`, already printed or still to come. */
  waitForLog(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const seen = this.lines.find((line) => pattern.test(line));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const child = this.child;
      const done = (error?: Error, line?: string) => {
        clearTimeout(timer);
        this.listeners = this.listeners.filter((candidate) => candidate !== listener);
        child?.off('exit', onExit);
        if (error) reject(error);
        else resolve(line!);
      };
      const listener = (line: string) => {
        if (pattern.test(line)) done(undefined, line);
      };
      const onExit = () =>
        done(new Error(`the worker exited before logging ${pattern}; output:\n${this.lines.join('\n')}`));
      const timer = setTimeout(
        () =>
          done(
            new Error(`the worker did not log ${pattern} within ${timeoutMs} ms; output:\n${this.lines.join('\n')}`),
          ),
        timeoutMs,
      );
      this.listeners.push(listener);
      child?.once('exit', onExit);
    });
  }

  /**
   * Sends `signal` and, for one that ends the process, waits for it to exit. tsx relays SIGINT
   * and SIGTERM to the worker itself (so it gets them once); any other signal (SIGKILL, SIGSTOP,
   * SIGCONT) goes to the whole group, since tsx cannot relay it.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child?.pid || !this.running) return;
    if (signal === 'SIGINT' || signal === 'SIGTERM') child.kill(signal);
    else process.kill(-child.pid, signal);
    if (['SIGKILL', 'SIGTERM', 'SIGINT'].includes(signal)) await this.exited;
  }

  /** SIGTERM (a graceful shutdown), then SIGKILL if it takes longer than `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    const timer = setTimeout(() => void this.kill('SIGKILL'), graceMs);
    await this.kill('SIGTERM');
    clearTimeout(timer);
  }

  private record(line: string): void {
    this.lines.push(line);
    for (const listener of [...this.listeners]) listener(line);
  }
}
