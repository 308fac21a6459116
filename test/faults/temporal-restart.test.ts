import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../../common/s3';
import { startTemporalDevServer } from '../../scripts/local-services';
import { isPortOpen } from '../../scripts/processes';
import { auditLedger, SubmissionLedger } from '../support/ledger';
import { RestartableServer } from '../support/restartable-server';
import { jobState, runMarker, submitUntilAccepted, waitForJobsToEnd } from '../support/faults';
import { sleep, waitFor } from '../support/wait';
import { getJson, startTestStack, validRequest, type TestStack } from '../support/stack';
import { WorkerProcess, workerProcessEnv } from '../support/worker-process';

const DOWNTIME_MS = 12_000;
/** The longest a submission may take to be refused while Temporal is down (the API gives the start 5 s). */
const ANSWER_BOUND_MS = 8_000;

/**
 * Fault family: the Temporal server stops and comes back. The shared test server is left alone: this
 * file starts its own `temporal server start-dev` on free ports, persisting to a file, so that it
 * keeps its state across the restart. The worker is a child process; the API runs in this process.
 */
describe('faults: Temporal server restarted', () => {
  let temporal: RestartableServer;
  let stack: TestStack;
  let worker: WorkerProcess;
  let s3: S3Client;
  const ledger = new SubmissionLedger(runMarker('temporal'));

  beforeAll(async () => {
    temporal = await RestartableServer.start(
      'the Temporal dev server',
      (port, dataDir) =>
        startTemporalDevServer({ port, dbFile: path.join(dataDir, 'temporal.db'), quiet: !process.env.TEST_LOG_LEVEL }),
      60_000,
    );
    stack = await startTestStack({
      worker: false,
      env: { TEMPORAL_ADDRESS: `127.0.0.1:${temporal.port}`, ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS: '2' },
    });
    s3 = createS3Client(stack.config);
    worker = new WorkerProcess(workerProcessEnv(stack.config, { FAKE_PROVIDER_LATENCY_MS: '4000' }));
    await worker.start();
  }, 90_000);

  afterAll(async () => {
    await worker?.kill('SIGKILL');
    // Calls the API gave up on during the outage may still have a retry scheduled by the Temporal
    // client (at most about 5 s apart); closing the connection first makes that retry throw from its timer.
    await sleep(6_000);
    await stack?.stop();
    await temporal?.remove();
  });

  it('refuses submissions with 503 and no row while it is down; jobs accepted before finish after it returns', async () => {
    const accepted: string[] = [];
    for (let i = 0; i < 4; i++) {
      const reply = await ledger.submit(stack.baseUrl, { ...validRequest, num_outputs: 2, seed: i });
      expect(reply.status).toBe(202);
      accepted.push(reply.jobId!);
    }
    await waitFor('the jobs to be PROCESSING', async () => {
      const states = await Promise.all(accepted.map((jobId) => jobState(stack.database.pool, jobId)));
      return states.every((state) => state?.status === 'PROCESSING');
    });

    await temporal.stop(15_000);
    expect(await isPortOpen(temporal.port)).toBe(false);
    const downSince = Date.now();

    const refusals: { status: number; ms: number; detail?: string }[] = [];
    while (Date.now() - downSince < DOWNTIME_MS) {
      const reply = await ledger.submit(stack.baseUrl, { ...validRequest, num_outputs: 1 });
      refusals.push({ status: reply.status, ms: reply.ms, detail: reply.body?.detail });
      const ready = await getJson(stack.baseUrl, '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body!.checks).toMatchObject({
        temporal: expect.stringMatching(/^unavailable/),
        postgres: 'ok',
        s3: 'ok',
      });
      // Reads come from Postgres and keep working.
      expect((await getJson(stack.baseUrl, `/api/v1/status/${accepted[0]}`)).status).toBe(200);
      expect(worker.running).toBe(true);
      await sleep(500);
    }
    for (const refusal of refusals) {
      expect({ ...refusal, ms: refusal.ms < ANSWER_BOUND_MS }).toEqual({
        status: 503,
        ms: true,
        detail: expect.stringMatching(/Temporal is unavailable/),
      });
    }

    await temporal.restart();
    const restartedAt = Date.now();
    const ended = await waitForJobsToEnd(stack.database.pool, accepted, 90_000);
    for (const jobId of accepted) expect((await jobState(stack.database.pool, jobId))?.status).toBe('COMPLETED');
    const recoveryMs = Math.max(...[...ended.values()].map((entry) => entry.endedAt - restartedAt));

    const after = await submitUntilAccepted(ledger, stack.baseUrl, 30_000);
    await waitForJobsToEnd(stack.database.pool, [after.jobId!], 30_000);
    expect(worker.running).toBe(true);

    const summary = await auditLedger(ledger, { pool: stack.database.pool, s3, bucket: stack.config.S3_BUCKET_NAME });
    console.log(
      `[faults] temporal restart: down ${Math.round((restartedAt - downSince) / 1000)} s, ${refusals.length} submissions refused ` +
        `(503 in at most ${Math.max(...refusals.map((refusal) => refusal.ms))} ms, no rows), ${accepted.length} jobs accepted before all COMPLETED ` +
        `${Math.round(recoveryMs / 1000)} s after the restart; books: ${JSON.stringify(summary)}`,
    );
  }, 180_000);
});
