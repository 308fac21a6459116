import { createHash, randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import { Router } from 'express';
import { DEFAULT_JOB_PRIORITY, isPriorityAllowed, type JobPriority } from '../../common/priorities';
import { isPublicAddress } from '../../common/public-address';
import { workflowIdForJob } from '../../common/temporal';
import { DEFAULT_WEBHOOK_EVENTS } from '../../common/webhooks';
import type { RunningJobsCap } from '../../db/queries/jobs';
import { submitJob, waitUntilJobEnds } from '../../jobs/lifecycle';
import { getJob } from '../../db/queries/jobs';
import { hangUpSignal, preferredWaitSeconds } from '../prefer-wait';
import { statusReplyOf } from './jobs';
import { callerOf, fairnessOf, type Caller } from '../auth';
import type { ApiDependencies } from '../dependencies';
import { Problem } from '../problem';
import {
  generateReplayedReplySchema,
  generateReplySchema,
  type GenerateRequest,
  generateRequestSchema,
  LIMITS,
} from '../schemas';
import { parseOrThrow, requireJsonBody } from '../validation';
import { z } from 'zod';
import { common, json, preferWaitHeader, problem, security, type OpenApiRegistry } from '../openapi-parts';

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

/** A key asks for at most the priority its operator allowed: a refusal says so rather than running it lower. */
function checkPriority(caller: Caller, priority: JobPriority): void {
  if (isPriorityAllowed(priority, caller.maxPriority)) return;
  throw new Problem(
    403,
    'Priority not allowed',
    `API key ${caller.owner} may ask for priority '${caller.maxPriority}' at most, not '${priority}'; the operator sets it with \`npm run apikey -- set ${caller.owner} --max-priority ${priority}\`.`,
  );
}

/** A request keeps its outputs at most as long as the deployment does. */
export function checkRetention(retentionSeconds: number | undefined, deploymentSeconds: number | undefined): void {
  if (retentionSeconds === undefined || deploymentSeconds === undefined || retentionSeconds <= deploymentSeconds)
    return;
  const message = `must be at most ${deploymentSeconds}, this server's MEDIA_RETENTION_SECONDS`;
  throw new Problem(422, 'Invalid request', `The request body is invalid: retention_seconds: ${message}`, {
    errors: [{ field: 'retention_seconds', message }],
  });
}

function runningJobsCap(caller: Caller, limit: number | undefined): RunningJobsCap | undefined {
  if (limit === undefined) return undefined;
  return caller.authenticated ? { limit, owner: caller.owner } : { limit, clientAddress: caller.clientAddress };
}

export function generateRouter(deps: ApiDependencies): Router {
  const { config } = deps;
  const router = Router();

  router.post('/api/v1/generate', requireJsonBody(), async (req, res) => {
    const caller = callerOf(res);
    const idempotencyKey = parseIdempotencyKey(req.header('idempotency-key'));
    const request = parseOrThrow(generateRequestSchema, req.body, 'body');
    if (request.webhook_url) {
      if (!config.WEBHOOK_SIGNING_SECRET)
        throw invalidWebhookUrl('webhooks are off on this server (WEBHOOK_SIGNING_SECRET is not set)');
      checkWebhookUrl(request.webhook_url, config.MEDIA_FETCH_ALLOW_PRIVATE);
    }
    const priority = request.priority ?? DEFAULT_JOB_PRIORITY;
    checkPriority(caller, priority);
    checkRetention(request.retention_seconds, config.MEDIA_RETENTION_SECONDS);
    const submitted = await submitJob(deps, {
      job: {
        model: request.model,
        prompt: request.prompt,
        numOutputs: request.num_outputs,
        seed: request.seed ?? randomInt(0, LIMITS.maxSeed + 1),
        outputFormat: request.output_format,
        owner: caller.owner,
        clientAddress: caller.clientAddress,
        webhookUrl: request.webhook_url,
        webhookEvents: request.webhook_url ? (request.webhook_events_filter ?? DEFAULT_WEBHOOK_EVENTS) : undefined,
        deadlineSeconds: request.deadline_seconds,
        retentionSeconds: request.retention_seconds ?? config.MEDIA_RETENTION_SECONDS,
        priority,
      },
      fairness: fairnessOf(caller),
      requestHash: requestHash(request),
      idempotencyKey,
      runningJobsCap: runningJobsCap(caller, config.MAX_RUNNING_JOBS_PER_KEY),
    });

    switch (submitted.outcome) {
      case 'running-jobs-cap': {
        const who = caller.authenticated ? `API key ${caller.owner}` : `client address ${caller.clientAddress}`;
        throw new Problem(
          429,
          'Too many running jobs',
          `${who} already has ${submitted.running} jobs PENDING or PROCESSING, the most allowed at once (MAX_RUNNING_JOBS_PER_KEY=${submitted.limit}); submit again when one ends.`,
          { headers: { 'Retry-After': '10' } },
        );
      }
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
      await waitUntilJobEnds(deps, jobId, waitSeconds * 1000, hangUpSignal(res));
      if (res.destroyed) return;
      const job = await getJob(deps.db, jobId);
      res.json(job ? { ...submit, ...(await statusReplyOf(deps, job)) } : submit);
    }
  });

  return router;
}

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
        headers: { 'Idempotent-Replayed': { description: 'Always `true`', schema: { type: 'string' as const } } },
      },
      202: json('Accepted; poll the status URL or follow the events.', generateReplySchema),
      400: problem('Malformed JSON'),
      401: common[401],
      403: problem("`priority` is more urgent than the API key's `--max-priority`"),
      409: problem('The Idempotency-Key was already used with a different body'),
      413: problem('Body too large'),
      415: problem('Not JSON'),
      422: problem('A field is missing, unknown or out of range; `errors` names each.'),
      429: {
        ...common[429],
        description: `${common[429].description} Also: MAX_RUNNING_JOBS_PER_KEY jobs are already PENDING or PROCESSING.`,
      },
      503: problem('A dependency is down; nothing was created.'),
    },
  });
}
