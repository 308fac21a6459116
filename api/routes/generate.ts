import { Router } from 'express';
import { z } from 'zod';
import { workflowIdForJob } from '../../common/temporal';
import { getJob } from '../../db/queries/jobs';
import { submitJob, waitUntilJobEnds } from '../../jobs/lifecycle';
import { callerOf, fairnessOf } from '../auth';
import type { ApiDependencies } from '../dependencies';
import {
  common,
  idempotentReplayedHeader,
  json,
  jsonBodyProblems,
  locationHeader,
  preferenceAppliedHeader,
  preferWaitHeader,
  problem,
  security,
  unavailable,
  type OpenApiRegistry,
} from '../openapi-parts';
import { preferredWaitSeconds, waitEndSignal } from '../prefer-wait';
import { Problem } from '../problem';
import { generateReplayedReplySchema, generateReplySchema, generateRequestSchema, LIMITS } from '../schemas';
import {
  checkRequest,
  newJobOf,
  parseIdempotencyKey,
  requestHash,
  runningJobsCap,
  tooManyRunningJobs,
} from '../submission';
import { parseOrThrow, requireJsonBody } from '../validation';
import { statusReplyOf } from './jobs';

export function generateRouter(deps: ApiDependencies): Router {
  const { config } = deps;
  const router = Router();

  router.post('/api/v1/generate', requireJsonBody(), async (req, res) => {
    const caller = callerOf(res);
    const idempotencyKey = parseIdempotencyKey(req.header('idempotency-key'));
    const request = parseOrThrow(generateRequestSchema, req.body, 'body');
    checkRequest(request, caller, config);
    const submitted = await submitJob(deps, {
      job: newJobOf(request, caller, config),
      fairness: fairnessOf(caller),
      requestHash: requestHash(request),
      idempotencyKey,
      runningJobsCap: runningJobsCap(caller, config.MAX_RUNNING_JOBS_PER_KEY),
    });

    switch (submitted.outcome) {
      case 'running-jobs-cap':
        throw tooManyRunningJobs(caller, submitted.running, submitted.limit);
      case 'key-reused':
        throw new Problem(
          409,
          'Idempotency-Key reused',
          `The Idempotency-Key '${idempotencyKey}' was already used with a different request (job ${submitted.job.id}); use a new key for a new request.`,
        );
      case 'not-started':
        throw Problem.unavailable('Temporal');
      case 'replayed': {
        const { job } = submitted;
        res.status(200).setHeader('Idempotent-Replayed', 'true').location(`/api/v1/status/${job.id}`);
        await reply(job.id, {
          job_id: job.id,
          status: job.status,
          message: `Replayed: this Idempotency-Key already created job ${job.id}.`,
          status_url: `/api/v1/status/${job.id}`,
          workflow_id: workflowIdForJob(job.id),
        });
        return;
      }
      case 'accepted': {
        const { job } = submitted;
        // Where the request's time went (https://www.w3.org/TR/server-timing/): browsers' dev tools and `npm run bench` show it.
        res.setHeader(
          'Server-Timing',
          `db;dur=${submitted.recordingMs.toFixed(1)}, temporal;dur=${submitted.startingMs.toFixed(1)}`,
        );
        res.status(202).location(`/api/v1/status/${job.id}`);
        await reply(job.id, {
          job_id: job.id,
          status: 'PENDING',
          message: `Job accepted: ${job.numOutputs} output(s) will be generated.`,
          status_url: `/api/v1/status/${job.id}`,
          workflow_id: workflowIdForJob(job.id),
        });
      }
    }

    /**
     * The answer; with `Prefer: wait`, once the job ended or the wait ran out, with the status
     * reply (the final state, or the current one) beside the submit's own fields.
     */
    async function reply(jobId: string, submit: Record<string, unknown>): Promise<void> {
      const waitSeconds = preferredWaitSeconds(req);
      if (waitSeconds === undefined) {
        res.json(submit);
        return;
      }
      res.setHeader('Preference-Applied', `wait=${waitSeconds}`);
      let status: Record<string, unknown> | undefined;
      try {
        await waitUntilJobEnds(deps, jobId, waitSeconds * 1000, waitEndSignal(res, deps.stopping));
        if (res.destroyed) return;
        const job = await getJob(deps.db, jobId);
        status = job ? await statusReplyOf(deps, job) : undefined;
      } catch (error) {
        // The job is accepted: the answer says so without its current state, rather than a 503 that
        // tells the client nothing was created (and to submit it again).
        deps.logger.warn({ err: error, jobId }, 'could not read the job at the end of its wait');
      }
      res.json({ ...submit, ...status });
    }
  });

  return router;
}

/** What a replay's reply carries besides its body. */
const replayReplyHeaders = {
  ...idempotentReplayedHeader,
  ...locationHeader("The job's status URL"),
  ...preferenceAppliedHeader,
};
/** What an accepted submit's reply carries besides its body. */
const submitReplyHeaders = {
  ...locationHeader("The job's status URL"),
  'Server-Timing': {
    description: 'How long recording the job (`db`) and starting its workflow (`temporal`) took, in ms',
    schema: { type: 'string' as const },
  },
  ...preferenceAppliedHeader,
};

/** This router's paths in the OpenAPI document (/openapi.json, /docs). */
export function registerGeneratePaths(registry: OpenApiRegistry): void {
  registry.registerPath({
    method: 'post',
    path: '/api/v1/generate',
    summary: 'Submit a generation job',
    description: `Records the job and starts its workflow. Limits: at most ${LIMITS.maxOutputs} outputs, prompts up to ${LIMITS.maxPromptLength} characters, bodies up to ${LIMITS.maxBodyBytes} bytes. Unknown fields are rejected. With an \`Idempotency-Key\`, a retry of the same request (same caller, same key, same body) answers with the job the first one created instead of creating another; keys are kept as long as their job.`,
    security,
    request: {
      headers: z.object({
        Prefer: preferWaitHeader,
        'Idempotency-Key': z.string().max(LIMITS.maxIdempotencyKeyLength).optional().openapi({
          description:
            'Any 1-255 visible ASCII characters, unique per request; scoped to the API key (or to all anonymous callers when AUTH_MODE=off).',
        }),
      }),
      body: { required: true, content: { 'application/json': { schema: generateRequestSchema } } },
    },
    responses: {
      200: {
        ...json(
          'A replay: the job this Idempotency-Key already created, in its current status.',
          generateReplayedReplySchema,
        ),
        headers: replayReplyHeaders,
      },
      202: {
        ...json('Accepted; poll the status URL or follow the events.', generateReplySchema),
        headers: submitReplyHeaders,
      },
      ...jsonBodyProblems,
      401: common[401],
      403: problem("`priority` is more urgent than the API key's `--max-priority`"),
      409: problem('The Idempotency-Key was already used with a different body'),
      422: problem('A field is missing, unknown or out of range; `errors` names each.'),
      429: {
        ...common[429],
        description: `${common[429].description} Also: MAX_RUNNING_JOBS_PER_KEY jobs are already PENDING or PROCESSING.`,
      },
      503: unavailable('A dependency is down; nothing was created.'),
    },
  });
}
