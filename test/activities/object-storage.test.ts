import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
} from '@aws-sdk/client-s3';
import { storeObject } from '../../activities/object-storage';
import { createS3Client } from '../../common/s3';
import { listObjects } from '../support/ledger';
import { testConfig } from '../support/stack';
import { sleep } from '../support/wait';

/** Streaming an output into the real S3 server: sized, checked, capped and cancellable, never half-stored. */
describe('storeObject', () => {
  const config = testConfig();
  const s3 = createS3Client(config);

  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
  const store = (
    key: string,
    source: AsyncIterable<Uint8Array>,
    options: { maxBytes?: number; signal?: AbortSignal } = {},
  ) =>
    storeObject({
      client: s3,
      bucket: config.S3_BUCKET_NAME,
      key,
      source,
      maxBytes: options.maxBytes ?? 64 * 1024 * 1024,
      signal: options.signal ?? new AbortController().signal,
    });

  async function* chunks(count: number, size: number, delayMs = 0): AsyncGenerator<Buffer> {
    yield png;
    for (let i = 0; i < count; i++) {
      if (delayMs) await sleep(delayMs);
      yield Buffer.alloc(size, i % 256);
    }
  }

  async function pendingUploads(key: string): Promise<number> {
    const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: config.S3_BUCKET_NAME, Prefix: key }));
    return (listed.Uploads ?? []).length;
  }

  it('streams a multi-part object and reports its size and checksum', async () => {
    const key = `store-test/${Date.now()}-multipart.png`;
    const stored = await store(key, chunks(12, 1024 * 1024));
    expect(stored).toMatchObject({
      contentType: 'image/png',
      sizeBytes: png.length + 12 * 1024 * 1024,
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect((await listObjects(s3, config.S3_BUCKET_NAME, key)).map((object) => object.key)).toEqual([key]);
  });

  it('refuses bytes that are not media, storing nothing', async () => {
    const key = `store-test/${Date.now()}-html.png`;
    await expect(store(key, Readable.from([Buffer.from('<html>not an image</html>')]))).rejects.toMatchObject({
      type: 'UnsupportedMediaType',
    });
    expect(await listObjects(s3, config.S3_BUCKET_NAME, key)).toEqual([]);
  });

  it('closes the source of bytes that are not media at once', async () => {
    let closed = false;
    async function* pageThatGoesOn(): AsyncGenerator<Buffer> {
      try {
        yield Buffer.from('<html>not an image</html>');
        // The rest never comes: only closing the source ends it.
        await new Promise(() => undefined);
      } finally {
        closed = true;
      }
    }
    const key = `store-test/${Date.now()}-html-open.png`;
    await expect(store(key, pageThatGoesOn())).rejects.toMatchObject({ type: 'UnsupportedMediaType' });
    expect(closed).toBe(true);
  });

  it('stops at the size cap and leaves no object or unfinished upload behind', async () => {
    const key = `store-test/${Date.now()}-large.png`;
    await expect(store(key, chunks(16, 1024 * 1024), { maxBytes: 10 * 1024 * 1024 })).rejects.toMatchObject({
      type: 'OutputTooLarge',
    });
    expect(await listObjects(s3, config.S3_BUCKET_NAME, key)).toEqual([]);
    expect(await pendingUploads(key)).toBe(0);
  });

  it('leaves alone the upload of a later attempt running beside it, whether it fails or succeeds', async () => {
    for (const ends of ['cancelled', 'stored'] as const) {
      const key = `store-test/${Date.now()}-beside-${ends}.png`;
      const controller = new AbortController();
      // This attempt lost its heartbeat: the server started another, which opened its own upload.
      const stale = store(key, chunks(12, 1024 * 1024, 200), { signal: controller.signal });
      await sleep(1_000);
      const later = await s3.send(new CreateMultipartUploadCommand({ Bucket: config.S3_BUCKET_NAME, Key: key }));
      if (ends === 'cancelled') {
        controller.abort();
        await expect(stale).rejects.toBeDefined();
      } else {
        await stale;
      }
      const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: config.S3_BUCKET_NAME, Prefix: key }));
      expect([ends, (listed.Uploads ?? []).map((upload) => upload.UploadId)]).toEqual([ends, [later.UploadId]]);
      await s3.send(
        new AbortMultipartUploadCommand({ Bucket: config.S3_BUCKET_NAME, Key: key, UploadId: later.UploadId }),
      );
    }
  });

  it('aborts an upload when cancelled, leaving nothing behind', async () => {
    const key = `store-test/${Date.now()}-cancelled.png`;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    await expect(store(key, chunks(100, 1024 * 1024, 20), { signal: controller.signal })).rejects.toBeDefined();
    expect(await listObjects(s3, config.S3_BUCKET_NAME, key)).toEqual([]);
    expect(await pendingUploads(key)).toBe(0);
  });

  // An output of at most 1 MiB is stored by one PutObject of the bytes read: the same guarantees.
  it('stores an output of at most 1 MiB whole, capped and cancellable like a streamed one', async () => {
    const key = `store-test/${Date.now()}-small.png`;
    expect(await store(key, chunks(3, 1000))).toMatchObject({ contentType: 'image/png', sizeBytes: png.length + 3000 });
    expect((await listObjects(s3, config.S3_BUCKET_NAME, key)).map((object) => object.size)).toEqual([
      png.length + 3000,
    ]);

    const capped = `store-test/${Date.now()}-small-capped.png`;
    await expect(store(capped, chunks(3, 1000), { maxBytes: 2000 })).rejects.toMatchObject({ type: 'OutputTooLarge' });
    expect(await listObjects(s3, config.S3_BUCKET_NAME, capped)).toEqual([]);

    const cancelled = `store-test/${Date.now()}-small-cancelled.png`;
    const controller = new AbortController();
    controller.abort();
    await expect(store(cancelled, chunks(3, 1000), { signal: controller.signal })).rejects.toBeDefined();
    expect(await listObjects(s3, config.S3_BUCKET_NAME, cancelled)).toEqual([]);
  });
});
