import { FakeProvider } from '../../activities/providers/fake-provider';
import { workflowIdForJob } from '../../common/temporal';
import { submitJob } from '../support/jobs';
import { waitForJob, type TestStack } from '../support/stack';
import { useTestStack } from '../support/use-stack';

/** The activity types a job's workflow scheduled, from its history (local activities are markers, not tasks). */
async function scheduledActivities(stack: TestStack, jobId: string): Promise<string[]> {
  const history = await stack.client.workflow.getHandle(workflowIdForJob(jobId)).fetchHistory();
  return (history.events ?? []).flatMap((event) =>
    event.activityTaskScheduledEventAttributes?.activityType?.name
      ? [event.activityTaskScheduledEventAttributes.activityType.name]
      : [],
  );
}

/**
 * Waiting on a prediction is an activity of its own only when the provider is slow: a prediction
 * that has its outputs when it is created goes straight to storing them, one activity task fewer.
 */
describe('waiting on the prediction', () => {
  describe('a provider that answers at once', () => {
    const stack = useTestStack({ provider: new FakeProvider({ latencyMs: 0 }) });

    it('stores the outputs with no awaitPrediction activity', async () => {
      const jobId = await submitJob(stack, { num_outputs: 3 });
      const job = await waitForJob(stack.baseUrl, jobId);
      expect(job).toMatchObject({ status: 'COMPLETED', retry_count: 0 });
      expect(job.metrics.predict_ms).toEqual(expect.any(Number));
      expect(await scheduledActivities(stack, jobId)).toEqual(['persistOutput', 'persistOutput', 'persistOutput']);
    });
  });

  describe('a provider still running when the prediction is created', () => {
    const stack = useTestStack({ provider: new FakeProvider({ latencyMs: 500 }) });

    it('waits in an awaitPrediction activity, then stores the outputs', async () => {
      const jobId = await submitJob(stack, { num_outputs: 2 });
      expect(await waitForJob(stack.baseUrl, jobId)).toMatchObject({ status: 'COMPLETED' });
      expect(await scheduledActivities(stack, jobId)).toEqual(['awaitPrediction', 'persistOutput', 'persistOutput']);
    });
  });
});
