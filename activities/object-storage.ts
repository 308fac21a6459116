import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ApplicationFailure } from '@temporalio/activity';
import { NonRetryable } from '../common/errors';
import { SNIFF_BYTES, sniffContentType } from './media-type';

export interface StoreObjectParams {
  client: S3Client;
  bucket: string;
  key: string;
  source: AsyncIterable<Uint8Array>;
  maxBytes: number;
  signal: AbortSignal;
  /** Whether earlier attempts may have left multipart uploads open under the key. */
  earlierAttempts?: boolean;
  onProgress?: (bytesStored: number) => void;
}

export interface StoredObjectInfo {
  contentType: string;
  sizeBytes: number;
  sha256: string;
}

// 5 MiB parts, two in flight: memory stays near 10 MiB of parts whatever the object's size
// (four gained no speed here and cost about 10 MiB more of peak RSS).
const PART_SIZE = 5 * 1024 * 1024;
const PARTS_IN_FLIGHT = 2;
/** An output that ends within this many bytes is sent whole, in one PutObject. */
const SMALL_OBJECT_BYTES = 1024 * 1024;

/** How much earlier than the worker's clock the S3 server may date an upload (its own clock; dates to the second). */
const CLOCK_SKEW_MARGIN_MS = 1_000;

/**
 * Streams a source into one object. The content type comes from the bytes, the size is capped
 * while reading, and an aborted or failed multipart upload is aborted on the server, so a
 * half-written object never becomes visible. An output of at most 1 MiB is one PutObject.
 */
export async function storeObject(params: StoreObjectParams): Promise<StoredObjectInfo> {
  const { client, bucket, key, source, maxBytes, signal, earlierAttempts = true, onProgress } = params;
  // Only uploads begun before this attempt are others' to abort: a later attempt, running beside
  // one that lost its heartbeat, keeps its own.
  const abandonedBefore = new Date(Date.now() - CLOCK_SKEW_MARGIN_MS);
  const iterator = source[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headLength = 0;
  while (headLength < SNIFF_BYTES) {
    const next = await iterator.next();
    if (next.done) break;
    head.push(Buffer.from(next.value));
    headLength += next.value.length;
  }
  const contentType = sniffContentType(Buffer.concat(head));
  if (!contentType) {
    // The download is closed now, not when its idle timeout finds it.
    await iterator.return?.();
    throw ApplicationFailure.create({
      type: NonRetryable.UnsupportedMediaType,
      message: headLength === 0 ? 'the output is empty' : 'the output is not a recognised image or video format',
      nonRetryable: true,
    });
  }

  const hash = createHash('sha256');
  let sizeBytes = 0;
  async function* metered(): AsyncGenerator<Buffer> {
    const take = (chunk: Uint8Array): Buffer => {
      sizeBytes += chunk.length;
      if (sizeBytes > maxBytes) {
        throw ApplicationFailure.create({
          type: NonRetryable.OutputTooLarge,
          message: `the output exceeds the ${maxBytes}-byte limit (MEDIA_MAX_BYTES)`,
          nonRetryable: true,
        });
      }
      hash.update(chunk);
      onProgress?.(sizeBytes);
      return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    };
    for (const chunk of head) yield take(chunk);
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield take(next.value);
  }

  const chunks = metered();
  const storedInfo = (): StoredObjectInfo => ({ contentType, sizeBytes, sha256: hash.digest('hex') });
  // Up to SMALL_OBJECT_BYTES are read first: an output that ends within them (most do) is stored
  // by one PutObject of that buffer, the request lib-storage would send for it, without its stream
  // and part machinery. PutObject is atomic: a failed or aborted one leaves nothing behind. The
  // bound is well under a part, so a large output holds little more memory than lib-storage's own.
  const firstPart: Buffer[] = [];
  let firstPartBytes = 0;
  let next: IteratorResult<Buffer>;
  try {
    for (next = await chunks.next(); !next.done; next = await chunks.next()) {
      firstPart.push(next.value);
      firstPartBytes += next.value.length;
      if (firstPartBytes >= SMALL_OBJECT_BYTES) break;
    }
  } catch (error) {
    await iterator.return?.();
    throw error;
  }
  if (next.done) {
    const whole = Buffer.concat(firstPart, firstPartBytes);
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: whole,
        ContentType: contentType,
        ContentLength: whole.length,
      }),
      { abortSignal: signal },
    );
    if (earlierAttempts) await abortAbandonedUploads(client, bucket, key, abandonedBefore);
    return storedInfo();
  }

  async function* wholeSource(): AsyncGenerator<Buffer> {
    // Handed on one by one and let go of: lib-storage buffers its parts itself.
    for (let chunk = firstPart.shift(); chunk; chunk = firstPart.shift()) yield chunk;
    yield* chunks;
  }
  const body = Readable.from(wholeSource(), { objectMode: false });
  const upload = new Upload({
    client,
    params: { Bucket: bucket, Key: key, Body: body, ContentType: contentType },
    partSize: PART_SIZE,
    queueSize: PARTS_IN_FLIGHT,
    leavePartsOnError: false,
  });
  let aborting: Promise<unknown> | undefined;
  const abort = () => {
    aborting = upload.abort().catch(() => undefined);
  };
  signal.addEventListener('abort', abort, { once: true });
  let sourceError: unknown;
  body.once('error', (error) => {
    sourceError = error;
  });
  try {
    await upload.done();
  } catch (error) {
    // The abort reaches S3 before this attempt reports failure: its own multipart upload (lib-storage
    // aborts it too, but only once its parts in flight have settled, after `done` rejected) and
    // earlier attempts' abandoned ones; a later attempt's, running beside this one, is not touched.
    await aborting;
    if (upload.uploadId)
      await client
        .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: upload.uploadId }))
        .catch(() => undefined);
    await abortAbandonedUploads(client, bucket, key, abandonedBefore);
    // lib-storage reports a failed body as its own error: surface the body's (size cap, source cut).
    throw sourceError ?? error;
  } finally {
    signal.removeEventListener('abort', abort);
    body.destroy();
    await iterator.return?.();
  }
  // Done after the object is stored, when S3 is known to answer: an attempt that starts while S3
  // is still down could not list them, and would leave them behind. A first attempt has none to find.
  if (earlierAttempts) await abortAbandonedUploads(client, bucket, key, abandonedBefore);
  return storedInfo();
}

/**
 * Aborts the multipart uploads left open under `key` by attempts before this one (begun before
 * `abandonedBefore`): one whose worker was killed, or whose S3 went away before the abort could
 * reach it. Their parts are invisible but stored (and billed) until aborted. Best effort: a server
 * that cannot list them is left as is, and what is left goes with the daily sweep of stale uploads.
 */
async function abortAbandonedUploads(
  client: S3Client,
  bucket: string,
  key: string,
  abandonedBefore: Date,
): Promise<void> {
  const listed = await client
    .send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }))
    .catch(() => undefined);
  for (const upload of listed?.Uploads ?? []) {
    if (upload.Key !== key || !upload.UploadId) continue;
    if (!upload.Initiated || upload.Initiated >= abandonedBefore) continue;
    await client
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: upload.UploadId }))
      .catch(() => undefined);
  }
}
