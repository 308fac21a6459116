import { randomUUID } from 'node:crypto';
import { count, eq, sql } from 'drizzle-orm';
import { mediaJobStatusSearchAttribute, workflowIdForJob } from '../../common/temporal';
import type { Database } from '../../db/client';
import { batches, jobs, media } from '../../db/schema';
import { createBatch } from '../../db/queries/batches';
import { finishJob } from '../../db/queries/jobs';
import { reconcileOnce } from '../support/jobs';
import { createTestKey } from '../support/public-api';
import { getJson, postJson, validRequest } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { sleep, waitFor } from '../support/wait';
import {
  TEST_WEBHOOK_SECRET,
  useWebhookReceivers,
  verifyWebhook,
  WEBHOOKS_TO_LOCAL_RECEIVERS,
} from '../support/webhooks';

const item = (prompt: string, fields: Record<string, unknown> = {}) => ({ ...validRequest, prompt, ...fields });

/** An owner's rows of every table a batch writes: what a rejected batch must leave as it found them. */
async function rowCounts(db: Database, owner: string) {
  const [[batchRows], [jobRows], [mediaRows]] = await Promise.all([
    db.select({ n: count() }).from(batches).where(eq(batches.owner, owner)),
    db.select({ n: count() }).from(jobs).where(eq(jobs.owner, owner)),
    db.select({ n: count() }).from(media).innerJoin(jobs, eq(jobs.id, media.jobId)).where(eq(jobs.owner, owner)),
  ]);
  return { batches: batchRows!.n, jobs: jobRows!.n, media: mediaRows!.n };
}

