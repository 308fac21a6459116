import { proxyActivities } from '@temporalio/workflow';
import type { MediaActivities } from '../activities/create-activities';

const { reconcileJobs: reconcile } = proxyActivities<MediaActivities>({
  startToCloseTimeout: '2m',
  retry: { initialInterval: '5s', maximumAttempts: 3 },
});

/** Run by a Temporal Schedule: ends jobs whose workflows ended outside their own control. */
export async function reconcileJobs(): Promise<number> {
  const reconciled = await reconcile();
  return reconciled.length;
}
