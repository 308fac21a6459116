import {
  WorkflowIdReusePolicy,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import type { Logger } from 'pino';
import type { Priority } from '@temporalio/common';
import type { Config } from '../common/config';
import { PRIORITY_KEYS } from '../common/priorities';
import { isTerminalStatus, type TerminalStatus } from '../common/statuses';
import {
  cancelSignal,
  MEDIA_GENERATION_WORKFLOW_TYPE,
  mediaJobStatusSearchAttribute,
  SETTLE_ORPHANED_JOB_WORKFLOW_TYPE,
  settleOrphanedJobWorkflowId,
  workflowIdForJob,
  type ActivityPolicyOverrides,
  type MediaGenerationInput,
  type WebhookTarget,
} from '../common/temporal';
import { withTemporalTimeout } from '../common/timeout';
import { isWorkflowAlreadyStarted, startWorkflowOnce, TEMPORAL_START_DEADLINE_MS } from '../common/workflow-start';
import { DEFAULT_WEBHOOK_EVENTS, type WebhookEvent } from '../common/webhooks';
import type { Database } from '../db/client';
import { JobChangeWaiter, type JobChanges } from '../db/job-changes';
import { dueSettleOf } from '../db/queries/events';
import {
  createJob,
  deleteJob,
  findJobByIdempotencyKey,
  findRegeneration,
  finishJob,
  clearSettleDue,
  getJob,
  getJobStatus,
  isIdempotencyConflict,
  isRegenerationConflict,
  listDueSettles,
  RunningJobsCapReached,
  type JobOutcome,
  type NewJob,
  type RunningJobsCap,
} from '../db/queries/jobs';
import type { JobRow } from '../db/schema';
import { announceBatchEnd } from './batch-webhook';

/**
 * A job's life outside its workflow, in one place: submitting it (and replaying an
 * Idempotency-Key), cancelling it, ending it when its workflow is gone, and the reconciler's
 * decisions. Routes parse and reply; activities run steps; what happens to a job is decided here.
 * Each function answers with an explicit outcome rather than an HTTP error.
 */

export type LifecycleConfig = Pick<
  Config,
  | 'TEMPORAL_TASK_QUEUE'
  | 'GENERATE_MAX_ATTEMPTS'
  | 'PERSIST_MAX_ATTEMPTS'
  | 'PERSIST_BUDGET_SECONDS'
  | 'PERSIST_LOCALLY_MAX_BYTES'
  | 'PREDICTION_WAIT_SECONDS'
  | 'ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS'
  | 'WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS'
>;

/** What ending a job outside its workflow needs: where its clean-up runs, and its webhook retries. */
export type SettleConfig = Pick<LifecycleConfig, 'TEMPORAL_TASK_QUEUE' | 'WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS'>;

export interface LifecycleDependencies {
  db: Database;
  temporal: Client;
  config: LifecycleConfig;
  logger: Logger;
  /** The API process is shutting down: what waits for a job or a workflow answers at once, with what it knows. */
  stopping?: AbortSignal;
}

// Asking whether a failed start did start the workflow: with the start's, under 7 s when Temporal is down.
const TEMPORAL_DESCRIBE_DEADLINE_MS = 1_500;
const TEMPORAL_SIGNAL_DEADLINE_MS = 3_000;
/** A job row younger than this may still be waiting for the API's start call; one reopened this recently, for its retry's. */
const START_GRACE_MS = 60_000;
const isRecent = (time: Date) => time.getTime() > Date.now() - START_GRACE_MS;

/** The policy overrides of the configuration, carried into each workflow's input. */
export function policyOverrides(config: LifecycleConfig): ActivityPolicyOverrides {
  return {
    generateMaxAttempts: config.GENERATE_MAX_ATTEMPTS,
    persistMaxAttempts: config.PERSIST_MAX_ATTEMPTS,
    persistBudgetSeconds: config.PERSIST_BUDGET_SECONDS,
    persistLocallyMaxBytes: config.PERSIST_LOCALLY_MAX_BYTES,
    predictionWaitSeconds: config.PREDICTION_WAIT_SECONDS,
    heartbeatTimeoutSeconds: config.ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS,
    webhookInitialIntervalSeconds: config.WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS,
  };
}

export function workflowInputFor(job: JobRow, config: LifecycleConfig): MediaGenerationInput {
  return {
    jobId: job.id,
    model: job.model,
    prompt: job.prompt,
    numOutputs: job.numOutputs,
    seed: job.seed,
    outputFormat: job.outputFormat,
    policies: policyOverrides(config),
    ...(webhookOf(job) ? { webhook: webhookOf(job) } : {}),
    ...(job.deadlineSeconds ? { deadlineSeconds: job.deadlineSeconds } : {}),
    inBatch: job.batchId !== null,
  };
}

/** Where the job's webhooks go and for which events, as its workflows carry it. */
export function webhookOf(job: Pick<JobRow, 'webhookUrl' | 'webhookEvents'>): WebhookTarget | undefined {
  return job.webhookUrl
    ? { url: job.webhookUrl, events: (job.webhookEvents ?? DEFAULT_WEBHOOK_EVENTS) as WebhookEvent[] }
    : undefined;
}

export type SubmitOutcome =
  | { outcome: 'accepted'; job: JobRow; recordingMs: number; startingMs: number }
  /** The Idempotency-Key already made this job, with the same request; or the failed job was already regenerated. */
  | { outcome: 'replayed'; job: JobRow }
  /** The Idempotency-Key already made a job from another request. */
  | { outcome: 'key-reused'; job: JobRow }
  | { outcome: 'running-jobs-cap'; running: number; limit: number }
  /** Temporal did not start the workflow: the job was not accepted (its row removed, or left to the reconciler). */
  | { outcome: 'not-started' };

/** Whose share of the task queues a job takes (docs/api.md, "Priority and fairness"). */
export interface Fairness {
  /** The submitter: an API key id, or the client address when AUTH_MODE=off. */
  key: string;
  weight: number;
}

export interface Submission {
  job: NewJob;
  fairness: Fairness;
  /** The validated request's hash: a replay of an Idempotency-Key must bring the same. */
  requestHash?: string;
  idempotencyKey?: string;
  runningJobsCap?: RunningJobsCap;
}

/**
 * The job this submission already made, if any: the one of its Idempotency-Key, or the job that
 * regenerates the same failed job (one per failed job).
 */
async function earlierJob(db: Database, submission: Submission): Promise<JobRow | undefined> {
  const { idempotencyKey, job } = submission;
  if (idempotencyKey) return findJobByIdempotencyKey(db, job.owner ?? 'anonymous', idempotencyKey);
  if (job.retryOf) return findRegeneration(db, job.retryOf);
  return undefined;
}

/** Whether an insert was refused because a concurrent submission made its job first. */
function lostToConcurrentSubmission(error: unknown, submission: Submission): boolean {
  if (submission.idempotencyKey) return isIdempotencyConflict(error);
  return submission.job.retryOf !== undefined && isRegenerationConflict(error);
}

/**
 * Records the job and starts its workflow. With an Idempotency-Key, a repeat answers with the first
 * job; so does a second regeneration of one failed job (`retryOf`).
 */
export async function submitJob(deps: LifecycleDependencies, submission: Submission): Promise<SubmitOutcome> {
  const { db } = deps;
  const { idempotencyKey, requestHash } = submission;
  const existing = await earlierJob(db, submission);
  if (existing) return replayJob(deps, existing, submission);

  let job: JobRow;
  const recordingStarted = performance.now();
  try {
    job = await createJob(db, { ...submission.job, idempotencyKey, requestHash }, submission.runningJobsCap);
  } catch (error) {
    if (error instanceof RunningJobsCapReached) {
      // A concurrent request with the same key (or regenerating the same job) may have made the job
      // the cap now counts: the repeat is answered with it, as it would be a moment later.
      const existing =
        submission.idempotencyKey || submission.job.retryOf ? await earlierJob(db, submission) : undefined;
      if (existing) return replayJob(deps, existing, submission);
      return { outcome: 'running-jobs-cap', running: error.running, limit: error.limit };
    }
    if (lostToConcurrentSubmission(error, submission)) {
      // A concurrent request with the same key (or regenerating the same job) won the insert: answer with its job.
      const existing = await earlierJob(db, submission);
      if (existing) return replayJob(deps, existing, submission);
      // Its job is gone already: it was removed because its workflow could not be started.
      return { outcome: 'not-started' };
    }
    throw error;
  }

  const startingWorkflow = performance.now();
  try {
    // A start that failed or timed out may still have reached the server: if the workflow exists, the job is accepted.
    await ensureWorkflowStarted(deps, job, submission.fairness);
  } catch (error) {
    // No workflow, or Temporal cannot say: the row goes only if no workflow has touched it (still PENDING, no
    // prediction). A start that lands after all finds no row and fails on JobNotFound before anything billed; a row
    // left behind (the delete failed) is failed by the reconciler once its grace period is over, if its workflow
    // never started.
    deps.logger.warn({ err: error, jobId: job.id }, 'could not start the workflow; removing the job');
    const removed = await deleteJob(db, job.id).catch((deleteError: unknown) => {
      deps.logger.error({ err: deleteError, jobId: job.id }, 'could not remove the job');
      return true;
    });
    if (removed) return { outcome: 'not-started' };
    // The delete was refused: a workflow has started the job after all.
    deps.logger.warn({ jobId: job.id }, 'the job was kept: a workflow has started it');
  }
  return {
    outcome: 'accepted',
    job,
    recordingMs: startingWorkflow - recordingStarted,
    startingMs: performance.now() - startingWorkflow,
  };
}

/** The job a submission already made (earlierJob); a PENDING one has its start attempted again. */
async function replayJob(deps: LifecycleDependencies, job: JobRow, submission: Submission): Promise<SubmitOutcome> {
  const { fairness } = submission;
  if (submission.idempotencyKey && job.requestHash !== submission.requestHash) return { outcome: 'key-reused', job };
  if (job.status === 'PENDING') {
    // The first request may have died between its insert and its start: starting again is harmless (one workflow
    // id). A job that will not run is never replayed as accepted. Its row is kept: the first request may still be
    // starting it, and the reconciler fails a row whose workflow never started once its grace period is over.
    try {
      await ensureWorkflowStarted(deps, job, fairness, { rejectDuplicate: true });
    } catch (error) {
      deps.logger.warn({ err: error, jobId: job.id }, 'could not start the workflow of a replayed job');
      return { outcome: 'not-started' };
    }
    // The first request removes its job when its own start failed, maybe while this one started it:
    // a job that is gone is not replayed as accepted.
    if (!(await getJob(deps.db, job.id))) return { outcome: 'not-started' };
  }
  return { outcome: 'replayed', job };
}

/**
 * The workflow's Temporal priority. Its activities and workflow tasks inherit it (none sets its own),
 * so generation and storage both wait their turn by it; its local activities run inside its workflow tasks.
 */
export function temporalPriorityOf(job: Pick<JobRow, 'priority'>, fairness: Fairness): Priority {
  return { priorityKey: PRIORITY_KEYS[job.priority], fairnessKey: fairness.key, fairnessWeight: fairness.weight };
}

function startWorkflow(
  deps: LifecycleDependencies,
  job: JobRow,
  fairness: Fairness,
  options: { rejectDuplicate?: boolean },
) {
  const { temporal, config } = deps;
  return withTemporalTimeout(
    temporal.connection,
    () =>
      temporal.workflow.start(MEDIA_GENERATION_WORKFLOW_TYPE, {
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        workflowId: workflowIdForJob(job.id),
        args: [workflowInputFor(job, config)],
        typedSearchAttributes: [{ key: mediaJobStatusSearchAttribute, value: 'PENDING' }],
        priority: temporalPriorityOf(job, fairness),
        memo: { model: job.model, prompt: job.prompt },
        // The Web UI shows the summary on each workflow: the priority is read there at a glance.
        staticSummary: `${job.numOutputs} × ${job.outputFormat} from ${job.model}, priority ${job.priority}`,
        ...(options.rejectDuplicate ? { workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE } : {}),
      }),
    TEMPORAL_START_DEADLINE_MS,
  );
}

/** Starts the job's workflow; a start that failed but did create the workflow counts as started. */
export async function ensureWorkflowStarted(
  deps: LifecycleDependencies,
  job: JobRow,
  fairness: Fairness,
  options: { rejectDuplicate?: boolean } = {},
): Promise<void> {
  try {
    await startWorkflow(deps, job, fairness, options);
  } catch (startError) {
    // A concurrent request with the same Idempotency-Key may have started it first: one workflow id, one workflow.
    if (isWorkflowAlreadyStarted(startError)) return;
    const description = await describeWorkflow(deps.temporal, workflowIdForJob(job.id)).catch(
      (describeError: unknown) => {
        deps.logger.warn({ err: describeError, jobId: job.id }, 'could not tell whether the workflow started');
        return undefined;
      },
    );
    if (!description) throw startError;
    deps.logger.warn(
      { err: startError, jobId: job.id },
      'the workflow start failed, but the workflow exists: the job is accepted',
    );
  }
}

/** The workflow's description, or undefined when Temporal does not know it; throws when Temporal cannot say. */
export async function describeWorkflow(
  temporal: Client,
  workflowId: string,
): Promise<WorkflowExecutionDescription | undefined> {
  try {
    return await withTemporalTimeout(
      temporal.connection,
      () => temporal.workflow.getHandle(workflowId).describe(),
      TEMPORAL_DESCRIBE_DEADLINE_MS,
    );
  } catch (error) {
    if ((error as Error).name === 'WorkflowNotFoundError') return undefined;
    throw error;
  }
}

export type CancelOutcome =
  | { outcome: 'already-ended'; status: TerminalStatus }
  /** The workflow got the cancel signal: it cancels the work and ends the job. */
  | { outcome: 'requested' }
  /** The workflow was gone (terminated): the job was ended here. */
  | { outcome: 'ended' }
  | { outcome: 'temporal-unavailable' };

/** Cancels a job through its workflow, or ends it here when the workflow is already gone. */
export async function cancelJob(deps: LifecycleDependencies, job: JobRow, reason: string): Promise<CancelOutcome> {
  if (isTerminalStatus(job.status)) return { outcome: 'already-ended', status: job.status };
  try {
    await withTemporalTimeout(
      deps.temporal.connection,
      () => deps.temporal.workflow.getHandle(workflowIdForJob(job.id)).signal(cancelSignal, { reason }),
      TEMPORAL_SIGNAL_DEADLINE_MS,
    );
    return { outcome: 'requested' };
  } catch (error) {
    if ((error as Error).name !== 'WorkflowNotFoundError') {
      deps.logger.warn({ err: error, jobId: job.id }, 'could not signal the workflow');
      return { outcome: 'temporal-unavailable' };
    }
  }
  await endJobOutsideWorkflow(deps, job, { status: 'CANCELLED', errorMessage: reason }).catch((error: unknown) =>
    deps.logger.warn({ err: error, jobId: job.id }, 'could not start the clean-up of a cancelled job'),
  );
  return { outcome: 'ended' };
}

/**
 * Ends a job whose workflow is gone, as its workflow would have: the row, then its prediction
 * cancelled and its end announced (the settleOrphanedJob workflow, once per job). Returns whether
 * this call ended it. The row's end marks the settle as due in the same statement, and the mark goes
 * once the settle workflow is started: a start that fails (Temporal unreachable, this process gone)
 * is made by the reconciler's next rounds (settleDueJobs), so the end is always announced.
 */
export async function endJobOutsideWorkflow(
  deps: { db: Database; temporal: Client; config: SettleConfig },
  job: Pick<JobRow, 'id' | 'webhookUrl' | 'webhookEvents'>,
  outcome: JobOutcome,
): Promise<boolean> {
  if (!(await finishJob(deps.db, job.id, outcome, { settleDue: true }))) return false;
  await startSettle(deps, job);
  // The job may have been its batch's last: the reconciler starts a batch webhook this misses.
  await announceBatchEnd(deps, job.id);
  return true;
}

/**
 * Starts the settleOrphanedJob workflow of a job ended outside its workflow, for the run that
 * ended (the status and retry number its due mark stands for), and clears the mark. Does nothing
 * when no settle is due (another call started it). Repeating it is safe: the settle's workflow id
 * runs once.
 */
export async function startSettle(
  deps: { db: Database; temporal: Client; config: SettleConfig },
  job: Pick<JobRow, 'id' | 'webhookUrl' | 'webhookEvents'>,
): Promise<boolean> {
  const due = await dueSettleOf(deps.db, job.id);
  if (!due || !isTerminalStatus(due.status)) return false;
  await startWorkflowOnce(deps.temporal, SETTLE_ORPHANED_JOB_WORKFLOW_TYPE, {
    taskQueue: deps.config.TEMPORAL_TASK_QUEUE,
    workflowId: settleOrphanedJobWorkflowId(job.id, due.retry),
    args: [
      {
        jobId: job.id,
        status: due.status,
        ...(due.retry === undefined ? {} : { retry: due.retry }),
        policies: { webhookInitialIntervalSeconds: deps.config.WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS },
        ...(webhookOf(job) ? { webhook: webhookOf(job) } : {}),
      },
    ],
  });
  await clearSettleDue(deps.db, job.id, due.dueAt);
  return true;
}

/** A settle left due this long belongs to no call still starting it. */
const SETTLE_GRACE_SECONDS = 60;
const DUE_SETTLES_PAGE = 100;

/**
 * The reconciler's share: the settleOrphanedJob workflows of jobs ended outside their workflow
 * whose start did not get through (endJobOutsideWorkflow). Returns how many it started.
 */
export async function settleDueJobs(deps: {
  db: Database;
  temporal: Client;
  config: SettleConfig;
  logger: Logger;
}): Promise<number> {
  let started = 0;
  for (const job of await listDueSettles(deps.db, SETTLE_GRACE_SECONDS, DUE_SETTLES_PAGE)) {
    await startSettle(deps, job).then(
      (didStart) => (started += didStart ? 1 : 0),
      (error: unknown) => deps.logger.warn({ err: error, jobId: job.id }, 'could not start the settle of a job'),
    );
  }
  if (started > 0) deps.logger.info({ started }, 'started the settles of jobs whose settle did not start');
  return started;
}

/**
 * What the job's own workflow says of the job it ended: true when the job now has `outcome`
 * because of that workflow. While the workflow runs nothing else ends its job, so a job already in
 * this status was ended by an earlier run of the same step whose result was lost (its worker died
 * before the workflow task completed), and that run's announcement is still to be made.
 */
export async function finishJobFromWorkflow(db: Database, jobId: string, outcome: JobOutcome): Promise<boolean> {
  if (await finishJob(db, jobId, outcome)) return true;
  return (await getJobStatus(db, jobId)) === outcome.status;
}

export interface ReconcileResult {
  jobId: string;
  workflowStatus: string;
  outcome: JobOutcome;
}

/**
 * The reconciler's decision for one unfinished row: a row whose workflow has closed, or that has
 * none past its start's grace period, is ended (endJobOutsideWorkflow); a running one is left alone.
 */
export async function reconcileJob(
  deps: { db: Database; temporal: Client; config: SettleConfig },
  job: JobRow,
): Promise<ReconcileResult | undefined> {
  const handle = deps.temporal.workflow.getHandle(workflowIdForJob(job.id));
  let description: WorkflowExecutionDescription | undefined;
  try {
    description = await handle.describe();
  } catch (error) {
    if ((error as Error).name !== 'WorkflowNotFoundError') throw error;
  }
  if (description?.status.name === 'RUNNING') return undefined;
  // The row as it is now, not as the pass listed it: a retry may have reopened it since.
  const current = await getJob(deps.db, job.id);
  if (!current || isTerminalStatus(current.status)) return undefined;
  // No workflow yet: the API may still be starting it (or finding out whether its start got through).
  if (!description && isRecent(current.createdAt)) return undefined;
  // A retry reopens the row before it starts its run under the same workflow id: a row changed since
  // its workflow closed, a moment ago, is that retry starting (jobs/rerun.ts retryFailedJob).
  if (description?.closeTime && current.updatedAt > description.closeTime && isRecent(current.updatedAt))
    return undefined;
  const outcome: JobOutcome = description
    ? await outcomeOfClosedWorkflow(description, handle)
    : { status: 'FAILED', errorMessage: 'The job was recorded but its workflow never started.' };
  if (!(await endJobOutsideWorkflow(deps, job, outcome))) return undefined;
  return { jobId: job.id, workflowStatus: description?.status.name ?? 'NOT_FOUND', outcome };
}

async function outcomeOfClosedWorkflow(
  execution: WorkflowExecutionDescription,
  handle: WorkflowHandle,
): Promise<JobOutcome> {
  switch (execution.status.name) {
    case 'TERMINATED': {
      const history = await handle.fetchHistory();
      const reason = history.events?.at(-1)?.workflowExecutionTerminatedEventAttributes?.reason;
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

/**
 * Waits until the job ends, `timeoutMs` passes or `signal` fires (the client hung up), woken by the
 * change feed rather than polling: `Prefer: wait` on the API. Across API processes, since the feed
 * hears every process's writes.
 */
export async function waitUntilJobEnds(
  deps: { db: Database; changes: JobChanges },
  jobId: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  // Only a change of status can end the job: the outputs stored on the way wake no one (nor a read).
  const changed = new JobChangeWaiter(
    deps.changes,
    jobId,
    (change) => change.type !== 'output' && (change.status === undefined || isTerminalStatus(change.status)),
  );
  try {
    for (;;) {
      const status = await getJobStatus(deps.db, jobId);
      if (!status || isTerminalStatus(status)) return;
      if (!(await changed.next(until - Date.now(), signal))) return;
    }
  } finally {
    changed.close();
  }
}