/** POST /api/v1/batches and GET /api/v1/batches/{id}; each test with an API key of its own, whose rows it counts. */
describe('batches', () => {
  // A database of its own: the reconciler's pass below must be the only one to see its batch.
  const stack = useTestStack({
    env: { AUTH_MODE: 'required', MEDIA_RETENTION_SECONDS: '86400', ...WEBHOOKS_TO_LOCAL_RECEIVERS },
    ownDatabase: true,
  });
  const receivers = useWebhookReceivers();
  let key: Awaited<ReturnType<typeof createTestKey>>;
  beforeEach(async () => {
    key = await createTestKey(stack.database.db);
  });
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    postJson(stack.baseUrl, '/api/v1/batches', body, { ...key.auth, ...headers });
  const get = (path: string) => getJson(stack.baseUrl, path, key.auth);

  async function workflowsOnTaskQueue(): Promise<number> {
    let runs = 0;
    for await (const _execution of stack.client.workflow.list({
      query: `TaskQueue = '${stack.config.TEMPORAL_TASK_QUEUE}'`,
    }))
      runs++;
    return runs;
  }

  it('makes one job per item, in order, and reports them all COMPLETED once they end', async () => {
    const prompts = ['a lighthouse', 'a harbour', 'a storm'].map((prompt) => `${prompt} ${randomUUID()}`);
    const reply = await post({
      jobs: prompts.map((prompt, index) => item(prompt, { num_outputs: index + 1 })),
    });
    expect(reply.status).toBe(202);
    const batchId = reply.body!.batch_id as string;
    expect(reply.headers.get('location')).toBe(`/api/v1/batches/${batchId}`);
    expect(reply.body!.jobs.map((job: any) => job.prompt)).toEqual(prompts);
    expect(reply.body!.jobs.map((job: any) => job.num_outputs)).toEqual([1, 2, 3]);
    expect(reply.body!.jobs[0]).toMatchObject({ status: 'PENDING', media: [expect.any(Object)] });
    expect(reply.body!.counts.PENDING + reply.body!.counts.PROCESSING + reply.body!.counts.COMPLETED).toBe(3);

    const ended = await waitFor(
      'the batch to end',
      async () => {
        const { body } = await get(`/api/v1/batches/${batchId}`);
        return body!.counts.COMPLETED === 3 && body!;
      },
      30_000,
    );
    expect(ended.counts).toEqual({ PENDING: 0, PROCESSING: 0, COMPLETED: 3, FAILED: 0, CANCELLED: 0 });
    expect(ended.jobs.map((job: any) => job.job_id)).toEqual(reply.body!.jobs.map((job: any) => job.job_id));
    expect(ended.jobs[2].media.map((output: any) => output.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);
    // Each job is an ordinary job: its status, its workflow.
    const status = await get(`/api/v1/status/${ended.jobs[1].job_id}`);
    expect(status.body).toMatchObject({ status: 'COMPLETED', prompt: prompts[1] });
  });

  it('sends the batch webhook once, signed, when every job has ended', async () => {
    const receiver = await receivers.start();
    const reply = await post({ webhook_url: receiver.url, jobs: [item('one'), item('two'), item('three')] });
    expect(reply.status).toBe(202);
    const batchId = reply.body!.batch_id as string;
    expect(reply.body).toMatchObject({ webhook_url: receiver.url, ended_at: null });

    const [message] = await receiver.waitFor(1);
    expect(verifyWebhook(TEST_WEBHOOK_SECRET, message!.headers, message!.body)).toBe(true);
    expect(message!.headers['webhook-id']).toBe(`msg_batch_${batchId}_ended`);
    const body = JSON.parse(message!.body) as Record<string, any>;
    expect(body).toMatchObject({
      event: 'batch_ended',
      batch_id: batchId,
      counts: { PENDING: 0, PROCESSING: 0, COMPLETED: 3, FAILED: 0, CANCELLED: 0 },
      ended_at: expect.any(String),
    });
    expect(body.jobs.map((job: any) => job.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);
    expect((await fetch(body.jobs[0].media[0].presigned_media_url)).status).toBe(200);

    const batch = (await get(`/api/v1/batches/${batchId}`)).body!;
    expect(batch.ended_at).toBe(body.ended_at);
    expect(Date.parse(batch.ended_at)).toBeGreaterThanOrEqual(
      Math.max(...batch.jobs.map((job: any) => Date.parse(job.completed_at))),
    );
    // Once: nothing else arrives, and the reconciler does not send it again.
    await reconcileOnce(stack);
    await sleep(1_500);
    expect(receiver.received).toHaveLength(1);
  });

  it('has the reconciler send a batch webhook whose announcer was cut off', async () => {
    const receiver = await receivers.start();
    // The batch's jobs ended without workflows (nothing announced it), over a minute ago.
    const { batch, jobs: batchJobs } = await createBatch(
      stack.database.db,
      { owner: key.id, requestHash: randomUUID(), webhookUrl: receiver.url },
      [1, 2].map((n) => ({
        model: 'a/b',
        prompt: `cut off ${n}`,
        numOutputs: 1,
        seed: n,
        outputFormat: 'png' as const,
      })),
    );
    for (const job of batchJobs)
      await finishJob(stack.database.db, job.id, { status: 'CANCELLED', errorMessage: 'scripted' });
    await stack.database.db
      .update(batches)
      .set({ endedAt: new Date(Date.now() - 5 * 60_000) })
      .where(eq(batches.id, batch.id));

    await reconcileOnce(stack);
    const [message] = await receiver.waitFor(1);
    expect(JSON.parse(message!.body)).toMatchObject({
      event: 'batch_ended',
      batch_id: batch.id,
      counts: { CANCELLED: 2 },
    });
    await reconcileOnce(stack);
    await sleep(1_000);
    expect(receiver.received).toHaveLength(1);
  });

  it('keeps a job COMPLETED everywhere when a workflow cancel request arrives while its end is retried', async () => {
    const receiver = await receivers.start();
    // The announcement of the batch's end fails after the job's end has committed, so the job's
    // workflow retries its end (a local activity with a backoff) until the trigger is dropped.
    await stack.database.db.execute(sql`
      create or replace function refuse_batch_webhook_start() returns trigger language plpgsql as $$
      begin raise exception 'the batch webhook start is refused (test)'; end $$`);
    await stack.database.db.execute(sql`
      create trigger refuse_batch_webhook_start before update of webhook_started_at on batches
      for each row when (new.webhook_started_at is not null) execute function refuse_batch_webhook_start()`);
    const dropTrigger = () =>
      stack.database.db.execute(sql`drop trigger if exists refuse_batch_webhook_start on batches`);
    try {
      const reply = await post({ webhook_url: receiver.url, jobs: [item(`ends once ${randomUUID()}`)] });
      expect(reply.status).toBe(202);
      const jobId = reply.body!.jobs[0].job_id as string;
      const handle = stack.client.workflow.getHandle(workflowIdForJob(jobId));
      await waitFor(
        'the job to end in its row',
        async () => (await get(`/api/v1/status/${jobId}`)).body!.status === 'COMPLETED',
      );
      expect((await handle.describe()).status.name).toBe('RUNNING');

      await handle.cancel();
      // The workflow has taken the cancel in: a workflow task completed after the request.
      await waitFor(
        'the workflow to take the cancel request in',
        async () => {
          const events = (await handle.fetchHistory()).events ?? [];
          const requested = events.findIndex((event) => event.workflowExecutionCancelRequestedEventAttributes);
          return requested >= 0 && events.slice(requested).some((event) => event.workflowTaskCompletedEventAttributes);
        },
        30_000,
        250,
      );
      await dropTrigger();

      const closed = await handle.result().then(
        () => 'COMPLETED',
        (error: Error) => (error.cause as Error | undefined)?.name ?? error.name,
      );
      expect(closed).toBe('COMPLETED');
      const description = await handle.describe();
      expect(description.status.name).toBe('COMPLETED');
      expect(description.typedSearchAttributes.get(mediaJobStatusSearchAttribute)).toBe('COMPLETED');
      const job = (await get(`/api/v1/status/${jobId}`)).body!;
      expect(job).toMatchObject({ status: 'COMPLETED', error_message: null });
      expect((await get(`/api/v1/batches/${reply.body!.batch_id}`)).body!.counts.COMPLETED).toBe(1);
    } finally {
      await dropTrigger();
    }
  });

  it('rejects a batch with one bad item, naming it, and creates nothing: no batch, no job, no workflow', async () => {
    const workflowsBefore = await workflowsOnTaskQueue();
    const before = await rowCounts(stack.database.db, key.id);
    const items = [item('fine'), item('fine too'), item('fine'), item('', { num_outputs: 50 }), item('fine')];
    const reply = await post({ jobs: items });
    expect(reply.status).toBe(422);
    expect(reply.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(reply.body!.errors).toEqual([
      { field: 'jobs[3].prompt', message: 'must not be empty' },
      { field: 'jobs[3].num_outputs', message: expect.stringMatching(/<=10/) },
    ]);
    expect(reply.body!.detail).toContain('jobs[3].prompt');

    // A rule beyond the schema: the item's retention is over the deployment's.
    const tooLong = await post({
      jobs: [item('fine'), item('fine', { retention_seconds: 100_000 })],
    });
    expect(tooLong.status).toBe(422);
    expect(tooLong.body!.errors).toEqual([{ field: 'jobs[1].retention_seconds', message: expect.any(String) }]);
    const unknown = await post({ jobs: [item('fine', { colour: 'red' })] });
    expect(unknown.body!.errors).toEqual([{ field: 'jobs[0].colour', message: 'is not a known field' }]);
    for (const body of [{ jobs: [] }, { jobs: Array.from({ length: 101 }, () => item('many')) }, {}]) {
      const refused = await post(body);
      expect(refused.status).toBe(422);
      expect(refused.body!.errors[0].field).toBe('jobs');
    }

    expect(await rowCounts(stack.database.db, key.id)).toEqual(before);
    await sleep(1_000);
    expect(await workflowsOnTaskQueue()).toBe(workflowsBefore);
  });

  it('answers a replay of its Idempotency-Key with the same batch, and a reuse with another body with 409', async () => {
    const idempotencyKey = `batch-${randomUUID()}`;
    const body = { jobs: [item(`first ${idempotencyKey}`), item(`second ${idempotencyKey}`)] };
    const first = await post(body, { 'Idempotency-Key': idempotencyKey });
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    // The same batch, with each item's fields in another order, sent again three times at once.
    const reordered = { jobs: body.jobs.map((job) => Object.fromEntries(Object.entries(job).reverse())) };
    const replays = await Promise.all(
      [body, reordered, body].map((sent) => post(sent, { 'Idempotency-Key': idempotencyKey })),
    );
    for (const replay of replays) {
      expect(replay.status).toBe(200);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.body!.batch_id).toBe(first.body!.batch_id);
      expect(replay.body!.jobs.map((job: any) => job.job_id)).toEqual(first.body!.jobs.map((job: any) => job.job_id));
    }
    const other = await post({ jobs: [item(`first ${idempotencyKey}`)] }, { 'Idempotency-Key': idempotencyKey });
    expect(other.status).toBe(409);
    expect(other.body!.detail).toContain(first.body!.batch_id);

    const withKey = await stack.database.db.select().from(batches).where(eq(batches.idempotencyKey, idempotencyKey));
    expect(withKey).toHaveLength(1);
    const itsJobs = await stack.database.db.select().from(jobs).where(eq(jobs.batchId, withKey[0]!.id));
    expect(itsJobs).toHaveLength(2);
  });

  it('answers 404 for an unknown batch and for an id that is not one', async () => {
    for (const id of [randomUUID(), 'not-a-batch']) {
      const reply = await get(`/api/v1/batches/${id}`);
      expect(reply.status).toBe(404);
      expect(reply.body!.detail).toContain(id);
    }
  });

  it('documents the batch routes in /openapi.json', async () => {
    const { body } = await get('/openapi.json');
    expect(Object.keys(body!.paths)).toEqual(expect.arrayContaining(['/api/v1/batches', '/api/v1/batches/{batch_id}']));
    expect(Object.keys(body!.paths['/api/v1/batches'].post.responses)).toEqual(
      expect.arrayContaining(['200', '202', '409', '422', '429']),
    );
    expect(Object.keys(body!.components.schemas.Batch.properties)).toEqual(
      expect.arrayContaining(['batch_id', 'counts', 'jobs']),
    );
  });
});

/** AUTH_MODE=required, MAX_RUNNING_JOBS_PER_KEY=3 and no worker: jobs stay PENDING. */
describe('batches and API keys', () => {
  const stack = useTestStack({ worker: false, env: { AUTH_MODE: 'required', MAX_RUNNING_JOBS_PER_KEY: '3' } });

  it("answers 404 for another key's batch", async () => {
    const alice = await createTestKey(stack.database.db, 'alice');
    const bob = await createTestKey(stack.database.db, 'bob');
    const created = await postJson(stack.baseUrl, '/api/v1/batches', { jobs: [item('alice')] }, alice.auth);
    expect(created.status).toBe(202);
    const batchId = created.body!.batch_id as string;
    expect((await getJson(stack.baseUrl, `/api/v1/batches/${batchId}`, alice.auth)).status).toBe(200);
    const hidden = await getJson(stack.baseUrl, `/api/v1/batches/${batchId}`, bob.auth);
    expect(hidden.status).toBe(404);
    expect(hidden.body!.detail).toBe(`There is no batch with id '${batchId}'.`);
  });

  it('counts every job of a batch against MAX_RUNNING_JOBS_PER_KEY, and creates none past it', async () => {
    const carol = await createTestKey(stack.database.db, 'carol');
    const before = await rowCounts(stack.database.db, carol.id);
    const tooMany = await postJson(
      stack.baseUrl,
      '/api/v1/batches',
      { jobs: [item('1'), item('2'), item('3'), item('4')] },
      carol.auth,
    );
    expect(tooMany.status).toBe(429);
    expect(tooMany.body!.detail).toMatch(/a batch of 4 is 1 too many/);
    expect(await rowCounts(stack.database.db, carol.id)).toEqual(before);
    const fits = await postJson(stack.baseUrl, '/api/v1/batches', { jobs: [item('1'), item('2')] }, carol.auth);
    expect(fits.status).toBe(202);
    const next = await postJson(stack.baseUrl, '/api/v1/batches', { jobs: [item('3'), item('4')] }, carol.auth);
    expect(next.status).toBe(429);
  });
});
