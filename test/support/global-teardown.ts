import { rmSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { stopProcess } from '../../scripts/processes';

export default async function globalTeardown(): Promise<void> {
  const state = (
    globalThis as unknown as {
      __MEDIA_TEST__?: {
        testEnv: TestWorkflowEnvironment;
        s3Process: ChildProcess;
        adminUrl: string;
        databaseName: string;
        workDir: string;
      };
    }
  ).__MEDIA_TEST__;
  if (!state) return;
  await Promise.allSettled([state.testEnv.teardown(), stopProcess(state.s3Process)]);
  const admin = new Client({ connectionString: state.adminUrl });
  await admin.connect();
  // With the stacks' own databases (startTestStack({ ownDatabase })) that a failed start or a cut-off run left behind.
  const own = await admin.query<{ datname: string }>('select datname from pg_database where datname like $1', [
    `${state.databaseName}_own_%`,
  ]);
  for (const name of [state.databaseName, ...own.rows.map((row) => row.datname)])
    await admin.query(`drop database if exists "${name}" with (force)`).catch(() => undefined);
  await admin.end();
  if (!process.env.KEEP_TEST_DATA) rmSync(state.workDir, { recursive: true, force: true });
}
