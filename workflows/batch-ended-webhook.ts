import { proxyActivities } from '@temporalio/workflow';
import type { MediaActivities } from '../activities/create-activities';
import type { BatchEndedWebhookInput } from '../common/temporal';
import { activityPolicies } from './policies';

/**
 * A batch's webhook, once every job of it has ended: one message, durably, with the webhook retry
 * policy. One workflow per batch (batch-webhook-{batch_id}), started by whoever ended its last job.
 */
export async function batchEndedWebhook(input: BatchEndedWebhookInput): Promise<{ statusCode: number }> {
  const { deliverBatchWebhook } = proxyActivities<MediaActivities>(activityPolicies(input.policies).webhook);
  return deliverBatchWebhook(input.message);
}
