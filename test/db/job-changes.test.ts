import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { JobChanges, JobChangeWaiter, type JobChange } from '../../db/job-changes';
import { listJobEvents } from '../../db/queries/events';
import { createJob, finishJob, markJobProcessing } from '../../db/queries/jobs';
import { markMediaCompleted } from '../../db/queries/media';
import { jobs } from '../../db/schema';
import { testConfig } from '../support/stack';
import { throughProxy, Toxiproxy, type Proxy } from '../support/toxiproxy';
import { useDatabase } from '../support/use-stack';
import { waitFor } from '../support/wait';

/**
 * The announcements of job_events (migrations 0013 and 0015) on the real Postgres: each carries
 * the event as written, and a waiter picks which wake it.
 */
describe('the change feed of job_events', () => {
  const database = useDatabase();
  let changes: JobChanges;

  beforeAll(() => {
    changes = new JobChanges({ url: testConfig().DATABASE_URL });
    return changes.start();
  });
  afterAll(() => changes.stop());

  /**
   * A new PROCESSING job, once that change (event 2) has been announced. Announcements come in commit
   * order, so the creation's (event 1) has come too: what is announced afterwards is the test's.
   */
  const processingJob = async () => {
    const job = await createJob(database.db, {
      model: 'a/b',
      prompt: `changes ${randomUUID()}`,
      numOutputs: 1,
      seed: 1,
      outputFormat: 'png',
    });
    let started: JobChange | undefined;
    const unsubscribe = changes.subscribe(job.id, (change) => {
      if (change?.seq === 2) started = change;
    });
    await markJobProcessing(database.db, job.id);
    await waitFor('the start to be announced', () => started, 5_000).finally(unsubscribe);
    expect(started).toMatchObject({ seq: 2, type: 'status', status: 'PROCESSING' });
    return job;
  };

  /** What a reader of the table gets for these events, in the form an announcement carries it. */
  const asAnnounced = async (jobId: string, afterSeq: number) =>
    (await listJobEvents(database.db, jobId, afterSeq)).map((row) => ({
      seq: row.seq,
      type: row.type,
      status: row.type === 'status' ? (row.data as { status: string }).status : undefined,
      event: { createdAt: row.createdAt, data: row.data },
    }));

  it('announces each event with its type, and a status event with its status', async () => {
    const job = await processingJob();
    const heard: (JobChange | undefined)[] = [];
    const unsubscribe = changes.subscribe(job.id, (change) => heard.push(change));
    try {
      await markMediaCompleted(
        database.db,
        { jobId: job.id, outputIndex: 0 },
        { contentType: 'image/png', sizeBytes: 3, sha256: 'abc', sourceUrl: 'fake://image', attempt: 1 },
      );
      await finishJob(database.db, job.id, { status: 'COMPLETED' });
      await waitFor('two announcements', () => heard.length >= 2, 5_000);
      expect(heard).toMatchObject([
        { seq: 3, type: 'output', status: undefined },
        { seq: 4, type: 'status', status: 'COMPLETED' },
      ]);
      // Each carries its row as a reader of the table gets it, to the millisecond.
      expect(heard).toEqual(await asAnnounced(job.id, 2));
    } finally {
      unsubscribe();
      await database.db.delete(jobs).where(eq(jobs.id, job.id));
    }
  });

  it('announces an event too large for a notification without it, for its readers to read', async () => {
    const job = await processingJob();
    const heard: (JobChange | undefined)[] = [];
    const unsubscribe = changes.subscribe(job.id, (change) => heard.push(change));
    try {
      await finishJob(database.db, job.id, { status: 'FAILED', errorMessage: `provider: ${'x'.repeat(9_000)}` });
      // The output left unstored and the job both end with the message: neither event is carried.
      await waitFor('the end to be announced', () => heard.length >= 2, 5_000);
      expect(heard).toEqual([
        { seq: 3, type: 'output', status: undefined },
        { seq: 4, type: 'status', status: 'FAILED' },
      ]);
    } finally {
      unsubscribe();
      await database.db.delete(jobs).where(eq(jobs.id, job.id));
    }
  });

  it('wakes a waiter only for the announcements it asks for', async () => {
    const job = await processingJob();
    const waiter = new JobChangeWaiter(changes, job.id, (change) => change.type === 'status');
    try {
      await markMediaCompleted(
        database.db,
        { jobId: job.id, outputIndex: 0 },
        { contentType: 'image/png', sizeBytes: 3, sha256: 'abc', sourceUrl: 'fake://image', attempt: 1 },
      );
      expect(await waiter.next(1_000)).toBe(false);
      await finishJob(database.db, job.id, { status: 'COMPLETED' });
      expect(await waiter.next(5_000)).toBe(true);
    } finally {
      waiter.close();
      await database.db.delete(jobs).where(eq(jobs.id, job.id));
    }
  });
});

