import { loadConfigOrExit } from '../common/config';
import { createLogger } from '../common/logger';
import { createS3Client } from '../common/s3';
import { createProvider } from '../activities/providers';
import { createDatabase } from '../db/client';
import { Client, Connection } from '@temporalio/client';
import { connectWithRetry, createMediaWorker } from './create-worker';
import { ensureReconcileSchedule } from './reconcile-schedule';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger('worker', config.LOG_LEVEL);
  const database = createDatabase({
    url: config.DATABASE_URL,
    poolSize: config.DATABASE_POOL_SIZE,
    onIdleClientError: (error) => logger.warn({ err: error }, 'idle database connection lost'),
  });
  const connection = await connectWithRetry(config.TEMPORAL_ADDRESS, logger);
  const client = new Client({ connection: await Connection.connect({ address: config.TEMPORAL_ADDRESS }), namespace: config.TEMPORAL_NAMESPACE });
  await ensureReconcileSchedule(client, { taskQueue: config.TEMPORAL_TASK_QUEUE, intervalSeconds: config.RECONCILE_INTERVAL_SECONDS });
  const worker = await createMediaWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    workflowBundlePath: config.WORKFLOW_BUNDLE_PATH,
    activityDependencies: {
      db: database.db,
      s3: createS3Client(config),
      bucket: config.S3_BUCKET_NAME,
      provider: createProvider(config),
      maxOutputBytes: config.MEDIA_MAX_BYTES,
      logger,
      temporal: client,
    },
  });
  logger.info({ taskQueue: config.TEMPORAL_TASK_QUEUE, provider: config.MEDIA_GENERATOR_PROVIDER }, 'worker started');
  // Worker.run resolves after SIGINT/SIGTERM, once running activities have finished or been cancelled.
  await worker.run();
  await connection.close();
  await client.connection.close();
  await database.close();
  logger.info('worker stopped');
}

main().catch((error: unknown) => {
  console.error('worker failed:', error);
  process.exit(1);
});
