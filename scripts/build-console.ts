import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BuildOptions, Metafile } from 'esbuild';

const ROOT = path.join(__dirname, '..');
export const CONSOLE_SOURCE_DIR = path.join(ROOT, 'console');
export const CONSOLE_BUILD_DIR = path.join(ROOT, 'dist', 'console');

export interface ConsoleBuild {
  outDir: string;
  /** Bytes of each file the page loads (source maps aside), by name. */
  sizes: Record<string, number>;
}

function esbuildOptions(outDir: string): BuildOptions {
  return {
    entryPoints: [path.join(CONSOLE_SOURCE_DIR, 'main.ts'), path.join(CONSOLE_SOURCE_DIR, 'styles.css')],
    outdir: path.join(outDir, 'assets'),
    // Content-hashed names: the API serves them as immutable, and index.html (never cached) names them.
    entryNames: '[name]-[hash]',
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
    tsconfig: path.join(CONSOLE_SOURCE_DIR, 'tsconfig.json'),
    // The metafile names outputs relative to this folder.
    absWorkingDir: ROOT,
  };
}

/** index.html names the bundle's hashed files; written by rename, so a server never reads half of it. */
function writeIndex(outDir: string, metafile: Metafile): ConsoleBuild {
  const outputs = Object.keys(metafile.outputs).filter((file) => !file.endsWith('.map'));
  const find = (ext: string) => {
    const file = outputs.find((output) => output.endsWith(ext));
    if (!file) throw new Error(`the console build wrote no ${ext} file`);
    return path.resolve(ROOT, file);
  };
  const [script, styles] = [find('.js'), find('.css')];
  const url = (file: string) => `/console/assets/${path.basename(file)}`;
  const html = readFileSync(path.join(CONSOLE_SOURCE_DIR, 'index.html'), 'utf8')
    .replace('%SCRIPT%', url(script))
    .replace('%STYLES%', url(styles));
  const indexPath = path.join(outDir, 'index.html');
  const temporary = `${indexPath}.${process.pid}.tmp`;
  writeFileSync(temporary, html);
  renameSync(temporary, indexPath);
  writeFileSync(path.join(outDir, 'favicon.svg'), readFileSync(path.join(CONSOLE_SOURCE_DIR, 'favicon.svg')));

  // Files of earlier builds go only after the new ones are written: a build running at the same
  // time (tests beside `npm run dev`) writes the same names and never loses them.
  const current = new Set(Object.keys(metafile.outputs).map((file) => path.basename(file)));
  const assets = path.join(outDir, 'assets');
  for (const file of readdirSync(assets)) if (!current.has(file)) rmSync(path.join(assets, file), { force: true });

  const sizes: Record<string, number> = { 'index.html': Buffer.byteLength(html) };
  for (const file of [script, styles]) sizes[path.basename(file)] = statSync(file).size;
  return { outDir, sizes };
}

/** Bundles console/ (TypeScript and CSS) into `outDir` with esbuild. */
export async function buildConsole(outDir = CONSOLE_BUILD_DIR): Promise<ConsoleBuild> {
  const esbuild = await import('esbuild');
  mkdirSync(path.join(outDir, 'assets'), { recursive: true });
  const result = await esbuild.build(esbuildOptions(outDir));
  return writeIndex(outDir, result.metafile!);
}

/**
 * Builds console/, then again on every change of it until `dispose` is called (npm run dev);
 * resolves once the first build is written (or failed, which esbuild reports).
 */
export async function watchConsole(
  onBuilt: (build: ConsoleBuild) => void,
  onError: (error: unknown) => void,
  outDir = CONSOLE_BUILD_DIR,
): Promise<{ dispose: () => Promise<void> }> {
  const esbuild = await import('esbuild');
  mkdirSync(path.join(outDir, 'assets'), { recursive: true });
  let firstBuildEnded = () => {};
  const firstBuild = new Promise<void>((resolve) => (firstBuildEnded = resolve));
  const context = await esbuild.context({
    ...esbuildOptions(outDir),
    plugins: [
      {
        name: 'write-index',
        setup(build) {
          build.onEnd((result) => {
            try {
              if (result.errors.length === 0 && result.metafile) onBuilt(writeIndex(outDir, result.metafile));
            } catch (error) {
              onError(error);
            } finally {
              firstBuildEnded();
            }
          });
        },
      },
    ],
  });
  await context.watch();
  await firstBuild;
  return { dispose: () => context.dispose() };
}

export function describeBuild(build: ConsoleBuild): string {
  const total = Object.values(build.sizes).reduce((sum, size) => sum + size, 0);
  const files = Object.entries(build.sizes).map(([name, size]) => `${name} ${(size / 1024).toFixed(1)} KiB`);
  return `console built into ${path.relative(ROOT, build.outDir)}/ (${(total / 1024).toFixed(1)} KiB: ${files.join(', ')})`;
}

/**
 * npm run build:console, and `npm run api` before it starts. Where the sources are absent (the
 * runtime image, which ships the bundle its build stage made) the bundle already built is used.
 */
async function main(): Promise<void> {
  const quiet = process.argv.includes('--quiet');
  if (!existsSync(path.join(CONSOLE_SOURCE_DIR, 'main.ts'))) {
    if (existsSync(path.join(CONSOLE_BUILD_DIR, 'index.html'))) return;
    throw new Error(`neither the console's sources (${CONSOLE_SOURCE_DIR}) nor its build (${CONSOLE_BUILD_DIR})`);
  }
  const build = await buildConsole();
  if (!quiet) console.log(describeBuild(build));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error('the console did not build:', error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
