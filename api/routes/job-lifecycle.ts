import { Router } from 'express';
import { getJob } from '../../db/queries/jobs';
import { deleteJobData } from '../../jobs/data-removal';
import type { ApiDependencies } from '../dependencies';
import { common, jobIdParam, json, problem, security, type OpenApiRegistry } from '../openapi-parts';
import { Problem } from '../problem';
import { statusReplySchema } from '../schemas';
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
}
