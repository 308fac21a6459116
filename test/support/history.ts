import type { Client } from '@temporalio/client';
import { workflowIdForJob } from '../../common/temporal';
import type { TestStack } from './stack';

/**
 * The handle of a job's workflow once it has closed, however it ended. A job's row ends inside the
 * workflow's last workflow task, before that task completes: until then the task's events (its
 * local activities' markers, its build id) and the workflow's last state are not on the server.
 */
export async function closedWorkflowOf(client: Client, jobId: string) {
  const handle = client.workflow.getHandle(workflowIdForJob(jobId));
  await handle.result().catch(() => undefined);
  return handle;
}

/** What a job's workflow ran, from its history: activity tasks by type, local activities (markers) by type. */
export interface RanActivities {
  tasks: string[];
  local: string[];
}

/** Read once the workflow has closed (closedWorkflowOf). */
export async function activitiesOfJob(stack: Pick<TestStack, 'client'>, jobId: string): Promise<RanActivities> {
  const history = await (await closedWorkflowOf(stack.client, jobId)).fetchHistory();
  const ran: RanActivities = { tasks: [], local: [] };
  for (const event of history.events ?? []) {
    const task = event.activityTaskScheduledEventAttributes?.activityType?.name;
    if (task) ran.tasks.push(task);
    const marker = event.markerRecordedEventAttributes;
    const data = marker?.markerName === 'core_local_activity' ? marker.details?.data?.payloads?.[0]?.data : undefined;
    if (data)
      ran.local.push((JSON.parse(Buffer.from(data).toString('utf8')) as { activity_type: string }).activity_type);
  }
  return ran;
}
