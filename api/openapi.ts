import { OpenApiGeneratorV31, OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { JOB_STATUSES } from '../common/statuses';
import {
  cancelReplySchema,
  cancelRequestSchema,
  generateReplayedReplySchema,
  generateReplySchema,
  generateRequestSchema,
  LIMITS,
  listJobsReplySchema,
  problemSchema,
  readinessSchema,
  redeliverReplySchema,
  statusReplySchema,
  webhookDeliveriesReplySchema,
} from './schemas';

const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: problemSchema } },
});
const json = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { 'application/json': { schema } },
});
const jobIdParam = z.object({
  job_id: z.string().openapi({ description: 'The id returned by POST /api/v1/generate.' }),
});
const rateLimitHeaders = {
  'RateLimit-Limit': { description: 'RATE_LIMIT_PER_MINUTE, when set', schema: { type: 'integer' as const } },
  'RateLimit-Remaining': { description: 'Requests left in the current minute', schema: { type: 'integer' as const } },
  'RateLimit-Reset': { description: 'Seconds until the current minute ends', schema: { type: 'integer' as const } },
};
/** The answers every /api route can give besides its own. */
const common = {
  401: problem('AUTH_MODE=required and no valid `Authorization: Bearer <key>`'),
  429: {
    description:
      'Over RATE_LIMIT_PER_MINUTE (per key, or per client address when AUTH_MODE=off); `Retry-After` says when to retry.',
    headers: { 'Retry-After': { description: 'Seconds', schema: { type: 'integer' as const } }, ...rateLimitHeaders },
    content: { 'application/problem+json': { schema: problemSchema } },
  },
};
const security = [{ bearerAuth: [] }];

export function buildOpenApiDocument() {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description:
      'An API key from `npm run apikey -- create --name NAME`; required on every /api route when AUTH_MODE=required.',
  });

  registry.registerPath({
    method: 'post',
    path: '/api/v1/generate',
    summary: 'Submit a generation job',
    description: `Records the job and starts its workflow. Limits: at most ${LIMITS.maxOutputs} outputs, prompts up to ${LIMITS.maxPromptLength} characters, bodies up to ${LIMITS.maxBodyBytes} bytes. Unknown fields are rejected. With an \`Idempotency-Key\`, a retry of the same request (same caller, same key, same body) answers with the job the first one created instead of creating another; keys are kept as long as their job.`,
    security,
    request: {
      headers: z.object({
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

  registry.registerPath({
    method: 'get',
    path: '/api/v1/status/{job_id}',
    summary: "A job's status, with presigned URLs for its stored outputs",
    security,
    request: { params: jobIdParam },
    responses: {
      200: json('The job', statusReplySchema),
      ...common,
      404: problem("Unknown job, or another key's"),
      503: problem('A dependency is down'),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/api/v1/jobs',
    summary: "Jobs, newest first (only the caller's own when AUTH_MODE=required)",
    security,
    request: {
      query: z.object({
        status: z.enum(JOB_STATUSES).optional(),
        limit: z.number().int().min(1).max(LIMITS.maxPageSize).optional().openapi({ default: LIMITS.defaultPageSize }),
        cursor: z.string().optional().openapi({ description: 'next_cursor of the previous page' }),
      }),
    },
    responses: { 200: json('A page of jobs', listJobsReplySchema), ...common, 422: problem('Bad filter or cursor') },
  });

  registry.registerPath({
    method: 'post',
    path: '/api/v1/jobs/{job_id}/cancel',
    summary: 'Cancel a job',
    description:
      'Stops generation and uploads and cancels the upstream prediction; outputs already stored stay available.',
    security,
    request: {
      params: jobIdParam,
      body: { required: false, content: { 'application/json': { schema: cancelRequestSchema } } },
    },
    responses: {
      202: json('Cancellation requested', cancelReplySchema),
      ...common,
      404: problem("Unknown job, or another key's"),
      409: problem('The job already ended'),
      503: problem('A dependency is down'),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/api/v1/jobs/{job_id}/events',
    summary: "Live progress: Server-Sent Events of the job's changes",
    description:
      "Every recorded change, in order: `status` events (`{job_id, status, error_message, at}`) and `output` events (`{job_id, index, status, s3_key, attempts, error_message, at}`, plus `presigned_media_url` once stored). Each event's `id` is its sequence number within the job (1, 2, 3, …). The stream ends after the terminal status; reconnecting with `Last-Event-ID` resumes after that event, and answers 204 when nothing is left. A comment line every 15 s keeps idle connections open.",
    security,
    request: {
      params: jobIdParam,
      headers: z.object({ 'Last-Event-ID': z.string().optional().openapi({ description: 'Resume after this event' }) }),
    },
    responses: {
      200: { description: 'The event stream', content: { 'text/event-stream': { schema: z.string() } } },
      204: { description: 'The job has ended and every event up to its end was delivered' },
      ...common,
      404: problem("Unknown job, or another key's"),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/api/v1/jobs/{job_id}/webhook-deliveries',
    summary: "Every attempt at delivering the job's webhooks, oldest first",
    description:
      'One entry per attempt: the event, the attempt number within its message (retries and redeliveries count on), the receiver\'s status code and the start of its answer, or the error. Webhook bodies are the status reply plus `event` (and `output_index` for `output`), signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`).',
    security,
    request: { params: jobIdParam },
    responses: {
      200: json('The attempts', webhookDeliveriesReplySchema),
      ...common,
      404: problem("Unknown job, or another key's"),
    },
  });

  registry.registerPath({
    method: 'post',
    path: '/api/v1/jobs/{job_id}/webhook-deliveries/{delivery_id}/redeliver',
    summary: 'Send a delivered (or failed) webhook message again',
    description:
      'Starts a durable `redeliverWebhook` workflow that sends the message again, with the same `webhook-id`, a new timestamp and the current status, under the webhook retry policy.',
    security,
    request: {
      params: jobIdParam.extend({ delivery_id: z.string().openapi({ description: 'A delivery_id from the list' }) }),
    },
    responses: {
      202: json('Redelivery started', redeliverReplySchema),
      ...common,
      404: problem('Unknown job or delivery'),
      503: problem('Temporal is unreachable'),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics of this API process',
    description:
      "`http_request_duration_seconds` (histogram by method, route and status code), `media_jobs` (jobs by status, counted at scrape time) and the Node.js process metrics. Activity durations and failures are on the worker's own /metrics (WORKER_METRICS_PORT). No key needed.",
    responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } } },
  });

  registry.registerPath({
    method: 'get',
    path: '/healthz',
    summary: 'The process is up',
    responses: { 200: json('Up', z.object({ status: z.literal('ok') })) },
  });
  registry.registerPath({
    method: 'get',
    path: '/readyz',
    summary: 'Postgres, Temporal and S3 are reachable',
    responses: { 200: json('Ready', readinessSchema), 503: problem('Names what is unreachable') },
  });

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Media generation API',
      version: '1.0.0',
      description:
        'Durable media generation: each job is a Temporal workflow; media is stored in S3 and served through presigned URLs.',
    },
  });
}
