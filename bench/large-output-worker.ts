/**
 * Child process of the large-output benchmark: stores one HTTP-served object in S3, either through
 * the product's path (safeDownload with allowPrivate, then storeObject) or through a plain
 * http.get + lib-storage Upload, and reports its own peak RSS over the transfer as one JSON line.
 * Run by bench/large-output.ts; not meant to be run by hand.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { storeObject } from '../activities/object-storage';
import { safeDownload } from '../activities/safe-download';
import { benchS3Client, type LargeOutputJob, type LargeOutputMeasurement } from './large-output';

const PART_SIZE = 5 * 1024 * 1024;
const PARTS_IN_FLIGHT = 4;

function get(url: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`GET ${url} answered ${res.statusCode}`));
        } else resolve(res);
      })
      .on('error', reject);
  });
}

export const STORE_SOURCE = 'safeDownload (allowPrivate) response stream';
export const PLAIN_SOURCE = 'http.get response stream';

async function transfer(job: LargeOutputJob, client: S3Client, url: string, key: string): Promise<string | undefined> {
  if (job.mode === 'store') {
    // The MEDIA_MAX_BYTES equivalent: at least the object's size (and never under 1 GiB).
    const maxBytes = Math.max(job.bytes, 1024 ** 3);
    const signal = new AbortController().signal;
    const source = await safeDownload(url, { signal, maxBytes, allowPrivate: true });
    const stored = await storeObject({ client, bucket: job.s3.bucket, key, source: source.body, maxBytes, signal });
    return stored.sha256;
  }
  const source = await get(url);
  await new Upload({
    client,
    params: { Bucket: job.s3.bucket, Key: key, Body: source, ContentType: 'image/png' },
    partSize: PART_SIZE,
    queueSize: PARTS_IN_FLIGHT,
    leavePartsOnError: false,
  }).done();
  return undefined;
}

function readHwmBytes(): number | undefined {
  const match = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) * 1024 : undefined;
}

/** Resets the kernel's peak-RSS counter (Linux), so VmHWM covers the transfer alone. */
function resetHwm(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const job = JSON.parse(process.env.BENCH_LARGE_OUTPUT_JOB ?? '') as LargeOutputJob;
  const client = benchS3Client(job.s3);

  // Warm up on a small object first, so lazily loaded SDK code is not counted as growth.
  const warmupKey = `${job.key}.warmup`;
  await transfer(job, client, job.warmupUrl, warmupKey);
  await client.send(new DeleteObjectCommand({ Bucket: job.s3.bucket, Key: warmupKey }));

  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await new Promise((resolve) => setTimeout(resolve, 50));
  gc?.();
  const baselineRssBytes = process.memoryUsage.rss();
  const hwmReset = resetHwm();
  let sampledPeak = baselineRssBytes;
  const sampler = setInterval(() => {
    sampledPeak = Math.max(sampledPeak, process.memoryUsage.rss());
  }, 10);

  const began = performance.now();
  const sha256 = await transfer(job, client, job.url, job.key);
  const seconds = (performance.now() - began) / 1000;
  clearInterval(sampler);
  sampledPeak = Math.max(sampledPeak, process.memoryUsage.rss());
  const hwm = hwmReset ? readHwmBytes() : undefined;

  const measurement: LargeOutputMeasurement = {
    mode: job.mode,
    source: job.mode === 'store' ? STORE_SOURCE : PLAIN_SOURCE,
    bytes: job.bytes,
    seconds,
    baselineRssBytes,
    peakRssBytes: Math.max(sampledPeak, hwm ?? 0),
    peakSource: hwm !== undefined && hwm >= sampledPeak ? 'VmHWM' : 'sampled',
    sha256,
  };
  client.destroy();
  process.stdout.write(`${JSON.stringify(measurement)}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
