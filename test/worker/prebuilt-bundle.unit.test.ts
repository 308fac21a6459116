import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { currentPrebuiltBundle } from '../../worker/build-workflow-bundle';

/** A bundle left in dist/ runs only while no workflow source is newer than it. */
describe('currentPrebuiltBundle', () => {
  let root: string;
  let bundle: string;
  let sources: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), 'bundle-'));
    bundle = path.join(root, 'dist', 'workflow-bundle.js');
    sources = path.join(root, 'workflows');
    mkdirSync(path.dirname(bundle));
    mkdirSync(path.join(sources, 'nested'), { recursive: true });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const touch = (file: string, secondsAgo: number) => {
    writeFileSync(file, '');
    const at = new Date(Date.now() - secondsAgo * 1000);
    utimesSync(file, at, at);
  };

  it('is none when no bundle was built', () => {
    expect(currentPrebuiltBundle(bundle, [sources])).toEqual({});
  });

  it('is the bundle when it was built after every source', () => {
    touch(path.join(sources, 'media-generation.ts'), 60);
    touch(bundle, 10);
    expect(currentPrebuiltBundle(bundle, [sources])).toEqual({ path: bundle });
  });

  it('is stale once a source, nested ones included, changed after it was built', () => {
    touch(path.join(sources, 'media-generation.ts'), 60);
    touch(bundle, 30);
    touch(path.join(sources, 'nested', 'policies.ts'), 5);
    expect(currentPrebuiltBundle(bundle, [sources])).toEqual({ stale: bundle });
    // Files that are not TypeScript sources do not count.
    touch(path.join(sources, 'nested', 'policies.ts'), 60);
    touch(path.join(sources, 'notes.md'), 1);
    expect(currentPrebuiltBundle(bundle, [sources])).toEqual({ path: bundle });
  });
});
