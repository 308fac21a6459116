import type { S3Client } from '@aws-sdk/client-s3';
import { sql } from 'drizzle-orm';
import { activitiesOfJob } from '../support/history';
import { createS3Client } from '../../common/s3';
import { createDatabase, type DatabaseHandle } from '../../db/client';
import { auditLedger, SubmissionLedger } from '../support/ledger';
import { jobState, runMarker, submitUntilAccepted, waitForJobsToEnd } from '../support/faults';
import { sleep, waitFor } from '../support/wait';
import { testServers } from '../support/servers';
import { postJson, startTestStack, validRequest, type TestStack } from '../support/stack';
import { throughProxy, Toxiproxy, type Proxy } from '../support/toxiproxy';
import { WorkerProcess, workerProcessEnv } from '../support/worker-process';

const OUTAGE_MS = 30_000;
/** The longest a request may take to answer while Postgres is away: a 503, never a hang. */
const ANSWER_BOUND_MS = 5_000;

/**
 * Fault family: Postgres becomes unreachable for 30 s. The API (in this process) and the worker (a
 * child process) reach Postgres only through a Toxiproxy proxy, which is disabled for the outage:
 * open connections are cut and new ones refused. The books are checked over a direct connection.
 */
describe('faults: Postgres unreachable for 30 s', () => {
  let toxiproxy: Toxiproxy;
  let pgProxy: Proxy;
  let stack: TestStack;
  let worker: WorkerProcess;
  let direct: DatabaseHandle;
  let s3: S3Client;
  const ledger = new SubmissionLedger(runMarker('postgres'));

  beforeAll(async () => {
    const databaseUrl = new URL(testServers().databaseUrl);
    toxiproxy = await Toxiproxy.start();
    pgProxy = await toxiproxy.proxy('postgres', `${databaseUrl.hostname}:${databaseUrl.port || 5432}`);
    const proxiedUrl = throughProxy(databaseUrl.toString(), pgProxy);
    stack = await startTestStack({
      worker: false,
      env: { DATABASE_URL: proxiedUrl, ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS: '2' },
    });
    direct = createDatabase({ url: databaseUrl.toString(), poolSize: 2 });
    s3 = createS3Client(stack.config);
    worker = new WorkerProcess(workerProcessEnv(stack.config, { FAKE_PROVIDER_LATENCY_MS: '3000' }));
    await worker.start();
  });

  afterAll(async () => {
    await pgProxy?.heal().catch(() => undefined);
    await worker?.kill('SIGKILL');
    await stack?.stop();
    await direct?.close();
    await toxiproxy?.stop();
  });

  it('the API answers 503 problem+json at once and creates nothing; /readyz names postgres; running jobs wait, then finish', async () => {
    // Jobs under way when the database goes: four whose predictions are recorded and running (they
    // reach their uploads during the outage), and two just accepted (still starting).
    const running: string[] = [];
    const submit = async (seed: number) => {
      const reply = await ledger.submit(stack.baseUrl, { ...validRequest, num_outputs: 2, seed });
      expect(reply.status).toBe(202);
      running.push(reply.jobId!);
    };
    for (let i = 0; i < 4; i++) await submit(i);
    await waitFor('the predictions to be recorded', async () => {
      const states = await Promise.all(running.map((jobId) => jobState(direct.pool, jobId)));
      return states.every((state) => state?.prediction_id);
    });
    for (let i = 4; i < 6; i++) await submit(i);

    await pgProxy.disable();
    const outageStarted = Date.now();
    const answers: { what: string; status: number; ms: number; type: string | null }[] = [];
    const timed = async (what: string, call: () => Promise<Response>) => {
      const started = Date.now();
      const response = await call();
      answers.push({
        what,
        status: response.status,
        ms: Date.now() - started,
        type: response.headers.get('content-type'),
      });
      return response;
    };
    let readyChecks: Record<string, string> | undefined;
    let healthz = 0;
    while (Date.now() - outageStarted < OUTAGE_MS) {
      const submitted = await ledger.submit(stack.baseUrl, { ...validRequest, num_outputs: 1 });
      answers.push({
        what: 'POST /api/v1/generate',
        status: submitted.status,
        ms: submitted.ms,
        type: 'application/problem+json',
      });
      expect(submitted.body).toMatchObject({
        status: submitted.status,
        title: expect.any(String),
        detail: expect.any(String),
      });
      await timed('GET /api/v1/status/{id}', () => fetch(`${stack.baseUrl}/api/v1/status/${running[0]}`));
      await timed('GET /api/v1/jobs', () => fetch(`${stack.baseUrl}/api/v1/jobs?limit=5`));
      await timed('POST /api/v1/jobs/{id}/cancel', () =>
        fetch(`${stack.baseUrl}/api/v1/jobs/${running[0]}/cancel`, { method: 'POST' }),
      );
      const ready = await timed('GET /readyz', () => fetch(`${stack.baseUrl}/readyz`));
      readyChecks = ((await ready.json()) as { checks: Record<string, string> }).checks;
      healthz = (await fetch(`${stack.baseUrl}/healthz`)).status;
      if (!worker.running)
        throw new Error(`the worker died during the outage:\n${worker.output.slice(-30).join('\n')}`);
      await sleep(1_000);
    }

    // Every answer during the outage: 503 problem+json, quickly. Never a 500, never a hang.
    for (const answer of answers) {
      expect({ ...answer, ms: answer.ms < ANSWER_BOUND_MS }).toEqual({
        ...answer,
        status: 503,
        ms: true,
        type: expect.stringMatching(/^application\/problem\+json/),
      });
    }
    expect(readyChecks).toMatchObject({ postgres: expect.stringMatching(/^unavailable/), temporal: 'ok', s3: 'ok' });
    expect(healthz).toBe(200);
    const outageMs = Date.now() - outageStarted;

    await pgProxy.enable();
    const restored = Date.now();
    const ended = await waitForJobsToEnd(direct.pool, running, 60_000);
    for (const jobId of running) {
      const job = await jobState(direct.pool, jobId);
      expect({ jobId, status: job?.status, error: job?.error_message }).toEqual({
        jobId,
        status: 'COMPLETED',
        error: null,
      });
    }
    const recoveryMs = Math.max(...[...ended.values()].map((entry) => entry.endedAt - restored));

    // The API takes submissions again, and the worker lived through it.
    const after = await submitUntilAccepted(ledger, stack.baseUrl, 15_000);
    await waitForJobsToEnd(direct.pool, [after.jobId!], 30_000);
    expect(worker.running).toBe(true);
    expect(worker.output.join('\n')).not.toMatch(/worker failed|unhandled|uncaught/i);

    const summary = await auditLedger(ledger, { pool: direct.pool, s3, bucket: stack.config.S3_BUCKET_NAME });
    console.log(
      `[faults] postgres outage: ${Math.round(outageMs / 1000)} s, ${answers.length} requests answered during it ` +
        `(max ${Math.max(...answers.map((answer) => answer.ms))} ms, all 503), ${running.length} running jobs all COMPLETED ` +
        `${Math.round(recoveryMs / 1000)} s after the database returned; books: ${JSON.stringify(summary)}`,
    );
  }, 150_000);

  it('answers an accepted submit whose wait loses the database with the submit, not a 503', async () => {
    const prompt = `${validRequest.prompt} waited through an outage ${Date.now()}`;
    const replying = postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, prompt }, { Prefer: 'wait=3' });
    // Accepted (the row and the workflow's start), then the database goes while the request waits.
    await waitFor(
      'the job to be recorded',
      async () => (await direct.pool.query('select 1 from jobs where prompt = $1', [prompt])).rowCount === 1,
    );
    await pgProxy.disable();
    try {
      const reply = await replying;
      // The job exists: a 503 would tell the client to submit it again.
      expect(reply.status).toBe(202);
      expect(reply.body).toMatchObject({ job_id: expect.any(String), status: 'PENDING' });
    } finally {
      await pgProxy.enable();
    }
  });

  it('a connection cut in the middle of a transaction fails that transaction and does not crash the process', async () => {
    // The pool only listens for errors on idle clients; db/client.ts listens on every client, or
    // this cut would be an unhandled 'error' event (it took the worker down in an earlier run).
    const databaseUrl = new URL(testServers().databaseUrl);
    const txProxy = await toxiproxy.proxy('postgres-tx', `${databaseUrl.hostname}:${databaseUrl.port || 5432}`);
    const errors: Error[] = [];
    const database = createDatabase({
      url: throughProxy(databaseUrl.toString(), txProxy),
      poolSize: 2,
      onIdleClientError: (error) => errors.push(error),
    });
    try {
      const transaction = database.db.transaction(async (tx) => {
        await tx.execute(sql`select 1`);
        await txProxy.disable();
        await sleep(500);
        await tx.execute(sql`select 1`);
      });
      await expect(transaction).rejects.toThrow();
      expect(errors.map((error) => error.message)).toContain('Connection terminated unexpectedly');
      await txProxy.enable();
      await expect(database.db.execute(sql`select 1`)).resolves.toBeDefined();
    } finally {
      await database.close();
    }
  });
});

