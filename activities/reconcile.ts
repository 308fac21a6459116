import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { Logger } from 'pino';
import { MEDIA_GENERATION_WORKFLOW_TYPE, workflowIdForJob } from '../common/temporal';
import type { Database } from '../db/client';
import { finishJob, getJob, listUnfinishedJobs, type JobOutcome } from '../db/queries/jobs';
import type { MediaProvider } from './providers/provider';

const JOB_WORKFLOW_PREFIX = 'media-job-';
/** A job row younger than this may still be waiting for the API's start call. */
const START_GRACE_MS = 60_000;

export interface ReconcileResult {
  jobId: string;
  workflowStatus: string;
  outcome: JobOutcome;
}

/**
 * Ends the jobs whose workflow ended without running its own cleanup (terminated, timed out,
 * failed on a bug) or never started. Finds them through Temporal's visibility store: closed
 * workflows whose MediaJobStatus still says PENDING or PROCESSING.
 */
export async function reconcileUnfinishedJobs(deps: { db: Database; temporal: Client; provider: MediaProvider; logger: Logger }): Promise<ReconcileResult[]> {
  const { db, temporal, provider, logger } = deps;
  const results: ReconcileResult[] = [];
  const since = new Date(Date.now() - 7 * 24 * 3600_000).toISOString();
  const query = `WorkflowType = '${MEDIA_GENERATION_WORKFLOW_TYPE}' AND ExecutionStatus != 'Running' AND MediaJobStatus IN ('PENDING', 'PROCESSING') AND CloseTime > '${since}'`;

  for await (const execution of temporal.workflow.list({ query, pageSize: 100 })) {
    if (!execution.workflowId.startsWith(JOB_WORKFLOW_PREFIX)) continue;
    const jobId = execution.workflowId.slice(JOB_WORKFLOW_PREFIX.length);
    const job = await getJob(db, jobId).catch(() => undefined);
    if (!job || ['COMPLETED', 'FAILED', 'CANCELLED'].includes(job.status)) continue;
    const outcome = await outcomeOf(temporal, execution);
    if (await finishJob(db, jobId, outcome)) {
      results.push({ jobId, workflowStatus: execution.status.name, outcome });
      if (job.predictionId) await provider.cancelPrediction(job.predictionId).catch(() => undefined);
    }
  }

  for (const job of await listUnfinishedJobs(db, new Date(Date.now() - START_GRACE_MS), 100)) {
    try {
      await temporal.workflow.getHandle(workflowIdForJob(job.id)).describe();
    } catch (error) {
      if ((error as Error).name !== 'WorkflowNotFoundError') throw error;
      const outcome: JobOutcome = { status: 'FAILED', errorMessage: 'The job was recorded but its workflow never started.' };
      if (await finishJob(db, job.id, outcome)) results.push({ jobId: job.id, workflowStatus: 'NOT_FOUND', outcome });
    }
  }
  if (results.length > 0) logger.info({ results }, 'reconciled jobs whose workflows ended without them');
  return results;
}

async function outcomeOf(temporal: Client, execution: WorkflowExecutionInfo): Promise<JobOutcome> {
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
      return { status: 'FAILED', errorMessage: `The workflow ended (${execution.status.name}) without finishing the job.` };
  }
}

async function terminationReason(temporal: Client, execution: WorkflowExecutionInfo): Promise<string | undefined> {
  const history = await temporal.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
  const last = history.events?.at(-1);
  return last?.workflowExecutionTerminatedEventAttributes?.reason ?? undefined;
}
