import { proxyActivities } from '@temporalio/workflow';
import type { MediaActivities } from '../activities/create-activities';
import { webhookMessageId, type SettleOrphanedJobInput } from '../common/temporal';
import type { TerminalStatus } from '../common/statuses';
import type { WebhookEvent } from '../common/webhooks';
import { activityPolicies } from './policies';

const TERMINAL_EVENT: Record<TerminalStatus, WebhookEvent> = {
  COMPLETED: 'completed',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
};

/**
 * What a job's own workflow does at its end, for a job that ended without it (the reconciler, the
 * API's cancel fallback): no prediction keeps running for it, and its terminal webhook is sent.
 * One per run of the job (its workflow id names the retry, if it was one), so each end is
 * announced once, a retry's in that retry's own messages.
 */
export async function settleOrphanedJob(input: SettleOrphanedJobInput): Promise<void> {
  const policies = activityPolicies(input.policies);
  const { cancelPrediction } = proxyActivities<MediaActivities>(policies.cancelPrediction);
  const { deliverWebhook } = proxyActivities<MediaActivities>(policies.webhook);

  if (input.status !== 'COMPLETED') await cancelPrediction(input.jobId);
  const event = TERMINAL_EVENT[input.status];
  if (input.webhook?.events.includes(event)) {
    await deliverWebhook({
      jobId: input.jobId,
      messageId: webhookMessageId(input.jobId, event, undefined, input.retry),
      event,
      url: input.webhook.url,
    });
  }
}