/**
 * Fault family: Postgres is away when a worker picks a job up. The API has a direct connection (it
 * takes the job); only the worker goes through the proxy. Starting the job and creating its
 * prediction is one local activity under the create's attempts (GENERATE_MAX_ATTEMPTS, here 1):
 * when its first statement cannot reach the database it creates nothing, and the job is started by
 * startJob, which waits out the outage under the database policy, before the prediction is created.
 */
describe('faults: Postgres unreachable when a job starts', () => {
  let toxiproxy: Toxiproxy;
  let pgProxy: Proxy;
  let stack: TestStack;
  let worker: WorkerProcess;
  const ledger = new SubmissionLedger(runMarker('postgres-start'));

  beforeAll(async () => {
    const databaseUrl = new URL(testServers().databaseUrl);
    toxiproxy = await Toxiproxy.start();
    pgProxy = await toxiproxy.proxy('postgres-start', `${databaseUrl.hostname}:${databaseUrl.port || 5432}`);
    stack = await startTestStack({ worker: false });
    worker = new WorkerProcess(
      workerProcessEnv(stack.config, {
        DATABASE_URL: throughProxy(databaseUrl.toString(), pgProxy),
        GENERATE_MAX_ATTEMPTS: '1',
      }),
    );
    await worker.start();
  });

  afterAll(async () => {
    await pgProxy?.heal().catch(() => undefined);
    await worker?.kill('SIGKILL');
    await stack?.stop();
    await toxiproxy?.stop();
  });

  it('starts the job once the database is back, and creates one prediction', async () => {
    await pgProxy.disable();
    const reply = await ledger.submit(stack.baseUrl, { ...validRequest, num_outputs: 2 });
    expect(reply.status).toBe(202);
    const jobId = reply.jobId!;
    // Long enough for the start to find the database away more than once.
    await sleep(5_000);
    expect((await jobState(stack.database.pool, jobId))?.status).toBe('PENDING');
    await pgProxy.enable();

    const [ended] = [...(await waitForJobsToEnd(stack.database.pool, [jobId], 60_000)).values()];
    expect(ended?.status).toBe('COMPLETED');
    const ran = await activitiesOfJob(stack, jobId);
    expect(ran.local.slice(0, 3)).toEqual(['startJobWithPrediction', 'startJob', 'createPrediction']);
    expect(ran.local.filter((type) => type === 'createPrediction')).toHaveLength(1);
    expect(worker.running).toBe(true);
  }, 90_000);
});
