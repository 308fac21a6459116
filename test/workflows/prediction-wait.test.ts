import { FakeProvider } from '../../activities/providers/fake-provider';
import { activitiesOfJob } from '../support/history';
import { submitJob } from '../support/jobs';
import { waitForJob } from '../support/stack';
import { useTestStack } from '../support/use-stack';

/**
 * Waiting on a prediction is an activity of its own only when the provider is slow: a prediction
 * that has its outputs when it is created goes straight to storing them, one activity task fewer.
 * Starting the job and creating its prediction is one local activity.
 */
describe('waiting on the prediction', () => {
  describe('a provider that answers at once', () => {
    const stack = useTestStack({ provider: new FakeProvider({ latencyMs: 0 }) });

    it('stores the outputs with no awaitPrediction activity', async () => {
      const jobId = await submitJob(stack, { num_outputs: 3 });
      const job = await waitForJob(stack.baseUrl, jobId);
      expect(job).toMatchObject({ status: 'COMPLETED', retry_count: 0 });
      expect(job.metrics.predict_ms).toEqual(expect.any(Number));
      const ran = await activitiesOfJob(stack, jobId);
      expect(ran.tasks).not.toContain('awaitPrediction');
      expect(ran.local[0]).toBe('startJobWithPrediction');
      expect(ran.local).not.toContain('startJob');
      expect(ran.local).not.toContain('createPrediction');
    });
  });

  describe('a provider still running when the prediction is created', () => {
    const stack = useTestStack({ provider: new FakeProvider({ latencyMs: 500 }) });

    it('waits in an awaitPrediction activity, then stores the outputs', async () => {
      const jobId = await submitJob(stack, { num_outputs: 2 });
      expect(await waitForJob(stack.baseUrl, jobId)).toMatchObject({ status: 'COMPLETED' });
      expect((await activitiesOfJob(stack, jobId)).tasks).toEqual(['awaitPrediction']);
    });
  });
});
