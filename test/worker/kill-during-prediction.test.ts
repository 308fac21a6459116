import { ReplicateStandIn } from '../support/replicate-stand-in';
import { postJson, startTestStack, validRequest, waitForJob, type TestStack } from '../support/stack';
import { replicateWorkerProcess, type WorkerProcess } from '../support/worker-process';

const TOKEN = 'r8_worker-kill-token-8c2d41';

describe('a worker killed while its prediction runs', () => {
  let standIn: ReplicateStandIn;
  let stack: TestStack;
  let worker: WorkerProcess;

  beforeAll(async () => {
    standIn = await ReplicateStandIn.start({ token: TOKEN });
    // The API puts the short heartbeat timeout into the workflow input, so a dead worker is noticed in 2s.
    stack = await startTestStack({ worker: false, env: { ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS: '2' } });
    worker = replicateWorkerProcess(stack.config, standIn, TOKEN);
  });
  afterAll(async () => {
    await worker?.kill('SIGKILL');
    await stack?.stop();
    await standIn?.stop();
  });

  it('is replaced by a new worker that finishes the job without creating a second prediction', async () => {
    standIn.behaviour = { runMs: 8_000 };
    await worker.start();
    const submitted = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, num_outputs: 2 });
    expect(submitted.status).toBe(202);
    const jobId = submitted.body!.job_id as string;

    // Killed once the prediction is recorded and being waited on, well before it ends.
    await waitForJob(
      stack.baseUrl,
      jobId,
      () => standIn.predictions.length === 1 && standIn.statusOf(standIn.predictions[0]!.id) === 'processing',
      30_000,
    );
    const predictionId = standIn.predictions[0]!.id;
    await worker.kill('SIGKILL');
    expect(worker.running).toBe(false);
    expect(standIn.statusOf(predictionId)).toBe('processing');

    await worker.start();
    const finished = await waitForJob(stack.baseUrl, jobId, undefined, 45_000).catch((error: Error) => {
      throw new Error(`${error.message}\nworker output:\n${worker.output.join('\n')}`);
    });
    expect(finished.status).toBe('COMPLETED');
    expect(finished.media.map((media: any) => media.status)).toEqual(['COMPLETED', 'COMPLETED']);
    expect(standIn.createCalls).toHaveLength(1);
    expect(standIn.predictions.map((prediction) => prediction.id)).toEqual([predictionId]);
    expect(finished.retry_count).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
