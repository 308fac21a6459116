import { Router } from 'express';
import { isTerminalStatus } from '../../common/statuses';
import { cancelSignal, workflowIdForJob } from '../../common/temporal';
import { finishJob, getJob, listJobs } from '../../db/queries/jobs';
import type { ApiDependencies } from '../dependencies';
import { Problem } from '../problem';
import { cancelRequestSchema, jobIdParamSchema, listJobsQuerySchema } from '../schemas';
import { decodeCursor, encodeCursor, toStatusReply, type Presigner } from '../serialize';
import { withTimeout } from '../timeout';
import { parseOrThrow, requireJsonBody } from '../validation';

function jobNotFound(jobId: string): Problem {
  return new Problem(404, 'Job not found', `There is no job with id '${jobId}'.`);
}

/** Job ids are opaque to clients: anything that is not one of ours is simply not found. */
function parseJobId(params: Record<string, unknown>): string {
  const parsed = jobIdParamSchema.safeParse(params);
  if (!parsed.success) throw jobNotFound(String(params.job_id ?? ""));
  return parsed.data.job_id;
}

export function jobsRouter({ config, db, temporal, presignS3, logger }: ApiDependencies): Router {
  const router = Router();
  const presigner: Presigner = { client: presignS3, bucket: config.S3_BUCKET_NAME, expiresInSeconds: config.PRESIGNED_URL_EXPIRES_SECONDS };

  router.get('/api/v1/status/:job_id', async (req, res) => {
    const jobId = parseJobId(req.params);
    const job = await getJob(db, jobId);
    if (!job) throw jobNotFound(jobId);
    res.json(await toStatusReply(job, presigner));
  });

  router.get('/api/v1/jobs', async (req, res) => {
    const query = parseOrThrow(listJobsQuerySchema, req.query, 'query');
    const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    if (query.cursor !== undefined && !cursor) {
      throw new Problem(422, 'Invalid request', 'The request query is invalid: cursor: is not a cursor this API returned', {
        errors: [{ field: 'cursor', message: 'is not a cursor this API returned' }],
      });
    }
    const page = await listJobs(db, { status: query.status, limit: query.limit + 1, cursor });
    const jobs = page.slice(0, query.limit);
    const last = jobs.at(-1);
    res.json({
      jobs: await Promise.all(jobs.map((job) => toStatusReply(job, presigner))),
      next_cursor: page.length > query.limit && last ? encodeCursor(last) : null,
    });
  });

  router.post('/api/v1/jobs/:job_id/cancel', requireJsonBody({ optional: true }), async (req, res) => {
    const jobId = parseJobId(req.params);
    const { reason } = parseOrThrow(cancelRequestSchema, req.body ?? {}, 'body');
    const job = await getJob(db, jobId);
    if (!job) throw jobNotFound(jobId);
    if (isTerminalStatus(job.status)) {
      throw new Problem(409, 'Job already ended', `Job '${jobId}' is already ${job.status} and cannot be cancelled.`);
    }
    const cancelReason = reason ?? 'Cancelled through the API';
    try {
      await withTimeout(
        () => temporal.workflow.getHandle(workflowIdForJob(jobId)).signal(cancelSignal, { reason: cancelReason }),
        3_000,
        'Temporal',
      );
    } catch (error) {
      if ((error as Error).name !== 'WorkflowNotFoundError') {
        logger.warn({ err: error, jobId }, 'could not signal the workflow');
        throw Problem.unavailable('Temporal');
      }
      // The workflow already ended without recording it (terminated): settle the row here.
      await finishJob(db, jobId, { status: 'CANCELLED', errorMessage: cancelReason });
    }
    res.status(202).json({ job_id: jobId, status: job.status, message: `Cancellation requested: ${cancelReason}` });
  });

  return router;
}
