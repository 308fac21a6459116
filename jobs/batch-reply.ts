import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import type { Presigner } from '../common/presigner';
import { JOB_STATUSES, type JobStatus } from '../common/statuses';
import type { JobWithMedia } from '../db/queries/jobs';
import type { BatchRow } from '../db/schema';
import { statusReplySchema, toStatusReply } from './status-reply';

extendZodWithOpenApi(z);

export const batchCountsSchema = z
  .object(
    Object.fromEntries(JOB_STATUSES.map((status) => [status, z.number().int()])) as Record<JobStatus, z.ZodNumber>,
  )
  .openapi('BatchCounts', { description: "How many of the batch's jobs are in each status; every status is named." });

/** What POST /api/v1/batches and GET /api/v1/batches/{id} answer. */
export const batchReplySchema = z
  .object({
    batch_id: z.string(),
    status_url: z.string().openapi({ description: 'GET it for the batch as it is now.' }),
    created_at: z.iso.datetime(),
    ended_at: z.iso
      .datetime()
      .nullable()
      .openapi({ description: 'When its last job ended (first ended: a retry of a job later does not reopen it).' }),
    webhook_url: z.string().nullable().openapi({ description: "The batch's webhook, if it has one." }),
    counts: batchCountsSchema,
    jobs: z.array(statusReplySchema).openapi({
      description:
        "The status reply of each job, in the order of the request's `jobs` (queue_position is not counted).",
    }),
  })
  .openapi('Batch');

export type BatchReply = z.infer<typeof batchReplySchema>;

/** How many jobs are in each status, every status named (0 included). */
export function countByStatus(jobs: Pick<JobWithMedia, 'status'>[]): Record<JobStatus, number> {
  const counts = Object.fromEntries(JOB_STATUSES.map((status) => [status, 0])) as Record<JobStatus, number>;
  for (const job of jobs) counts[job.status] += 1;
  return counts;
}

/** The batch and each of its jobs' status replies, presigned URLs minted now. */
export async function toBatchReply(batch: BatchRow, jobs: JobWithMedia[], presigner: Presigner): Promise<BatchReply> {
  return {
    batch_id: batch.id,
    status_url: `/api/v1/batches/${batch.id}`,
    created_at: batch.createdAt.toISOString(),
    ended_at: batch.endedAt ? batch.endedAt.toISOString() : null,
    webhook_url: batch.webhookUrl,
    counts: countByStatus(jobs),
    jobs: await Promise.all(jobs.map((job) => toStatusReply(job, presigner))),
  };
}
