import { randomUUID } from 'node:crypto';
import { eq, inArray } from 'drizzle-orm';
import { requestHash } from '../../api/submission';
import { generateRequestSchema } from '../../api/schemas';
import { workflowIdForJob } from '../../common/temporal';
import type { Database } from '../../db/client';
import { createJob, deleteJob } from '../../db/queries/jobs';
import { batches, jobs } from '../../db/schema';
import { postJson, validRequest, waitForJob, type TestStack } from '../support/stack';
import { delayStartAnswers, dropStarts } from '../support/grpc-faults';
import { useTestStack } from '../support/use-stack';

/**
 * What POST /api/v1/generate does when starting the workflow fails or times out: it asks Temporal
 * whether the workflow exists before it undoes anything, and a replayed Idempotency-Key never
 * answers 200 for a job that will not run.
 */

const jobRows = (db: Database, jobId: string) => db.select().from(jobs).where(eq(jobs.id, jobId));

/** A PENDING job recorded with an Idempotency-Key (anonymous), as a first request that died before its start leaves it. */
async function insertPendingJobWithKey(db: Database, body: typeof validRequest, key: string) {
  const request = generateRequestSchema.parse(body);
  return createJob(db, {
    model: request.model,
    prompt: request.prompt,
    numOutputs: request.num_outputs,
    seed: request.seed ?? 0,
    outputFormat: request.output_format,
    owner: 'anonymous',
    idempotencyKey: key,
    requestHash: requestHash(request),
  });
}

function expectTemporalUnavailable(reply: Awaited<ReturnType<typeof postJson>>) {
  expect(reply.status).toBe(503);
  expect(reply.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(reply.headers.get('idempotent-replayed')).toBeNull();
  expect(reply.body!.detail).toMatch(/Temporal is unavailable/);
}

/**
 * Replays an Idempotency-Key whose PENDING job has no workflow (a first request that died before its
 * start) to an API that cannot start one: 503, never 200, and still no workflow (the test's own client
 * reaches Temporal).
 */
async function expectReplayOfUnstartedJobUnavailable(stack: TestStack, label: string): Promise<void> {
  const key = `${label}-${randomUUID()}`;
  const body = { ...validRequest, prompt: `${label} ${key}` };
  const job = await insertPendingJobWithKey(stack.database.db, body, key);
  const reply = await postJson(stack.baseUrl, '/api/v1/generate', body, { 'Idempotency-Key': key });
  expectTemporalUnavailable(reply);
  await expect(stack.client.workflow.getHandle(workflowIdForJob(job.id)).describe()).rejects.toMatchObject({
    name: 'WorkflowNotFoundError',
  });
  await deleteJob(stack.database.db, job.id);
}

describe('a start whose answer reaches the API only after the start deadline', () => {
  // 6 s: past the API's 5 s start deadline (TEMPORAL_START_DEADLINE_MS), after the server has started the workflow.
  const stack = useTestStack({ apiTemporalInterceptors: [delayStartAnswers(6_000)] });

  it('is accepted (202): the workflow exists, the row is kept and the job completes', async () => {
    const prompt = `slow start ${randomUUID()}`;
    const began = Date.now();
    const reply = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, prompt });
    // The start did time out on the API's side: this is the path under test.
    expect(Date.now() - began).toBeGreaterThanOrEqual(5_000);
    expect(reply.status).toBe(202);
    expect(reply.body).toMatchObject({ job_id: expect.any(String), status: 'PENDING' });
    const jobId = reply.body!.job_id as string;
    expect(await jobRows(stack.database.db, jobId)).toHaveLength(1);
    const done = await waitForJob(stack.baseUrl, jobId);
    expect(done).toMatchObject({ status: 'COMPLETED', error_message: null });
  });
});

