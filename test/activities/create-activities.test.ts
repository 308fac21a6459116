import { Readable } from 'node:stream';
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities/create-activities';
import { storeObject } from '../../activities/object-storage';
import { createS3Client } from '../../common/s3';
import { createDatabase, type DatabaseHandle } from '../../db/client';
import { createJob, getJob } from '../../db/queries/jobs';
import { markMediaProcessing } from '../../db/queries/media';
import { ScriptedProvider } from '../support/scripted-provider';
import { silentLogger, testConfig } from '../support/stack';

/** Runs an activity with a real activity context, keeping its types. */
function runActivity<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
  args: A,
  info: { attempt?: number } = {},
): Promise<R> {
  return new MockActivityEnvironment(info).run(fn as (...args: unknown[]) => Promise<R>, ...args) as Promise<R>;
}

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !condition();) {
    if (Date.now() > deadline) throw new Error('the condition did not hold in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Activities against the real Postgres and S3 server: each may run twice or be cut off. */
describe('activities', () => {
  const config = testConfig();
  const s3 = createS3Client(config);
  let database: DatabaseHandle;
  let provider: ScriptedProvider;
  let activities: ReturnType<typeof createActivities>;

  beforeAll(() => {
    database = createDatabase({ url: config.DATABASE_URL, poolSize: 3 });
  });
  beforeEach(() => {
    provider = new ScriptedProvider();
    activities = createActivities({
      db: database.db,
      s3,
      bucket: config.S3_BUCKET_NAME,
      provider,
      maxOutputBytes: 1024 * 1024,
      logger: silentLogger,
    });
  });
  afterAll(async () => {
    await database.close();
  });

  const newJob = (numOutputs = 1) =>
    createJob(database.db, { model: 'a/b', prompt: 'idempotence', numOutputs, seed: 3, outputFormat: 'webp' });

  async function objectsUnder(prefix: string): Promise<string[]> {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: config.S3_BUCKET_NAME, Prefix: prefix }));
    return (listed.Contents ?? []).map((object) => object.Key!);
  }

  it('creates one prediction per job however often createPrediction runs', async () => {
    const job = await newJob();
    const request = {
      jobId: job.id,
      model: job.model,
      prompt: job.prompt,
      numOutputs: 1,
      seed: 3,
      outputFormat: 'webp' as const,
    };
    const first = await runActivity(activities.createPrediction, [request], { attempt: 1 });
    const second = await runActivity(activities.createPrediction, [request], { attempt: 2 });
    expect(second.predictionId).toBe(first.predictionId);
    expect(provider.createdForJob(job.id)).toBe(1);
    expect((await getJob(database.db, job.id))!.predictionId).toBe(first.predictionId);
  });

  it('cancels the prediction it created when it is cut off before recording it', async () => {
    const paused = createActivities({
      db: database.db,
      s3,
      bucket: config.S3_BUCKET_NAME,
      provider,
      maxOutputBytes: 1024,
      logger: silentLogger,
      faultInjectionPauseAt: 'after-create',
    });
    const job = await newJob();
    const request = {
      jobId: job.id,
      model: job.model,
      prompt: job.prompt,
      numOutputs: 1,
      seed: 3,
      outputFormat: 'webp' as const,
    };
    const environment = new MockActivityEnvironment({ attempt: 1 });
    const run = environment.run(paused.createPrediction, request);
    await waitUntil(() => provider.createdForJob(job.id) === 1);
    // Its start-to-close timeout (or the job's cancellation) stops it at the line between the create and the record.
    environment.cancel('TIMED_OUT');
    await expect(run).rejects.toBeDefined();
    expect((await getJob(database.db, job.id))!.predictionId).toBeNull();
    expect(provider.cancelled).toHaveLength(1);
  });

  it('keeps the prediction it recorded when the record committed but its answer was lost', async () => {
    // The first write commits and then looks like a dropped connection; the activity is cut off
    // (its timeout) while it waits to write again.
    let lostAnswers = 1;
    const flaky = new Proxy(database.db, {
      get(target, property, receiver) {
        if (property !== 'execute') return Reflect.get(target, property, receiver);
        return async (...args: Parameters<typeof target.execute>) => {
          const result = await target.execute(...args);
          if (lostAnswers-- > 0)
            throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
          return result;
        };
      },
    });
    const cutOff = createActivities({
      db: flaky,
      s3,
      bucket: config.S3_BUCKET_NAME,
      provider,
      maxOutputBytes: 1024,
      logger: silentLogger,
    });
    const job = await newJob();
    const request = {
      jobId: job.id,
      model: job.model,
      prompt: job.prompt,
      numOutputs: 1,
      seed: 3,
      outputFormat: 'webp' as const,
    };
    const environment = new MockActivityEnvironment({ attempt: 1 });
    const run = environment.run(cutOff.createPrediction, request);
    await waitUntil(() => lostAnswers === 0);
    environment.cancel('TIMED_OUT');
    await expect(run).rejects.toBeDefined();
    const recorded = (await getJob(database.db, job.id))!.predictionId;
    expect(recorded).not.toBeNull();
    // The retry finds it on record and carries on with it.
    expect((await runActivity(activities.createPrediction, [request], { attempt: 2 })).predictionId).toBe(recorded);
    expect(provider.createdForJob(job.id)).toBe(1);
    expect(provider.cancelled).toEqual([]);
  });

  it('stores an output once under its derived key when persistOutput runs twice', async () => {
    const job = await newJob();
    const predictionId = await provider.createPrediction({
      jobId: job.id,
      model: 'a/b',
      prompt: 'idempotence',
      numOutputs: 1,
      seed: 3,
      outputFormat: 'webp',
    });
    const state = await provider.getPrediction(predictionId);
    const sourceUrl = state.status === 'succeeded' ? state.outputUrls[0]! : '';
    const input = { jobId: job.id, outputIndex: 0, sourceUrl, outputFormat: 'webp' as const };
    const first = await runActivity(activities.persistOutput, [input]);
    const second = await runActivity(activities.persistOutput, [input]);
    expect(second).toMatchObject({
      s3Key: first.s3Key,
      sha256: first.sha256,
      sizeBytes: first.sizeBytes,
      contentType: 'image/webp',
    });
    expect(await objectsUnder(`jobs/${job.id}/`)).toEqual([`jobs/${job.id}/output-0.webp`]);
    const stored = await s3.send(new GetObjectCommand({ Bucket: config.S3_BUCKET_NAME, Key: first.s3Key }));
    expect(stored.ContentType).toBe('image/webp');
    const row = (await getJob(database.db, job.id))!.media[0]!;
    expect(row).toMatchObject({ status: 'COMPLETED', sha256: first.sha256, sizeBytes: first.sizeBytes, attempts: 1 });
  });

  it('answers a retry of an output already stored from its record, without fetching the source again', async () => {
    const job = await newJob();
    const predictionId = await provider.createPrediction({
      jobId: job.id,
      model: 'a/b',
      prompt: 'idempotence',
      numOutputs: 1,
      seed: 3,
      outputFormat: 'webp',
    });
    const state = await provider.getPrediction(predictionId);
    const input = {
      jobId: job.id,
      outputIndex: 0,
      sourceUrl: state.status === 'succeeded' ? state.outputUrls[0]! : '',
      outputFormat: 'webp' as const,
    };
    const first = await runActivity(activities.persistOutput, [input], { attempt: 1 });
    // The source is gone by the time the retry runs (an expired URL): the stored output stands.
    provider.outputFailures.set(0, Infinity);
    const retry = await runActivity(activities.persistOutput, [input], { attempt: 2 });
    expect(retry).toMatchObject({
      s3Key: first.s3Key,
      sha256: first.sha256,
      sizeBytes: first.sizeBytes,
      contentType: first.contentType,
      attempt: 2,
    });
    expect((await getJob(database.db, job.id))!.media[0]).toMatchObject({ status: 'COMPLETED', attempts: 1 });
  });

  it('counts an attempt once however often its start is recorded', async () => {
    const job = await newJob();
    const ref = { jobId: job.id, outputIndex: 0 };
    await markMediaProcessing(database.db, ref, 'fake://image?a', 2);
    await markMediaProcessing(database.db, ref, 'fake://image?a', 2);
    await markMediaProcessing(database.db, ref, 'fake://image?a', 1);
    expect((await getJob(database.db, job.id))!.media[0]).toMatchObject({
      status: 'PROCESSING',
      attempts: 2,
      mediaUrl: 'fake://image?a',
    });
  });

  it('ends a job once: a second finishJob changes nothing', async () => {
    const job = await newJob(2);
    expect(
      await runActivity(activities.finishJob, [{ jobId: job.id, status: 'CANCELLED', errorMessage: 'first' }]),
    ).toBe(true);
    const afterFirst = await getJob(database.db, job.id);
    // The same step run again (its first result lost with its worker) still says to announce the end, and changes nothing.
    expect(
      await runActivity(activities.finishJob, [{ jobId: job.id, status: 'CANCELLED', errorMessage: 'first' }]),
    ).toBe(true);
    expect(await getJob(database.db, job.id)).toEqual(afterFirst);
    expect(await runActivity(activities.finishJob, [{ jobId: job.id, status: 'FAILED', errorMessage: 'second' }])).toBe(
      false,
    );
    const afterSecond = await getJob(database.db, job.id);
    expect(afterSecond).toEqual(afterFirst);
    expect(afterSecond).toMatchObject({ status: 'CANCELLED', errorMessage: 'first' });
    expect(afterSecond!.media.map((media) => media.status)).toEqual(['CANCELLED', 'CANCELLED']);
  });

  it('refuses a job that has no row', async () => {
    await expect(runActivity(activities.startJob, ['00000000-0000-4000-8000-000000000001'])).rejects.toMatchObject({
      type: 'JobNotFound',
      nonRetryable: true,
    });
  });

  describe('storeObject', () => {
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
        if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
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
      expect(await objectsUnder(key)).toEqual([key]);
    });

    it('refuses bytes that are not media, storing nothing', async () => {
      const key = `store-test/${Date.now()}-html.png`;
      await expect(store(key, Readable.from([Buffer.from('<html>not an image</html>')]))).rejects.toMatchObject({
        type: 'UnsupportedMediaType',
      });
      expect(await objectsUnder(key)).toEqual([]);
    });

    it('stops at the size cap and leaves no object or unfinished upload behind', async () => {
      const key = `store-test/${Date.now()}-large.png`;
      await expect(store(key, chunks(16, 1024 * 1024), { maxBytes: 10 * 1024 * 1024 })).rejects.toMatchObject({
        type: 'OutputTooLarge',
      });
      expect(await objectsUnder(key)).toEqual([]);
      expect(await pendingUploads(key)).toBe(0);
    });

    it('aborts an upload when cancelled, leaving nothing behind', async () => {
      const key = `store-test/${Date.now()}-cancelled.png`;
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 300);
      await expect(store(key, chunks(100, 1024 * 1024, 20), { signal: controller.signal })).rejects.toBeDefined();
      expect(await objectsUnder(key)).toEqual([]);
      expect(await pendingUploads(key)).toBe(0);
    });
  });
});
