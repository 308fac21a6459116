/**
 * One dynamic config for every Temporal server the project runs: compose mounts the file where it
 * tells the server to read it, and the dev server (npm run dev, the tests) gets the same values as flags.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { dynamicConfigArgs, TEMPORAL_DYNAMIC_CONFIG_FILE } from '../../scripts/local-services';

const ROOT = path.join(__dirname, '..', '..');

describe('the Temporal dynamic config', () => {
  it('turns on priority and fairness, with one partition per task queue', () => {
    expect(dynamicConfigArgs()).toEqual([
      '--dynamic-config-value',
      'matching.useNewMatcher=true',
      '--dynamic-config-value',
      'matching.enableFairness=true',
      '--dynamic-config-value',
      'matching.numTaskqueueReadPartitions=1',
      '--dynamic-config-value',
      'matching.numTaskqueueWritePartitions=1',
    ]);
    expect(dynamicConfigArgs({ except: ['matching.enableFairness', 'matching.useNewMatcher'] })).not.toContain(
      'matching.enableFairness=true',
    );
  });

  it("is the file compose's temporal service reads", () => {
    const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, { environment?: Record<string, string>; volumes?: string[] }>;
    };
    const temporal = compose.services.temporal!;
    const target = temporal.environment?.TEMPORAL_DYNAMIC_CONFIG_FILE;
    // deploy/ is mounted at /etc/media-generation: the file there is the repository's.
    expect(temporal.volumes).toContain('./deploy:/etc/media-generation:ro');
    expect(target).toBe(
      `/etc/media-generation/${path.relative(path.join(ROOT, 'deploy'), TEMPORAL_DYNAMIC_CONFIG_FILE)}`,
    );
  });
});
