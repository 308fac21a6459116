import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Config } from './config';
import { createS3Client } from './s3';

export interface Presigner {
  client: S3Client;
  bucket: string;
  expiresInSeconds: number;
  /** URLs already signed, reused for the first half of their lifetime (see createPresigner). */
  cache?: Map<string, { url: string; reuseUntil: number }>;
}

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
