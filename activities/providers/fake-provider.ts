import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/activity';
import sharp from 'sharp';
import { NonRetryable } from '../../common/errors';
import { OUTPUT_FORMATS, type OutputFormat } from '../../common/statuses';
import type { GenerationRequest, MediaProvider, OutputStream, PredictionState } from './provider';

const IMAGE_SIZE = 256;

interface FakePrediction {
  prompt: string;
  seed: number;
  numOutputs: number;
  outputFormat: OutputFormat;
  createdAt: number;
}

/**
 * Generates real images locally, deterministically: the same prompt, seed and index give the same
 * bytes. The prediction id carries the request, so any worker can answer for it after a restart.
 */
export class FakeProvider implements MediaProvider {
  readonly name = 'fake';
  readonly mayFinishOnCreate = true;

  constructor(private readonly options: { latencyMs: number; now?: () => number } = { latencyMs: 0 }) {}

  async createPrediction(request: GenerationRequest): Promise<string> {
    const prediction: FakePrediction = {
      prompt: request.prompt,
      seed: request.seed,
      numOutputs: request.numOutputs,
      outputFormat: request.outputFormat,
      createdAt: this.now(),
    };
    return `fake-${Buffer.from(JSON.stringify(prediction)).toString('base64url')}`;
  }

  async getPrediction(predictionId: string): Promise<PredictionState> {
    const prediction = decodePrediction(predictionId);
    if (this.now() < prediction.createdAt + this.options.latencyMs) return { status: 'running' };
    const outputUrls = Array.from({ length: prediction.numOutputs }, (_, index) => {
      const params = new URLSearchParams({
        prompt: prediction.prompt,
        seed: String(prediction.seed),
        index: String(index),
        format: prediction.outputFormat,
      });
      return `fake://image?${params.toString()}`;
    });
    return { status: 'succeeded', outputUrls };
  }

  async cancelPrediction(): Promise<void> {
    // Nothing runs upstream.
  }

  async openOutput(url: string): Promise<OutputStream> {
    const parsed = new URL(url);
    const format = parsed.searchParams.get('format');
    if (parsed.protocol !== 'fake:' || !isOutputFormat(format)) {
      throw ApplicationFailure.create({
        type: NonRetryable.ForbiddenSource,
        message: `not a fake provider output: ${url}`,
        nonRetryable: true,
      });
    }
    const bytes = await renderImage(
      parsed.searchParams.get('prompt') ?? '',
      Number(parsed.searchParams.get('seed')),
      Number(parsed.searchParams.get('index')),
      format,
    );
    return { body: Readable.from([bytes]), declaredLength: bytes.length };
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }
}

function isOutputFormat(value: string | null): value is OutputFormat {
  return (OUTPUT_FORMATS as readonly (string | null)[]).includes(value);
}

function decodePrediction(predictionId: string): FakePrediction {
  try {
    return JSON.parse(Buffer.from(predictionId.replace(/^fake-/, ''), 'base64url').toString('utf8')) as FakePrediction;
  } catch {
    throw ApplicationFailure.create({
      type: NonRetryable.PredictionFailed,
      message: `unknown prediction ${predictionId}`,
      nonRetryable: true,
    });
  }
}

/** A smooth two-colour field with a few discs, all drawn from a hash of prompt, seed and index. */
export async function renderImage(prompt: string, seed: number, index: number, format: OutputFormat): Promise<Buffer> {
  const digest = createHash('sha256').update(`${prompt}\u0000${seed}\u0000${index}`).digest();
  const byte = (i: number) => digest[i % digest.length]!;
  const pixels = Buffer.alloc(IMAGE_SIZE * IMAGE_SIZE * 3);
  const discs = Array.from({ length: 4 }, (_, d) => ({
    x: byte(6 + d * 4) % IMAGE_SIZE,
    y: byte(7 + d * 4) % IMAGE_SIZE,
    radius: 12 + (byte(8 + d * 4) % 48),
    colour: [byte(9 + d * 4), byte(10 + d * 4), byte(11 + d * 4)],
  }));
  const [r0, g0, b0, r1, g1, b1] = [byte(0), byte(1), byte(2), byte(3), byte(4), byte(5)];
  // The background depends on x + y only: one colour per diagonal, computed once.
  const diagonals = Buffer.alloc(2 * IMAGE_SIZE * 3);
  for (let sum = 0; sum < 2 * IMAGE_SIZE - 1; sum++) {
    const t = sum / (2 * IMAGE_SIZE);
    diagonals[sum * 3] = Math.round(r0 * (1 - t) + r1 * t);
    diagonals[sum * 3 + 1] = Math.round(g0 * (1 - t) + g1 * t);
    diagonals[sum * 3 + 2] = Math.round(b0 * (1 - t) + b1 * t);
  }
  for (let y = 0; y < IMAGE_SIZE; y++) {
    const row = y * IMAGE_SIZE * 3;
    diagonals.copy(pixels, row, y * 3, (y + IMAGE_SIZE) * 3);
    // A disc covers the pixels with (x - cx)² + (y - cy)² ≤ r², one span per row; later discs cover earlier ones.
    for (const disc of discs) {
      const reach = disc.radius ** 2 - (y - disc.y) ** 2;
      if (reach < 0) continue;
      const halfWidth = Math.floor(Math.sqrt(reach));
      const from = Math.max(0, disc.x - halfWidth);
      const to = Math.min(IMAGE_SIZE - 1, disc.x + halfWidth);
      for (let x = from; x <= to; x++) {
        pixels[row + x * 3] = disc.colour[0]!;
        pixels[row + x * 3 + 1] = disc.colour[1]!;
        pixels[row + x * 3 + 2] = disc.colour[2]!;
      }
    }
  }
  const image = sharp(pixels, { raw: { width: IMAGE_SIZE, height: IMAGE_SIZE, channels: 3 } });
  switch (format) {
    case 'png':
      return image.png().toBuffer();
    case 'jpg':
      return image.jpeg({ quality: 90 }).toBuffer();
    case 'webp':
      return image.webp({ quality: 90 }).toBuffer();
  }
}
