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

/**
 * Aborts multipart uploads open for longer than the bucket's lifecycle rule allows: what the rule
 * does on a server that has none (versitygw). An upload that old belongs to no running attempt.
 */
export async function abortStaleUploads(deps: { s3: S3Client; bucket: string }): Promise<number> {
  const cutoff = Date.now() - ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS * 24 * 3600 * 1000;
  const listed = await deps.s3.send(new ListMultipartUploadsCommand({ Bucket: deps.bucket, Prefix: 'jobs/' }));
  let aborted = 0;
  for (const upload of listed.Uploads ?? []) {
    if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated.getTime() > cutoff) continue;
    await deps.s3.send(
      new AbortMultipartUploadCommand({ Bucket: deps.bucket, Key: upload.Key, UploadId: upload.UploadId }),
    );
    aborted += 1;
  }
  return aborted;
}
