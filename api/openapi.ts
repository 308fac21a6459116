import { OpenApiGeneratorV31, OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { JOB_STATUSES } from '../common/statuses';
import {
  cancelReplySchema,
  cancelRequestSchema,
  generateReplySchema,
  generateRequestSchema,
  LIMITS,
  listJobsReplySchema,
  problemSchema,
  readinessSchema,
  statusReplySchema,
} from './schemas';

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: problemSchema } } });
const json = <T extends z.ZodType>(description: string, schema: T) => ({ description, content: { 'application/json': { schema } } });
const jobIdParam = z.object({ job_id: z.string().openapi({ description: 'The id returned by POST /api/v1/generate.' }) });

export function buildOpenApiDocument() {
  const registry = new OpenAPIRegistry();

  registry.registerPath({
    method: 'post',
    path: '/api/v1/generate',
    summary: 'Submit a generation job',
    description: `Records the job and starts its workflow. Limits: at most ${LIMITS.maxOutputs} outputs, prompts up to ${LIMITS.maxPromptLength} characters, bodies up to ${LIMITS.maxBodyBytes} bytes. Unknown fields are rejected.`,
    request: { body: { required: true, content: { 'application/json': { schema: generateRequestSchema } } } },
    responses: {
      202: json('Accepted; poll the status URL.', generateReplySchema),
      400: problem('Malformed JSON'),
      413: problem('Body too large'),
      415: problem('Not JSON'),
      422: problem('A field is missing, unknown or out of range; `errors` names each.'),
      503: problem('A dependency is down; nothing was created.'),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/api/v1/status/{job_id}',
    summary: "A job's status, with presigned URLs for its stored outputs",
    request: { params: jobIdParam },
    responses: { 200: json('The job', statusReplySchema), 404: problem('Unknown job'), 503: problem('A dependency is down') },
  });

  registry.registerPath({
    method: 'get',
    path: '/api/v1/jobs',
    summary: 'Jobs, newest first',
    request: {
      query: z.object({
        status: z.enum(JOB_STATUSES).optional(),
        limit: z.number().int().min(1).max(LIMITS.maxPageSize).optional().openapi({ default: LIMITS.defaultPageSize }),
        cursor: z.string().optional().openapi({ description: 'next_cursor of the previous page' }),
      }),
    },
    responses: { 200: json('A page of jobs', listJobsReplySchema), 422: problem('Bad filter or cursor') },
  });

  registry.registerPath({
    method: 'post',
    path: '/api/v1/jobs/{job_id}/cancel',
    summary: 'Cancel a job',
    description: 'Stops generation and uploads and cancels the upstream prediction; outputs already stored stay available.',
    request: { params: jobIdParam, body: { required: false, content: { 'application/json': { schema: cancelRequestSchema } } } },
    responses: {
      202: json('Cancellation requested', cancelReplySchema),
      404: problem('Unknown job'),
      409: problem('The job already ended'),
      503: problem('A dependency is down'),
    },
  });

  registry.registerPath({ method: 'get', path: '/healthz', summary: 'The process is up', responses: { 200: json('Up', z.object({ status: z.literal('ok') })) } });
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
      description: 'Durable media generation: each job is a Temporal workflow; media is stored in S3 and served through presigned URLs.',
    },
  });
}
