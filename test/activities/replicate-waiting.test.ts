import { createProvider } from '../../activities/providers';
import { ReplicateStandIn } from '../support/replicate-stand-in';
import { postJson, startTestStack, testConfig, validRequest, waitForJob, type TestStack } from '../support/stack';

const TOKEN = 'r8_waiting-token-3e9a0c';

/** Waiting for a prediction through provider trouble: the real client against the stand-in. */
describe('waiting for a Replicate prediction', () => {
  let standIn: ReplicateStandIn;
  let stack: TestStack;

  beforeAll(async () => {
    standIn = await ReplicateStandIn.start({ token: TOKEN });
    const env = {
      MEDIA_GENERATOR_PROVIDER: 'replicate',
      REPLICATE_API_TOKEN: TOKEN,
      REPLICATE_BASE_URL: standIn.apiUrl,
      MEDIA_FETCH_ALLOW_PRIVATE: 'true',
      // Two attempts would be spent by the first two refused polls if they counted.
      GENERATE_MAX_ATTEMPTS: '2',
      PREDICTION_WAIT_SECONDS: '4',
    };
    stack = await startTestStack({ provider: createProvider(testConfig(env)), env });
  });
  afterAll(async () => {
    await stack?.stop();
    await standIn?.stop();
  });

  async function submit(): Promise<string> {
    const submitted = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, num_outputs: 1 });
    expect(submitted.status).toBe(202);
    return submitted.body!.job_id as string;
  }

  it.each([
    ['503', { status: 503 }],
    ['429 with Retry-After', { status: 429, retryAfterSeconds: 0 }],
  ])('completes when every second status poll answers %s, in one attempt', async (_name, fault) => {
    standIn.behaviour = { runMs: 2_500, everySecondPollFails: fault };
    const polls = standIn.pollAnswers.length;
    const jobId = await submit();
    const finished = await waitForJob(stack.baseUrl, jobId, undefined, 30_000);
    expect(finished.status).toBe('COMPLETED');
    expect(finished.retry_count).toBe(0);
    const answers = standIn.pollAnswers.slice(polls);
    expect(answers.filter((status) => status === fault.status).length).toBeGreaterThanOrEqual(3);
    expect(standIn.cancelRequests).toHaveLength(0);
  });

  it('cancels the prediction of a job that failed while it still ran (its wait ran out)', async () => {
    standIn.behaviour = { runMs: 60_000 };
    const jobId = await submit();
    const finished = await waitForJob(stack.baseUrl, jobId, undefined, 30_000);
    expect(finished.status).toBe('FAILED');
    const prediction = standIn.predictions.at(-1)!;
    expect(standIn.cancelRequests).toContain(prediction.id);
    expect(standIn.statusOf(prediction.id)).toBe('canceled');
  });
});
