import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { presignedUrl, type Presigner } from '../common/presigner';
import { JOB_PRIORITIES } from '../common/priorities';
import { JOB_STATUSES, MEDIA_STATUSES, OUTPUT_FORMATS } from '../common/statuses';
import type { JobWithMedia, QueueEstimate } from '../db/queries/jobs';

extendZodWithOpenApi(z);

const timestamp = z.iso.datetime().nullable();

export const mediaReplySchema = z
  .object({
    index: z.number().int(),
    status: z.enum(MEDIA_STATUSES),
    media_url: z.string().nullable().openapi({ description: 'Where the provider served this output.' }),
    s3_key: z.string(),
    presigned_media_url: z
      .string()
      .nullable()
      .openapi({ description: 'A short-lived GET URL, minted per request, once the output is stored.' }),
    content_type: z.string().nullable(),
    size_bytes: z.number().int().nullable(),
    sha256: z.string().nullable(),
    error_message: z.string().nullable(),
  })
  .openapi('Media');

const milliseconds = z.number().int().nullable();

/** Where the job's time went, from its recorded timestamps; null until both ends of a span are known. */
export const jobMetricsSchema = z
  .object({
    queue_ms: milliseconds.openapi({ description: 'From submission (created_at) to a worker starting it.' }),
    predict_ms: milliseconds.openapi({ description: "From its start to the provider's prediction succeeding." }),
    store_ms: milliseconds.openapi({
      description: 'From the prediction succeeding to the job ending (its outputs stored).',
    }),
    total_ms: milliseconds.openapi({ description: 'From submission to the job ending.' }),
    bytes_stored: z.number().int().openapi({ description: 'Bytes of the outputs stored.' }),
  })
  .openapi('JobMetrics');

/**
 * The status reply of the earlier service: what GET /api/v1/status answers and what every
 * webhook carries. One schema and one serializer for both, so they cannot drift.
 */
export const statusReplySchema = z
  .object({
    job_id: z.string(),
    status: z.enum(JOB_STATUSES),
    model: z.string(),
    prompt: z.string(),
    num_outputs: z.number().int(),
    seed: z.number().int(),
    output_format: z.enum(OUTPUT_FORMATS),
    priority: z.enum(JOB_PRIORITIES),
    media: z.array(mediaReplySchema),
    error_message: z.string().nullable(),
    retry_count: z.number().int(),
    created_at: timestamp,
    updated_at: timestamp,
    started_at: timestamp,
    completed_at: timestamp,
    queue_position: z.number().int().nullable().openapi({
      description:
        "PENDING jobs only: 1 for the next job to start. Counts the PENDING jobs that go before this one, whatever their key: those of a more urgent priority, and those of its own submitted before it (a batch's in the order of its items); null once it started.",
    }),
    estimated_start_at: timestamp.openapi({
      description:
        'PENDING jobs only: when it may start, from queue_position and how many jobs started per second over the last five minutes; null when nothing started lately. An estimate.',
    }),
    metrics: jobMetricsSchema,
    expires_at: timestamp.openapi({
      description:
        'When the stored outputs are removed (retention_seconds or MEDIA_RETENTION_SECONDS, counted from the end of the job); null keeps them.',
    }),
    retry_of: z.string().nullable().openapi({
      description: 'The FAILED job this one generates again (POST /api/v1/jobs/{id}/retry with regenerate).',
    }),
    data_removed: z.boolean().openapi({
      description:
        'The stored outputs were removed (DELETE or expiry): no presigned URL any more; the job, its timings and hashes stay.',
    }),
  })
  .openapi('JobStatus');

export type StatusReply = z.infer<typeof statusReplySchema>;
export type MediaReply = z.infer<typeof mediaReplySchema>;

const iso = (date: Date | null) => (date ? date.toISOString() : null);
const span = (from: Date | null, to: Date | null) => (from && to ? to.getTime() - from.getTime() : null);

export function jobMetrics(job: JobWithMedia): z.infer<typeof jobMetricsSchema> {
  return {
    queue_ms: span(job.createdAt, job.startedAt),
    predict_ms: span(job.startedAt, job.generatedAt),
    store_ms: span(job.generatedAt, job.completedAt),
    total_ms: span(job.createdAt, job.completedAt),
    bytes_stored: job.media.reduce((sum, row) => sum + (row.status === 'COMPLETED' ? (row.sizeBytes ?? 0) : 0), 0),
  };
}

/** The status reply, with a presigned URL minted now for each stored output. */
export async function toStatusReply(
  job: JobWithMedia,
  presigner: Presigner,
  queue?: QueueEstimate,
): Promise<StatusReply> {
  const media = await Promise.all(
    job.media.map(async (row) => ({
      index: row.outputIndex,
      status: row.status,
      media_url: row.mediaUrl,
      s3_key: row.s3Key,
      presigned_media_url:
        row.status === 'COMPLETED' && !job.dataRemovedAt ? await presignedUrl(presigner, row.s3Key) : null,
      content_type: row.contentType,
      size_bytes: row.sizeBytes,
      sha256: row.sha256,
      error_message: row.errorMessage,
    })),
  );
  return {
    job_id: job.id,
    status: job.status,
    model: job.model,
    prompt: job.prompt,
    num_outputs: job.numOutputs,
    seed: job.seed,
    output_format: job.outputFormat,
    priority: job.priority,
    media,
    error_message: job.errorMessage,
    retry_count: job.retryCount,
    created_at: iso(job.createdAt),
    updated_at: iso(job.updatedAt),
    started_at: iso(job.startedAt),
    completed_at: iso(job.completedAt),
    queue_position: job.status === 'PENDING' && queue ? queue.position : null,
    estimated_start_at:
      job.status === 'PENDING' && queue && queue.startsPerSecond > 0
        ? new Date(Date.now() + (queue.position / queue.startsPerSecond) * 1000).toISOString()
        : null,
    metrics: jobMetrics(job),
    expires_at: iso(job.expiresAt),
    retry_of: job.retryOf,
    data_removed: job.dataRemovedAt !== null,
  };
}
