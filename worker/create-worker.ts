import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import type { WorkerDeploymentVersion } from '@temporalio/common';
import type { Logger } from 'pino';
import { createActivities, type ActivityDependencies } from '../activities/create-activities';
import { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';
import type { Tracing } from '../common/tracing';
import type { TemporalConnectionSettings } from '../common/temporal-connection';
import type { WorkerMetrics } from './metrics';
import { bundleWorkflows, currentPrebuiltBundle } from './build-workflow-bundle';

export { PREBUILT_WORKFLOW_BUNDLE, WORKFLOWS_PATH } from './build-workflow-bundle';

export interface MediaWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activityDependencies: ActivityDependencies;
  /** A prebuilt bundle's path; otherwise the prebuilt one when present, else the sources are bundled. */
  workflowBundlePath?: string;
  /** Activity durations and failures are recorded here when given. */
  metrics?: WorkerMetrics;
  /**
   * OpenTelemetry: spans for workflows and activities, continuing the trace of the request that
   * started them. Its workflow interceptors must be bundled, so the workflows are bundled at start.
   */
  tracing?: Pick<Tracing, 'resource' | 'spanProcessor'>;
  /**
   * Worker Deployment Versioning (docs/operating.md, "Deploys"): the worker polls as this version and gets the
   * tasks of the workflows pinned to it, and new ones while it is the deployment's current version.
   * Unset: an unversioned worker.
   */
  deploymentVersion?: WorkerDeploymentVersion;
  tuning?: Pick<
    WorkerOptions,
    | 'maxConcurrentActivityTaskExecutions'
    | 'maxConcurrentWorkflowTaskExecutions'
    | 'maxCachedWorkflows'
    | 'shutdownGraceTime'
  >;
}

export async function createMediaWorker(options: MediaWorkerOptions): Promise<Worker> {
  const prebuilt = options.tracing || options.workflowBundlePath ? {} : currentPrebuiltBundle();
  if (prebuilt.stale)
    Runtime.instance().logger.warn(
      `${prebuilt.stale} is older than the workflow sources: bundling the sources instead (npm run bundle:workflows rebuilds it)`,
    );
  const bundlePath = options.tracing ? undefined : (options.workflowBundlePath ?? prebuilt.path);
  const plugins = options.tracing
    ? [
        new OpenTelemetryPlugin({
          resource: options.tracing.resource,
          spanProcessor: options.tracing.spanProcessor,
        }),
      ]
    : [];
  // Bundled here rather than by Worker.create, whose bundler prints webpack's whole report on every start.
  const workflowBundle = bundlePath
    ? { codePath: bundlePath }
    : { code: await bundleWorkflows({ plugins, logger: Runtime.instance().logger }) };
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    workflowBundle,
    activities: createActivities(options.activityDependencies),
    // Cancellation reaches an activity with a heartbeat's answer: heartbeat at least every second.
    maxHeartbeatThrottleInterval: '1s',
    // A workflow task waits this long on the sticky queue of the worker that ran the workflow last
    // before any worker may take it: after that worker dies, its jobs resume within this (default 10 s).
    stickyQueueScheduleToStartTimeout: '3s',
    // On SIGTERM, running activities get this long to finish before they are given back (and resumed elsewhere).
    shutdownGraceTime: '20s',
    // Workflow types declare their own behaviour (workflows/versioning.ts); one that does not is pinned.
    ...(options.deploymentVersion
      ? {
          workerDeploymentOptions: {
            useWorkerVersioning: true,
            version: options.deploymentVersion,
            defaultVersioningBehavior: 'PINNED' as const,
          },
        }
      : {}),
    ...(options.metrics ? { interceptors: { activity: [options.metrics.activityInterceptor] } } : {}),
    ...(plugins.length > 0 ? { plugins } : {}),
    ...options.tuning,
  });
}

/** Connects to Temporal, waiting for it to come up instead of dying while it starts. */
export async function connectWithRetry(
  settings: TemporalConnectionSettings,
  logger: Logger,
  attempts = 60,
): Promise<NativeConnection> {
  const { address } = settings;
  for (let attempt = 1; ; attempt++) {
    try {
      return await NativeConnection.connect(settings);
    } catch (error) {
      if (attempt >= attempts) throw error;
      logger.warn({ address, attempt, err: error }, 'Temporal is not reachable yet; retrying');
      await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * attempt)));
    }
  }
}
