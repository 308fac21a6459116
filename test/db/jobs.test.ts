import { randomUUID } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { reopenFailedJob } from '../../db/queries/job-data';
import { dueSettleOf } from '../../db/queries/events';
import {
  clearSettleDue,
  createJob,
  deleteJob,
  finishJob,
  getJob,
  markJobProcessing,
  recentStartRate,
  recordPredictionId,
  START_RATE_REUSE_MS,
} from '../../db/queries/jobs';
import { markMediaCompleted, markMediaProcessing, recordMediaAttemptFailed } from '../../db/queries/media';
import { jobEvents, jobs } from '../../db/schema';
import { createDatabase } from '../../db/client';
import { testConfig } from '../support/stack';
import { useDatabase } from '../support/use-stack';

/** Query functions on the real Postgres: the conditions that keep a late or repeated write from undoing another. */
describe('job and media queries', () => {
  const database = useDatabase();

  const newJob = () =>
    createJob(database.db, {
      model: 'a/b',
      prompt: `queries ${randomUUID()}`,
      numOutputs: 1,
      seed: 1,
      outputFormat: 'png',
    });
  const jobRows = (jobId: string) => database.db.select().from(jobs).where(eq(jobs.id, jobId));

  it('createJob writes what a submission sets and the defaults of what it leaves out, prepared or under a cap alike', async () => {
    const full = {
      model: 'a/b',
      prompt: `every field ${randomUUID()}`,
      numOutputs: 3,
      seed: 42,
      outputFormat: 'jpg' as const,
      owner: `owner-${randomUUID()}`,
      clientAddress: '203.0.113.7',
      idempotencyKey: randomUUID(),
      requestHash: 'hash',
      webhookUrl: 'https://example.com/hook',
      webhookEvents: ['completed', 'output'],
      deadlineSeconds: 60,
      retentionSeconds: 3600,
      priority: 'high' as const,
    };
    const minimal = {
      model: 'a/b',
      prompt: `no options ${randomUUID()}`,
      numOutputs: 1,
      seed: 7,
      outputFormat: 'png' as const,
    };
    const what = async (created: Awaited<ReturnType<typeof createJob>>) => {
      const job = await getJob(database.db, created.id);
      const events = await database.db.select().from(jobEvents).where(eq(jobEvents.jobId, created.id));
      const { id, createdAt, updatedAt, media, ...row } = job!;
      expect(row).toEqual(
        Object.fromEntries(Object.entries(created).filter(([key]) => !['id', 'createdAt', 'updatedAt'].includes(key))),
      );
      return {
        row,
        timestamps: [createdAt, updatedAt, ...media.flatMap((output) => [output.createdAt, output.updatedAt])].map(
          (time) => time.getTime() === createdAt.getTime(),
        ),
        media: media.map((output) => ({ index: output.outputIndex, key: output.s3Key.replace(id, 'ID') })),
        events: events.map((event) => ({ seq: event.seq, type: event.type, data: event.data })),
      };
    };
    const prepared = await what(await createJob(database.db, full));
    const capped = await what(
      await createJob(database.db, { ...full, idempotencyKey: randomUUID() }, { limit: 100, owner: full.owner }),
    );
    expect(prepared).toEqual({ ...capped, row: { ...capped.row, idempotencyKey: full.idempotencyKey } });
    expect(prepared.row).toMatchObject({ ...full, status: 'PENDING', eventSeq: 1, retryCount: 0, retryOf: null });
    expect(prepared.timestamps.every(Boolean)).toBe(true);
    expect(prepared.media).toEqual([0, 1, 2].map((index) => ({ index, key: `jobs/ID/output-${index}.jpg` })));
    expect(prepared.events).toEqual([{ seq: 1, type: 'status', data: { status: 'PENDING', error_message: null } }]);
    // What the request leaves out: the table's defaults, or null.
    expect((await what(await createJob(database.db, minimal))).row).toMatchObject({
      ...minimal,
      owner: 'anonymous',
      priority: 'normal',
      clientAddress: null,
      idempotencyKey: null,
      webhookUrl: null,
      webhookEvents: null,
      deadlineSeconds: null,
      retentionSeconds: null,
    });
  });

  it('createJob is built once per number of outputs and prepared on the connection', async () => {
    const single = createDatabase({ url: testConfig().DATABASE_URL, poolSize: 1 });
    try {
      for (const numOutputs of [2, 2, 4])
        await createJob(single.db, {
          model: 'a/b',
          prompt: `prepared ${randomUUID()}`,
          numOutputs,
          seed: 1,
          outputFormat: 'png',
        });
      const statements = await single.pool.query<{ name: string }>(
        "select name from pg_prepared_statements where name like 'create_job_%' order by name",
      );
      expect(statements.rows.map((row) => row.name)).toEqual(['create_job_2', 'create_job_4']);
    } finally {
      await single.close();
    }
  });

  it('deleteJob removes a PENDING job with no prediction', async () => {
    const job = await newJob();
    expect(await deleteJob(database.db, job.id)).toBe(true);
    expect(await jobRows(job.id)).toHaveLength(0);
  });

  it('deleteJob never removes a job a workflow has started (PROCESSING) or one with a prediction', async () => {
    const processing = await newJob();
    await markJobProcessing(database.db, processing.id);
    const predicted = await newJob();
    await recordPredictionId(database.db, predicted.id, `prediction-${randomUUID()}`);
    expect(await deleteJob(database.db, processing.id)).toBe(false);
    expect(await deleteJob(database.db, predicted.id)).toBe(false);
    expect(await jobRows(processing.id)).toHaveLength(1);
    expect(await jobRows(predicted.id)).toHaveLength(1);
    await database.db.delete(jobs).where(inArray(jobs.id, [processing.id, predicted.id]));
  });

  it('markMediaProcessing counts an attempt once however often its start is recorded', async () => {
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

  it('recordMediaAttemptFailed counts only on an output still to store of a job that has not ended', async () => {
    const job = await createJob(database.db, {
      model: 'a/b',
      prompt: `failed attempts ${randomUUID()}`,
      numOutputs: 2,
      seed: 1,
      outputFormat: 'png',
    });
    const stored = { jobId: job.id, outputIndex: 0 };
    const waiting = { jobId: job.id, outputIndex: 1 };
    await markMediaProcessing(database.db, waiting, 'fake://image?b', 1);
    expect(await recordMediaAttemptFailed(database.db, waiting, 1)).toBe(1);
    // An attempt that outlived its heartbeat fails after another stored the output: no count.
    const object = { contentType: 'image/png', sizeBytes: 3, sha256: 'abc', sourceUrl: 'fake://image?a', attempt: 2 };
    await markMediaCompleted(database.db, stored, object);
    expect(await recordMediaAttemptFailed(database.db, stored, 1)).toBe('settled');
    // Nor once the job has ended.
    expect(await finishJob(database.db, job.id, { status: 'CANCELLED', errorMessage: 'cancelled' })).toBe(true);
    expect(await recordMediaAttemptFailed(database.db, waiting, 2)).toBe('job-ended');
    const media = (await getJob(database.db, job.id))!.media;
    expect(media.map((row) => row.failedAttempts)).toEqual([0, 1]);
    // An output with no row is out of attempts.
    expect(await recordMediaAttemptFailed(database.db, { jobId: job.id, outputIndex: 7 }, 1)).toBe(
      Number.MAX_SAFE_INTEGER,
    );
  });

  it('markMediaCompleted records an object once, however often the attempt that stored it runs', async () => {
    const job = await newJob();
    const ref = { jobId: job.id, outputIndex: 0 };
    const stored = { contentType: 'image/png', sizeBytes: 3, sha256: 'abc', sourceUrl: 'fake://image?a', attempt: 1 };
    await markMediaCompleted(database.db, ref, stored);
    await markMediaCompleted(database.db, ref, stored);
    const outputEvents = () =>
      database.db
        .select({ seq: jobEvents.seq, data: jobEvents.data })
        .from(jobEvents)
        .where(and(eq(jobEvents.jobId, job.id), eq(jobEvents.type, 'output')));
    expect(await outputEvents()).toHaveLength(1);
    // Another object under the key (its source served other bytes) is the truth now: recorded, announced.
    await markMediaCompleted(database.db, ref, { ...stored, sha256: 'def', attempt: 2 });
    expect(await outputEvents()).toHaveLength(2);
    expect((await getJob(database.db, job.id))!.media[0]).toMatchObject({
      status: 'COMPLETED',
      sha256: 'def',
      attempts: 2,
    });
  });

  it("markMediaCompleted on an ended job records no output, and only a COMPLETED one takes its object's facts", async () => {
    const job = (await createJob(database.db, {
      model: 'a/b',
      prompt: `ended ${randomUUID()}`,
      numOutputs: 2,
      seed: 1,
      outputFormat: 'png',
    }))!;
    const stored = { contentType: 'image/png', sizeBytes: 3, sha256: 'abc', sourceUrl: 'fake://image?a', attempt: 1 };
    expect(await markMediaCompleted(database.db, { jobId: job.id, outputIndex: 0 }, stored)).toBe('recorded');
    await finishJob(database.db, job.id, { status: 'CANCELLED', errorMessage: 'cancelled' });
    const eventsBefore = await database.db.select().from(jobEvents).where(eq(jobEvents.jobId, job.id));

    // Late attempts: output 1 was cancelled with the job; output 0 is overwritten with other bytes.
    expect(await markMediaCompleted(database.db, { jobId: job.id, outputIndex: 1 }, stored)).toBe('job-ended');
    expect(
      await markMediaCompleted(
        database.db,
        { jobId: job.id, outputIndex: 0 },
        { ...stored, sha256: 'def', attempt: 2 },
      ),
    ).toBe('recorded');
    const media = (await getJob(database.db, job.id))!.media;
    expect(media.map((row) => [row.status, row.sha256, row.attempts])).toEqual([
      ['COMPLETED', 'def', 1],
      ['CANCELLED', null, 0],
    ]);
    expect(await database.db.select().from(jobEvents).where(eq(jobEvents.jobId, job.id))).toEqual(eventsBefore);

    // Once its outputs are due for removal, nothing is recorded and the attempt is told to remove its object.
    await database.db
      .update(jobs)
      .set({ expiresAt: sql`now()` })
      .where(eq(jobs.id, job.id));
    expect(await markMediaCompleted(database.db, { jobId: job.id, outputIndex: 0 }, stored)).toBe('removal-due');
    expect((await getJob(database.db, job.id))!.media[0]!.sha256).toBe('def');
  });

  it('markMediaCompleted records the output of a running job whose DELETE set its outputs to go', async () => {
    const job = await newJob();
    // The DELETE of a running job expires its outputs first, then cancels it and waits for its end.
    await database.db
      .update(jobs)
      .set({ expiresAt: sql`now()` })
      .where(eq(jobs.id, job.id));
    const stored = { contentType: 'image/png', sizeBytes: 3, sha256: 'abc', sourceUrl: 'fake://image?a', attempt: 1 };
    expect(await markMediaCompleted(database.db, { jobId: job.id, outputIndex: 0 }, stored)).toBe('recorded');
    expect((await getJob(database.db, job.id))!.media[0]).toMatchObject({ status: 'COMPLETED', sha256: 'abc' });
  });

  it('reopenFailedJob waits for the settle due for the run before: no retry makes another run the latest meanwhile', async () => {
    const job = await newJob();
    await finishJob(database.db, job.id, { status: 'FAILED', errorMessage: 'lost' }, { settleDue: true });
    expect(await reopenFailedJob(database.db, job.id, 60)).toBeUndefined();
    await clearSettleDue(database.db, job.id);
    expect(await reopenFailedJob(database.db, job.id, 60)).toMatchObject({ retryCount: 1 });
  });

  it("clearSettleDue with the mark it read leaves a later end's mark alone", async () => {
    const job = await newJob();
    await finishJob(database.db, job.id, { status: 'FAILED', errorMessage: 'lost' }, { settleDue: true });
    const first = (await dueSettleOf(database.db, job.id))!;
    // A later end marked its own settle (the job retried and lost again) before this clear came.
    await database.db
      .update(jobs)
      .set({ settleDueAt: sql`settle_due_at + interval '1 microsecond'` })
      .where(eq(jobs.id, job.id));
    const later = (await dueSettleOf(database.db, job.id))!;
    await clearSettleDue(database.db, job.id, first.dueAt);
    expect(await dueSettleOf(database.db, job.id)).toEqual(later);
    await clearSettleDue(database.db, job.id, later.dueAt);
    expect(await dueSettleOf(database.db, job.id)).toBeUndefined();
  });

  it('recentStartRate reads the start rate once per START_RATE_REUSE_MS, however many PENDING polls ask', async () => {
    // A handle of its own (its own cached reading) that counts the statements it is sent.
    let reads = 0;
    const counted = new Proxy(database.db, {
      get(target, property, receiver) {
        if (property !== 'execute') return Reflect.get(target, property, receiver);
        return (...args: Parameters<typeof target.execute>) => {
          reads++;
          return target.execute(...args);
        };
      },
    });
    const now = Date.now();
    const started = await Promise.all(Array.from({ length: 30 }, () => newJob()));
    for (const job of started) await markJobProcessing(database.db, job.id);

    const polls = await Promise.all(Array.from({ length: 5 }, () => recentStartRate(counted, now)));
    expect(await recentStartRate(counted, now + START_RATE_REUSE_MS - 1)).toBe(polls[0]);
    expect(new Set(polls).size).toBe(1);
    expect(reads).toBe(1);
    // The 30 jobs just started are in the five-minute window (30 / 300 s), with whatever other suites started.
    expect(polls[0]).toBeGreaterThanOrEqual(30 / 300);
    // After the window: read again.
    await recentStartRate(counted, now + START_RATE_REUSE_MS);
    expect(reads).toBe(2);
    await database.db.delete(jobs).where(
      inArray(
        jobs.id,
        started.map((job) => job.id),
      ),
    );
  });

  it("the start rate's count can read the started_at index, not only the whole table", async () => {
    // Every PENDING job's poll needs the rate (once per START_RATE_REUSE_MS per process): on a
    // table of millions of jobs a sequential scan is what made the poll slow.
    const plan = await database.db.transaction(async (tx) => {
      await tx.execute(sql`set local enable_seqscan = off`);
      const explained = await tx.execute<{ 'QUERY PLAN': unknown }>(
        sql`explain (format json) select count(*) from jobs where started_at > now() - 300 * interval '1 second'`,
      );
      return JSON.stringify(explained.rows[0]!['QUERY PLAN']);
    });
    expect(plan).toContain('jobs_started_at_idx');
  });
});
