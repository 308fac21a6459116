import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { JOB_PRIORITIES } from '../common/priorities';
import { JOB_STATUSES, OUTPUT_FORMATS } from '../common/statuses';
import { statusReplySchema } from '../jobs/status-reply';
import { DEFAULT_WEBHOOK_EVENTS, WEBHOOK_EVENTS } from '../common/webhooks';

extendZodWithOpenApi(z);

export const LIMITS = {
  maxOutputs: 10,
  maxPromptLength: 4_000,
  maxModelLength: 200,
  maxSeed: 4_294_967_295,
  maxBodyBytes: 64 * 1024,
  maxPageSize: 100,
  defaultPageSize: 20,
  maxWebhookUrlLength: 2_000,
  maxDeadlineSeconds: 7 * 24 * 3600,
  maxRetentionSeconds: 2_147_483_647,
  maxIdempotencyKeyLength: 255,
  maxBatchJobs: 100,
  /** A batch carries up to 100 requests: its body may be larger than one request's. */
  maxBatchBodyBytes: 1024 * 1024,
} as const;

/** Text Postgres stores as sent: no NUL (it refuses it) and no lone surrogate (it would be altered). */
export function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && text.isWellFormed();
}
const STORABLE_TEXT = 'must be Unicode text without NUL characters';

export const MODEL_PATTERN = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*(:[A-Za-z0-9]+)?$/;

export const generateRequestSchema = z
  .strictObject({
    model: z
      .string()
      .max(LIMITS.maxModelLength)
      .regex(MODEL_PATTERN, 'must look like owner/name or owner/name:version')
      .openapi({ example: 'black-forest-labs/flux-schnell' }),
    prompt: z
      .string()
      .max(LIMITS.maxPromptLength)
      .refine((prompt) => prompt.trim().length > 0, 'must not be empty')
      .refine(isStorableText, STORABLE_TEXT)
      .openapi({ example: 'a lighthouse at dawn, oil painting' }),
    num_outputs: z.number().int().min(1).max(LIMITS.maxOutputs).default(1).openapi({ example: 2 }),
    seed: z
      .number()
      .int()
      .min(0)
      .max(LIMITS.maxSeed)
      .optional()
      .openapi({ example: 42, description: 'Drawn at random and recorded when omitted.' }),
    output_format: z.enum(OUTPUT_FORMATS).default('png'),
    webhook_url: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .max(LIMITS.maxWebhookUrlLength)
      .optional()
      .openapi({
        example: 'https://example.com/hooks/media',
        description:
          'Receives a signed POST (Standard Webhooks) with the status reply plus `event` at each chosen event. HTTPS and a public address, unless the server allows private addresses.',
      }),
    webhook_events_filter: z
      .array(z.enum(WEBHOOK_EVENTS))
      .min(1)
      .max(WEBHOOK_EVENTS.length)
      .optional()
      .openapi({
        description: `Events to deliver; default ${JSON.stringify(DEFAULT_WEBHOOK_EVENTS)}. \`output\` fires once per stored output.`,
      }),
    deadline_seconds: z.number().int().min(1).max(LIMITS.maxDeadlineSeconds).optional().openapi({
      example: 600,
      description:
        'Past this many seconds the job ends FAILED (CANCELLED if it had not started) and its upstream work stops.',
    }),
    retention_seconds: z.number().int().min(1).max(LIMITS.maxRetentionSeconds).optional().openapi({
      example: 3600,
      description:
        "How long the stored outputs are kept once the job ended; then they are removed (`data_removed`). At most the deployment's MEDIA_RETENTION_SECONDS, which is also the default (unset: kept until deleted).",
    }),
    // No zod default: a request without it hashes as before (Idempotency-Key replays across a deploy).
    priority: z.enum(JOB_PRIORITIES).optional().openapi({
      example: 'normal',
      description:
        'Which of the waiting jobs a worker takes next: every `high` job before any `normal`, every `normal` before any `low`; default `normal`. An API key may ask for at most its `--max-priority` (`normal` unless the operator allows `high`); more is refused with 403.',
    }),
  })
  .superRefine((request, context) => {
    if (request.webhook_events_filter && !request.webhook_url) {
      context.addIssue({ code: 'custom', path: ['webhook_events_filter'], message: 'needs webhook_url' });
    }
  })
  .openapi('GenerateRequest');

