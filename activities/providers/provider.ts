import type { Readable } from 'node:stream';
import type { OutputFormat } from '../../common/statuses';

export interface GenerationRequest {
  jobId: string;
  model: string;
  prompt: string;
  numOutputs: number;
  seed: number;
  outputFormat: OutputFormat;
}

export type PredictionState =
  | { status: 'running' }
  | { status: 'succeeded'; outputUrls: string[] }
  | { status: 'failed'; error: string }
  | { status: 'canceled' };

export interface OutputStream {
  body: Readable;
  /** Length the source announced, when it did; checked against the size cap before reading. */
  declaredLength?: number;
}

/**
 * A media generator. Creating a prediction is the only billed step, so it is kept apart from
 * waiting for it: a retry of the wait never creates a second prediction.
 */
export interface MediaProvider {
  readonly name: string;
  createPrediction(request: GenerationRequest): Promise<string>;
  getPrediction(predictionId: string, signal?: AbortSignal): Promise<PredictionState>;
  cancelPrediction(predictionId: string): Promise<void>;
  openOutput(url: string, signal: AbortSignal): Promise<OutputStream>;
}
