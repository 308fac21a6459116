import { continueAsNew, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { MediaActivities } from '../activities/create-activities';
import type { ReconcilerInput } from '../common/temporal';

const { reconcileJobs: reconcile } = proxyActivities<MediaActivities>({
  startToCloseTimeout: '2m',
  retry: { initialInterval: '5s', maximumAttempts: 3 },
});

/** About eight hours at the default 30 s: the Web UI lists a few reconciler runs a day, not thousands. */
const ROUNDS_PER_RUN = 1000;

/**
 * Ends jobs whose workflows ended outside their own control. With an interval, one long-lived
 * workflow per task queue (started by every worker, found by all but the first) reconciles every
 * `intervalSeconds` and continues as new now and then to keep its history short; without one
 * (`temporal workflow execute --type reconcileJobs`), it reconciles once and returns the count.
 */
export async function reconcileJobs(input?: ReconcilerInput): Promise<number> {
  if (!input) return (await reconcile()).length;
  for (let round = 0; round < ROUNDS_PER_RUN && !workflowInfo().continueAsNewSuggested; round++) {
    // A round that fails (Temporal or Postgres down through its retries) waits for the next one.
    await reconcile().catch(() => undefined);
    await sleep(`${input.intervalSeconds}s`);
  }
  return continueAsNew<typeof reconcileJobs>(input);
}
