import { randomInt } from 'node:crypto';
import { Router } from 'express';
import { MEDIA_GENERATION_WORKFLOW_TYPE, mediaJobStatusSearchAttribute, workflowIdForJob, type MediaGenerationInput } from '../../common/temporal';
import { createJob, deleteJob } from '../../db/queries/jobs';
import type { ApiDependencies } from '../dependencies';
import { Problem } from '../problem';
import { generateRequestSchema, LIMITS } from '../schemas';
import { withTimeout } from '../timeout';
import { parseOrThrow, requireJsonBody } from '../validation';

const TEMPORAL_START_DEADLINE_MS = 3_000;

export function generateRouter({ config, db, temporal, logger }: ApiDependencies): Router {
  const router = Router();

  router.post('/api/v1/generate', requireJsonBody(), async (req, res) => {
    const request = parseOrThrow(generateRequestSchema, req.body, 'body');
    const job = await createJob(db, {
      model: request.model,
      prompt: request.prompt,
      numOutputs: request.num_outputs,
      seed: request.seed ?? randomInt(0, LIMITS.maxSeed + 1),
      outputFormat: request.output_format,
    });
    const workflowId = workflowIdForJob(job.id);
    const input: MediaGenerationInput = {
      jobId: job.id,
      model: job.model,
      prompt: job.prompt,
      numOutputs: job.numOutputs,
      seed: job.seed,
      outputFormat: job.outputFormat,
      policies: {
        generateMaxAttempts: config.GENERATE_MAX_ATTEMPTS,
        persistMaxAttempts: config.PERSIST_MAX_ATTEMPTS,
        heartbeatTimeoutSeconds: config.ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS,
      },
    };
    try {
      await withTimeout(
        () =>
          temporal.workflow.start(MEDIA_GENERATION_WORKFLOW_TYPE, {
          taskQueue: config.TEMPORAL_TASK_QUEUE,
          workflowId,
          args: [input],
          typedSearchAttributes: [{ key: mediaJobStatusSearchAttribute, value: 'PENDING' }],
          memo: { model: job.model, prompt: job.prompt },
          staticSummary: `${job.numOutputs} × ${job.outputFormat} from ${job.model}`,
          }),
        TEMPORAL_START_DEADLINE_MS,
        'Temporal',
      );
    } catch (error) {
      logger.warn({ err: error, jobId: job.id }, 'could not start the workflow; removing the job');
      // The start may have reached the server before failing: a workflow left without its row
      // fails on its first step (JobNotFound), and is terminated here when Temporal answers.
      await deleteJob(db, job.id).catch((deleteError: unknown) => logger.error({ err: deleteError, jobId: job.id }, 'could not remove the job'));
      void withTimeout(() => temporal.workflow.getHandle(workflowId).terminate('the API could not confirm the start'), 30_000, 'Temporal').catch(
        () => undefined,
      );
      throw Problem.unavailable('Temporal');
    }
    res
      .status(202)
      .location(`/api/v1/status/${job.id}`)
      .json({
        job_id: job.id,
        status: 'PENDING',
        message: `Job accepted: ${job.numOutputs} output(s) will be generated.`,
        status_url: `/api/v1/status/${job.id}`,
        workflow_id: workflowId,
      });
  });

  return router;
}
