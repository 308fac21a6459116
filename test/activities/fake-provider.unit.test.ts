import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { FakeProvider, renderImage } from '../../activities/providers/fake-provider';
import type { GenerationRequest, OutputStream } from '../../activities/providers/provider';
import { failure } from '../support/failure';

const digest = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function readAll(output: OutputStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of output.body) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

describe('the fake renderer', () => {
  it('gives the same bytes for the same prompt, seed and index', async () => {
    const [first, again] = await Promise.all([renderImage('a kite', 7, 0, 'png'), renderImage('a kite', 7, 0, 'png')]);
    expect(digest(again)).toBe(digest(first));
  });

  it('gives other bytes when the prompt, the seed or the index differ', async () => {
    const images = await Promise.all([
      renderImage('a kite', 7, 0, 'png'),
      renderImage('a boat', 7, 0, 'png'),
      renderImage('a kite', 8, 0, 'png'),
      renderImage('a kite', 7, 1, 'png'),
    ]);
    expect(new Set(images.map(digest)).size).toBe(4);
  });

  it.each([
    ['png', 'png'],
    ['jpg', 'jpeg'],
    ['webp', 'webp'],
  ] as const)('renders %s as a 256 x 256 %s image', async (format, decoded) => {
    const metadata = await sharp(await renderImage('a kite', 7, 0, format)).metadata();
    expect(metadata).toMatchObject({ format: decoded, width: 256, height: 256 });
  });
});

describe('the fake provider', () => {
  const request: GenerationRequest = {
    jobId: 'job-1',
    model: 'a/b',
    prompt: 'a kite',
    numOutputs: 2,
    seed: 7,
    outputFormat: 'webp',
  };

  it('runs for its latency, then answers one output per requested output, from any instance', async () => {
    let now = 1_000;
    const provider = new FakeProvider({ latencyMs: 500, now: () => now });
    const id = await provider.createPrediction(request);
    expect(await provider.getPrediction(id)).toEqual({ status: 'running' });
    now += 500;
    // Another worker (another instance) answers for the same prediction.
    const state = await new FakeProvider({ latencyMs: 500, now: () => now }).getPrediction(id);
    expect(state).toEqual({ status: 'succeeded', outputUrls: [expect.any(String), expect.any(String)] });
    const urls = state.status === 'succeeded' ? state.outputUrls : [];
    const output = await provider.openOutput(urls[1]!);
    const bytes = await readAll(output);
    expect(output.declaredLength).toBe(bytes.length);
    expect(bytes.equals(await renderImage('a kite', 7, 1, 'webp'))).toBe(true);
  });

  it('refuses an output that is not its own, and a prediction id it did not make', async () => {
    const provider = new FakeProvider();
    expect(await failure(provider.openOutput('https://example.com/out.png'))).toMatchObject({
      type: 'ForbiddenSource',
      nonRetryable: true,
    });
    expect(await failure(provider.openOutput('fake://image?prompt=x&seed=1&index=0&format=gif'))).toMatchObject({
      type: 'ForbiddenSource',
    });
    expect(await failure(provider.getPrediction('fake-not-a-prediction'))).toMatchObject({
      type: 'PredictionFailed',
      nonRetryable: true,
    });
  });
});