/** The feed's own connection through Toxiproxy: a link that goes silent raises no error of its own. */
describe('the change feed on a link that goes silent', () => {
  const database = useDatabase();
  const errors: Error[] = [];
  let toxiproxy: Toxiproxy;
  let proxy: Proxy;
  let changes: JobChanges;

  beforeAll(async () => {
    const url = testConfig().DATABASE_URL;
    const { hostname, port } = new URL(url);
    toxiproxy = await Toxiproxy.start();
    proxy = await toxiproxy.proxy('feed-postgres', `${hostname}:${port || 5432}`);
    changes = new JobChanges({
      url: throughProxy(url, proxy),
      livenessIntervalMs: 300,
      livenessTimeoutMs: 500,
      onError: (error) => errors.push(error),
    });
    await changes.start();
  });
  afterAll(async () => {
    await changes?.stop();
    await toxiproxy?.stop();
  });

  it('notices a listening connection that no longer answers, and listens on a new one', async () => {
    const job = await createJob(database.db, {
      model: 'a/b',
      prompt: `silent link ${randomUUID()}`,
      numOutputs: 1,
      seed: 1,
      outputFormat: 'png',
    });
    const heard: (JobChange | undefined)[] = [];
    const unsubscribe = changes.subscribe(job.id, (change) => heard.push(change));
    const listener = changes.listenerPid;
    expect(listener).toBeDefined();
    // Nothing comes back any more and nothing is closed: a flow that a NAT or a load balancer forgot.
    const silence = await proxy.addToxic({ type: 'timeout', attributes: { timeout: 0 } });
    await waitFor('the feed to notice the silence', () => errors.length > 0, 10_000);
    await proxy.removeToxic(silence);
    await waitFor('a new listening connection', () => (changes.listenerPid ?? listener) !== listener, 10_000);
    // Its subscribers are told to read again (what was announced meanwhile), and hear what comes next.
    expect(heard).toContain(undefined);
    await markJobProcessing(database.db, job.id);
    await waitFor('the start to be announced', () => heard.some((change) => change?.seq === 2), 5_000);
    unsubscribe();
  });

  it('tells its subscribers to read again once it first listens: what changed before that was not announced to it', async () => {
    const job = await createJob(database.db, {
      model: 'a/b',
      prompt: `first listen ${randomUUID()}`,
      numOutputs: 1,
      seed: 1,
      outputFormat: 'png',
    });
    // A slow link: the connection and its LISTEN take a few round trips of 300 ms.
    const slowness = await proxy.addToxic({ type: 'latency', attributes: { latency: 300 } });
    const late = new JobChanges({ url: throughProxy(testConfig().DATABASE_URL, proxy) });
    try {
      const heard: (JobChange | undefined)[] = [];
      // A stream or a wait subscribes, then reads the table, while the process's feed still connects.
      const unsubscribe = late.subscribe(job.id, (change) => heard.push(change));
      const listening = late.start();
      await markJobProcessing(database.db, job.id);
      await listening;
      await waitFor('the subscriber to be told to read again', () => heard.includes(undefined), 5_000);
      unsubscribe();
    } finally {
      await late.stop();
      await proxy.removeToxic(slowness);
    }
  });
});
