import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';

/** The activities of the bare shapes: no-ops, so a run measures Temporal alone. */
export interface BareActivities {
  bareFirst(): Promise<void>;
  bareOutput(index: number): Promise<void>;
  bareFinish(): Promise<void>;
}

const timeouts = { startToCloseTimeout: '30s', retry: { maximumAttempts: 3 } } as const;
const activities = proxyActivities<BareActivities>(timeouts);
const localActivities = proxyLocalActivities<BareActivities>(timeouts);

/**
 * The floor the service is compared with: the same shape as a media job (one activity, then one
 * per output in parallel) with nothing in the activities, on the same Temporal server.
 */
export async function bareMediaShape(numOutputs: number): Promise<number> {
  await activities.bareFirst();
  await Promise.all(Array.from({ length: numOutputs }, (_, index) => activities.bareOutput(index)));
  return numOutputs;
}

/**
 * The commands of a service job whose outputs are small, with nothing in them: a local activity
 * to start (the service's `startJobWithPrediction`), one per output in parallel
 * (`persistSmallOutput`), one to finish (`finishJob`), and no patch markers or search-attribute
 * updates. No job of the service can run faster on this server and SDK: what it does beyond this
 * shape is the work itself (rendering, S3, Postgres) and the API.
 */
export async function emptyServiceShape(numOutputs: number): Promise<number> {
  await localActivities.bareFirst();
  await Promise.all(Array.from({ length: numOutputs }, (_, index) => localActivities.bareOutput(index)));
  await localActivities.bareFinish();
  return numOutputs;
}
