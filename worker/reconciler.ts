import { WorkflowIdConflictPolicy, type Client } from '@temporalio/client';
import {
  LEGACY_RECONCILE_SCHEDULE_ID,
  RECONCILE_WORKFLOW_TYPE,
  reconcilerWorkflowId,
  type ReconcilerInput,
} from '../common/temporal';

/**
 * Makes sure the reconciler runs on this task queue: one long-lived workflow that every worker
 * starts at start-up and all but the first find running. It replaces the Schedule of earlier
 * versions (a workflow every 30 s in the Web UI's list), which is deleted here when found.
 */
export async function ensureReconciler(
  client: Client,
  options: { taskQueue: string; intervalSeconds: number },
): Promise<void> {
  await client.schedule
    .getHandle(LEGACY_RECONCILE_SCHEDULE_ID)
    .delete()
    .catch((error: unknown) => {
      if ((error as Error).name !== 'ScheduleNotFoundError') throw error;
    });
  const input: ReconcilerInput = { intervalSeconds: options.intervalSeconds };
  await client.workflow.start(RECONCILE_WORKFLOW_TYPE, {
    taskQueue: options.taskQueue,
    workflowId: reconcilerWorkflowId(options.taskQueue),
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    args: [input],
    staticSummary: `Ends jobs whose workflows ended without them, every ${options.intervalSeconds} s`,
  });
}
