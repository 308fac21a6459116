import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger, type BundlerPlugin } from '@temporalio/worker';
import type { Logger } from '@temporalio/common';
import { sdkLogger } from './sdk-logger';

export const WORKFLOWS_PATH = require.resolve('../workflows');
/** Written by `npm run bundle:workflows` (the Docker image does); used when present and current. */
export const PREBUILT_WORKFLOW_BUNDLE = path.join(__dirname, '..', 'dist', 'workflow-bundle.js');
/** What the workflow bundle is built from: the workflows and the shared code they import. */
const WORKFLOW_SOURCE_DIRS = ['workflows', 'common'].map((dir) => path.join(__dirname, '..', dir));

/** The newest modification time of the TypeScript files under `dirs`. */
function newestSourceMs(dirs: string[]): number {
  let newest = 0;
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (entry.isFile() && entry.name.endsWith('.ts'))
        newest = Math.max(newest, statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
    }
  }
  return newest;
}

/**
 * The prebuilt bundle, when it is there and no workflow source changed after it was built:
 * otherwise a bundle left in dist/ by an earlier `npm run bundle:workflows` would run old
 * workflow code after an edit. `stale` says when one is there but older than the sources.
 */
export function currentPrebuiltBundle(
  bundlePath = PREBUILT_WORKFLOW_BUNDLE,
  sourceDirs = WORKFLOW_SOURCE_DIRS,
): { path?: string; stale?: string } {
  if (!existsSync(bundlePath)) return {};
  if (newestSourceMs(sourceDirs) > statSync(bundlePath).mtimeMs) return { stale: bundlePath };
  return { path: bundlePath };
}

/**
 * The bundler's logger, passing on only what needs a reader: webpack's report of a build that
 * succeeded (a screenful of module sizes, at INFO) is dropped unless it carries warnings; a failed
 * build's report comes at ERROR and goes through whole.
 */
export function quietBundlerLogger(target: Logger): Logger {
  return sdkLogger((level, message, meta) => {
    if (level === 'WARN' || level === 'ERROR') target.log(level, message, meta);
    else if (level === 'INFO' && message.includes('WARNING in ')) target.log('WARN', message, meta);
  });
}

/** The workflows' bundle code, built by webpack, with the plugins' workflow interceptors in it. */
export async function bundleWorkflows(options: { plugins?: BundlerPlugin[]; logger?: Logger } = {}): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    plugins: options.plugins,
    logger: quietBundlerLogger(options.logger ?? new DefaultLogger('WARN')),
  });
  return code;
}

/** Bundles the workflows once, ahead of time, so a worker starts without webpack. */
export async function buildWorkflowBundle(outputPath = PREBUILT_WORKFLOW_BUNDLE): Promise<string> {
  const code = await bundleWorkflows();
  mkdirSync(path.dirname(outputPath), { recursive: true });
  writeFileSync(outputPath, code);
  return outputPath;
}

if (require.main === module) {
  buildWorkflowBundle(process.argv[2]).then(
    (file) => console.log(`workflow bundle written to ${file}`),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
