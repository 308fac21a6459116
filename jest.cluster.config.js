/**
 * `npm run test:cluster`: the production engine tier (test/cluster). Each file starts its own local
 * cluster (scripts/cluster.ts: a Temporal server on Postgres, two workers, two API processes, Jaeger)
 * on ports of its own, so it can run beside `npm run dev` and beside `npm test`.
 */
/** @type {import('jest').Config} */
module.exports = {
  rootDir: __dirname,
  roots: ['<rootDir>/test/cluster'],
  testMatch: ['**/*.test.ts'],
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  testTimeout: 300_000,
  forceExit: true,
  maxWorkers: 1,
};
