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
  await admin.query(`drop database if exists "${state.databaseName}" with (force)`).catch(() => undefined);
  await admin.end();
  if (!process.env.KEEP_TEST_DATA) rmSync(state.workDir, { recursive: true, force: true });
}
