import { eq } from 'drizzle-orm';
import { Client } from 'pg';
import { workflowIdForJob } from '../../common/temporal';
import { jobs } from '../../db/schema';
import { delayStartAnswers } from '../support/grpc-faults';
import { readEvents } from '../support/public-api';
import { getJson, postJson, startTestStack, validRequest, type TestStack } from '../support/stack';
import { sleep, waitFor } from '../support/wait';

/**
 * The change feed (LISTEN job_events, one connection per API process) and what waits on it: event
 * streams, `Prefer: wait`, and the queue position of PENDING jobs.
 */
describe('the change feed', () => {
  /** An API with a worker whose predictions take 1.5 s. */
  let working: TestStack;
  /** A second API process's worth (its own feed connection), with no worker. */
  let watching: TestStack;

  beforeAll(async () => {
    working = await startTestStack({ env: { FAKE_PROVIDER_LATENCY_MS: '1500' } });
    watching = await startTestStack({
      worker: false,
      env: { TEMPORAL_TASK_QUEUE: working.config.TEMPORAL_TASK_QUEUE },
    });
  });
  afterAll(async () => {
    await watching?.stop();
    await working?.stop();
  });

  async function submit(stack: TestStack, headers: Record<string, string> = {}, body: object = validRequest) {
    const reply = await postJson(stack.baseUrl, '/api/v1/generate', body, headers);
    expect([200, 202]).toContain(reply.status);
    return reply;
  }

  it('streams to a client of one API process the changes written through the other', async () => {
    const jobId = (await submit(working)).body!.job_id as string;
    const stream = await readEvents(`${watching.baseUrl}/api/v1/jobs/${jobId}/events`);
    expect(stream.ended).toBe(true);
    const ids = stream.events.map((event) => Number(event.id));
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, index) => index + 1));
    expect(JSON.parse(stream.events.at(-1)!.data)).toMatchObject({ status: 'COMPLETED' });
  });

  it('misses nothing when its listening connection is cut and comes back', async () => {
    // A job no worker picks up, and one change of it written while the feed is down.
    const idle = await startTestStack({ worker: false });
    try {
      const jobId = (await submit(idle)).body!.job_id as string;
      const streaming = readEvents(`${idle.baseUrl}/api/v1/jobs/${jobId}/events`);
      await waitFor('the stream to subscribe', () => idle.changes.subscriberCount === 1, 5_000);
      const admin = new Client({ connectionString: idle.config.DATABASE_URL });
      await admin.connect();
      try {
        // This stack's listening connection only: the other suites' feeds keep theirs.
        const listener = idle.changes.listenerPid;
        expect(listener).toBeDefined();
        const cut = await admin.query<{ cut: boolean }>(`select pg_terminate_backend($1) as cut`, [listener]);
        expect(cut.rows[0]!.cut).toBe(true);
        // Announced to nobody: only the reconnect's read-again brings it to the stream.
        await admin.query(
          `with bumped as (update jobs set event_seq = event_seq + 1, status = 'CANCELLED' where id = $1 returning id, event_seq)
           insert into job_events (job_id, seq, type, data)
           select id, event_seq, 'status', '{"status":"CANCELLED","error_message":"written while the feed was down"}' from bumped`,
          [jobId],
        );
      } finally {
        await admin.end();
      }
      const stream = await streaming;
      expect(stream.ended).toBe(true);
      expect(stream.events.map((event) => [Number(event.id), JSON.parse(event.data).status])).toEqual([
        [1, 'PENDING'],
        [2, 'CANCELLED'],
      ]);
    } finally {
      await idle.stop();
    }
  }, 15_000);

  it('answers a Prefer: wait submit once its job has ended, with the final status reply', async () => {
    const reply = await submit(working, { Prefer: 'wait=30' });
    expect(reply.status).toBe(202);
    expect(reply.headers.get('preference-applied')).toBe('wait=30');
    expect(reply.body).toMatchObject({ status: 'COMPLETED', workflow_id: `media-job-${reply.body!.job_id}` });
    expect(reply.body!.media.map((media: { status: string }) => media.status)).toEqual(['COMPLETED', 'COMPLETED']);
    expect(reply.body!.media[0].presigned_media_url).toMatch(/^http/);
  });

  it('answers a Prefer: wait status poll of another process when the job ends there, or with its current state when the wait runs out', async () => {
    const jobId = (await submit(working)).body!.job_id as string;
    const short = await getJson(watching.baseUrl, `/api/v1/status/${jobId}`, { Prefer: 'wait=1' });
    expect(short.headers.get('preference-applied')).toBe('wait=1');
    expect(['PENDING', 'PROCESSING']).toContain(short.body!.status);
    const long = await getJson(watching.baseUrl, `/api/v1/status/${jobId}`, { Prefer: 'wait' });
    expect(long.headers.get('preference-applied')).toBe('wait=60');
    expect(long.body!.status).toBe('COMPLETED');
  });

  it('frees what a waiting client held when it hangs up', async () => {
    // No worker polls this stack's queue for this job: it stays PENDING.
    const idle = await startTestStack({ worker: false });
    try {
      const jobId = (await submit(idle)).body!.job_id as string;
      const controller = new AbortController();
      const waiting = fetch(`${idle.baseUrl}/api/v1/status/${jobId}`, {
        headers: { Prefer: 'wait=60' },
        signal: controller.signal,
      }).catch(() => undefined);
      await waitFor('the wait to subscribe', () => idle.changes.subscriberCount === 1, 5_000);
      controller.abort();
      await waiting;
      await waitFor('the wait to unsubscribe', () => idle.changes.subscriberCount === 0, 5_000);
    } finally {
      await idle.stop();
    }
  });

  it('answers its waits (and a DELETE) at once with the current state, and ends its event streams, when the API process shuts down', async () => {
    // No worker: the jobs stay PENDING, and nothing but the shutdown ends the waits.
    const leaving = await startTestStack({ worker: false });
    try {
      const waitingSubmit = postJson(leaving.baseUrl, '/api/v1/generate', validRequest, { Prefer: 'wait=60' });
      const jobId = (await submit(leaving)).body!.job_id as string;
      const waitingPoll = getJson(leaving.baseUrl, `/api/v1/status/${jobId}`, { Prefer: 'wait=60' });
      const following = readEvents(`${leaving.baseUrl}/api/v1/jobs/${jobId}/events`, { timeoutMs: 30_000 });
      // A DELETE of a job that has not ended waits for its end (no worker takes in the cancel here).
      const deletedId = (await submit(leaving)).body!.job_id as string;
      const deleting = fetch(`${leaving.baseUrl}/api/v1/jobs/${deletedId}`, { method: 'DELETE' });
      await waitFor('the four clients to wait', () => leaving.changes.subscriberCount === 4, 10_000);

      // A deploy's SIGTERM: the process answers everything in flight before it exits.
      const drained = await Promise.race([leaving.drainApi().then(() => 'drained'), sleep(15_000).then(() => 'held')]);
      expect(drained).toBe('drained');
      const [submitted, polled, followed, deleted] = await Promise.all([
        waitingSubmit,
        waitingPoll,
        following,
        deleting,
      ]);
      // Still ending: its objects are removed once it has ended.
      expect(deleted.status).toBe(202);
      expect(submitted.status).toBe(202);
      expect(submitted.headers.get('preference-applied')).toBe('wait=60');
      expect(submitted.body).toMatchObject({ job_id: expect.any(String), status: 'PENDING' });
      expect(polled.status).toBe(200);
      expect(polled.body).toMatchObject({ job_id: jobId, status: 'PENDING' });
      // The stream ends, and its client reconnects with Last-Event-ID to a process that stays.
      expect(followed.ended).toBe(true);
      expect(followed.events.map((event) => JSON.parse(event.data).status)).toEqual(['PENDING']);
      expect(leaving.changes.subscriberCount).toBe(0);
    } finally {
      await leaving.stop();
    }
  });

  it('holds nothing for a waiting client that hung up before its submit was answered', async () => {
    // The workflow's start answers after 1.5 s: the client leaves while the API is still submitting.
    const slow = await startTestStack({ worker: false, apiTemporalInterceptors: [delayStartAnswers(1_500)] });
    try {
      const prompt = `gone before the wait ${Date.now()}`;
      const controller = new AbortController();
      const submitting = fetch(`${slow.baseUrl}/api/v1/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', Prefer: 'wait=60' },
        body: JSON.stringify({ ...validRequest, prompt }),
        signal: controller.signal,
      }).catch(() => undefined);
      await sleep(300);
      controller.abort();
      await submitting;
      const [job] = await slow.database.db.select().from(jobs).where(eq(jobs.prompt, prompt));
      expect(job).toBeDefined();
      // Once the start has been answered, the API would wait here: it must not, the client is gone.
      await waitFor('the workflow to start', async () => {
        const described = await slow.client.workflow
          .getHandle(workflowIdForJob(job!.id))
          .describe()
          .catch(() => undefined);
        return described !== undefined;
      });
      await sleep(2_000);
      expect(slow.changes.subscriberCount).toBe(0);
    } finally {
      await slow.stop();
    }
  });

  it('says where a PENDING job stands in the queue', async () => {
    // A database of its own: the queue it counts holds this test's jobs alone.
    const idle = await startTestStack({ worker: false, ownDatabase: true });
    try {
      const first = (await submit(idle)).body!.job_id as string;
      const second = (await submit(idle)).body!.job_id as string;
      const [a, b] = await Promise.all([
        getJson(idle.baseUrl, `/api/v1/status/${first}`),
        getJson(idle.baseUrl, `/api/v1/status/${second}`),
      ]);
      expect([a.body!.queue_position, b.body!.queue_position]).toEqual([1, 2]);
      // A batch's jobs, submitted at one instant, stand in the order of the request's items.
      const batch = await postJson(idle.baseUrl, '/api/v1/batches', {
        jobs: Array.from({ length: 6 }, () => validRequest),
      });
      expect(batch.status).toBe(202);
      const positions = await Promise.all(
        (batch.body!.jobs as { job_id: string }[]).map(
          async (job) => (await getJson(idle.baseUrl, `/api/v1/status/${job.job_id}`)).body!.queue_position as number,
        ),
      );
      expect(positions).toEqual([3, 4, 5, 6, 7, 8]);
      const done = await getJson(
        working.baseUrl,
        `/api/v1/status/${(await submit(working, { Prefer: 'wait=30' })).body!.job_id}`,
      );
      expect(done.body).toMatchObject({ status: 'COMPLETED', queue_position: null, estimated_start_at: null });
    } finally {
      await idle.stop();
    }
  });
});
