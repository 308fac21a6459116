import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import type { WorkerDeploymentVersion } from '@temporalio/common';
import type { Logger } from 'pino';

/** WORKER_BUILD_ID=auto: the build id is derived from the workflow bundle the worker loads. */
export const AUTO_BUILD_ID = 'auto';

/**
 * The first 12 hex digits of the SHA-256 of a workflow bundle: the same sources give the same
 * bundle (webpack's output is deterministic), so the build id changes exactly when the workflow
 * code does, and an image rebuilt from unchanged workflows joins its old version.
 */
export function buildIdOfBundle(bundlePath: string): string {
  return createHash('sha256').update(readFileSync(bundlePath)).digest('hex').slice(0, 12);
}

/** WORKER_BUILD_ID as the worker uses it: unset (unversioned), as given, or `auto` resolved from the bundle. */
export function resolveBuildId(configured: string | undefined, bundlePath: string | undefined): string | undefined {
  if (configured !== AUTO_BUILD_ID) return configured;
  if (!bundlePath) {
    throw new Error(
      'WORKER_BUILD_ID=auto names the version after the prebuilt workflow bundle, and there is none: run `npm run bundle:workflows` (the Docker image does) or set WORKFLOW_BUNDLE_PATH, or give WORKER_BUILD_ID a value',
    );
  }
  return buildIdOfBundle(bundlePath);
}

/** What {@link makeCurrentOncePolling} did. */
export type Promotion =
  /** The version was new (never current nor ramping): it is the deployment's current version now. */
  | 'made-current'
  | 'already-current'
  /** An operator ramps it: left as it is. */
  | 'ramping'
  /** It was current before and another version replaced it: an old worker restarted; it keeps serving its pinned jobs and takes nothing back. */
  | 'superseded';

// temporal.api.enums.v1.WorkerDeploymentVersionStatus (@temporalio/proto is not a dependency of its own here).
const VERSION_STATUS = { CURRENT: 2, RAMPING: 3, DRAINING: 4, DRAINED: 5 } as const;

/**
 * WORKER_PROMOTE_ON_START: waits until the server has seen this version's pollers, then makes it
 * the deployment's current version (SetWorkerDeploymentCurrentVersion), so that new jobs go to it
 * and pinned jobs of the previous version stay where they are. A version that was current or
 * ramping before is never made current again this way: a restarted worker of an old build must not
 * roll the deployment back (a rollback is `temporal worker deployment set-current-version`).
 */
export async function makeCurrentOncePolling(
  client: Client,
  namespace: string,
  version: WorkerDeploymentVersion,
  options: { logger?: Logger; timeoutMs?: number; intervalMs?: number; signal?: AbortSignal } = {},
): Promise<{ promotion: Promotion; previous?: string }> {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  const { deploymentName, buildId } = version;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      const { workerDeploymentInfo, conflictToken } = await client.workflowService.describeWorkerDeployment({
        namespace,
        deploymentName,
      });
      const summary = workerDeploymentInfo?.versionSummaries?.find(
        (candidate) => candidate.deploymentVersion?.buildId === buildId,
      );
      const current = workerDeploymentInfo?.routingConfig?.currentDeploymentVersion?.buildId ?? undefined;
      if (summary) {
        const status = summary.status as number;
        if (status === VERSION_STATUS.CURRENT) return { promotion: 'already-current' };
        if (status === VERSION_STATUS.RAMPING) return { promotion: 'ramping', previous: current };
        if (summary.firstActivationTime || status === VERSION_STATUS.DRAINING || status === VERSION_STATUS.DRAINED) {
          return { promotion: 'superseded', previous: current };
        }
        // The conflict token makes this fail, and the loop look again, when someone changed the routing meanwhile.
        await client.workflowService.setWorkerDeploymentCurrentVersion({
          namespace,
          deploymentName,
          buildId,
          conflictToken,
        });
        return { promotion: 'made-current', previous: current };
      }
    } catch (error) {
      // NOT_FOUND until the deployment's first poller reached the server; FAILED_PRECONDITION while
      // the server has not yet seen this version poll every task queue of the current one.
      if (Date.now() > deadline || options.signal?.aborted) throw error;
      options.logger?.debug(
        { err: error, attempt, deploymentName, buildId },
        'the worker version cannot be made current yet; retrying',
      );
    }
    if (Date.now() > deadline)
      throw new Error(
        `the server never listed version ${buildId} of deployment ${deploymentName}: is this worker polling?`,
      );
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 500));
  }
}
