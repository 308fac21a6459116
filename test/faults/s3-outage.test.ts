import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client, ensureBucket } from '../../common/s3';
import { startS3Server } from '../../scripts/local-services';
import { auditJobs, listObjects, SubmissionLedger } from '../support/ledger';
import { RestartableServer } from '../support/restartable-server';
import { jobState, runMarker, waitForJobsToEnd } from '../support/faults';
import { sleep, waitFor } from '../support/wait';
import { startReplicateStack, type ReplicateStack } from '../support/replicate-stack';
import { TEST_S3_CREDENTIALS } from '../support/servers';
import { getJson, validRequest } from '../support/stack';
import { Toxiproxy, type Proxy } from '../support/toxiproxy';
import type { WorkerProcess } from '../support/worker-process';

const TOKEN = 'r8_fault-s3-7d02';
const BUCKET = 'media-fault';
const MiB = 1024 * 1024;

/**
 * Fault family: S3 goes away mid-upload, or the link to it turns slow. This file runs its own
 * versitygw (so it can kill and restart it) behind a Toxiproxy proxy; the worker (a child process)
 * and the API reach S3 only through the proxy. Outputs are large and slow to download (the
 * Replicate stand-in), so that uploads are multipart and take seconds. The books are checked
 * against the server directly.
 */
