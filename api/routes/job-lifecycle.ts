import { Router } from 'express';
import { z } from 'zod';
import { getJob } from '../../db/queries/jobs';
import { deleteJobData } from '../../jobs/data-removal';
import { retryFailedJob } from '../../jobs/rerun';
import { callerOf, fairnessOf } from '../auth';
import type { ApiDependencies } from '../dependencies';
import { common, jobIdParam, json, problem, security, type OpenApiRegistry } from '../openapi-parts';
import { Problem } from '../problem';
import { statusReplySchema } from '../schemas';
import { parseOrThrow, requireJsonBody } from '../validation';

export const retryRequestSchema = z
  .strictObject({
    regenerate: z.boolean().optional().openapi({
      description:
        "true: a new prediction in a new job linked to this one (`retry_of`), for when the provider's outputs are gone. Billed again.",
    }),
  })
  .openapi('RetryRequest');
import { parseJobId, statusReplyOf, visibleJob } from './jobs';

/** What clients do to a job after submitting it besides cancelling it: delete it, rerun it. */
export function jobLifecycleRouter(deps: ApiDependencies): Router {
  const { config, db } = deps;
  const router = Router();

  router.delete('/api/v1/jobs/:job_id', async (req, res) => {
    const job = await visibleJob(db, res, parseJobId(req.params));
    const deleted = await deleteJobData({ ...deps, bucket: config.S3_BUCKET_NAME }, job);
    if (deleted.outcome === 'temporal-unavailable') throw Problem.unavailable('Temporal');
    const after = await getJob(db, job.id);
    res.status(deleted.outcome === 'removed' ? 200 : 202).json(await statusReplyOf(deps, after ?? job));
  });

  router.post('/api/v1/jobs/:job_id/retry', requireJsonBody({ optional: true }), async (req, res) => {
    const jobId = parseJobId(req.params);
    const { regenerate } = parseOrThrow(retryRequestSchema, req.body ?? {}, 'body');
    const job = await visibleJob(db, res, jobId);
    if (job.status !== 'FAILED')
      throw new Problem(409, 'Job not failed', `Job '${jobId}' is ${job.status}; only a FAILED job can be retried.`);
    if (regenerate) throw new Problem(501, 'Not implemented', 'regenerate is not available on this server yet.');
    const retried = await retryFailedJob(deps, job, fairnessOf(callerOf(res)));
    switch (retried.outcome) {
      case 'not-failed':
        throw new Problem(409, 'Job not failed', `Job '${jobId}' is no longer FAILED (retried meanwhile).`);
      case 'outputs-gone':
        throw new Problem(
          409,
          'Outputs gone',
          `Job '${jobId}' cannot be retried from its prediction: ${retried.reason}. Send {"regenerate": true} to generate again in a new job.`,
        );
      case 'temporal-unavailable':
        throw Problem.unavailable('Temporal');
      case 'started': {
        const after = await getJob(db, jobId);
        res.status(202).json(await statusReplyOf(deps, after ?? job));
      }
    }
  });

  return router;
}

/** This router's paths in the OpenAPI document (/openapi.json, /docs). */
export function registerJobLifecyclePaths(registry: OpenApiRegistry): void {
  registry.registerPath({
    method: 'delete',
    path: '/api/v1/jobs/{job_id}',
    summary: "Delete a job's stored outputs (cancelling it first if it runs)",
    description:
      'Cancels the job if it has not ended, waits for it to end (up to 30 s), deletes its objects and answers 200 with the status reply (`data_removed: true`, no presigned URLs). The row stays, with its status, timings and hashes. A job still ending after the wait is answered 202; its objects are removed once it has ended. Repeating the request answers the same.',
    security,
    request: { params: jobIdParam },
    responses: {
      200: json('The objects are deleted', statusReplySchema),
      202: json('The job is still ending; its objects are deleted once it has', statusReplySchema),
      ...common,
      404: problem("Unknown job, or another key's"),
      503: problem('A dependency is down'),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/api/v1/jobs/{job_id}/retry',
    summary: "Store a FAILED job's failed outputs again, without a new prediction",
    description:
      '`{}`: the outputs that failed are stored again from the prediction\'s recorded output URLs; nothing is generated or billed again. The job is PROCESSING again with `retry_count` one higher (its event stream says so) and ends COMPLETED or FAILED again. 409 when the job is not FAILED, or when the provider\'s outputs are gone (Replicate deletes them an hour after the prediction); then `{"regenerate": true}` makes a new job with the same request, linked by `retry_of`.',
    security,
    request: {
      params: jobIdParam,
      body: { required: false, content: { 'application/json': { schema: retryRequestSchema } } },
    },
    responses: {
      202: json('The retry started: the status reply, PROCESSING', statusReplySchema),
      ...common,
      404: problem("Unknown job, or another key's"),
      409: problem("The job is not FAILED, or the provider's outputs are gone"),
      503: problem('A dependency is down'),
    },
  });
}
