import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createS3Client, ensureBucket } from '../../common/s3';
import { mediaJobStatusSearchAttribute } from '../../common/temporal';
import { runMigrations } from '../../db/migrate';
import { buildWorkflowBundle } from '../../worker/build-workflow-bundle';
import { resolveBinary } from '../../scripts/binaries';
import { buildConsole } from '../../scripts/build-console';
import { dynamicConfigArgs, startS3Server } from '../../scripts/local-services';
import { findFreePort, waitForPort } from '../../scripts/processes';
import { TEST_S3_CREDENTIALS, type TestServers } from './servers';

/** Starts the real servers once for the whole run; test files share them through environment variables. */
export default async function globalSetup(): Promise<void> {
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'media-test-'));
  const adminUrl = process.env.TEST_POSTGRES_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const databaseName = `media_test_${process.pid}_${Date.now()}`;
  const databaseUrl = new URL(adminUrl);
  databaseUrl.pathname = `/${databaseName}`;

  const [temporalPort, s3Port] = [await findFreePort(), await findFreePort()];
  const [testEnv, , workflowBundlePath] = await Promise.all([
    TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'existing-path', path: resolveBinary('temporal') },
        ip: '127.0.0.1',
        port: temporalPort,
        searchAttributes: [mediaJobStatusSearchAttribute],
        // Task-queue priority and fairness on, as in `npm run dev` and compose.
        extraArgs: ['--log-level', 'error', ...dynamicConfigArgs()],
      },
    }),
    runMigrations(databaseUrl.toString()),
    buildWorkflowBundle(path.join(workDir, 'workflow-bundle.js')),
    // The web console's page, into dist/console where the API serves it from, as `npm run api` builds it.
    buildConsole(),
  ]);
  const s3Process = startS3Server({
    port: s3Port,
    dataDir: path.join(workDir, 's3'),
    ...TEST_S3_CREDENTIALS,
    quiet: true,
  });
  await waitForPort(s3Port, 'the S3 server');
  const s3Endpoint = `http://127.0.0.1:${s3Port}`;
  await ensureBucket(
    createS3Client({
      S3_ENDPOINT_URL: s3Endpoint,
      S3_REGION: 'us-east-1',
      S3_ACCESS_KEY_ID: TEST_S3_CREDENTIALS.accessKey,
      S3_SECRET_ACCESS_KEY: TEST_S3_CREDENTIALS.secretKey,
      S3_FORCE_PATH_STYLE: true,
    }),
    'media-test',
  );

  const servers: TestServers = {
    temporalAddress: testEnv.address,
    databaseUrl: databaseUrl.toString(),
    s3Endpoint,
    bucket: 'media-test',
    workflowBundlePath,
    workDir,
  };
  process.env.MEDIA_TEST_SERVERS = JSON.stringify(servers);
  Object.assign(globalThis, {
    __MEDIA_TEST__: { testEnv, s3Process, adminUrl, databaseName, workDir },
  });
}
