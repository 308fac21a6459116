import { ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import { REMOVE_EXPIRED_MEDIA_WORKFLOW_TYPE, retentionScheduleId } from '../common/temporal';

/**
 * Makes sure the retention Schedule runs on this task queue: removeExpiredMedia every
 * `everySeconds`, one run at a time (a run still going skips the next). Every worker calls it at
 * start-up; the first creates it, the others bring its interval up to date.
 */
export async function ensureRetentionSchedule(
  client: Client,
  options: { taskQueue: string; everySeconds: number },
): Promise<void> {
  const scheduleId = retentionScheduleId(options.taskQueue);
  const schedule: ScheduleOptions = {
    scheduleId,
    spec: { intervals: [{ every: `${options.everySeconds}s` }] },
    action: {
      type: 'startWorkflow',
      workflowType: REMOVE_EXPIRED_MEDIA_WORKFLOW_TYPE,
      taskQueue: options.taskQueue,
      workflowId: `media-retention-sweep-${options.taskQueue}`,
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP },
  };
  try {
    await client.schedule.create(schedule);
  } catch (error) {
    if ((error as Error).name !== 'ScheduleAlreadyRunning') throw error;
    await client.schedule.getHandle(scheduleId).update((previous) => ({ ...previous, spec: schedule.spec }));
  }
}
