import { randomUUID } from 'node:crypto';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { abortStaleUploads } from '../../activities/retention';
import { createS3Client } from '../../common/s3';
import { testConfig } from '../support/stack';

/** The retention sweep's clean-up of multipart uploads left open, against the real S3 server. */
describe('abortStaleUploads', () => {
  const config = testConfig();
  const s3 = createS3Client(config);
  const bucket = config.S3_BUCKET_NAME;

  const openUploads = async (prefix: string) =>
    (await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))).Uploads ?? [];

  it('aborts every stale upload, past the first page of the listing, and none opened after the cutoff', async () => {
    const prefix = `jobs/stale-uploads-${randomUUID()}/`;
    for (const index of [0, 1, 2, 3, 4])
      await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${prefix}output-${index}.png` }));
    expect(await openUploads(prefix)).toHaveLength(5);

    // Opened after the cutoff: all five are left.
    expect(await abortStaleUploads({ s3, bucket }, { prefix, openedBefore: new Date(Date.now() - 60_000) })).toBe(0);
    expect(await openUploads(prefix)).toHaveLength(5);

    // All older than the cutoff, listed two to a page: all five go.
    const aborted = await abortStaleUploads(
      { s3, bucket },
      { prefix, openedBefore: new Date(Date.now() + 60_000), pageSize: 2 },
    );
    expect(aborted).toBe(5);
    expect(await openUploads(prefix)).toEqual([]);
  });
});
