import { GetObjectCommand } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type ActivityDependencies } from '../../activities/create-activities';
import { createS3Client } from '../../common/s3';
import { createDatabase } from '../../db/client';
import { createJob, finishJob, getJob, recordPredictionId } from '../../db/queries/jobs';
import { expireJobDataNow, markJobDataRemoved } from '../../db/queries/job-data';
import { desc, eq } from 'drizzle-orm';
import { jobEvents, type JobRow } from '../../db/schema';
import { findFreePort } from '../../scripts/processes';
import { listObjects } from '../support/ledger';
import { ScriptedProvider } from '../support/scripted-provider';
import { silentLogger, testConfig } from '../support/stack';
import { useDatabase } from '../support/use-stack';
import { sleep, waitFor } from '../support/wait';

/** Runs an activity with a real activity context, keeping its types. */
function runActivity<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
  args: A,
  info: { attempt?: number; startToCloseTimeoutMs?: number } = {},
): Promise<R> {
  return new MockActivityEnvironment(info).run(fn as (...args: unknown[]) => Promise<R>, ...args) as Promise<R>;
}

/** Activities against the real Postgres and S3 server: each may run twice or be cut off. */
describe('activities', () => {
  const config = testConfig();
  const s3 = createS3Client(config);
  const database = useDatabase();
  let provider: ScriptedProvider;
  let activities: ReturnType<typeof createActivities>;

  beforeEach(() => {
    provider = new ScriptedProvider();
    activities = activitiesWith();
  });

  /** The activities over the real database and bucket, with the test's provider and these dependencies. */
  const activitiesWith = (overrides: Partial<ActivityDependencies> = {}) =>
    createActivities({
      db: database.db,
      s3,
      bucket: config.S3_BUCKET_NAME,
      provider,
      maxOutputBytes: 1024 * 1024,
      logger: silentLogger,
      ...overrides,
    });

  it("gives up on a provider whose cancel never answers, within the attempt's time, from its fifth attempt", async () => {
    const job = await newJob();
    await recordPredictionId(database.db, job.id, `prediction-${job.id}`);
    // Replicate taking connections and answering none: each call lasts until it is told to stop.
    class UnansweredCancels extends ScriptedProvider {
      override cancelPrediction(_predictionId: string, signal?: AbortSignal): Promise<void> {
        return new Promise((_resolve, reject) =>
          signal?.addEventListener('abort', () => reject(new Error('no answer from the provider')), { once: true }),
        );
      }
    }
    const unanswered = activitiesWith({ provider: new UnansweredCancels() });
    const attempt = (number: number) =>
      Promise.race([
        runActivity(unanswered.cancelPrediction, [job.id], { attempt: number, startToCloseTimeoutMs: 4_000 }).then(
          () => 'given up',
          (error: Error) => `failed: ${error.message}`,
        ),
        sleep(10_000).then(() => 'timed out by the server'),
      ]);
    // An attempt ends on its own before its start-to-close: the first ones fail for a retry,
    // the fifth gives up (the prediction's Cancel-After deadline ends it).
    expect(await attempt(1)).toMatch(/^failed: /);
    expect(await attempt(5)).toBe('given up');
  });

  it('records no prediction for a job that ended while it was created, and cancels it', async () => {
    // The workflow terminated mid-create, and the reconciler ended the row; the local activity goes on.
    const job = await newJob();
    expect(await finishJob(database.db, job.id, { status: 'CANCELLED', errorMessage: 'terminated' })).toBe(true);
    await runActivity(activities.createPrediction, [predictionRequest(job)]);
    expect(provider.createdForJob(job.id)).toBe(1);
    expect((await getJob(database.db, job.id))!.predictionId).toBeNull();
    expect(provider.cancelled).toHaveLength(1);
  });

  it('cancels a duplicate prediction, trying again while the provider refuses the cancel', async () => {
    const job = await newJob();
    // Another attempt's prediction lands on record while this one creates its own.
    class OutrunCreates extends ScriptedProvider {
      override async createPrediction(request: Parameters<ScriptedProvider['createPrediction']>[0]) {
        const created = await super.createPrediction(request);
        await recordPredictionId(database.db, request.jobId, `the-other-${request.jobId}`);
        return created;
      }
    }
    const outrun = new OutrunCreates();
    outrun.cancelFailures = 2;
    const created = await runActivity(activitiesWith({ provider: outrun }).createPrediction, [predictionRequest(job)]);
    expect(created.predictionId).toBe(`the-other-${job.id}`);
    expect(outrun.cancelled).toHaveLength(1);
    expect(outrun.cancelled[0]).not.toBe(created.predictionId);
  });

  const newJob = (numOutputs = 1) =>
    createJob(database.db, { model: 'a/b', prompt: 'idempotence', numOutputs, seed: 3, outputFormat: 'webp' });

  /** What the workflow passes createPrediction for `job`. */
  const predictionRequest = (job: JobRow) => ({
    jobId: job.id,
    model: job.model,
    prompt: job.prompt,
    numOutputs: job.numOutputs,
    seed: job.seed,
    outputFormat: 'webp' as const,
  });

  /** What the workflow passes persistOutput for the first output of `job`, once its prediction has succeeded. */
  async function persistInput(job: JobRow) {
    const state = await provider.getPrediction(await provider.createPrediction(predictionRequest(job)));
    const sourceUrl = state.status === 'succeeded' ? state.outputUrls[0]! : '';
    return { jobId: job.id, outputIndex: 0, sourceUrl, outputFormat: 'webp' as const };
  }

  it('creates one prediction per job however often createPrediction runs', async () => {
    const job = await newJob();
    const request = predictionRequest(job);
    const first = await runActivity(activities.createPrediction, [request], { attempt: 1 });
    const second = await runActivity(activities.createPrediction, [request], { attempt: 2 });
    expect(second.predictionId).toBe(first.predictionId);
    expect(provider.createdForJob(job.id)).toBe(1);
    expect((await getJob(database.db, job.id))!.predictionId).toBe(first.predictionId);
  });

  it('starts the job and creates one prediction however often startJobWithPrediction runs', async () => {
    const job = await newJob();
    const request = predictionRequest(job);
    const first = await runActivity(activities.startJobWithPrediction, [request], { attempt: 1 });
    const second = await runActivity(activities.startJobWithPrediction, [request], { attempt: 2 });
    expect(first).toMatchObject({ predictionId: expect.any(String), attempt: 1 });
    expect(second).toEqual({ predictionId: (first as { predictionId: string }).predictionId, attempt: 2 });
    expect(provider.createdForJob(job.id)).toBe(1);
    const row = await getJob(database.db, job.id);
    expect(row).toMatchObject({ status: 'PROCESSING', predictionId: (first as { predictionId: string }).predictionId });
    expect(row!.startedAt).toBeInstanceOf(Date);
  });

  it('creates nothing for a job that ended before startJobWithPrediction reached it', async () => {
    const job = await newJob();
    await runActivity(activities.finishJob, [{ jobId: job.id, status: 'CANCELLED', errorMessage: 'ended elsewhere' }]);
    expect(await runActivity(activities.startJobWithPrediction, [predictionRequest(job)])).toEqual({
      alreadyEnded: 'CANCELLED',
    });
    expect(provider.createdForJob(job.id)).toBe(0);
    expect(await getJob(database.db, job.id)).toMatchObject({ status: 'CANCELLED', predictionId: null });
  });

  it('leaves the start to startJob, creating nothing, when the database does not answer', async () => {
    const job = await newJob();
    const unreachable = createDatabase({
      url: `postgres://postgres@127.0.0.1:${await findFreePort()}/none`,
      poolSize: 1,
    });
    try {
      const started = await runActivity(activitiesWith({ db: unreachable.db }).startJobWithPrediction, [
        predictionRequest(job),
      ]);
      expect(started).toEqual({ databaseUnavailable: expect.stringMatching(/ECONNREFUSED/) });
    } finally {
      await unreachable.close();
    }
    expect(provider.createdForJob(job.id)).toBe(0);
    expect(await getJob(database.db, job.id)).toMatchObject({ status: 'PENDING', predictionId: null });
  });

  it('cancels the prediction it created when it is cut off before recording it', async () => {
    const paused = activitiesWith({ faultInjectionPauseAt: 'after-create' });
    const job = await newJob();
    const request = predictionRequest(job);
    const environment = new MockActivityEnvironment({ attempt: 1 });
    const run = environment.run(paused.createPrediction, request);
    await waitFor('the prediction to be created', () => provider.createdForJob(job.id) === 1, 5_000, 20);
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
    const cutOff = activitiesWith({ db: flaky });
    const job = await newJob();
    const request = predictionRequest(job);
    const environment = new MockActivityEnvironment({ attempt: 1 });
    const run = environment.run(cutOff.createPrediction, request);
    await waitFor('the first write to commit', () => lostAnswers === 0, 5_000, 20);
    environment.cancel('TIMED_OUT');
    await expect(run).rejects.toBeDefined();
    const recorded = (await getJob(database.db, job.id))!.predictionId;
    expect(recorded).not.toBeNull();
    // The retry finds it on record and carries on with it.
    expect((await runActivity(activities.createPrediction, [request], { attempt: 2 })).predictionId).toBe(recorded);
    expect(provider.createdForJob(job.id)).toBe(1);
    expect(provider.cancelled).toEqual([]);
  });

  it('keeps the prediction when its record may have committed and the database no longer answers', async () => {
    // The record commits and its answer is lost, then the database stays unreachable: the activity
    // cannot read whether the prediction is on record when it is cut off, so it must not cancel it
    // (it is the job's one prediction if the write committed).
    let databaseDown = false;
    const unavailable = () => Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
    const failing = new Proxy(database.db, {
      get(target, property, receiver) {
        if (property === 'execute')
          return async (...args: Parameters<typeof target.execute>) => {
            if (databaseDown) throw unavailable();
            // The write commits; its answer is lost, and the database goes with it.
            await target.execute(...args);
            databaseDown = true;
            throw unavailable();
          };
        if (property === 'select')
          return () => {
            if (databaseDown) throw unavailable();
            return target.select();
          };
        return Reflect.get(target, property, receiver);
      },
    });
    const cutOff = activitiesWith({ db: failing });
    const job = await newJob();
    const request = predictionRequest(job);
    const environment = new MockActivityEnvironment({ attempt: 1 });
    const run = environment.run(cutOff.createPrediction, request);
    await waitFor('the record to commit', () => databaseDown, 5_000, 20);
    environment.cancel('TIMED_OUT');
    await expect(run).rejects.toBeDefined();
    const recorded = (await getJob(database.db, job.id))!.predictionId;
    expect(recorded).not.toBeNull();
    expect(provider.cancelled).toEqual([]);
    // Once the database answers again, the retry carries on with it.
    expect((await runActivity(activities.createPrediction, [request], { attempt: 2 })).predictionId).toBe(recorded);
    expect(provider.createdForJob(job.id)).toBe(1);
  });

  it('stores an output once under its derived key when persistOutput runs twice', async () => {
    const job = await newJob();
    const input = await persistInput(job);
    const first = await runActivity(activities.persistOutput, [input]);
    const second = await runActivity(activities.persistOutput, [input]);
    expect(second).toMatchObject({
      s3Key: first.s3Key,
      sha256: first.sha256,
      sizeBytes: first.sizeBytes,
      contentType: 'image/webp',
    });
    expect(await listObjects(s3, config.S3_BUCKET_NAME, `jobs/${job.id}/`)).toEqual([
      { key: `jobs/${job.id}/output-0.webp`, size: first.sizeBytes },
    ]);
    const stored = await s3.send(new GetObjectCommand({ Bucket: config.S3_BUCKET_NAME, Key: first.s3Key }));
    expect(stored.ContentType).toBe('image/webp');
    const row = (await getJob(database.db, job.id))!.media[0]!;
    expect(row).toMatchObject({ status: 'COMPLETED', sha256: first.sha256, sizeBytes: first.sizeBytes, attempts: 1 });
  });

  it('answers a retry of an output already stored from its record, without fetching the source again', async () => {
    const job = await newJob();
    const input = await persistInput(job);
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

  it('records nothing for a job that ended before its output was stored: its end stays its last event', async () => {
    const job = await newJob();
    const input = await persistInput(job);
    // An attempt Temporal took for dead, still running when the job ended without it.
    await finishJob(database.db, job.id, { status: 'CANCELLED', errorMessage: 'cancelled meanwhile' });
    await expect(runActivity(activities.persistOutput, [input], { attempt: 2 })).rejects.toMatchObject({
      type: 'JobEnded',
      message: 'the job ended before this output was recorded',
    });
    expect((await getJob(database.db, job.id))!.media[0]).toMatchObject({ status: 'CANCELLED', sha256: null });
    const [last] = await database.db
      .select()
      .from(jobEvents)
      .where(eq(jobEvents.jobId, job.id))
      .orderBy(desc(jobEvents.seq))
      .limit(1);
    expect(last).toMatchObject({ type: 'status', data: { status: 'CANCELLED', error_message: 'cancelled meanwhile' } });
  });

  it("removes what it stored again when the job's outputs are being removed, and records nothing", async () => {
    const job = await newJob();
    const input = await persistInput(job);
    await finishJob(database.db, job.id, { status: 'FAILED', errorMessage: 'failed meanwhile' });
    // A DELETE expires the outputs first, then removes the objects it finds and records it.
    await expireJobDataNow(database.db, job.id);
    await markJobDataRemoved(database.db, job.id);
    await expect(runActivity(activities.persistOutput, [input], { attempt: 2 })).rejects.toMatchObject({
      type: 'JobEnded',
    });
    expect(await listObjects(s3, config.S3_BUCKET_NAME, `jobs/${job.id}/`)).toEqual([]);
    expect((await getJob(database.db, job.id))!.media[0]).toMatchObject({ status: 'FAILED', sha256: null });
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
    const missing = '00000000-0000-4000-8000-000000000001';
    await expect(runActivity(activities.startJob, [missing])).rejects.toMatchObject({
      type: 'JobNotFound',
      nonRetryable: true,
    });
    const request = { ...predictionRequest(await newJob()), jobId: missing };
    await expect(runActivity(activities.startJobWithPrediction, [request])).rejects.toMatchObject({
      type: 'JobNotFound',
      nonRetryable: true,
    });
    expect(provider.createdForJob(missing)).toBe(0);
  });
});