describe('a start that fails before it reaches Temporal', () => {
  const stack = useTestStack({ worker: false, apiTemporalInterceptors: [dropStarts()] });

  it('answers 503 and removes the job: no workflow exists', async () => {
    const prompt = `dropped start ${randomUUID()}`;
    const reply = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, prompt });
    expectTemporalUnavailable(reply);
    expect(await stack.database.db.select().from(jobs).where(eq(jobs.prompt, prompt))).toHaveLength(0);
  });

  it('answers 503, not 200, to a replayed Idempotency-Key whose PENDING job cannot be started', async () => {
    await expectReplayOfUnstartedJobUnavailable(stack, 'dropped-replay');
  });

  it('answers 503, never 500, to concurrent requests with one Idempotency-Key while no start gets through', async () => {
    const key = `dropped-concurrent-${randomUUID()}`;
    const prompt = `dropped concurrent ${randomUUID()}`;
    // One of them inserts the job and removes it when its start fails; the others lose the insert to
    // it and may then find no job to answer with.
    for (let round = 0; round < 5; round++) {
      const replies = await Promise.all(
        Array.from({ length: 8 }, () =>
          postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, prompt }, { 'Idempotency-Key': key }),
        ),
      );
      expect(replies.map((reply) => reply.status)).toEqual(replies.map(() => 503));
    }
    expect(await stack.database.db.select().from(jobs).where(eq(jobs.prompt, prompt))).toHaveLength(0);
    // The same for a batch.
    for (let round = 0; round < 5; round++) {
      const replies = await Promise.all(
        Array.from({ length: 8 }, () =>
          postJson(
            stack.baseUrl,
            '/api/v1/batches',
            { jobs: [{ ...validRequest, prompt }] },
            { 'Idempotency-Key': `${key}-batch` },
          ),
        ),
      );
      expect(replies.map((reply) => reply.status)).toEqual(replies.map(() => 503));
    }
  });

  it('answers 503 to a batch and keeps nothing of it: no batch, no job', async () => {
    const key = `dropped-batch-${randomUUID()}`;
    const prompts = [1, 2, 3].map((n) => `${key} ${n}`);
    const reply = await postJson(
      stack.baseUrl,
      '/api/v1/batches',
      { jobs: prompts.map((prompt) => ({ ...validRequest, prompt })) },
      { 'Idempotency-Key': key },
    );
    expectTemporalUnavailable(reply);
    expect(await stack.database.db.select().from(jobs).where(inArray(jobs.prompt, prompts))).toHaveLength(0);
    expect(await stack.database.db.select().from(batches).where(eq(batches.idempotencyKey, key))).toHaveLength(0);
  });
});

describe('a replayed Idempotency-Key with Temporal unreachable for the API', () => {
  const stack = useTestStack({ worker: false, apiTemporalAddress: '127.0.0.1:1' });

  it('answers 503, not 200, when the PENDING job has no workflow and none can be started', async () => {
    await expectReplayOfUnstartedJobUnavailable(stack, 'unreachable-replay');
  });
});

describe('a batch one of whose starts fails after another job of it has ended', () => {
  // The second start fails 3 s in: the first job has run to its end meanwhile.
  const stack = useTestStack({ apiTemporalInterceptors: [dropStarts({ nth: 2, afterMs: 3_000 })] });

  it('keeps the job that ran, and records the end of the batch it is left alone in', async () => {
    const prompts = [1, 2].map((n) => `half-started batch ${randomUUID()} ${n}`);
    const reply = await postJson(stack.baseUrl, '/api/v1/batches', {
      jobs: prompts.map((prompt) => ({ ...validRequest, prompt })),
    });
    expect(reply.status).toBe(503);
    const rows = await stack.database.db.select().from(jobs).where(inArray(jobs.prompt, prompts));
    expect(rows.map((row) => row.status)).toEqual(['COMPLETED']);
    const [batch] = await stack.database.db.select().from(batches).where(eq(batches.id, rows[0]!.batchId!));
    expect(batch?.endedAt).toBeInstanceOf(Date);
  });
});
