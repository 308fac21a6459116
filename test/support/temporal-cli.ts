import { execFile } from 'node:child_process';
import { resolveBinary } from '../../scripts/binaries';
import { testServers } from './servers';

/**
 * Runs the real `temporal` CLI against the test server, as an operator would. Asynchronous: the
 * worker that must answer a query runs in this same process.
 */
export function temporalCli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      resolveBinary('temporal'),
      [...args, '--address', testServers().temporalAddress, '--namespace', 'default'],
      { encoding: 'utf8', timeout: 30_000 },
      (error, stdout, stderr) => resolve({ status: error ? Number(error.code ?? 1) || 1 : 0, stdout, stderr }),
    );
  });
}

export async function temporalCliJson<T = any>(args: string[]): Promise<T> {
  const result = await temporalCli([...args, '--output', 'json']);
  if (result.status !== 0) throw new Error(`temporal ${args.join(' ')} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}
