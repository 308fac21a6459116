import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Database } from '../db/client';
import { listUnfinishedJobs } from '../db/queries/jobs';
import { reconcileJob, type ReconcileResult, type SettleConfig } from '../jobs/lifecycle';

const PAGE_SIZE = 100;
/** Describes in flight at once: enough to get through thousands of rows in seconds, few enough for the server. */
const CONCURRENT_DESCRIBES = 8;

export interface ReconcileDependencies {
  db: Database;
  temporal: Client;
  logger: Logger;
  /** Where the clean-up of each ended job runs (the reconciler's own task queue), and its webhook retries. */
  config: SettleConfig;
}

/**
 * Ends the jobs whose workflow ended without running its own cleanup (terminated, timed out,
 * failed on a bug) or never started. Pages through every unfinished row and asks Temporal about
 * each one's workflow, whatever its search attribute says (jobs/lifecycle.ts reconcileJob decides).
 */
export async function reconcileUnfinishedJobs(deps: ReconcileDependencies): Promise<ReconcileResult[]> {
  const { db, logger } = deps;
  const results: ReconcileResult[] = [];
  for (let afterId: string | undefined; ;) {
    const page = await listUnfinishedJobs(db, PAGE_SIZE, afterId);
    for (let start = 0; start < page.length; start += CONCURRENT_DESCRIBES) {
      const jobs = page.slice(start, start + CONCURRENT_DESCRIBES);
      const ended = await Promise.allSettled(jobs.map((job) => reconcileJob(deps, job)));
      ended.forEach((outcome, index) => {
        if (outcome.status === 'fulfilled') {
          if (outcome.value) results.push(outcome.value);
          // One row that cannot be judged now (Temporal or the database failing for it) waits for the
          // next pass; the others, and the settles and batch webhooks after them, go on.
        } else
          logger.warn(
            { err: outcome.reason, jobId: jobs[index]!.id },
            'could not reconcile a job; the next pass tries again',
          );
      });
    }
    if (page.length < PAGE_SIZE) break;
    afterId = page.at(-1)?.id;
  }
  if (results.length > 0) logger.info({ results }, 'reconciled jobs whose workflows ended without them');
  return results;
}
