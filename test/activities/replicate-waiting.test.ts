import { submitJob } from '../support/jobs';
import { useReplicateStack } from '../support/replicate-stack';
import { waitForJob } from '../support/stack';

const TOKEN = 'r8_waiting-token-3e9a0c';

/** Waiting for a prediction through provider trouble: the real client against the stand-in. */
describe('waiting for a Replicate prediction', () => {
  const stack = useReplicateStack({
    token: TOKEN,
    // Two attempts would be spent by the first two refused polls if they counted.
    env: { GENERATE_MAX_ATTEMPTS: '2', PREDICTION_WAIT_SECONDS: '4' },
  });

  it.each([
    ['503', { status: 503 }],
    ['429 with Retry-After', { status: 429, retryAfterSeconds: 0 }],
  ])('completes when every second status poll answers %s, in one attempt', async (_name, fault) => {
    stack.standIn.behaviour = { runMs: 2_500, everySecondPollFails: fault };
    const polls = stack.standIn.pollAnswers.length;
    const jobId = await submitJob(stack, { num_outputs: 1 });
    const finished = await waitForJob(stack.baseUrl, jobId, undefined, 30_000);
    expect(finished.status).toBe('COMPLETED');
    expect(finished.retry_count).toBe(0);
    const answers = stack.standIn.pollAnswers.slice(polls);
    expect(answers.filter((status) => status === fault.status).length).toBeGreaterThanOrEqual(3);
    expect(stack.standIn.cancelRequests).toHaveLength(0);
  });

  it('cancels the prediction of a job that failed while it still ran (its wait ran out)', async () => {
    stack.standIn.behaviour = { runMs: 60_000 };
    const jobId = await submitJob(stack, { num_outputs: 1 });
    const finished = await waitForJob(stack.baseUrl, jobId, undefined, 30_000);
    expect(finished.status).toBe('FAILED');
    const prediction = stack.standIn.predictions.at(-1)!;
    expect(stack.standIn.cancelRequests).toContain(prediction.id);
    expect(stack.standIn.statusOf(prediction.id)).toBe('canceled');
  });
});
