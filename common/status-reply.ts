import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { JobWithMedia } from '../db/queries/jobs';
import type { Config } from './config';
import { createS3Client } from './s3';
import type { JobStatus, MediaStatus, OutputFormat } from './statuses';

/**
 * The status reply of the earlier service: what GET /api/v1/status answers and what every
 * webhook carries. One serializer for both, so they cannot drift.
 */
export interface StatusReply {
  job_id: string;
  status: JobStatus;
  model: string;
  prompt: string;
  num_outputs: number;
  seed: number;
  output_format: OutputFormat;
  media: MediaReply[];
  error_message: string | null;
  retry_count: number;
  created_at: string | null;
  updated_at: string | null;
  started_at: string | null;
  completed_at: string | null;
}

export interface MediaReply {
  index: number;
  status: MediaStatus;
  media_url: string | null;
  s3_key: string;
  presigned_media_url: string | null;
  content_type: string | null;
  size_bytes: number | null;
  sha256: string | null;
  error_message: string | null;
}

export interface Presigner {
  client: S3Client;
  bucket: string;
  expiresInSeconds: number;
  /** URLs already signed, reused for the first half of their lifetime (see createPresigner). */
  cache?: Map<string, { url: string; reuseUntil: number }>;
}

const iso = (date: Date | null) => (date ? date.toISOString() : null);

/** How many signed URLs a presigner keeps; the oldest is dropped first. */
const PRESIGNED_URL_CACHE_ENTRIES = 10_000;

/**
 * The process's presigner: URLs addressed the way clients reach S3 (S3_PUBLIC_ENDPOINT_URL when
 * set, else `s3`'s endpoint), each object signed once per half-lifetime: a client polling a job
 * every 100 ms gets the same URL (which browsers and CDNs can cache) while it is valid for at least
 * half of PRESIGNED_URL_EXPIRES_SECONDS, and the URL is not signed again on every poll.
 */
export function createPresigner(
  config: Pick<Config, 'S3_PUBLIC_ENDPOINT_URL' | 'S3_BUCKET_NAME' | 'PRESIGNED_URL_EXPIRES_SECONDS'> &
    Parameters<typeof createS3Client>[0],
  s3: S3Client,
): Presigner {
  const client = config.S3_PUBLIC_ENDPOINT_URL
    ? createS3Client({ ...config, S3_ENDPOINT_URL: config.S3_PUBLIC_ENDPOINT_URL })
    : s3;
  return {
    client,
    bucket: config.S3_BUCKET_NAME,
    expiresInSeconds: config.PRESIGNED_URL_EXPIRES_SECONDS,
    cache: new Map(),
  };
}

export async function presignedUrl(presigner: Presigner, key: string): Promise<string> {
  const { cache } = presigner;
  const now = Date.now();
  const cached = cache?.get(key);
  if (cached && cached.reuseUntil > now) return cached.url;
  const url = await getSignedUrl(presigner.client, new GetObjectCommand({ Bucket: presigner.bucket, Key: key }), {
    expiresIn: presigner.expiresInSeconds,
  });
  if (cache) {
    cache.delete(key);
    if (cache.size >= PRESIGNED_URL_CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
    cache.set(key, { url, reuseUntil: now + (presigner.expiresInSeconds * 1000) / 2 });
  }
  return url;
}

/** The status reply, with a presigned URL minted now for each stored output. */
export async function toStatusReply(job: JobWithMedia, presigner: Presigner): Promise<StatusReply> {
  const media = await Promise.all(
    job.media.map(async (row) => ({
      index: row.outputIndex,
      status: row.status,
      media_url: row.mediaUrl,
      s3_key: row.s3Key,
      presigned_media_url: row.status === 'COMPLETED' ? await presignedUrl(presigner, row.s3Key) : null,
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
