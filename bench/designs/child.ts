import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const REPO_ROOT = path.join(__dirname, '..', '..');

/** Starts a design's worker process and resolves once it prints `ready` (it is then taking work). */
export function startWorkerProcess(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      if (chunk.includes('ready')) resolve(child);
    });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(
        new Error(`${path.basename(args[args.length - 2] ?? command)} exited ${signal ?? code}: ${stderr.trim()}`),
      ),
    );
  });
}

/** SIGTERM, then SIGKILL after 10 s. */
export function stopWorkerProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
