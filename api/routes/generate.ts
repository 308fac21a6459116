import { createHash, randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { WorkflowIdReusePolicy } from '@temporalio/client';
import { Router, type Response } from 'express';
import {
  MEDIA_GENERATION_WORKFLOW_TYPE,
  mediaJobStatusSearchAttribute,
  workflowIdForJob,
  type MediaGenerationInput,
} from '../../common/temporal';
import { DEFAULT_WEBHOOK_EVENTS, type WebhookEvent } from '../../common/webhooks';
import { isPublicAddress } from '../../common/public-address';
import {
  createJob,
  deleteJob,
  findJobByIdempotencyKey,
  isIdempotencyConflict,
  RunningJobsCapReached,
  type RunningJobsCap,
} from '../../db/queries/jobs';
import type { JobRow } from '../../db/schema';
import { callerOf, type Caller } from '../auth';
import type { ApiDependencies } from '../dependencies';
import { Problem } from '../problem';
import { generateRequestSchema, LIMITS, type GenerateRequest } from '../schemas';
import { withTemporalTimeout } from '../timeout';
import { parseOrThrow, requireJsonBody } from '../validation';

// Long enough for a busy server, short enough that a client with Temporal down gets its 503 promptly.
const TEMPORAL_START_DEADLINE_MS = 5_000;
// Asking whether a failed start did start the workflow: with the start's, under 7 s when Temporal is down.
const TEMPORAL_DESCRIBE_DEADLINE_MS = 1_500;
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** A stable hash of the validated request: key order and defaults do not change it. */
export function requestHash(request: GenerateRequest): string {
  const canonical = JSON.stringify(
    Object.fromEntries(
      Object.entries(request)
        .filter(([, value]) => value !== undefined)
        .sort(([a], [b]) => a.localeCompare(b)),
    ),
  );
  return createHash('sha256').update(canonical).digest('hex');
}

function parseIdempotencyKey(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!IDEMPOTENCY_KEY_PATTERN.test(value)) {
    const message = `must be 1 to ${LIMITS.maxIdempotencyKeyLength} visible ASCII characters`;
    throw new Problem(422, 'Invalid request', `The request header is invalid: Idempotency-Key: ${message}`, {
      errors: [{ field: 'Idempotency-Key', message }],
    });
  }
  return value;
}

function invalidWebhookUrl(message: string): Problem {
  return new Problem(422, 'Invalid request', `The request body is invalid: webhook_url: ${message}`, {
    errors: [{ field: 'webhook_url', message }],
  });
}

/** The address rules of downloads, as far as they can be checked before delivery (names are checked after DNS, at delivery). */
function checkWebhookUrl(url: string, allowPrivate: boolean): void {
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:' && !allowPrivate) throw invalidWebhookUrl('must be an https URL');
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivate && (host === 'localhost' || (isIP(host) && !isPublicAddress(host))))
    throw invalidWebhookUrl(`${host} is not a public address`);
}

export function workflowInputFor(job: JobRow, config: ApiDependencies['config']): MediaGenerationInput {
  return {
    jobId: job.id,
    model: job.model,
    prompt: job.prompt,
    numOutputs: job.numOutputs,
    seed: job.seed,
    outputFormat: job.outputFormat,
    policies: {
      generateMaxAttempts: config.GENERATE_MAX_ATTEMPTS,
      persistMaxAttempts: config.PERSIST_MAX_ATTEMPTS,
      persistBudgetSeconds: config.PERSIST_BUDGET_SECONDS,
      predictionWaitSeconds: config.PREDICTION_WAIT_SECONDS,
      heartbeatTimeoutSeconds: config.ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS,
      webhookInitialIntervalSeconds: config.WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS,
    },
    ...(job.webhookUrl
      ? { webhook: { url: job.webhookUrl, events: (job.webhookEvents ?? DEFAULT_WEBHOOK_EVENTS) as WebhookEvent[] } }
      : {}),
    ...(job.deadlineSeconds ? { deadlineSeconds: job.deadlineSeconds } : {}),
  };
}

