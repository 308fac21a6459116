import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { JOB_STATUSES, MEDIA_STATUSES, OUTPUT_FORMATS } from '../common/statuses';

extendZodWithOpenApi(z);

export const LIMITS = {
  maxOutputs: 10,
  maxPromptLength: 4_000,
  maxModelLength: 200,
  maxSeed: 4_294_967_295,
  maxBodyBytes: 64 * 1024,
  maxPageSize: 100,
  defaultPageSize: 20,
} as const;

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
  })
  .openapi('GenerateRequest');

export type GenerateRequest = z.infer<typeof generateRequestSchema>;

export const cancelRequestSchema = z
  .strictObject({ reason: z.string().trim().min(1).max(500).optional() })
  .openapi('CancelRequest');

export const jobIdParamSchema = z.object({ job_id: z.uuid('must be a job id (a UUID)') });

export const listJobsQuerySchema = z.strictObject({
  status: z.enum(JOB_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(LIMITS.maxPageSize).default(LIMITS.defaultPageSize),
  cursor: z.string().max(200).optional(),
});

const timestamp = z.iso.datetime().nullable();

export const mediaReplySchema = z
  .object({
    index: z.number().int(),
    status: z.enum(MEDIA_STATUSES),
    media_url: z.string().nullable().openapi({ description: 'Where the provider served this output.' }),
    s3_key: z.string(),
    presigned_media_url: z.string().nullable().openapi({ description: 'A short-lived GET URL, minted per request, once the output is stored.' }),
    content_type: z.string().nullable(),
    size_bytes: z.number().int().nullable(),
    sha256: z.string().nullable(),
    error_message: z.string().nullable(),
  })
  .openapi('Media');

export const statusReplySchema = z
  .object({
    job_id: z.string(),
    status: z.enum(JOB_STATUSES),
    model: z.string(),
    prompt: z.string(),
    num_outputs: z.number().int(),
    seed: z.number().int(),
    output_format: z.enum(OUTPUT_FORMATS),
    media: z.array(mediaReplySchema),
    error_message: z.string().nullable(),
    retry_count: z.number().int(),
    created_at: timestamp,
    updated_at: timestamp,
    started_at: timestamp,
    completed_at: timestamp,
  })
  .openapi('JobStatus');

export const generateReplySchema = z
  .object({
    job_id: z.string(),
    status: z.literal('PENDING'),
    message: z.string(),
    status_url: z.string(),
    workflow_id: z.string(),
  })
  .openapi('GenerateAccepted');

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
