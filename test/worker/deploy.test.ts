import { submitJob } from '../support/jobs';
import { useReplicateStack } from '../support/replicate-stack';
import { waitForJob } from '../support/stack';

const TOKEN = 'r8_deploy-token-71b0e4';

/** What a deploy does to running jobs: workers stopped gracefully (SIGTERM) or killed again and again. */
describe('a deploy', () => {
  // The API puts these into each job's workflow input: a dead worker is noticed in 2 s, and an
  // output may fail twice on its own before it fails for good.
  const stack = useReplicateStack({
    token: TOKEN,
    workers: 'processes',
    env: { ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS: '2', PERSIST_MAX_ATTEMPTS: '2' },
  });

  it('leaves a running prediction running when its worker stops; the next worker finishes the job with it', async () => {
    const { standIn } = stack;
    standIn.behaviour = { runMs: 20_000 };
    const first = stack.newWorkerProcess();
    await first.start({ WORKER_SHUTDOWN_GRACE_SECONDS: '1' });
    const jobId = await submitJob(stack, { num_outputs: 2 });
    const predictionId = await stack.onlyPredictionRunning();

    await first.kill('SIGTERM');
    expect(standIn.cancelRequests).toEqual([]);
    expect(standIn.statusOf(predictionId)).toBe('processing');

    const second = stack.newWorkerProcess();
    await second.start();
    const finished = await waitForJob(stack.baseUrl, jobId, undefined, 60_000);
    expect(finished.status).toBe('COMPLETED');
    expect(standIn.createCalls).toHaveLength(1);
    expect(standIn.cancelRequests).toEqual([]);
    await second.stop();
  }, 120_000);

  it('does not count a worker killed mid-upload against the output, however often it happens', async () => {
    const worker = stack.newWorkerProcess({ MEDIA_GENERATOR_PROVIDER: 'fake' });
    const jobId = await submitJob(stack, { num_outputs: 1 });
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
