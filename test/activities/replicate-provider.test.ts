import { ReplicateProvider } from '../../activities/providers/replicate-provider';
import type { GenerationRequest } from '../../activities/providers/provider';
import { findFreePort } from '../../scripts/processes';
import { ReplicateStandIn } from '../support/replicate-stand-in';
import { failure } from '../support/failure';
import { waitFor } from '../support/wait';

const TOKEN = 'r8_provider-test-token-0123456789';
const request: GenerationRequest = {
  jobId: 'job-1',
  model: 'acme/painter',
  prompt: 'a red kite',
  numOutputs: 2,
  seed: 11,
  outputFormat: 'png',
};

let standIn: ReplicateStandIn;
beforeEach(async () => {
  standIn = await ReplicateStandIn.start({ token: TOKEN });
  standIn.behaviour = { runMs: 100 };
});
afterEach(async () => {
  await standIn.stop();
});

function provider(overrides: { apiToken?: string; baseUrl?: string } = {}) {
  return new ReplicateProvider({
    apiToken: TOKEN,
    baseUrl: standIn.apiUrl,
    predictionDeadlineSeconds: 600,
    allowPrivateDownloads: true,
    maxOutputBytes: 10_000_000,
    ...overrides,
  });
}

function settle(replicate: ReplicateProvider, id: string) {
  return waitFor(
    `prediction ${id} to settle`,
    async () => {
      const state = await replicate.getPrediction(id);
      return state.status !== 'running' && state;
    },
    30_000,
    25,
  );
}

describe('Replicate provider against the stand-in, through the replicate client', () => {
  it('creates by model name on the models endpoint, with the inputs and a Cancel-After deadline', async () => {
    const id = await provider().createPrediction(request);
    expect(standIn.predictions).toEqual([
      expect.objectContaining({
        id,
        route: 'model',
        model: 'acme/painter',
        input: { prompt: 'a red kite', num_outputs: 2, seed: 11, output_format: 'png' },
        cancelAfter: '600s',
      }),
    ]);
  });

  it('creates by version on the predictions endpoint', async () => {
    const id = await provider().createPrediction({
      ...request,
      model: 'acme/painter:5c7d5dc6dd8bf75c1acaa8565735e7986bc5b662',
    });
    expect(standIn.predictions).toEqual([
      expect.objectContaining({
        id,
        route: 'version',
        version: '5c7d5dc6dd8bf75c1acaa8565735e7986bc5b662',
        cancelAfter: '600s',
      }),
    ]);
  });

  it('follows a prediction from running to its output URLs', async () => {
    standIn.behaviour = { runMs: 1_000 };
    const replicate = provider();
    const id = await replicate.createPrediction(request);
    expect(await replicate.getPrediction(id)).toEqual({ status: 'running' });
    expect(await settle(replicate, id)).toEqual({
      status: 'succeeded',
      outputUrls: [`${standIn.origin}/files/${id}/0.png`, `${standIn.origin}/files/${id}/1.png`],
    });
  });

  it('reports a failed prediction with the upstream error', async () => {
    standIn.behaviour = { runMs: 50, predictionError: 'CUDA out of memory' };
    const replicate = provider();
    const id = await replicate.createPrediction(request);
    expect(await settle(replicate, id)).toEqual({ status: 'failed', error: 'CUDA out of memory' });
  });

  it('sends one request per call: a 429 is a retryable failure carrying Retry-After, not a hidden retry', async () => {
    standIn.failNextCreates(1, { status: 429, retryAfterSeconds: 3 });
    const error = await failure(provider().createPrediction(request));
    expect(error).toMatchObject({ type: 'ProviderRateLimited', nonRetryable: false, nextRetryDelay: '3s' });
    expect(standIn.createCalls).toHaveLength(1);
    expect(standIn.predictions).toHaveLength(0);
  });

  it('makes a 5xx retryable, with one request sent', async () => {
    standIn.failNextCreates(1, { status: 503, detail: 'upstream overloaded' });
    const error = await failure(provider().createPrediction(request));
    expect(error).toMatchObject({ type: 'ProviderUnavailable', nonRetryable: false });
    expect(error.message).toMatch(/503.*upstream overloaded/);
    expect(standIn.createCalls).toHaveLength(1);
  });

  it('makes a rejected input non-retryable, in the provider own words', async () => {
    standIn.failNextCreates(1, { status: 422, detail: '- input.num_outputs: Must be less than or equal to 4' });
    const error = await failure(provider().createPrediction(request));
    expect(error).toMatchObject({
      type: 'InvalidInput',
      nonRetryable: true,
      message: '- input.num_outputs: Must be less than or equal to 4',
    });
  });

  it('makes a refused token non-retryable, and never repeats it', async () => {
    const wrongToken = 'r8_wrong-token-that-must-not-leak';
    const error = await failure(provider({ apiToken: wrongToken }).createPrediction(request));
    expect(error).toMatchObject({
      type: 'InvalidInput',
      nonRetryable: true,
      message: 'You did not pass a valid authentication token',
    });
    expect(JSON.stringify({ ...error, message: error.message, stack: error.stack })).not.toContain(wrongToken);
  });

  it('never resends a create whose answer was lost (the client alone would, and bill again)', async () => {
    standIn.failNextCreates(1, { dropAfterCreate: true });
    const error = await failure(provider().createPrediction(request));
    expect(error).toMatchObject({ type: 'ProviderUnavailable', nonRetryable: false });
    expect(standIn.createCalls).toHaveLength(1);
    expect(standIn.predictions).toHaveLength(1);
  });

  it('makes an unreachable Replicate retryable', async () => {
    const error = await failure(
      provider({ baseUrl: `http://127.0.0.1:${await findFreePort()}/v1` }).createPrediction(request),
    );
    expect(error).toMatchObject({ type: 'ProviderUnavailable', nonRetryable: false });
    expect(error.message).toMatch(/could not reach Replicate/);
  });

  it('cancels upstream, and treats an unknown prediction as nothing to cancel', async () => {
    standIn.behaviour = { runMs: 10_000 };
    const replicate = provider();
    const id = await replicate.createPrediction(request);
    await replicate.cancelPrediction(id);
    expect(standIn.cancelRequests).toEqual([id]);
    expect(await replicate.getPrediction(id)).toEqual({ status: 'canceled' });
    await expect(replicate.cancelPrediction('no-such-prediction')).resolves.toBeUndefined();
  });

  it('stops reading a prediction when its signal aborts', async () => {
    const replicate = provider();
    const id = await replicate.createPrediction(request);
    const controller = new AbortController();
    controller.abort(new Error('activity cancelled'));
    await expect(replicate.getPrediction(id, controller.signal)).rejects.toThrow('activity cancelled');
  });
});
