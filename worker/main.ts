import { loadConfigOrExit } from '../common/config';
import { createLogger } from '../common/logger';
import { createS3Client } from '../common/s3';
import { createPresigner } from '../common/presigner';
import { startTracing } from '../common/tracing';
import { temporalConnectionSettings } from '../common/temporal-connection';
import { createProvider } from '../activities/providers';
import { createDatabase } from '../db/client';
import { Client, Connection } from '@temporalio/client';
import { Runtime } from '@temporalio/worker';
import { connectWithRetry, createMediaWorker } from './create-worker';
import { currentPrebuiltBundle } from './build-workflow-bundle';
import { AUTO_BUILD_ID, makeCurrentOncePolling, resolveBuildId } from './versioning';
import { ensureReconciler } from './reconciler';
import { ensureRetentionSchedule } from './retention-schedule';
import { sdkLoggerOver } from './sdk-logger';
import { createWorkerMetrics, serveWorkerMetrics } from './metrics';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger('worker', config.LOG_LEVEL);
  // Refused before anything is started or touched: a versioned worker must name the code it runs.
  const prebuilt = currentPrebuiltBundle();
  if (config.WORKER_BUILD_ID === AUTO_BUILD_ID && !config.WORKFLOW_BUNDLE_PATH && prebuilt.stale) {
    throw new Error(
      `WORKER_BUILD_ID=auto names the version after ${prebuilt.stale}, which is older than the workflow sources: run \`npm run bundle:workflows\` again, or set WORKFLOW_BUNDLE_PATH or WORKER_BUILD_ID`,
    );
  }
  // The SDK's own messages (worker state, activity failures) go through the same logger, as JSON lines.
  Runtime.install({ logger: sdkLoggerOver(logger) });
  const tracing = startTracing('media-generation-worker', { endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT });
  if (tracing)
    logger.info(
      { endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT },
      'tracing on: the workflows are bundled at start, with their OpenTelemetry interceptors',
    );
  const database = createDatabase({
    url: config.DATABASE_URL,
    poolSize: config.DATABASE_POOL_SIZE,
    onIdleClientError: (error) => logger.warn({ err: error }, 'idle database connection lost'),
  });
  const temporalConnection = temporalConnectionSettings(config);
  const connection = await connectWithRetry(temporalConnection, logger);
  const client = new Client({
    connection: await Connection.connect(temporalConnection),
    namespace: config.TEMPORAL_NAMESPACE,
  });
  if (config.RECONCILE_INTERVAL_SECONDS > 0)
    await ensureReconciler(client, {
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      intervalSeconds: config.RECONCILE_INTERVAL_SECONDS,
    });
  else logger.info('RECONCILE_INTERVAL_SECONDS=0: this worker does not start the reconciler');
  await ensureRetentionSchedule(client, {
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    everySeconds: config.MEDIA_RETENTION_SWEEP_SECONDS,
  });
  const metrics = createWorkerMetrics();
  if (config.WORKER_METRICS_PORT > 0) {
    // A second worker on the same machine finds the port taken: it runs on, without its own /metrics.
    await serveWorkerMetrics(metrics.registry, config.WORKER_METRICS_PORT).then(
      (server) => {
        server.unref();
        logger.info(
          { port: config.WORKER_METRICS_PORT },
          `worker metrics on http://127.0.0.1:${config.WORKER_METRICS_PORT}/metrics`,
        );
      },
      (error: unknown) =>
        logger.warn(
          { err: error, port: config.WORKER_METRICS_PORT },
          'could not serve worker metrics; set WORKER_METRICS_PORT',
        ),
    );
  }
  const s3 = createS3Client(config);
  // Worker Versioning (docs/operating.md, "Deploys"): WORKER_BUILD_ID set makes this worker one version of the deployment.
  const buildId = resolveBuildId(config.WORKER_BUILD_ID, config.WORKFLOW_BUNDLE_PATH ?? prebuilt.path);
  const deploymentVersion = buildId ? { deploymentName: config.WORKER_DEPLOYMENT_NAME, buildId } : undefined;
  const worker = await createMediaWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    workflowBundlePath: config.WORKFLOW_BUNDLE_PATH,
    deploymentVersion,
    activityDependencies: {
      db: database.db,
      s3,
      bucket: config.S3_BUCKET_NAME,
      provider: createProvider(config),
      maxOutputBytes: config.MEDIA_MAX_BYTES,
      logger,
      temporal: client,
      settlePolicies: { webhookInitialIntervalSeconds: config.WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS },
      faultInjectionPauseAt: config.FAULT_INJECTION_PAUSE_AT,
      webhooks: {
        signingSecret: config.WEBHOOK_SIGNING_SECRET,
        allowPrivate: config.MEDIA_FETCH_ALLOW_PRIVATE,
        presigner: createPresigner(config, s3),
      },
    },
    metrics,
    tracing,
    tuning: { shutdownGraceTime: `${config.WORKER_SHUTDOWN_GRACE_SECONDS}s` },
  });
  if (config.FAULT_INJECTION_PAUSE_AT)
    logger.warn(
      { point: config.FAULT_INJECTION_PAUSE_AT },
      'FAULT_INJECTION_PAUSE_AT is set: activities will stop there (fault tests only)',
    );
  logger.info(
    {
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      provider: config.MEDIA_GENERATOR_PROVIDER,
      deploymentVersion: deploymentVersion ?? 'unversioned',
    },
    'worker started',
  );
  // Worker.run resolves after SIGINT/SIGTERM, once running activities have finished or been cancelled.
  const running = worker.run();
  const stopped = new AbortController();
  if (deploymentVersion && config.WORKER_PROMOTE_ON_START) {
    void makeCurrentOncePolling(client, config.TEMPORAL_NAMESPACE, deploymentVersion, {
      logger,
      signal: stopped.signal,
    }).then(
      ({ promotion, previous }) => {
        if (promotion === 'superseded') {
          logger.warn(
            { ...deploymentVersion, current: previous },
            `this version was current before and has been replaced: it serves the jobs pinned to it and is not made current again (a rollback: temporal worker deployment set-current-version --deployment-name ${deploymentVersion.deploymentName} --build-id ${deploymentVersion.buildId})`,
          );
        } else {
          logger.info(
            { ...deploymentVersion, promotion, previous },
            `worker version ${promotion === 'ramping' ? 'is ramping' : 'is the current version'} of deployment ${deploymentVersion.deploymentName}`,
          );
        }
      },
      (error: unknown) => {
        if (!stopped.signal.aborted)
          logger.error(
            { err: error, ...deploymentVersion },
            'could not make this worker version current; it gets only the jobs pinned to it until it is',
          );
      },
    );
  } else if (deploymentVersion) {
    logger.info(
      deploymentVersion,
      `versioned worker: new jobs reach it once its version is current (temporal worker deployment set-current-version --deployment-name ${deploymentVersion.deploymentName} --build-id ${deploymentVersion.buildId})`,
    );
  }
  await running;
  stopped.abort();
  await connection.close();
  await client.connection.close();
  await database.close();
  await tracing?.shutdown();
  logger.info('worker stopped');
}

main().catch((error: unknown) => {
  console.error('worker failed:', error);
  process.exit(1);
});
