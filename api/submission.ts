import { createHash, randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import type { Config } from '../common/config';
import { DEFAULT_JOB_PRIORITY, isPriorityAllowed, type JobPriority } from '../common/priorities';
import { isPublicAddress } from '../common/public-address';
import { DEFAULT_WEBHOOK_EVENTS } from '../common/webhooks';
import type { NewJob, RunningJobsCap } from '../db/queries/jobs';
import type { Caller } from './auth';
import { Problem } from './problem';
import { LIMITS, type GenerateRequest } from './schemas';

/**
 * The rules a submitted request meets beyond its schema, and the job it becomes: one place for
 * POST /api/v1/generate, each item of POST /api/v1/batches and a regenerated job. `field` prefixes
 * name where a request sits in its body (`jobs[3].` in a batch), so that an error names the field.
 */

const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/**
 * A stable hash of the validated request: key order and defaults do not change it. Fields without
 * a schema default are left out when they hold their default (a priority of `normal`, the default
 * webhook events, in any order), so that a request that leaves them out hashes as it always did.
 */
export function requestHash(request: GenerateRequest): string {
  const events = request.webhook_events_filter && [...new Set(request.webhook_events_filter)].sort();
  const normalized: GenerateRequest = {
    ...request,
    priority: request.priority === DEFAULT_JOB_PRIORITY ? undefined : request.priority,
    webhook_events_filter: events && events.join() === [...DEFAULT_WEBHOOK_EVENTS].sort().join() ? undefined : events,
  };
  const canonical = JSON.stringify(
    Object.fromEntries(
      Object.entries(normalized)
        .filter(([, value]) => value !== undefined)
        .sort(([a], [b]) => a.localeCompare(b)),
    ),
  );
  return createHash('sha256').update(canonical).digest('hex');
}

export function parseIdempotencyKey(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!IDEMPOTENCY_KEY_PATTERN.test(value)) {
    const message = `must be 1 to ${LIMITS.maxIdempotencyKeyLength} visible ASCII characters`;
    throw new Problem(422, 'Invalid request', `The request header is invalid: Idempotency-Key: ${message}`, {
      errors: [{ field: 'Idempotency-Key', message }],
    });
  }
  return value;
}

function invalidField(field: string, message: string): Problem {
  return new Problem(422, 'Invalid request', `The request body is invalid: ${field}: ${message}`, {
    errors: [{ field, message }],
  });
}

/**
 * A webhook URL the server can sign for and may call: the address rules of downloads, as far as they
 * can be checked before delivery (names are checked after DNS, at delivery).
 */
export function checkWebhookUrl(url: string, config: Config, field = 'webhook_url'): void {
  if (!config.WEBHOOK_SIGNING_SECRET)
    throw invalidField(field, 'webhooks are off on this server (WEBHOOK_SIGNING_SECRET is not set)');
  const allowPrivate = config.MEDIA_FETCH_ALLOW_PRIVATE;
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:' && !allowPrivate) throw invalidField(field, 'must be an https URL');
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivate && (host === 'localhost' || (isIP(host) && !isPublicAddress(host))))
    throw invalidField(field, `${host} is not a public address`);
}

/** A key asks for at most the priority its operator allowed: a refusal says so rather than running it lower. */
export function checkPriority(caller: Caller, priority: JobPriority, field = 'priority'): void {
  if (isPriorityAllowed(priority, caller.maxPriority)) return;
  const where = field === 'priority' ? '' : `${field}: `;
  throw new Problem(
    403,
    'Priority not allowed',
    `${where}API key ${caller.owner} may ask for priority '${caller.maxPriority}' at most, not '${priority}'; the operator sets it with \`npm run apikey -- set ${caller.owner} --max-priority ${priority}\`.`,
  );
}

/** A request keeps its outputs at most as long as the deployment does. */
export function checkRetention(
  retentionSeconds: number | undefined,
  deploymentSeconds: number | undefined,
  field = 'retention_seconds',
): void {
  if (retentionSeconds === undefined || deploymentSeconds === undefined || retentionSeconds <= deploymentSeconds)
    return;
  throw invalidField(field, `must be at most ${deploymentSeconds}, this server's MEDIA_RETENTION_SECONDS`);
}

/** Every rule of a validated request beyond its schema; `prefix` is where it sits in the body (`jobs[3].`). */
export function checkRequest(request: GenerateRequest, caller: Caller, config: Config, prefix = ''): void {
  if (request.webhook_url) checkWebhookUrl(request.webhook_url, config, `${prefix}webhook_url`);
  checkPriority(caller, request.priority ?? DEFAULT_JOB_PRIORITY, `${prefix}priority`);
  checkRetention(request.retention_seconds, config.MEDIA_RETENTION_SECONDS, `${prefix}retention_seconds`);
}

/** The job a validated request becomes; a seed it left out is drawn here and recorded. */
export function newJobOf(request: GenerateRequest, caller: Caller, config: Config): NewJob {
  return {
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
    priority: request.priority ?? DEFAULT_JOB_PRIORITY,
  };
}

/** Whom MAX_RUNNING_JOBS_PER_KEY counts: the API key, or the client address when AUTH_MODE=off. */
export function runningJobsCap(caller: Caller, limit: number | undefined): RunningJobsCap | undefined {
  if (limit === undefined) return undefined;
  return caller.authenticated ? { limit, owner: caller.owner } : { limit, clientAddress: caller.clientAddress };
}

/** The 429 of MAX_RUNNING_JOBS_PER_KEY; `adding` jobs at once (a batch) says how many were asked for. */
export function tooManyRunningJobs(caller: Caller, running: number, limit: number, adding = 1): Problem {
  const who = caller.authenticated ? `API key ${caller.owner}` : `client address ${caller.clientAddress}`;
  const detail =
    adding === 1
      ? `${who} already has ${running} jobs PENDING or PROCESSING, the most allowed at once (MAX_RUNNING_JOBS_PER_KEY=${limit}); submit again when one ends.`
      : `${who} has ${running} jobs PENDING or PROCESSING and may have ${limit} at once (MAX_RUNNING_JOBS_PER_KEY=${limit}): a batch of ${adding} is ${running + adding - limit} too many; submit it again when that many have ended, or send fewer.`;
  return new Problem(429, 'Too many running jobs', detail, { headers: { 'Retry-After': '10' } });
}
