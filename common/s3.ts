import {
  CreateBucketCommand,
  HeadBucketCommand,
  PutBucketLifecycleConfigurationCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { Config } from './config';

export function createS3Client(
  config: Pick<
    Config,
    'S3_ENDPOINT_URL' | 'S3_REGION' | 'S3_ACCESS_KEY_ID' | 'S3_SECRET_ACCESS_KEY' | 'S3_FORCE_PATH_STYLE'
  >,
): S3Client {
  return new S3Client({
    endpoint: config.S3_ENDPOINT_URL,
    region: config.S3_REGION,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    credentials: { accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY },
    // S3-compatible servers other than AWS reject the SDK's default trailing checksums.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Without these a connection to an S3 that stopped answering waits forever: fail it, so the
    // upload is retried (uploads heartbeat while they wait, so the heartbeat timeout cannot).
    requestHandler: { connectionTimeout: 5_000, socketTimeout: 30_000 },
    // A reset connection or a 503 is retried here, on a new connection, before an upload attempt
    // gives up (the SDK's default is 3 tries): a flaky link costs an activity attempt far less often.
    maxAttempts: 5,
  });
}

export async function ensureBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch {
    await client.send(new CreateBucketCommand({ Bucket: bucket })).catch((error: { name?: string }) => {
      if (error.name !== 'BucketAlreadyOwnedByYou' && error.name !== 'BucketAlreadyExists') throw error;
    });
  }
}

/** Days after which the bucket's lifecycle rule aborts a multipart upload that was never completed. */
export const ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS = 1;

/**
 * The bucket's lifecycle rule: multipart uploads left open (a worker killed mid-upload) are
 * aborted after a day, so their parts stop costing storage. Returns false when the server has no
 * lifecycle support (versitygw's posix backend); the expiry sweep then aborts them itself.
 */
export async function applyBucketLifecycle(client: S3Client, bucket: string): Promise<boolean> {
  try {
    await client.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: bucket,
        LifecycleConfiguration: {
          Rules: [
            {
              ID: 'abort-incomplete-multipart-uploads',
              Status: 'Enabled',
              Filter: { Prefix: '' },
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS },
            },
          ],
        },
      }),
    );
    return true;
  } catch (error) {
    if ((error as { name?: string }).name === 'NotImplemented') return false;
    throw error;
  }
}
