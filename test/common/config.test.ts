import { spawnSync } from 'node:child_process';
import path from 'node:path';

/** The configuration as a process meets it (the unit tier tests the parser itself). */
describe('configuration of a process', () => {
  it('stops a process started with a bad value, naming the variable', () => {
    const result = spawnSync(
      path.join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx'),
      ['-e', "require('./common/config').loadConfigOrExit()"],
      {
        cwd: path.join(__dirname, '..', '..'),
        env: { ...process.env, PRESIGNED_URL_EXPIRES_SECONDS: '-5' },
        encoding: 'utf8',
      },
    );
    expect(result.status).toBe(78);
    expect(result.stderr).toMatch(/PRESIGNED_URL_EXPIRES_SECONDS/);
  });
});
