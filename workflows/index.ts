export { mediaGeneration } from './media-generation';
export { reconcileJobs } from './reconcile-jobs';
export { redeliverWebhook } from './redeliver-webhook';
