import { Router } from 'express';
import { z } from 'zod';
import { getJob } from '../../db/queries/jobs';
import { deleteJobData } from '../../jobs/data-removal';
import { regenerateFailedJob, retryFailedJob } from '../../jobs/rerun';
import { callerOf, fairnessOf } from '../auth';
import type { ApiDependencies } from '../dependencies';
import {
  common,
  idempotentReplayedHeader,
  jobIdParam,
  json,
  jsonBodyProblems,
  locationHeader,
  problem,
  security,
  unavailable,
  type OpenApiRegistry,
} from '../openapi-parts';
import { Problem } from '../problem';
import { statusReplySchema } from '../schemas';
import { checkPriority, runningJobsCap, tooManyRunningJobs } from '../submission';
import { parseOrThrow, requireJsonBody } from '../validation';

export const retryRequestSchema = z
  .strictObject({
    regenerate: z.boolean().optional().openapi({
      description:
        "true: a new job with this job's request (a new prediction, billed again), linked to it by `retry_of`, for when the provider's outputs are gone. Once per failed job: asking again answers with that job (200).",
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

  router.post('/api/v1/jobs/:job_id/retry', requireJsonBody(), async (req, res) => {
    const jobId = parseJobId(req.params);
    const { regenerate } = parseOrThrow(retryRequestSchema, req.body ?? {}, 'body');
    const job = await visibleJob(db, res, jobId);
    if (job.status !== 'FAILED')
      throw new Problem(409, 'Job not failed', `Job '${jobId}' is ${job.status}; only a FAILED job can be retried.`);
    if (regenerate) {
      const caller = callerOf(res);
      checkPriority(caller, job.priority);
      const regenerated = await regenerateFailedJob(deps, job, {
        clientAddress: caller.clientAddress,
        fairness: fairnessOf(caller),
        runningJobsCap: runningJobsCap(caller, config.MAX_RUNNING_JOBS_PER_KEY),
        maxRetentionSeconds: config.MEDIA_RETENTION_SECONDS,
      });
      switch (regenerated.outcome) {
        case 'not-failed':
          throw new Problem(409, 'Job not failed', `Job '${jobId}' is no longer FAILED.`);
        case 'running-jobs-cap':
          throw tooManyRunningJobs(caller, regenerated.running, regenerated.limit);
        case 'not-started':
          throw Problem.unavailable('Temporal');
        case 'replayed':
          res.status(200).setHeader('Idempotent-Replayed', 'true');
          break;
        case 'accepted':
          res.status(202);
      }
      const created = await getJob(db, regenerated.job.id);
      if (!created) throw Problem.unavailable('The database');
      res.location(`/api/v1/status/${created.id}`).json(await statusReplyOf(deps, created));
      return;
    }
    const caller = callerOf(res);
    // The retry runs at the job's priority: the key may no longer be allowed it (`apikey set --max-priority`).
    checkPriority(caller, job.priority);
    const retried = await retryFailedJob(
      deps,
      job,
      fairnessOf(caller),
      runningJobsCap(caller, config.MAX_RUNNING_JOBS_PER_KEY),
    );
    switch (retried.outcome) {
      case 'running-jobs-cap':
        throw tooManyRunningJobs(caller, retried.running, retried.limit);
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
      case 'still-ending':
        res.setHeader('Retry-After', '5');
        throw new Problem(
          409,
          'Job still ending',
          `Job '${jobId}' is FAILED and its end is still being announced (its webhook messages); retry in a few seconds.`,
        );
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
      503: unavailable('A dependency is down'),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/api/v1/jobs/{job_id}/retry',
    summary: "Store a FAILED job's failed outputs again, or generate it again in a new job",
    description:
      '`{}`: the outputs that failed are stored again from the prediction\'s recorded output URLs; nothing is generated or billed again. The job is PROCESSING again with `retry_count` one higher (its event stream and its webhook say so) and ends COMPLETED or FAILED again. 409 when the job is not FAILED, or when the provider\'s outputs are gone (Replicate deletes them an hour after the prediction). `{"regenerate": true}`: a new job with the same request (model, prompt, num_outputs, seed, output_format, priority, webhook, deadline_seconds, retention), linked by `retry_of`, submitted as POST /api/v1/generate submits it (a new prediction, billed again); 202 with its status reply. A failed job is regenerated once: asking again answers 200 with the same new job (`Idempotent-Replayed: true`), so a repeated request is not billed twice; regenerate the new job if it fails too.',
    security,
    request: {
      params: jobIdParam,
      body: { required: false, content: { 'application/json': { schema: retryRequestSchema } } },
    },
    responses: {
      200: {
        ...json('regenerate: the job an earlier regenerate of this job made, in its current status', statusReplySchema),
        headers: { ...idempotentReplayedHeader, ...locationHeader("regenerate: the new job's status URL") },
      },
      202: {
        ...json(
          "`{}`: the retry started, the status reply, PROCESSING. regenerate: the new job's status reply, PENDING",
          statusReplySchema,
        ),
        headers: locationHeader("regenerate: the new job's status URL"),
      },
      ...common,
      ...jsonBodyProblems,
      403: problem("The job's `priority` is more urgent than the API key's `--max-priority` now; the job stays FAILED"),
      404: problem("Unknown job, or another key's"),
      409: {
        ...problem(
          "The job is not FAILED; or (`{}`) its outputs are gone (the provider's, or the stored ones removed or expiring), or its end is still being announced, by its run or by the settle of a run that was lost (`Retry-After`)",
        ),
        headers: {
          'Retry-After': { description: 'Seconds, for a job still ending', schema: { type: 'integer' as const } },
        },
      },
      422: problem('`regenerate` is not a boolean, or an unknown field; `errors` names each.'),
      429: {
        ...common[429],
        description: `${common[429].description} Also: MAX_RUNNING_JOBS_PER_KEY jobs of the key are already PENDING or PROCESSING (the job stays FAILED).`,
      },
      503: unavailable('A dependency is down; nothing was created'),
    },
  });
}
