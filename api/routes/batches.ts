import { createHash } from 'node:crypto';
import { Router, type Response } from 'express';
import { z } from 'zod';
import { getBatch, listBatchJobs } from '../../db/queries/batches';
import type { BatchRow } from '../../db/schema';
import { toBatchReply } from '../../jobs/batch-reply';
import { submitBatch } from '../../jobs/batches';
import { callerOf, canSee, fairnessOf } from '../auth';
import type { ApiDependencies } from '../dependencies';
import {
  common,
  idempotentReplayedHeader,
  json,
  jsonBodyProblems,
  locationHeader,
  problem,
  security,
  unavailable,
  type OpenApiRegistry,
} from '../openapi-parts';
import { Problem } from '../problem';
import { batchIdParamSchema, batchReplySchema, batchRequestSchema, LIMITS, type BatchRequest } from '../schemas';
import {
  checkRequest,
  checkWebhookUrl,
  newJobOf,
  parseIdempotencyKey,
  requestHash,
  runningJobsCap,
  tooManyRunningJobs,
} from '../submission';
import { parseOrThrow, requireJsonBody } from '../validation';

/** A stable hash of the validated batch: each item hashed as POST /api/v1/generate hashes it, in order. */
export function batchRequestHash(request: BatchRequest): string {
  return createHash('sha256')
    .update(JSON.stringify({ jobs: request.jobs.map(requestHash), webhook_url: request.webhook_url }))
    .digest('hex');
}

function batchNotFound(batchId: string): Problem {
  return new Problem(404, 'Batch not found', `There is no batch with id '${batchId}'.`);
}

/** The batch when the caller may see it; another key's batch is as unknown as a missing one (404). */
async function visibleBatch(db: ApiDependencies['db'], res: Response, params: Record<string, unknown>) {
  const parsed = batchIdParamSchema.safeParse(params);
  if (!parsed.success) throw batchNotFound(String(params.batch_id ?? ''));
  const batch = await getBatch(db, parsed.data.batch_id);
  if (!batch || !canSee(callerOf(res), batch)) throw batchNotFound(parsed.data.batch_id);
  return batch;
}

/** POST /api/v1/batches (up to 100 jobs in one request, all or nothing) and GET /api/v1/batches/{id}. */
export function batchesRouter(deps: ApiDependencies): Router {
  const { config, db, presigner } = deps;
  const router = Router();
  const replyOf = async (batch: BatchRow) => toBatchReply(batch, await listBatchJobs(db, batch.id), presigner);

  router.post('/api/v1/batches', requireJsonBody(), async (req, res) => {
    const caller = callerOf(res);
    const idempotencyKey = parseIdempotencyKey(req.header('idempotency-key'));
    const request = parseOrThrow(batchRequestSchema, req.body, 'body', { indexes: 'brackets' });
    if (request.webhook_url) checkWebhookUrl(request.webhook_url, config);
    request.jobs.forEach((item, index) => checkRequest(item, caller, config, `jobs[${index}].`));
    const submitted = await submitBatch(deps, {
      batch: {
        owner: caller.owner,
        idempotencyKey,
        requestHash: batchRequestHash(request),
        webhookUrl: request.webhook_url,
      },
      jobs: request.jobs.map((item) => newJobOf(item, caller, config)),
      fairness: fairnessOf(caller),
      runningJobsCap: runningJobsCap(caller, config.MAX_RUNNING_JOBS_PER_KEY),
    });

    switch (submitted.outcome) {
      case 'running-jobs-cap':
        throw tooManyRunningJobs(caller, submitted.running, submitted.limit, request.jobs.length);
      case 'key-reused':
        throw new Problem(
          409,
          'Idempotency-Key reused',
          `The Idempotency-Key '${idempotencyKey}' was already used with a different request (batch ${submitted.batch.id}); use a new key for a new request.`,
        );
      case 'not-started': {
        if (!submitted.kept) throw Problem.unavailable('Temporal');
        const { batch, jobs } = submitted.kept;
        throw new Problem(
          503,
          'Service unavailable',
          `Temporal failed while the batch's workflows were started: the jobs no worker had started were removed, and the ${jobs} that had started run on in batch ${batch.id} (GET /api/v1/batches/${batch.id}). Retry shortly.`,
          { headers: { 'Retry-After': '5' } },
        );
      }
      case 'replayed':
        res.status(200).setHeader('Idempotent-Replayed', 'true');
        break;
      case 'accepted':
        res.status(202);
    }
    res.location(`/api/v1/batches/${submitted.batch.id}`).json(await replyOf(submitted.batch));
  });

  router.get('/api/v1/batches/:batch_id', async (req, res) => {
    res.json(await replyOf(await visibleBatch(db, res, req.params)));
  });

  return router;
}

const idempotencyKeyHeader = z.string().max(LIMITS.maxIdempotencyKeyLength).optional().openapi({
  description:
    'Any 1-255 visible ASCII characters, unique per batch; scoped to the API key (or to all anonymous callers when AUTH_MODE=off). The same key and body answer with the same batch (200); another body is 409.',
});
const batchIdParam = z.object({
  batch_id: z.string().openapi({ description: 'The id returned by POST /api/v1/batches.' }),
});

/** This router's paths in the OpenAPI document (/openapi.json, /docs). */
export function registerBatchesPaths(registry: OpenApiRegistry): void {
  registry.registerPath({
    method: 'post',
    path: '/api/v1/batches',
    summary: 'Submit up to 100 jobs at once, all or nothing',
    description: `Each item of \`jobs\` is the body of POST /api/v1/generate and becomes a job as it would (one row, one workflow, the same limits, priorities and webhooks). The whole batch is validated first: one bad item is a 422 (403 for a priority) whose errors name it (\`jobs[3].prompt\`), and nothing is created. MAX_RUNNING_JOBS_PER_KEY counts every job of the batch. With an \`Idempotency-Key\`, a repeat of the same batch answers with the batch the first request created. Bodies up to ${LIMITS.maxBatchBodyBytes} bytes.`,
    security,
    request: {
      headers: z.object({ 'Idempotency-Key': idempotencyKeyHeader }),
      body: { required: true, content: { 'application/json': { schema: batchRequestSchema } } },
    },
    responses: {
      200: {
        ...json('A replay: the batch this Idempotency-Key already created, as it is now', batchReplySchema),
        headers: { ...idempotentReplayedHeader, ...locationHeader("The batch's URL") },
      },
      202: {
        ...json('Accepted: every job is recorded and its workflow started', batchReplySchema),
        headers: locationHeader("The batch's URL"),
      },
      ...jsonBodyProblems,
      401: common[401],
      403: problem("An item's `priority` is more urgent than the API key's `--max-priority`; nothing was created"),
      409: problem('The Idempotency-Key was already used with a different body'),
      422: problem(
        'An item (or the batch) is invalid; `errors` names each field, as `jobs[i].field`; nothing was created',
      ),
      429: {
        ...common[429],
        description: `${common[429].description} Also: the batch would take the key past MAX_RUNNING_JOBS_PER_KEY.`,
      },
      503: unavailable('A dependency is down; nothing was created'),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/v1/batches/{batch_id}',
    summary: 'A batch: how many of its jobs are in each status, and each job',
    security,
    request: { params: batchIdParam },
    responses: {
      200: json('The batch', batchReplySchema),
      ...common,
      404: problem("Unknown batch, or another key's"),
    },
  });
}
