import { WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type { TerminalStatus } from './statuses';
import {
  SETTLE_ORPHANED_JOB_WORKFLOW_TYPE,
  settleOrphanedJobWorkflowId,
  type ActivityPolicyOverrides,
} from './temporal';
import { DEFAULT_WEBHOOK_EVENTS, type WebhookEvent } from './webhooks';

export interface OrphanedJob {
  id: string;
  webhookUrl: string | null;
  webhookEvents: string[] | null;
}

/**
 * Starts the clean-up of a job that was just ended outside its workflow: its prediction cancelled,
 * its terminal webhook sent (workflows/settle-orphaned-job.ts). A second start for the same job
 * finds the first and does nothing.
 */
export async function settleOrphanedJob(
  client: Client,
  options: { taskQueue: string; job: OrphanedJob; status: TerminalStatus; policies?: ActivityPolicyOverrides },
): Promise<void> {
  const { job } = options;
  try {
    await client.workflow.start(SETTLE_ORPHANED_JOB_WORKFLOW_TYPE, {
      taskQueue: options.taskQueue,
      workflowId: settleOrphanedJobWorkflowId(job.id),
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      args: [
        {
          jobId: job.id,
          status: options.status,
          policies: options.policies,
          ...(job.webhookUrl
            ? {
                webhook: {
                  url: job.webhookUrl,
                  events: (job.webhookEvents ?? DEFAULT_WEBHOOK_EVENTS) as WebhookEvent[],
                },
              }
            : {}),
        },
      ],
    });
  } catch (error) {
    if ((error as Error).name !== 'WorkflowExecutionAlreadyStartedError') throw error;
  }
}
