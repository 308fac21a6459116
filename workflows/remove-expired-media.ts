import { proxyActivities } from '@temporalio/workflow';
import type { MediaActivities } from '../activities/create-activities';

const { removeExpiredMedia: removeBatch, abortStaleUploads } = proxyActivities<MediaActivities>({
  startToCloseTimeout: '2m',
  retry: { initialInterval: '5s', maximumAttempts: 3 },
});

/** Jobs per batch, and batches per run: a run's work is bounded; the next run takes what is left. */
const BATCH_SIZE = 100;
const BATCHES_PER_RUN = 10;

/**
 * The retention sweep, run by the retention Schedule: removes the objects of ended jobs whose
 * outputs expired, a bounded batch at a time, then aborts multipart uploads left open for longer
 * than the bucket's lifecycle rule allows. Returns how many jobs lost their objects.
 */
export async function removeExpiredMedia(): Promise<number> {
  let removed = 0;
  for (let batch = 0; batch < BATCHES_PER_RUN; batch++) {
    const result = await removeBatch(BATCH_SIZE);
    removed += result.removed;
    if (!result.full) break;
  }
  // Best effort: a server that cannot list uploads leaves them to the next run.
  await abortStaleUploads().catch(() => undefined);
  return removed;
}
