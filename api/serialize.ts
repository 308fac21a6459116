import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { z } from 'zod';
import type { JobWithMedia } from '../db/queries/jobs';
import type { statusReplySchema } from './schemas';

export type StatusReply = z.infer<typeof statusReplySchema>;

export interface Presigner {
  client: S3Client;
  bucket: string;
  expiresInSeconds: number;
}

const iso = (date: Date | null) => (date ? date.toISOString() : null);

/** The status reply of the earlier service, with a presigned URL minted now for each stored output. */
export async function toStatusReply(job: JobWithMedia, presigner: Presigner): Promise<StatusReply> {
  const media = await Promise.all(
    job.media.map(async (row) => ({
      index: row.outputIndex,
      status: row.status,
      media_url: row.mediaUrl,
      s3_key: row.s3Key,
      presigned_media_url:
        row.status === 'COMPLETED'
          ? await getSignedUrl(presigner.client, new GetObjectCommand({ Bucket: presigner.bucket, Key: row.s3Key }), {
              expiresIn: presigner.expiresInSeconds,
            })
          : null,
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
    media,
    error_message: job.errorMessage,
    retry_count: job.retryCount,
    created_at: iso(job.createdAt),
    updated_at: iso(job.updatedAt),
    started_at: iso(job.startedAt),
    completed_at: iso(job.completedAt),
  };
}

export function encodeCursor(job: { createdAt: Date; id: string }): string {
  return Buffer.from(`${job.createdAt.toISOString()}|${job.id}`).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: Date; id: string } | undefined {
  const [createdAt, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const date = new Date(createdAt ?? '');
  if (!id || Number.isNaN(date.getTime()) || !/^[0-9a-f-]{36}$/.test(id)) return undefined;
  return { createdAt: date, id };
}
