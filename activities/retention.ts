import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import { ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS } from '../common/s3';
import type { Database } from '../db/client';
import { listExpiredJobs } from '../db/queries/job-data';
import { removeJobData } from '../jobs/data-removal';

export interface RemovalBatch {
  /** Jobs whose objects this batch removed. */
  removed: number;
  /** The batch was full: more may be waiting. */
  full: boolean;
}

/**
 * One bounded batch of the retention sweep: ended jobs whose outputs expired lose their objects,
 * and the rows record it. A job that has not ended is never listed, since its workflow may still write.
 */
export async function removeExpiredBatch(
  deps: { db: Database; s3: S3Client; bucket: string; logger: Logger },
  batchSize: number,
): Promise<RemovalBatch> {
  const jobIds = await listExpiredJobs(deps.db, batchSize);
  let removed = 0;
  for (const jobId of jobIds) {
    if (await removeJobData(deps, jobId)) removed += 1;
  }
  if (removed > 0) deps.logger.info({ removed }, 'removed the outputs of expired jobs');
  return { removed, full: jobIds.length === batchSize };
}

/** Which open uploads abortStaleUploads looks at: the bucket's outputs, opened before the cutoff. */
export interface StaleUploadsScope {
  prefix?: string;
  /** Uploads opened before this are stale; default ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS ago. */
  openedBefore?: Date;
  /** Uploads per ListMultipartUploads page (S3's own maximum, 1,000, unless given). */
  pageSize?: number;
}

/**
 * Aborts multipart uploads open for longer than the bucket's lifecycle rule allows: what the rule
 * does on a server that has none (versitygw). An upload that old belongs to no running attempt.
 * Every page of the listing is read (the SDK has no paginator for it): at most 1,000 uploads come
 * in one.
 */
export async function abortStaleUploads(
  deps: { s3: S3Client; bucket: string },
  scope: StaleUploadsScope = {},
): Promise<number> {
  const cutoff = scope.openedBefore?.getTime() ?? Date.now() - ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS * 24 * 3600 * 1000;
  // Listed whole before any is aborted, page by page after the last key listed (KeyMarker alone:
  // versitygw refuses an UploadIdMarker). A key with more open uploads than a page's end shows is
  // listed from its next key on; the rest of its uploads come up in the next sweep.
  const stale: Array<{ Key: string; UploadId: string }> = [];
  for (let keyMarker: string | undefined; ;) {
    const listed = await deps.s3.send(
      new ListMultipartUploadsCommand({
        Bucket: deps.bucket,
        Prefix: scope.prefix ?? 'jobs/',
        MaxUploads: scope.pageSize,
        KeyMarker: keyMarker,
      }),
    );
    for (const { Key, UploadId, Initiated } of listed.Uploads ?? [])
      if (Key && UploadId && Initiated && Initiated.getTime() < cutoff) stale.push({ Key, UploadId });
    if (!listed.IsTruncated || !listed.NextKeyMarker || listed.NextKeyMarker === keyMarker) break;
    keyMarker = listed.NextKeyMarker;
  }
  for (const upload of stale) await deps.s3.send(new AbortMultipartUploadCommand({ Bucket: deps.bucket, ...upload }));
  return stale.length;
}
