import { HeadObjectCommand } from '@aws-sdk/client-s3';
import type { Config } from '../../common/config';
import { createS3Client } from '../../common/s3';
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { progressQuery, RECONCILE_WORKFLOW_TYPE, workflowIdForJob } from '../../common/temporal';
import type { Database } from '../../db/client';
import { createJob } from '../../db/queries/jobs';
import { jobs } from '../../db/schema';
import { postJson, validRequest, type TestStack } from './stack';
import { waitFor } from './wait';

/** POST /api/v1/generate with `validRequest` and these fields; the new job's id (anything but a 202 fails). */
export async function submitJob(
  stack: Pick<TestStack, 'baseUrl'>,
  fields: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<string> {
  const reply = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, ...fields }, headers);
  if (reply.status !== 202)
    throw new Error(`POST /api/v1/generate answered ${reply.status}, not 202: ${JSON.stringify(reply.body)}`);
  return reply.body!.job_id as string;
}

/** Resolves once the job's workflow says its prediction exists (its generate step runs on some worker). */
export async function waitForPrediction(stack: Pick<TestStack, 'client'>, jobId: string): Promise<string> {
  const handle = stack.client.workflow.getHandle(workflowIdForJob(jobId));
  return waitFor(
    `job ${jobId} to create its prediction`,
    async () => (await handle.query(progressQuery)).predictionId,
    20_000,
    100,
  );
}

/** A PENDING job recorded five minutes ago with no workflow: what the reconciler ends. */
export async function insertJobWithoutWorkflow(db: Database): Promise<string> {
  const job = await createJob(db, {
    model: 'a/b',
    prompt: `orphan ${randomUUID()}`,
    numOutputs: 1,
    seed: 1,
    outputFormat: 'png',
  });
  await db
    .update(jobs)
    .set({ createdAt: new Date(Date.now() - 5 * 60_000) })
    .where(eq(jobs.id, job.id));
  return job.id;
}

/** One pass of the reconciler over every unfinished job, on the stack's task queue. */
export function reconcileOnce(stack: Pick<TestStack, 'client' | 'config'>): Promise<unknown> {
  return stack.client.workflow.execute(RECONCILE_WORKFLOW_TYPE, {
    taskQueue: stack.config.TEMPORAL_TASK_QUEUE,
    workflowId: `reconcile-${randomUUID()}`,
  });
}

/** Whether the bucket holds `key`: what a deletion or retention test checks, straight from S3. */
export async function objectExists(config: Config, key: string): Promise<boolean> {
  const s3 = createS3Client(config);
  try {
    await s3.send(new HeadObjectCommand({ Bucket: config.S3_BUCKET_NAME, Key: key }));
    return true;
  } catch (error) {
    if ((error as { name?: string }).name === 'NotFound') return false;
    throw error;
  } finally {
    s3.destroy();
  }
}
