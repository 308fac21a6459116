import { accessSync, constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type ProvisionedBinary =
  | 'temporal'
  | 'versitygw'
  | 'toxiproxy-server'
  | 'temporal-server'
  | 'temporal-sql-tool'
  | 'temporal-ui-server'
  | 'jaeger';

export function toolsDir(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.MEDIA_TOOLS_DIR ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'media-generation', 'bin')
  );
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where scripts/provision-binaries.sh left a binary: on PATH first, then in the cache. */
export function resolveBinary(name: ProvisionedBinary, env: NodeJS.ProcessEnv = process.env): string {
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  const cached = path.join(toolsDir(env), name);
  if (isExecutable(cached)) return cached;
  throw new Error(`${name} is not provisioned: run 'npm run provision' (needs Go), or use docker compose`);
}
