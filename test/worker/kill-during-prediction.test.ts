import { submitJob } from '../support/jobs';
import { useReplicateStack } from '../support/replicate-stack';
import { waitForJob } from '../support/stack';
import { waitFor } from '../support/wait';

const TOKEN = 'r8_worker-kill-token-8c2d41';

describe('a worker killed while its prediction runs', () => {
  // The API puts the short heartbeat timeout into the workflow input, so a dead worker is noticed in 2s.
  const stack = useReplicateStack({
    token: TOKEN,
    workers: 'processes',
    env: { ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS: '2' },
  });

  it('is replaced by a new worker that finishes the job without creating a second prediction', async () => {
    const { standIn } = stack;
    standIn.behaviour = { runMs: 8_000 };
    const worker = stack.newWorkerProcess();
    await worker.start();
    const jobId = await submitJob(stack, { num_outputs: 2 });

    // Killed once the prediction is recorded and being waited on (awaitPrediction polls it), well
    // before it ends. The record alone comes first, inside the job's first workflow task: a worker
    // killed then runs that task again on the new worker, and the wait is not a retry.
    const predictionId = await stack.onlyPredictionRunning();
    await waitFor('awaitPrediction to poll the prediction', () => standIn.pollAnswers.length > 0);
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