export type GenerateRequest = z.infer<typeof generateRequestSchema>;

export const batchRequestSchema = z
  .strictObject({
    jobs: z
      .array(generateRequestSchema)
      .min(1)
      .max(LIMITS.maxBatchJobs)
      .openapi({
        description: `1 to ${LIMITS.maxBatchJobs} requests, each exactly the body of POST /api/v1/generate. One bad item rejects the whole batch (422 naming \`jobs[i].field\`); nothing is created.`,
      }),
    webhook_url: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .max(LIMITS.maxWebhookUrlLength)
      .optional()
      .openapi({
        example: 'https://example.com/hooks/batches',
        description:
          'Receives one signed POST (Standard Webhooks, as a job\'s webhooks) once every job of the batch has ended: the batch as GET /api/v1/batches/{id} answers it, plus `"event": "batch_ended"`. The same address rules as a job\'s `webhook_url`; each job keeps its own.',
      }),
  })
  .openapi('BatchRequest');

export type BatchRequest = z.infer<typeof batchRequestSchema>;

export const cancelRequestSchema = z
  .strictObject({ reason: z.string().trim().min(1).max(500).refine(isStorableText, STORABLE_TEXT).optional() })
  .openapi('CancelRequest');

export const jobIdParamSchema = z.object({ job_id: z.uuid('must be a job id (a UUID)') });

export const batchIdParamSchema = z.object({ batch_id: z.uuid('must be a batch id (a UUID)') });

export const listJobsQuerySchema = z.strictObject({
  status: z.enum(JOB_STATUSES).optional(),
  priority: z.enum(JOB_PRIORITIES).optional(),
  limit: z.coerce.number().int().min(1).max(LIMITS.maxPageSize).default(LIMITS.defaultPageSize),
  cursor: z.string().max(200).optional(),
});

export { mediaReplySchema, statusReplySchema } from '../jobs/status-reply';
export { batchReplySchema } from '../jobs/batch-reply';

export const generateReplySchema = z
  .object({
    job_id: z.string(),
    status: z.enum(JOB_STATUSES).openapi({
      description: 'PENDING; with `Prefer: wait`, the status when the wait ended (the status reply fields follow)',
    }),
    message: z.string(),
    status_url: z.string(),
    workflow_id: z.string(),
  })
  .catchall(z.unknown())
  .openapi('GenerateAccepted');

export const generateReplayedReplySchema = z
  .object({
    job_id: z.string(),
    status: z.enum(JOB_STATUSES),
    message: z.string(),
    status_url: z.string(),
    workflow_id: z.string(),
  })
  .openapi('GenerateReplayed');

export const webhookDeliverySchema = z
  .object({
    delivery_id: z.string(),
    job_id: z.string(),
    message_id: z
      .string()
      .openapi({ description: 'The webhook-id header; the same for every attempt at one message.' }),
    event: z.enum(WEBHOOK_EVENTS),
    output_index: z.number().int().nullable(),
    attempt: z.number().int(),
    url: z.string(),
    status_code: z.number().int().nullable(),
    response_snippet: z
      .string()
      .nullable()
      .openapi({ description: "The first 500 characters of the receiver's answer." }),
    error: z.string().nullable(),
    succeeded: z.boolean(),
    created_at: z.string(),
    finished_at: z.string().nullable(),
  })
  .openapi('WebhookDelivery');

export const webhookDeliveriesReplySchema = z
  .object({ deliveries: z.array(webhookDeliverySchema) })
  .openapi('WebhookDeliveries');

export const redeliverReplySchema = z
  .object({ delivery_id: z.string(), message_id: z.string(), workflow_id: z.string(), message: z.string() })
  .openapi('RedeliveryAccepted');

export const deliveryParamsSchema = z.object({ job_id: z.uuid(), delivery_id: z.uuid() });

export const listJobsReplySchema = z
  .object({ jobs: z.array(statusReplySchema), next_cursor: z.string().nullable() })
  .openapi('JobList');

export const cancelReplySchema = z
  .object({ job_id: z.string(), status: z.enum(JOB_STATUSES), message: z.string() })
  .openapi('CancelAccepted');

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  })
  .openapi('Problem');

export const readinessSchema = z
  .object({ status: z.enum(['ready', 'unavailable']), checks: z.record(z.string(), z.string()) })
  .openapi('Readiness');