function runningJobsCap(caller: Caller, limit: number | undefined): RunningJobsCap | undefined {
  if (limit === undefined) return undefined;
  return caller.authenticated ? { limit, owner: caller.owner } : { limit, clientAddress: caller.clientAddress };
}

export function generateRouter({ config, db, temporal, logger }: ApiDependencies): Router {
  const router = Router();

  const startWorkflow = (job: JobRow, options: { rejectDuplicate?: boolean } = {}) =>
    withTemporalTimeout(
      temporal.connection,
      () =>
        temporal.workflow.start(MEDIA_GENERATION_WORKFLOW_TYPE, {
          taskQueue: config.TEMPORAL_TASK_QUEUE,
          workflowId: workflowIdForJob(job.id),
          args: [workflowInputFor(job, config)],
          typedSearchAttributes: [{ key: mediaJobStatusSearchAttribute, value: 'PENDING' }],
          memo: { model: job.model, prompt: job.prompt },
          staticSummary: `${job.numOutputs} × ${job.outputFormat} from ${job.model}`,
          ...(options.rejectDuplicate ? { workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE } : {}),
        }),
      TEMPORAL_START_DEADLINE_MS,
    );

  /**
   * After a start failed or timed out: whether the job's workflow exists anyway (the start reached
   * the server and only its answer was lost). Throws when Temporal cannot say.
   */
  const workflowExists = async (job: JobRow): Promise<boolean> => {
    try {
      await withTemporalTimeout(
        temporal.connection,
        () => temporal.workflow.getHandle(workflowIdForJob(job.id)).describe(),
        TEMPORAL_DESCRIBE_DEADLINE_MS,
      );
      return true;
    } catch (error) {
      if ((error as Error).name === 'WorkflowNotFoundError') return false;
      throw error;
    }
  };

  /** Starts the job's workflow; a start that failed but did create the workflow counts as started. */
  const ensureWorkflowStarted = async (job: JobRow, options: { rejectDuplicate?: boolean } = {}): Promise<void> => {
    try {
      await startWorkflow(job, options);
    } catch (startError) {
      // A concurrent request with the same Idempotency-Key may have started it first: one workflow id, one workflow.
      if ((startError as Error).name === 'WorkflowExecutionAlreadyStartedError') return;
      const exists = await workflowExists(job).catch((describeError: unknown) => {
        logger.warn({ err: describeError, jobId: job.id }, 'could not tell whether the workflow started');
        return false;
      });
      if (!exists) throw startError;
      logger.warn(
        { err: startError, jobId: job.id },
        'the workflow start failed, but the workflow exists: the job is accepted',
      );
    }
  };

  /** The job this Idempotency-Key already made: 200 with Idempotent-Replayed, or 409 for another body. */
  const replay = async (res: Response, job: JobRow, idempotencyKey: string, hash: string) => {
    if (job.requestHash !== hash) {
      throw new Problem(
        409,
        'Idempotency-Key reused',
        `The Idempotency-Key '${idempotencyKey}' was already used with a different request (job ${job.id}); use a new key for a new request.`,
      );
    }
    if (job.status === 'PENDING') {
      // The first request may have died between its insert and its start: starting again is harmless (one workflow id).
      // A job that will not run never gets a 200. Its row is kept: the first request may still be starting it, and
      // the reconciler (activities/reconcile.ts) fails a row whose workflow never started once its grace period is over.
      await ensureWorkflowStarted(job, { rejectDuplicate: true }).catch((error: unknown) => {
        logger.warn({ err: error, jobId: job.id }, 'could not start the workflow of a replayed job');
        throw Problem.unavailable('Temporal');
      });
    }
    res
      .status(200)
      .setHeader('Idempotent-Replayed', 'true')
      .location(`/api/v1/status/${job.id}`)
      .json({
        job_id: job.id,
        status: job.status,
        message: `Replayed: this Idempotency-Key already created job ${job.id}.`,
        status_url: `/api/v1/status/${job.id}`,
        workflow_id: workflowIdForJob(job.id),
      });
  };

  router.post('/api/v1/generate', requireJsonBody(), async (req, res) => {
    const caller = callerOf(res);
    const idempotencyKey = parseIdempotencyKey(req.header('idempotency-key'));
    const request = parseOrThrow(generateRequestSchema, req.body, 'body');
    if (request.webhook_url) {
      if (!config.WEBHOOK_SIGNING_SECRET)
        throw invalidWebhookUrl('webhooks are off on this server (WEBHOOK_SIGNING_SECRET is not set)');
      checkWebhookUrl(request.webhook_url, config.MEDIA_FETCH_ALLOW_PRIVATE);
    }
    const hash = requestHash(request);
    if (idempotencyKey) {
      const existing = await findJobByIdempotencyKey(db, caller.owner, idempotencyKey);
      if (existing) return replay(res, existing, idempotencyKey, hash);
    }

    let job: JobRow;
    const recordingStarted = performance.now();
    try {
      job = await createJob(
        db,
        {
          model: request.model,
          prompt: request.prompt,
          numOutputs: request.num_outputs,
          seed: request.seed ?? randomInt(0, LIMITS.maxSeed + 1),
          outputFormat: request.output_format,
          owner: caller.owner,
          clientAddress: caller.clientAddress,
          idempotencyKey,
          requestHash: hash,
          webhookUrl: request.webhook_url,
          webhookEvents: request.webhook_url ? (request.webhook_events_filter ?? DEFAULT_WEBHOOK_EVENTS) : undefined,
          deadlineSeconds: request.deadline_seconds,
        },
        runningJobsCap(caller, config.MAX_RUNNING_JOBS_PER_KEY),
      );
    } catch (error) {
      if (error instanceof RunningJobsCapReached) {
        const who = caller.authenticated ? `API key ${caller.owner}` : `client address ${caller.clientAddress}`;
        throw new Problem(
          429,
          'Too many running jobs',
          `${who} already has ${error.running} jobs PENDING or PROCESSING, the most allowed at once (MAX_RUNNING_JOBS_PER_KEY=${error.limit}); submit again when one ends.`,
          { headers: { 'Retry-After': '10' } },
        );
      }
      if (idempotencyKey && isIdempotencyConflict(error)) {
        // A concurrent request with the same key won the insert: answer with its job.
        const existing = await findJobByIdempotencyKey(db, caller.owner, idempotencyKey);
        if (existing) return replay(res, existing, idempotencyKey, hash);
      }
      throw error;
    }

    const workflowId = workflowIdForJob(job.id);
    const startingWorkflow = performance.now();
    try {
      // A start that failed or timed out may still have reached the server: if the workflow exists, the job is accepted.
      await ensureWorkflowStarted(job);
    } catch (error) {
      // No workflow, or Temporal cannot say: the row goes only if no workflow has touched it (still PENDING, no
      // prediction). A start that lands after all finds no row and fails on JobNotFound before anything billed; a row
      // left behind (the delete failed or was refused) is failed by the reconciler (activities/reconcile.ts) after
      // its grace period if its workflow never started.
      logger.warn({ err: error, jobId: job.id }, 'could not start the workflow; removing the job');
      await deleteJob(db, job.id)
        .then((removed) => {
          if (!removed) logger.warn({ jobId: job.id }, 'the job was kept: a workflow has started it');
        })
        .catch((deleteError: unknown) => logger.error({ err: deleteError, jobId: job.id }, 'could not remove the job'));
      throw Problem.unavailable('Temporal');
    }
    // Where the request's time went (https://www.w3.org/TR/server-timing/): browsers' dev tools and `npm run bench` show it.
    const milliseconds = (from: number, to: number) => (to - from).toFixed(1);
    res.setHeader(
      'Server-Timing',
      `db;dur=${milliseconds(recordingStarted, startingWorkflow)}, temporal;dur=${milliseconds(startingWorkflow, performance.now())}`,
    );
    res
      .status(202)
      .location(`/api/v1/status/${job.id}`)
      .json({
        job_id: job.id,
        status: 'PENDING',
        message: `Job accepted: ${job.numOutputs} output(s) will be generated.`,
        status_url: `/api/v1/status/${job.id}`,
        workflow_id: workflowId,
      });
  });

  return router;
}
