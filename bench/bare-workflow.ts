import { proxyActivities } from '@temporalio/workflow';

/** The activities of the bare shape: no-ops, so the run measures Temporal alone. */
export interface BareActivities {
  bareFirst(): Promise<void>;
  bareOutput(index: number): Promise<void>;
}

const { bareFirst, bareOutput } = proxyActivities<BareActivities>({
  startToCloseTimeout: '30s',
  retry: { maximumAttempts: 3 },
});

/**
 * The floor the service is compared with: the same shape as a media job (one activity, then one
 * per output in parallel) with nothing in the activities, on the same Temporal server.
 */
export async function bareMediaShape(numOutputs: number): Promise<number> {
  await bareFirst();
  await Promise.all(Array.from({ length: numOutputs }, (_, index) => bareOutput(index)));
  return numOutputs;
}
