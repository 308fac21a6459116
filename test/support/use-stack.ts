import { createDatabase, type DatabaseHandle } from '../../db/client';
import { startTestStack, testConfig, type TestStack, type TestStackOptions } from './stack';

/**
 * Starts what `start` makes before the tests of the enclosing describe and stops it after them. The
 * object returned holds what `start` made once the tests run (it is empty before), so a describe
 * reads `const stack = useTestStack(...)` and its tests use `stack` as they would the started one.
 */
export function useFixture<T extends { stop(): Promise<void> }>(start: () => Promise<T>, timeoutMs?: number): T {
  const holder = {} as T;
  beforeAll(async () => {
    Object.assign(holder, await start());
  }, timeoutMs);
  afterAll(async () => {
    await holder.stop?.();
  });
  return holder;
}

/** A test stack (the API and a worker in this process, on the shared servers) for the enclosing describe. */
export function useTestStack(options: TestStackOptions = {}, timeoutMs?: number): TestStack {
  return useFixture(() => startTestStack(options), timeoutMs);
}

/** A small pool on the shared test database, for the enclosing describe. */
export function useDatabase(poolSize = 3): DatabaseHandle {
  return useFixture(async () => {
    const database = createDatabase({ url: testConfig().DATABASE_URL, poolSize });
    return { ...database, stop: () => database.close() };
  });
}
