import { randomUUID } from 'node:crypto';
import { InterceptingCall, Metadata, status as GrpcStatus, type Interceptor } from '@grpc/grpc-js';
import { eq, inArray } from 'drizzle-orm';
import { requestHash } from '../../api/routes/generate';
import { generateRequestSchema } from '../../api/schemas';
import { workflowIdForJob } from '../../common/temporal';
import type { Database } from '../../db/client';
import { createJob, deleteJob, markJobProcessing, recordPredictionId } from '../../db/queries/jobs';
import { jobs } from '../../db/schema';
import { postJson, startTestStack, validRequest, waitForJob, type TestStack } from '../support/stack';

/**
 * What POST /api/v1/generate does when starting the workflow fails or times out: it asks Temporal
 * whether the workflow exists before it undoes anything, and a replayed Idempotency-Key never
 * answers 200 for a job that will not run.
 */

const isStart = (path: string) => path.endsWith('/StartWorkflowExecution');

/** Holds every answer to StartWorkflowExecution for `delayMs`: the server has started the workflow, the API hears of it late. */
function delayStartAnswers(delayMs: number): Interceptor {
  return (options, nextCall) => {
    if (!isStart(options.method_definition.path)) return new InterceptingCall(nextCall(options));
    return new InterceptingCall(nextCall(options), {
      start(metadata, _listener, next) {
        const later = (deliver: () => void) => void setTimeout(deliver, delayMs);
        next(metadata, {
          onReceiveMetadata: (received, pass) => later(() => pass(received)),
          onReceiveMessage: (message, pass) => later(() => pass(message)),
          onReceiveStatus: (received, pass) => later(() => pass(received)),
        });
      },
    });
  };
}

/** Fails every StartWorkflowExecution with UNAVAILABLE before it leaves the API: the server never hears of it. */
function dropStarts(): Interceptor {
  return (options, nextCall) => {
    if (!isStart(options.method_definition.path)) return new InterceptingCall(nextCall(options));
    return new InterceptingCall(nextCall(options), {
      start(_metadata, listener) {
        setImmediate(() =>
          listener.onReceiveStatus({
            code: GrpcStatus.UNAVAILABLE,
            details: 'the start was dropped before it left (test)',
            metadata: new Metadata(),
          }),
        );
      },
      sendMessage: () => undefined,
      halfClose: () => undefined,
    });
  };
}

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

describe('a start whose answer reaches the API only after the start deadline', () => {
  let stack: TestStack;
  beforeAll(async () => {
    // 6 s: past the API's 5 s start deadline (TEMPORAL_START_DEADLINE_MS), after the server has started the workflow.
    stack = await startTestStack({ apiTemporalInterceptors: [delayStartAnswers(6_000)] });
  });
  afterAll(async () => {
    await stack?.stop();
  });

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
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ worker: false, apiTemporalInterceptors: [dropStarts()] });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers 503 and removes the job: no workflow exists', async () => {
    const prompt = `dropped start ${randomUUID()}`;
    const reply = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, prompt });
    expectTemporalUnavailable(reply);
    expect(await stack.database.db.select().from(jobs).where(eq(jobs.prompt, prompt))).toHaveLength(0);
  });

  it('answers 503, not 200, to a replayed Idempotency-Key whose PENDING job cannot be started', async () => {
    const key = `dropped-replay-${randomUUID()}`;
    const body = { ...validRequest, prompt: `dropped replay ${key}` };
    const job = await insertPendingJobWithKey(stack.database.db, body, key);
    const reply = await postJson(stack.baseUrl, '/api/v1/generate', body, { 'Idempotency-Key': key });
    expectTemporalUnavailable(reply);
    await expect(stack.client.workflow.getHandle(workflowIdForJob(job.id)).describe()).rejects.toMatchObject({
      name: 'WorkflowNotFoundError',
    });
    await deleteJob(stack.database.db, job.id);
  });
});

describe('a replayed Idempotency-Key with Temporal unreachable for the API', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ worker: false, apiTemporalAddress: '127.0.0.1:1' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers 503, not 200, when the PENDING job has no workflow and none can be started', async () => {
    const key = `unreachable-replay-${randomUUID()}`;
    const body = { ...validRequest, prompt: `unreachable replay ${key}` };
    const job = await insertPendingJobWithKey(stack.database.db, body, key);
    const reply = await postJson(stack.baseUrl, '/api/v1/generate', body, { 'Idempotency-Key': key });
    expectTemporalUnavailable(reply);
    // The test's own client reaches Temporal: there is no workflow.
    await expect(stack.client.workflow.getHandle(workflowIdForJob(job.id)).describe()).rejects.toMatchObject({
      name: 'WorkflowNotFoundError',
    });
    await deleteJob(stack.database.db, job.id);
  });
});

describe('deleteJob', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ worker: false });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const newJob = (db: Database) =>
    createJob(db, {
      model: validRequest.model,
      prompt: `delete ${randomUUID()}`,
      numOutputs: 1,
      seed: 1,
      outputFormat: 'png',
    });

  it('removes a PENDING job with no prediction', async () => {
    const { db } = stack.database;
    const job = await newJob(db);
    expect(await deleteJob(db, job.id)).toBe(true);
    expect(await jobRows(db, job.id)).toHaveLength(0);
  });

  it('never removes a job a workflow has started (PROCESSING) or one with a prediction', async () => {
    const { db } = stack.database;
    const processing = await newJob(db);
    await markJobProcessing(db, processing.id);
    const predicted = await newJob(db);
    await recordPredictionId(db, predicted.id, `prediction-${randomUUID()}`);
    expect(await deleteJob(db, processing.id)).toBe(false);
    expect(await deleteJob(db, predicted.id)).toBe(false);
    expect(await jobRows(db, processing.id)).toHaveLength(1);
    expect(await jobRows(db, predicted.id)).toHaveLength(1);
    await db.delete(jobs).where(inArray(jobs.id, [processing.id, predicted.id]));
  });
});
