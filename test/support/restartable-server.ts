import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findFreePort, stopProcess, waitForPort } from '../../scripts/processes';

/**
 * A server a fault test runs itself (not the shared one), on a free port and with a data folder of its
 * own that outlives the process, so that the test can stop, kill and restart it.
 */
export class RestartableServer {
  private process: ChildProcess | undefined;

  private constructor(
    private readonly name: string,
    private readonly spawn: (port: number, dataDir: string) => ChildProcess,
    private readonly readyTimeoutMs: number,
    readonly port: number,
    readonly dataDir: string,
  ) {}

  /** Starts it, resolving once it listens. */
  static async start(
    name: string,
    spawn: (port: number, dataDir: string) => ChildProcess,
    readyTimeoutMs = 30_000,
  ): Promise<RestartableServer> {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), `media-fault-${name.replace(/\W+/g, '-')}-`));
    const server = new RestartableServer(name, spawn, readyTimeoutMs, await findFreePort(), dataDir);
    await server.restart();
    return server;
  }

  /** Starts it again on the same port and data, resolving once it listens. */
  async restart(): Promise<void> {
    this.process = this.spawn(this.port, this.dataDir);
    await waitForPort(this.port, this.name, this.readyTimeoutMs);
  }

  /** SIGTERM (a shutdown), then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.process) await stopProcess(this.process, graceMs);
  }

  /** SIGKILL: a crash, not a shutdown. */
  async kill(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Stops it for good and removes its data. */
  async remove(graceMs?: number): Promise<void> {
    await this.stop(graceMs);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
