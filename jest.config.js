/**
 * Two tiers, told apart by the file name; the folder says what is tested. `*.unit.test.ts` tests pure
 * code: nothing is started for it and it needs no network. Every other `*.test.ts` runs against the
 * real servers that global-setup starts once for the run (Temporal dev server, S3 server, Postgres
 * database, the workflow bundle). `npm test` runs both in one jest run (one result, the unit tier's
 * files first); `npm run test:unit` runs the unit tier alone, and then global-setup does not run.
 */
const shared = {
  rootDir: __dirname,
  roots: ['<rootDir>/test'],
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['@swc/jest'] },
};

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    { ...shared, displayName: 'unit', testMatch: ['**/*.unit.test.ts'] },
    {
      ...shared,
      displayName: 'servers',
      testMatch: ['**/*.test.ts'],
      // test/cluster is its own tier (jest.cluster.config.js, `npm run test:cluster`).
      testPathIgnorePatterns: ['/node_modules/', '\\.unit\\.test\\.ts$', '<rootDir>/test/cluster/'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      setupFiles: ['<rootDir>/test/support/quiet-runtime.ts'],
    },
  ],
  testSequencer: '<rootDir>/test/support/unit-first-sequencer.js',
  testTimeout: 60_000,
  // The Temporal native runtime keeps a handle open after tests end (sdk-typescript#928).
  forceExit: true,
  maxWorkers: 2,
};
