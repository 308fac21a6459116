import { workflowIdForJob } from '../../common/temporal';
import type { TestStack } from './stack';

/** What a job's workflow ran, from its history: activity tasks by type, local activities (markers) by type. */
export interface RanActivities {
  tasks: string[];
  local: string[];
}

/** Read once the workflow has closed: a job's row can end before the workflow task that ran its local activities does. */
export async function activitiesOfJob(stack: Pick<TestStack, 'client'>, jobId: string): Promise<RanActivities> {
  const handle = stack.client.workflow.getHandle(workflowIdForJob(jobId));
  await handle.result();
  const history = await handle.fetchHistory();
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
