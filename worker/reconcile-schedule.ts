import { ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { RECONCILE_SCHEDULE_ID, RECONCILE_WORKFLOW_TYPE } from '../common/temporal';

/**
 * Makes sure the reconciler runs every `intervalSeconds` on this task queue. Idempotent: every
 * worker calls it at start; the first creates the schedule, the others find it.
 */
export async function ensureReconcileSchedule(client: Client, options: { taskQueue: string; intervalSeconds: number; scheduleId?: string }): Promise<void> {
  const scheduleId = options.scheduleId ?? RECONCILE_SCHEDULE_ID;
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: `${options.intervalSeconds}s` }] },
      action: { type: 'startWorkflow', workflowType: RECONCILE_WORKFLOW_TYPE, taskQueue: options.taskQueue, args: [], workflowExecutionTimeout: '5m' },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1m' },
      memo: { purpose: 'Ends jobs whose workflows were terminated, timed out or never started.' },
    });
  } catch (error) {
    if ((error as Error).name !== 'ScheduleAlreadyRunning') throw error;
  }
}
