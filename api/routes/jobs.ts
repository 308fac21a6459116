import { randomUUID } from 'node:crypto';
import { Router, type Response } from 'express';
import { REDELIVER_WEBHOOK_WORKFLOW_TYPE, type RedeliverWebhookInput } from '../../common/temporal';
import { getJob, listJobs, queueEstimate, type JobWithMedia } from '../../db/queries/jobs';
import { cancelJob, temporalPriorityOf, waitUntilJobEnds } from '../../jobs/lifecycle';
import { isTerminalStatus } from '../../common/statuses';
import { preferredWaitSeconds, waitEndSignal } from '../prefer-wait';
import { getDelivery, listDeliveries } from '../../db/queries/webhook-deliveries';
import type { WebhookDeliveryRow } from '../../db/schema';
import { callerOf, canSee, fairnessOf } from '../auth';
import type { ApiDependencies } from '../dependencies';
import { Problem } from '../problem';
import { limitRedeliveries } from '../rate-limit';
import {
  cancelReplySchema,
  cancelRequestSchema,
  deliveryParamsSchema,
  jobIdParamSchema,
  LIMITS,
  listJobsQuerySchema,
  listJobsReplySchema,
  redeliverReplySchema,
  statusReplySchema,
  webhookDeliveriesReplySchema,
} from '../schemas';
import { toStatusReply } from '../../jobs/status-reply';
import { decodeCursor, encodeCursor } from '../cursor';
import { withTemporalTimeout } from '../../common/timeout';
import { parseOrThrow, requireJsonBody } from '../validation';
import { z } from 'zod';
import { JOB_STATUSES } from '../../common/statuses';
import { JOB_PRIORITIES } from '../../common/priorities';
import {
  common,
  jobIdParam,
  json,
  jsonBodyProblems,
  preferenceAppliedHeader,
  unavailable,
  preferWaitHeader,
  problem,
  security,
  type OpenApiRegistry,
} from '../openapi-parts';

function jobNotFound(jobId: string): Problem {
  return new Problem(404, 'Job not found', `There is no job with id '${jobId}'.`);
}

/** Job ids are opaque to clients: anything that is not one of ours is simply not found. */
export function parseJobId(params: Record<string, unknown>): string {
  const parsed = jobIdParamSchema.safeParse(params);
  if (!parsed.success) throw jobNotFound(String(params.job_id ?? ''));
  return parsed.data.job_id;
}

/** The job when the caller may see it; another key's job is as unknown as a missing one (404, not 403). */
export async function visibleJob(db: ApiDependencies['db'], res: Response, jobId: string): Promise<JobWithMedia> {
  const job = await getJob(db, jobId);
  if (!job || !canSee(callerOf(res), job)) throw jobNotFound(jobId);
  return job;
}

/** The status reply, with its place in the queue when it waits for a worker. */
export async function statusReplyOf(deps: Pick<ApiDependencies, 'db' | 'presigner'>, job: JobWithMedia) {
  const queue = job.status === 'PENDING' ? await queueEstimate(deps.db, job) : undefined;
  return toStatusReply(job, deps.presigner, queue);
}

function deliveryReply(row: WebhookDeliveryRow) {
  return {
    delivery_id: row.id,
    job_id: row.jobId,
    message_id: row.messageId,
    event: row.event,
    output_index: row.outputIndex,
    attempt: row.attempt,
    url: row.url,
    status_code: row.statusCode,
    response_snippet: row.responseSnippet,
    error: row.error,
    succeeded: row.statusCode !== null && row.statusCode >= 200 && row.statusCode < 300,
    created_at: row.createdAt.toISOString(),
    finished_at: row.finishedAt ? row.finishedAt.toISOString() : null,
  };
}

