// Worker Versioning behaviour of each workflow type (PINNED jobs, AUTO_UPGRADE housekeeping).
import './versioning';

export { batchEndedWebhook } from './batch-ended-webhook';
export { mediaGeneration } from './media-generation';
export { reconcileJobs } from './reconcile-jobs';
export { redeliverWebhook } from './redeliver-webhook';
export { removeExpiredMedia } from './remove-expired-media';
export { retryFailedOutputs } from './retry-failed-outputs';
export { settleOrphanedJob } from './settle-orphaned-job';
