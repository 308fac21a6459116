import { ApplicationFailure } from '@temporalio/activity';
import { FakeProvider } from '../../activities/providers/fake-provider';
import type { GenerationRequest, MediaProvider, OutputStream, PredictionState } from '../../activities/providers/provider';

/**
 * The fake provider with faults a test can script: slow or failing predictions and outputs that
 * fail a number of times. Counts what it was asked to do.
 */
export class ScriptedProvider implements MediaProvider {
  readonly name = 'scripted';
  readonly created: GenerationRequest[] = [];
  readonly cancelled: string[] = [];
  readonly opened: string[] = [];
  /** Output index → failures still to throw when that output is opened (Infinity: always). */
  outputFailures = new Map<number, number>();
  predictionError?: string;
  private readonly fake: FakeProvider;

  constructor(options: { latencyMs?: number } = {}) {
    this.fake = new FakeProvider({ latencyMs: options.latencyMs ?? 0 });
  }

  async createPrediction(request: GenerationRequest): Promise<string> {
    this.created.push(request);
    return this.fake.createPrediction(request);
  }

  async getPrediction(predictionId: string): Promise<PredictionState> {
    if (this.cancelled.includes(predictionId)) return { status: 'canceled' };
    if (this.predictionError) return { status: 'failed', error: this.predictionError };
    return this.fake.getPrediction(predictionId);
  }

  async cancelPrediction(predictionId: string): Promise<void> {
    this.cancelled.push(predictionId);
  }

  async openOutput(url: string): Promise<OutputStream> {
    this.opened.push(url);
    const index = Number(new URL(url).searchParams.get('index'));
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
