import type { Readable } from 'node:stream';
import type { MediaGenerationInput } from '../../common/temporal';

/** What a provider is asked to generate: the workflow's input, without its policies and targets. */
export type GenerationRequest = Pick<
  MediaGenerationInput,
  'jobId' | 'model' | 'prompt' | 'numOutputs' | 'seed' | 'outputFormat'
>;

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
  /** How long the provider serves a prediction's outputs after it succeeded; undefined: for as long as they are needed. */
  readonly outputLifetimeSeconds?: number;
  /**
   * Its predictions may have ended by the time their creation is answered (a provider that
   * generates in the request): the prediction is then asked for once right away, and a job whose
   * outputs are already there runs no separate wait (awaitPrediction) at all.
   */
  readonly mayFinishOnCreate?: boolean;
  createPrediction(request: GenerationRequest): Promise<string>;
  getPrediction(predictionId: string, signal?: AbortSignal): Promise<PredictionState>;
  /** `signal` ends the call (an attempt's time running out): it then throws, for a retry. */
  cancelPrediction(predictionId: string, signal?: AbortSignal): Promise<void>;
  openOutput(url: string, signal: AbortSignal): Promise<OutputStream>;
}