export function jobsRouter(deps: ApiDependencies): Router {
  const { config, db, temporal, presigner, logger } = deps;
  const router = Router();

  router.get('/api/v1/status/:job_id', async (req, res) => {
    let job = await visibleJob(db, res, parseJobId(req.params));
    const waitSeconds = preferredWaitSeconds(req);
    if (waitSeconds !== undefined) {
      res.setHeader('Preference-Applied', `wait=${waitSeconds}`);
      if (!isTerminalStatus(job.status)) {
        await waitUntilJobEnds(deps, job.id, waitSeconds * 1000, waitEndSignal(res, deps.stopping));
        if (res.destroyed) return;
        job = await visibleJob(db, res, job.id);
      }
    }
    res.json(await statusReplyOf(deps, job));
  });

  router.get('/api/v1/jobs', async (req, res) => {
    const query = parseOrThrow(listJobsQuerySchema, req.query, 'query');
    const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    if (query.cursor !== undefined && !cursor) {
      throw new Problem(
        422,
        'Invalid request',
        'The request query is invalid: cursor: is not a cursor this API returned',
        {
          errors: [{ field: 'cursor', message: 'is not a cursor this API returned' }],
        },
      );
    }
    const caller = callerOf(res);
    const page = await listJobs(db, {
      status: query.status,
      priority: query.priority,
      owner: caller.authenticated ? caller.owner : undefined,
      limit: query.limit + 1,
      cursor,
    });
    const jobs = page.slice(0, query.limit);
    const last = jobs.at(-1);
    res.json({
      jobs: await Promise.all(jobs.map((job) => toStatusReply(job, presigner))),
      next_cursor: page.length > query.limit && last ? encodeCursor(last) : null,
    });
  });

  router.post('/api/v1/jobs/:job_id/cancel', requireJsonBody(), async (req, res) => {
    const jobId = parseJobId(req.params);
    const { reason } = parseOrThrow(cancelRequestSchema, req.body ?? {}, 'body');
    const job = await visibleJob(db, res, jobId);
    const cancelReason = reason ?? 'Cancelled through the API';
    const cancelled = await cancelJob(deps, job, cancelReason);
    if (cancelled.outcome === 'already-ended') {
      throw new Problem(
        409,
        'Job already ended',
        `Job '${jobId}' is already ${cancelled.status} and cannot be cancelled.`,
      );
    }
    if (cancelled.outcome === 'temporal-unavailable') throw Problem.unavailable('Temporal');
    res.status(202).json({ job_id: jobId, status: job.status, message: `Cancellation requested: ${cancelReason}` });
  });

  router.get('/api/v1/jobs/:job_id/webhook-deliveries', async (req, res) => {
    const job = await visibleJob(db, res, parseJobId(req.params));
    res.json({ deliveries: (await listDeliveries(db, job.id)).map(deliveryReply) });
  });

  router.post('/api/v1/jobs/:job_id/webhook-deliveries/:delivery_id/redeliver', async (req, res) => {
    const params = deliveryParamsSchema.safeParse(req.params);
    if (!params.success)
      throw new Problem(
        404,
        'Delivery not found',
        `There is no webhook delivery '${String(req.params.delivery_id)}' for job '${String(req.params.job_id)}'.`,
      );
    const job = await visibleJob(db, res, params.data.job_id);
    const delivery = await getDelivery(db, job.id, params.data.delivery_id);
    if (!delivery)
      throw new Problem(
        404,
        'Delivery not found',
        `There is no webhook delivery '${params.data.delivery_id}' for job '${job.id}'.`,
      );
    await limitRedeliveries({ config, db }, job.id);
    const workflowId = `webhook-redelivery-${delivery.id}-${randomUUID()}`;
    const input: RedeliverWebhookInput = {
      message: {
        jobId: job.id,
        messageId: delivery.messageId,
        event: delivery.event,
        url: delivery.url,
        ...(delivery.outputIndex !== null ? { outputIndex: delivery.outputIndex } : {}),
      },
      policies: { webhookInitialIntervalSeconds: config.WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS },
    };
    try {
      await withTemporalTimeout(
        temporal.connection,
        () =>
          temporal.workflow.start(REDELIVER_WEBHOOK_WORKFLOW_TYPE, {
            taskQueue: config.TEMPORAL_TASK_QUEUE,
            workflowId,
            args: [input],
            priority: temporalPriorityOf(job, fairnessOf(callerOf(res))),
          }),
        3_000,
      );
    } catch (error) {
      logger.warn({ err: error, jobId: job.id }, 'could not start a webhook redelivery');
      throw Problem.unavailable('Temporal');
    }
    res.status(202).json({
      delivery_id: delivery.id,
      message_id: delivery.messageId,
      workflow_id: workflowId,
      message: `Redelivery of ${delivery.event} (${delivery.messageId}) started; its attempts appear in the delivery list.`,
    });
  });

  return router;
}

/** This router's paths in the OpenAPI document (/openapi.json, /docs). */
export function registerJobsPaths(registry: OpenApiRegistry): void {
  registry.registerPath({
    method: 'get',
    path: '/api/v1/status/{job_id}',
    summary: "A job's status, with presigned URLs for its stored outputs",
    security,
    request: { params: jobIdParam, headers: z.object({ Prefer: preferWaitHeader }) },
    responses: {
      200: { ...json('The job', statusReplySchema), headers: preferenceAppliedHeader },
      ...common,
      404: problem("Unknown job, or another key's"),
      503: unavailable('A dependency is down'),
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
        priority: z.enum(JOB_PRIORITIES).optional(),
        limit: z.number().int().min(1).max(LIMITS.maxPageSize).optional().openapi({ default: LIMITS.defaultPageSize }),
        cursor: z.string().optional().openapi({ description: 'next_cursor of the previous page' }),
      }),
    },
    responses: {
      200: json('A page of jobs', listJobsReplySchema),
      ...common,
      422: problem('Bad filter or cursor'),
      503: unavailable('A dependency is down'),
    },
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
      ...jsonBodyProblems,
      404: problem("Unknown job, or another key's"),
      409: problem('The job already ended'),
      422: problem('`reason` is empty, too long or not text; or an unknown field. `errors` names each.'),
      503: unavailable('A dependency is down'),
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
      429: {
        ...common[429],
        description: `${common[429].description} Also: more than WEBHOOK_REDELIVERIES_PER_MINUTE redeliveries of this job's webhooks in a minute.`,
      },
      404: problem('Unknown job or delivery'),
      503: unavailable('Temporal is unreachable'),
    },
  });
}
