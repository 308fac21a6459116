import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import type { Logger } from 'pino';
import { settleOrphanedJob } from '../common/orphaned-jobs';
import { workflowIdForJob, type ActivityPolicyOverrides } from '../common/temporal';
import type { Database } from '../db/client';
import { finishJob, listUnfinishedJobs, type JobOutcome } from '../db/queries/jobs';
import type { JobRow } from '../db/schema';

/** A job row younger than this may still be waiting for the API's start call. */
const START_GRACE_MS = 60_000;
const PAGE_SIZE = 100;
/** Describes in flight at once: enough to get through thousands of rows in seconds, few enough for the server. */
const CONCURRENT_DESCRIBES = 8;

export interface ReconcileResult {
  jobId: string;
  workflowStatus: string;
  outcome: JobOutcome;
}

export interface ReconcileDependencies {
  db: Database;
  temporal: Client;
  logger: Logger;
  /** Where the clean-up of each ended job runs (the reconciler's own task queue). */
  taskQueue: string;
  policies?: ActivityPolicyOverrides;
}

/**
 * Ends the jobs whose workflow ended without running its own cleanup (terminated, timed out,
 * failed on a bug) or never started. Pages through every unfinished row and asks
 * Temporal about each one's workflow, whatever its search attribute says; each job it ends gets
 * its prediction cancelled and its end announced (settleOrphanedJob).
 */
export async function reconcileUnfinishedJobs(deps: ReconcileDependencies): Promise<ReconcileResult[]> {
  const { db, logger } = deps;
  const results: ReconcileResult[] = [];
  for (let afterId: string | undefined; ;) {
    const page = await listUnfinishedJobs(db, PAGE_SIZE, afterId);
    for (let start = 0; start < page.length; start += CONCURRENT_DESCRIBES) {
      const ended = await Promise.all(
        page.slice(start, start + CONCURRENT_DESCRIBES).map((job) => reconcileJob(deps, job)),
      );
      results.push(...ended.filter((result): result is ReconcileResult => result !== undefined));
    }
    if (page.length < PAGE_SIZE) break;
    afterId = page.at(-1)?.id;
  }
  if (results.length > 0) logger.info({ results }, 'reconciled jobs whose workflows ended without them');
  return results;
}

async function reconcileJob(deps: ReconcileDependencies, job: JobRow): Promise<ReconcileResult | undefined> {
  const handle = deps.temporal.workflow.getHandle(workflowIdForJob(job.id));
  let description: WorkflowExecutionDescription | undefined;
  try {
    description = await handle.describe();
  } catch (error) {
    if ((error as Error).name !== 'WorkflowNotFoundError') throw error;
  }
  if (description?.status.name === 'RUNNING') return undefined;
  // No workflow yet: the API may still be starting it (or finding out whether its start got through).
  if (!description && job.createdAt.getTime() > Date.now() - START_GRACE_MS) return undefined;
  const outcome: JobOutcome = description
    ? await outcomeOf(deps.temporal, description)
    : { status: 'FAILED', errorMessage: 'The job was recorded but its workflow never started.' };
  if (!(await finishJob(deps.db, job.id, outcome))) return undefined;
  await settleOrphanedJob(deps.temporal, {
    taskQueue: deps.taskQueue,
    job,
    status: outcome.status,
    policies: deps.policies,
  });
  return { jobId: job.id, workflowStatus: description?.status.name ?? 'NOT_FOUND', outcome };
}

async function outcomeOf(temporal: Client, execution: WorkflowExecutionDescription): Promise<JobOutcome> {
  switch (execution.status.name) {
    case 'TERMINATED': {
      const reason = await terminationReason(temporal, execution);
      return { status: 'CANCELLED', errorMessage: `The workflow was terminated${reason ? `: ${reason}` : ''}.` };
    }
    case 'TIMED_OUT':
      return { status: 'FAILED', errorMessage: 'The workflow timed out before the job finished.' };
    case 'CANCELLED':
      return { status: 'CANCELLED', errorMessage: 'The workflow was cancelled before the job could record it.' };
    default:
      return {
        status: 'FAILED',
        errorMessage: `The workflow ended (${execution.status.name}) without finishing the job.`,
      };
  }
}

async function terminationReason(
  temporal: Client,
  execution: WorkflowExecutionDescription,
): Promise<string | undefined> {
  const history = await temporal.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
  const last = history.events?.at(-1);
  return last?.workflowExecutionTerminatedEventAttributes?.reason ?? undefined;
}