describe('faults: S3 restarted or slow mid-upload', () => {
  let s3Server: RestartableServer;
  let toxiproxy: Toxiproxy;
  let s3Proxy: Proxy;
  let direct: S3Client;
  let stack: ReplicateStack;
  let worker: WorkerProcess;
  const ledger = new SubmissionLedger(runMarker('s3'));

  beforeAll(async () => {
    s3Server = await RestartableServer.start('versitygw', (port, dataDir) =>
      startS3Server({ port, dataDir, ...TEST_S3_CREDENTIALS, quiet: !process.env.TEST_LOG_LEVEL }),
    );
    toxiproxy = await Toxiproxy.start();
    s3Proxy = await toxiproxy.proxy('s3', `127.0.0.1:${s3Server.port}`);
    // Eight attempts per output: with half of all connections reset, an upload attempt fails about
    // one time in three once the S3 client's retry quota is spent (after the kill scenario), and
    // the default five would lose an output in about one run in fifty.
    const env = {
      S3_ENDPOINT_URL: `http://${s3Proxy.listen}`,
      S3_BUCKET_NAME: BUCKET,
      ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS: '2',
      PERSIST_MAX_ATTEMPTS: '8',
    };
    stack = await startReplicateStack({ token: TOKEN, workers: 'processes', env });
    direct = createS3Client({ ...stack.config, S3_ENDPOINT_URL: `http://127.0.0.1:${s3Server.port}` });
    await ensureBucket(direct, BUCKET);
    worker = stack.newWorkerProcess();
    await worker.start();
  }, 90_000);

  afterAll(async () => {
    await stack?.stop();
    await toxiproxy?.stop();
    await s3Server?.remove(5_000);
  });

  async function submit(count: number): Promise<string[]> {
    const jobIds: string[] = [];
    for (let i = 0; i < count; i++) {
      const reply = await ledger.submit(stack.baseUrl, { ...validRequest, num_outputs: 2, seed: i });
      expect(reply.status).toBe(202);
      jobIds.push(reply.jobId!);
    }
    return jobIds;
  }

  async function expectCompletedAndBalanced(jobIds: string[], timeoutMs: number) {
    await waitForJobsToEnd(stack.database.pool, jobIds, timeoutMs);
    for (const jobId of jobIds) {
      const job = await jobState(stack.database.pool, jobId);
      expect({ jobId, status: job?.status, error: job?.error_message }).toEqual({
        jobId,
        status: 'COMPLETED',
        error: null,
      });
    }
    // Every COMPLETED row's object exists with the recorded size and SHA-256; no object without its row.
    return auditJobs({ pool: stack.database.pool, s3: direct, bucket: BUCKET, jobIds });
  }

  it('the S3 server is killed mid-upload and restarted: uploads are retried, jobs finish, no half-written object is recorded', async () => {
    stack.standIn.behaviour = { runMs: 300, outputBytes: 12 * MiB, outputBytesPerSecond: 6 * MiB };
    const jobIds = await submit(2);
    await waitFor(
      'a multipart upload in progress',
      async () => {
        const uploads = await direct.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'jobs/' }));
        return (uploads.Uploads ?? []).some((upload) =>
          jobIds.some((jobId) => upload.Key?.startsWith(`jobs/${jobId}/`)),
        );
      },
      30_000,
      50,
    );
    await s3Server.kill();
    const downSince = Date.now();
    const ready = await getJson(stack.baseUrl, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body!.checks).toMatchObject({
      s3: expect.stringMatching(/^unavailable/),
      postgres: 'ok',
      temporal: 'ok',
    });
    // Nothing half-written is visible, and no row says COMPLETED for an object that is not there.
    for (const jobId of jobIds) {
      expect((await jobState(stack.database.pool, jobId))!.media.map((row) => row.status)).not.toContain('COMPLETED');
    }
    await sleep(3_000);
    await s3Server.restart();
    const downMs = Date.now() - downSince;

    const summary = await expectCompletedAndBalanced(jobIds, 90_000);
    expect(summary.objects).toBe(4);
    // The uploads cut off by the crash were aborted by their retries: no invisible parts left behind.
    expect(summary.openMultipartUploads).toBe(0);
    for (const jobId of jobIds) {
      expect((await listObjects(direct, BUCKET, `jobs/${jobId}/`)).map((object) => object.size)).toEqual([
        12 * MiB,
        12 * MiB,
      ]);
    }
    expect(worker.running).toBe(true);
    console.log(
      `[faults] S3 killed mid-upload, down ${downMs} ms: ${jobIds.length} jobs COMPLETED; books: ${JSON.stringify(summary)}`,
    );
  }, 150_000);

  it('the link to S3 turns slow (1 MiB/s): a 5 MiB part takes longer than the heartbeat timeout, and that is not taken for a dead worker', async () => {
    stack.standIn.behaviour = { runMs: 300, outputBytes: 6 * MiB };
    const toxic = await s3Proxy.addToxic({ type: 'bandwidth', stream: 'upstream', attributes: { rate: 1024 } });
    try {
      const jobIds = await submit(1);
      const summary = await expectCompletedAndBalanced(jobIds, 90_000);
      const attempts = (await jobState(stack.database.pool, jobIds[0]!))!.media.map((row) => row.attempts);
      expect(attempts).toEqual([1, 1]);
      console.log(`[faults] slow S3 link: COMPLETED with one attempt per output; books: ${JSON.stringify(summary)}`);
    } finally {
      await s3Proxy.removeToxic(toxic);
    }
  }, 120_000);

  it('connections to S3 are reset now and then (reset_peer on half of them): uploads are retried and jobs finish', async () => {
    stack.standIn.behaviour = { runMs: 300, outputBytes: 1 * MiB };
    const toxic = await s3Proxy.addToxic({
      type: 'reset_peer',
      stream: 'upstream',
      toxicity: 0.5,
      attributes: { timeout: 20 },
    });
    try {
      const jobIds = await submit(4);
      const summary = await expectCompletedAndBalanced(jobIds, 90_000);
      const attempts = (await Promise.all(jobIds.map((jobId) => jobState(stack.database.pool, jobId)))).flatMap((job) =>
        job!.media.map((row) => row.attempts),
      );
      console.log(
        `[faults] flaky S3 link: ${jobIds.length} jobs COMPLETED, upload attempts per output ${JSON.stringify(attempts)}; books: ${JSON.stringify(summary)}`,
      );
    } finally {
      await s3Proxy.removeToxic(toxic);
    }
  }, 120_000);
});
