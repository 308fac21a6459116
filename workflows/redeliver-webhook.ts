import { proxyActivities } from '@temporalio/workflow';
import type { MediaActivities } from '../activities/create-activities';
import type { RedeliverWebhookInput } from '../common/temporal';
import { activityPolicies } from './policies';

/** POST /api/v1/jobs/{id}/webhook-deliveries/{delivery_id}/redeliver: one message again, durably, with the webhook retry policy. */
export async function redeliverWebhook(input: RedeliverWebhookInput): Promise<{ statusCode: number; attempt: number }> {
  const { deliverWebhook } = proxyActivities<MediaActivities>(activityPolicies(input.policies).webhook);
  return deliverWebhook(input.message);
}
