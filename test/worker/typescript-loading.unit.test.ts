import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { WORKER_NODE_ARGS } from '../../scripts/processes';

const ROOT = path.join(__dirname, '..', '..');

/**
 * `npm run worker` loads the TypeScript sources with tsx in the main thread only: the SDK's
 * workflow threads, which inherit the process's flags, run without Node's source maps (each
 * promise a workflow creates would otherwise pay for them; the SDK maps the bundle's frames itself).
 */
describe('how the worker loads its TypeScript', () => {
  it('keeps source maps in the main thread and leaves them off in worker threads', () => {
    const script = (
      JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts.worker!;
    const [command, ...args] = script.split(/\s+/);
    expect(command).toBe('node');
    expect(args.at(-1)).toBe('worker/main.ts');
    // The dev stack, the cluster and the fault suite start the worker with the same arguments.
    const resolved = (list: readonly string[]) =>
      list.map((arg) => (arg.startsWith('-') ? arg : path.resolve(ROOT, arg)));
    expect(resolved(WORKER_NODE_ARGS)).toEqual(resolved(args));
    const flags = args.slice(0, -1);
    const printed = execFileSync(
      process.execPath,
      [...flags, path.join(ROOT, 'test', 'fixtures', 'threads', 'report-source-maps.ts')],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(JSON.parse(printed.trim())).toEqual({ mainThread: true, workerThread: false });
  });
});
