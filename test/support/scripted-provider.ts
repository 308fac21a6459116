import { ApplicationFailure } from '@temporalio/activity';
import { FakeProvider } from '../../activities/providers/fake-provider';
import { NonRetryable } from '../../common/errors';
import type {
  GenerationRequest,
  MediaProvider,
  OutputStream,
  PredictionState,
} from '../../activities/providers/provider';

/**
 * The fake provider with faults a test can script: slow or failing predictions and outputs that
 * fail a number of times. Counts what it was asked to do.
 */
export class ScriptedProvider implements MediaProvider {
  readonly name = 'scripted';
  readonly mayFinishOnCreate = true;
  readonly created: GenerationRequest[] = [];
  readonly cancelled: string[] = [];
  readonly opened: string[] = [];
  /** Output index → failures still to throw when that output is opened (Infinity: always). */
  outputFailures = new Map<number, number>();
  predictionError?: string;
  /** Output indexes whose download never answers (until cancelled). */
  outputHangs = new Set<number>();
  /** Creates take this long, then fail with `createError` when it is set (the provider refusing the input). */
  createDelayMs = 0;
  createError?: string;
  private readonly fake: FakeProvider;

  constructor(options: { latencyMs?: number } = {}) {
    this.fake = new FakeProvider({ latencyMs: options.latencyMs ?? 0 });
  }

  async createPrediction(request: GenerationRequest): Promise<string> {
    this.created.push(request);
    if (this.createDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.createDelayMs));
    if (this.createError)
      throw ApplicationFailure.create({
        type: NonRetryable.InvalidInput,
        message: this.createError,
        nonRetryable: true,
      });
    return this.fake.createPrediction(request);
  }

  async getPrediction(predictionId: string): Promise<PredictionState> {
    if (this.cancelled.includes(predictionId)) return { status: 'canceled' };
    if (this.predictionError) return { status: 'failed', error: this.predictionError };
    return this.fake.getPrediction(predictionId);
  }

  /** Cancels still to refuse (the provider down), before they go through. */
  cancelFailures = 0;

  async cancelPrediction(predictionId: string): Promise<void> {
    if (this.cancelFailures > 0) {
      this.cancelFailures--;
      throw ApplicationFailure.retryable('the provider is unavailable (scripted)', 'ScriptedTransientError');
    }
    this.cancelled.push(predictionId);
  }

  async openOutput(url: string, signal?: AbortSignal): Promise<OutputStream> {
    this.opened.push(url);
    const index = Number(new URL(url).searchParams.get('index'));
    if (this.outputHangs.has(index)) {
      await new Promise((_resolve, reject) =>
        signal?.addEventListener('abort', () => reject(new Error('download cancelled: its source stopped answering')), {
          once: true,
        }),
      );
    }
    const remaining = this.outputFailures.get(index) ?? 0;
    if (remaining > 0) {
      this.outputFailures.set(index, remaining - 1);
      throw ApplicationFailure.retryable(`output ${index} is not ready (scripted)`, 'ScriptedTransientError');
    }
    return this.fake.openOutput(url);
  }

  createdForJob(jobId: string): number {
    return this.created.filter((request) => request.jobId === jobId).length;
  }
}
