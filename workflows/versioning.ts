import type { VersioningBehavior, WorkflowDefinitionOptions } from '@temporalio/common';
import { setWorkflowOptions, workflowInfo } from '@temporalio/workflow';
import { batchEndedWebhook } from './batch-ended-webhook';
import { mediaGeneration } from './media-generation';
import { reconcileJobs } from './reconcile-jobs';
import { redeliverWebhook } from './redeliver-webhook';
import { removeExpiredMedia } from './remove-expired-media';
import { retryFailedOutputs } from './retry-failed-outputs';
import { settleOrphanedJob } from './settle-orphaned-job';

/**
 * Worker Versioning behaviour of each workflow type (docs/operating.md, "Deploys"), declared only on a
 * versioned worker (WORKER_BUILD_ID set): the server refuses a workflow task completed with a
 * behaviour by a worker without deployment options ("versioning behavior cannot be specified
 * without deployment options being set with versioned mode"), so on an unversioned worker
 * (`npm run dev`, the tests) no behaviour is sent. The getter runs once per workflow instance,
 * before the workflow function, where `currentDeploymentVersion` is the version of the worker
 * running its first workflow task; an unversioned worker has one too, with an empty deployment
 * name (its build id is the SDK's `@temporalio/worker@1.24.0+<bundle checksum>`).
 */
function onVersionedWorker(behavior: VersioningBehavior): () => WorkflowDefinitionOptions {
  return () => (workflowInfo().currentDeploymentVersion?.deploymentName ? { versioningBehavior: behavior } : {});
}

/**
 * PINNED: a job runs from its first workflow task to its end on the build id it started on, so a
 * deploy never replays its history on other workflow code, and its activities run on that build's
 * workers too. The price: a build's workers stay until its pinned jobs are done (drained).
 */
setWorkflowOptions(onVersionedWorker('PINNED'), mediaGeneration);
// A retry of a job's outputs is the job running again: pinned the same way.
setWorkflowOptions(onVersionedWorker('PINNED'), retryFailedOutputs);

/**
 * AUTO_UPGRADE: short or looping housekeeping moves to the deployment's current build at its next
 * workflow task, so it never holds an old build's workers back. The reconciler continues-as-new,
 * and each new run starts on the current build; a change to it must still replay its own open
 * history (patched()), since a running one moves mid-history.
 */
setWorkflowOptions(onVersionedWorker('AUTO_UPGRADE'), reconcileJobs);
setWorkflowOptions(onVersionedWorker('AUTO_UPGRADE'), redeliverWebhook);
setWorkflowOptions(onVersionedWorker('AUTO_UPGRADE'), removeExpiredMedia);
// Its webhook may retry for a day: pinned, it would hold an old build's workers that long.
setWorkflowOptions(onVersionedWorker('AUTO_UPGRADE'), settleOrphanedJob);
setWorkflowOptions(onVersionedWorker('AUTO_UPGRADE'), batchEndedWebhook);
