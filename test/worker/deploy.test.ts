import { ReplicateStandIn } from '../support/replicate-stand-in';
import { postJson, startTestStack, validRequest, waitForJob, type TestStack } from '../support/stack';
import { replicateWorkerProcess, WorkerProcess, workerProcessEnv } from '../support/worker-process';

const TOKEN = 'r8_deploy-token-71b0e4';

/** What a deploy does to running jobs: workers stopped gracefully (SIGTERM) or killed again and again. */
describe('a deploy', () => {
  let standIn: ReplicateStandIn;
  let stack: TestStack;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    standIn = await ReplicateStandIn.start({ token: TOKEN });
    // The API puts these into each job's workflow input: a dead worker is noticed in 2 s, and an
    // output may fail twice on its own before it fails for good.
    stack = await startTestStack({
      worker: false,
      env: { ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS: '2', PERSIST_MAX_ATTEMPTS: '2' },
    });
  });
  afterAll(async () => {
    for (const worker of workers) await worker.kill('SIGKILL');
    await stack?.stop();
    await standIn?.stop();
  });

  function newWorker(make: () => WorkerProcess): WorkerProcess {
    const worker = make();
    workers.push(worker);
    return worker;
  }

  it('leaves a running prediction running when its worker stops; the next worker finishes the job with it', async () => {
    standIn.behaviour = { runMs: 20_000 };
    const first = newWorker(() => replicateWorkerProcess(stack.config, standIn, TOKEN));
    await first.start({ WORKER_SHUTDOWN_GRACE_SECONDS: '1' });
    const submitted = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, num_outputs: 2 });
    const jobId = submitted.body!.job_id as string;
    await waitForJob(
      stack.baseUrl,
      jobId,
      () => standIn.predictions.length === 1 && standIn.statusOf(standIn.predictions[0]!.id) === 'processing',
      30_000,
    );
    const predictionId = standIn.predictions[0]!.id;

    await first.kill('SIGTERM');
    expect(standIn.cancelRequests).toEqual([]);
    expect(standIn.statusOf(predictionId)).toBe('processing');

    const second = newWorker(() => replicateWorkerProcess(stack.config, standIn, TOKEN));
    await second.start();
    const finished = await waitForJob(stack.baseUrl, jobId, undefined, 60_000);
    expect(finished.status).toBe('COMPLETED');
    expect(standIn.createCalls).toHaveLength(1);
    expect(standIn.cancelRequests).toEqual([]);
    await second.stop();
  }, 120_000);

  it('does not count a worker killed mid-upload against the output, however often it happens', async () => {
    const worker = newWorker(() => new WorkerProcess(workerProcessEnv(stack.config)));
    const submitted = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, num_outputs: 1 });
    const jobId = submitted.body!.job_id as string;
    // Three deaths between the upload and its record, one more than the output's two attempts.
    for (let kill = 0; kill < 3; kill++) {
      await worker.start({ FAULT_INJECTION_PAUSE_AT: 'after-upload' });
      await worker.waitForLog(/paused at after-upload/, 30_000);
      await worker.kill('SIGKILL');
    }
    await worker.start();
    const finished = await waitForJob(stack.baseUrl, jobId, undefined, 60_000);
    expect(finished.status).toBe('COMPLETED');
    expect(finished.media[0].status).toBe('COMPLETED');
    await worker.stop();
  }, 180_000);
});
