import { ApplicationFailure } from '@temporalio/activity';
import Replicate, { type Prediction } from 'replicate';
import { NonRetryable } from '../../common/errors';
import { retryAfterSeconds } from '../helpers';
import { safeDownload, type DownloadLimits } from '../safe-download';
import type { GenerationRequest, MediaProvider, OutputStream, PredictionState } from './provider';

/** Retryable failure types: Replicate asked us to slow down, or did not answer well this time. */
export const ProviderRetryable = {
  RateLimited: 'ProviderRateLimited',
  Unavailable: 'ProviderUnavailable',
} as const;

export interface ReplicateProviderOptions {
  apiToken: string;
  /** REPLICATE_BASE_URL, e.g. https://api.replicate.com/v1 */
  baseUrl: string;
  /** Sent as Cancel-After with each create, so an orphaned prediction stops by itself. */
  predictionDeadlineSeconds: number;
  allowPrivateDownloads: boolean;
  maxOutputBytes: number;
  /** Per API call, body included; under createPrediction's start-to-close, so a hung call fails with a clear message. */
  requestTimeoutMs?: number;
  downloadLimits?: Partial<DownloadLimits>;
}

const MODEL_REF = /^([^/\s:]+)\/([^/\s:]+)(?::([^/\s:]+))?$/;

/**
 * Replicate through its official client. Every call goes out exactly once (see replicateFetch);
 * retrying is Temporal's job, and each failure says whether a retry can help.
 */
export class ReplicateProvider implements MediaProvider {
  readonly name = 'replicate';
  // Replicate deletes the outputs of predictions made through the API an hour after they end.
  readonly outputLifetimeSeconds = 3600;
  // Private fields stay out of JSON and logged objects; the token lives only here and in the client.
  readonly #client: Replicate;
  readonly #token: string;
  readonly #settings: Omit<ReplicateProviderOptions, 'apiToken'>;
  readonly #errorBodies = new WeakMap<Response, string>();

  constructor(options: ReplicateProviderOptions) {
    const { apiToken, ...settings } = options;
    this.#token = apiToken;
    this.#settings = settings;
    this.#client = new Replicate({
      auth: apiToken,
      baseUrl: settings.baseUrl,
      fetch: replicateFetch({
        deadlineSeconds: settings.predictionDeadlineSeconds,
        timeoutMs: settings.requestTimeoutMs ?? 20_000,
        errorBodies: this.#errorBodies,
      }),
    });
  }

  async createPrediction(request: GenerationRequest): Promise<string> {
    const match = MODEL_REF.exec(request.model);
    if (!match) {
      throw ApplicationFailure.create({
        type: NonRetryable.InvalidInput,
        message: `model must be owner/name or owner/name:version, not ${request.model}`,
        nonRetryable: true,
      });
    }
    const [, owner, name, version] = match;
    const input = {
      prompt: request.prompt,
      num_outputs: request.numOutputs,
      seed: request.seed,
      output_format: request.outputFormat,
    };
    const prediction = await this.call('creating the prediction', () =>
      version
        ? this.#client.predictions.create({ version, input })
        : this.#client.predictions.create({ model: `${owner}/${name}`, input }),
    );
    return prediction.id;
  }

  async getPrediction(predictionId: string, signal?: AbortSignal): Promise<PredictionState> {
    const prediction = await this.call(
      'reading the prediction',
      () => this.#client.predictions.get(predictionId, { signal }),
      signal,
    );
    return toState(prediction);
  }

  async cancelPrediction(predictionId: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.call(
        'cancelling the prediction',
        () => this.#client.predictions.cancel(predictionId, { signal }),
        signal,
      );
    } catch (error) {
      // A 4xx means there is nothing left to cancel (finished, or unknown): retrying cannot change that.
      if (error instanceof ApplicationFailure && error.nonRetryable) return;
      throw error;
    }
  }

  openOutput(url: string, signal: AbortSignal): Promise<OutputStream> {
    return safeDownload(url, {
      signal,
      maxBytes: this.#settings.maxOutputBytes,
      allowPrivate: this.#settings.allowPrivateDownloads,
      ...this.#settings.downloadLimits,
    });
  }

  private async call<T>(action: string, run: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : error;
      throw this.toFailure(action, error);
    }
  }

  /** Builds every message from the status and the provider's own words, never from the request (its headers carry the token). */
  private toFailure(action: string, error: unknown): ApplicationFailure {
    const response = apiErrorResponse(error);
    if (!response) {
      const reason =
        error instanceof Error && error.name === 'TimeoutError' ? 'no answer in time' : networkReason(error);
      return this.failure(ProviderRetryable.Unavailable, `could not reach Replicate while ${action}: ${reason}`, false);
    }
    const status = response.status;
    const detail = problemDetail(this.#errorBodies.get(response));
    if (status === 429) {
      const delay = retryAfterSeconds(response.headers.get('retry-after'));
      return ApplicationFailure.create({
        type: ProviderRetryable.RateLimited,
        message: this.redact(`Replicate rate-limited ${action}${delay ? `; retrying in ${delay}s` : ''}`),
        ...(delay ? { nextRetryDelay: `${delay}s` as const } : {}),
      });
    }
    if (status >= 500 || status === 408) {
      return this.failure(
        ProviderRetryable.Unavailable,
        `Replicate answered ${status} while ${action}${detail ? `: ${detail}` : ''}`,
        false,
      );
    }
    return this.failure(NonRetryable.InvalidInput, detail ?? `Replicate answered ${status} while ${action}`, true);
  }

  private failure(type: string, message: string, nonRetryable: boolean): ApplicationFailure {
    return ApplicationFailure.create({ type, message: this.redact(message), nonRetryable });
  }

  private redact(text: string): string {
    return text.split(this.#token).join('[redacted]');
  }
}

function toState(prediction: Prediction): PredictionState {
  switch (prediction.status) {
    case 'succeeded': {
      const output: unknown = prediction.output;
      const urls = typeof output === 'string' ? [output] : Array.isArray(output) ? output : [];
      if (urls.length === 0 || !urls.every((url): url is string => typeof url === 'string')) {
        return { status: 'failed', error: 'the prediction succeeded but its output is not a list of URLs' };
      }
      return { status: 'succeeded', outputUrls: urls };
    }
    case 'failed':
      return { status: 'failed', error: errorText(prediction.error) };
    case 'canceled':
    case 'aborted':
      return { status: 'canceled' };
    default:
      return { status: 'running' };
  }
}

function errorText(error: unknown): string {
  if (typeof error === 'string' && error.trim()) return error;
  if (error && typeof error === 'object') return JSON.stringify(error);
  return 'the prediction failed upstream without an error message';
}

interface ReplicateFetchOptions {
  deadlineSeconds: number;
  timeoutMs: number;
  errorBodies: WeakMap<Response, string>;
}

/**
 * The client's own retry loop resends the very same request: on 429 and 5xx, and on any thrown
 * error even for a POST, so a dropped connection after a create was accepted would bill twice,
 * and it does so back to back without heartbeating. Answering a repeat of the same request object
 * with the first outcome turns that loop into a single call. This also adds the Cancel-After
 * deadline to creates (the client cannot set a header per call), bounds each call in time, and
 * keeps an error body readable after the client has consumed it.
 */
function replicateFetch(options: ReplicateFetchOptions): typeof fetch {
  const sent = new WeakMap<object, Promise<Response>>();
  return (input, init) => {
    const earlier = init && sent.get(init);
    if (earlier) return earlier;
    const headers = new Headers(init?.headers);
    const url = new URL(input instanceof Request ? input.url : input.toString());
    if ((init?.method ?? 'GET').toUpperCase() === 'POST' && url.pathname.endsWith('/predictions')) {
      headers.set('Cancel-After', `${options.deadlineSeconds}s`);
    }
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    const outcome = fetch(input, { ...init, headers, signal }).then(async (response) => {
      if (response.status < 400) return response;
      const text = await response.text();
      const copy = new Response(text, {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      });
      options.errorBodies.set(copy, text);
      return copy;
    });
    if (init) sent.set(init, outcome);
    return outcome;
  };
}

function apiErrorResponse(error: unknown): Response | undefined {
  if (!(error instanceof Error) || error.name !== 'ApiError') return undefined;
  const response = (error as Error & { response?: unknown }).response;
  return response instanceof Response ? response : undefined;
}

/** Replicate answers errors as problem details: `detail` is the sentence meant for a person. */
function problemDetail(body: string | undefined): string | undefined {
  if (!body) return undefined;
  try {
    const parsed = JSON.parse(body) as { detail?: unknown; title?: unknown };
    if (typeof parsed.detail === 'string' && parsed.detail.trim()) return parsed.detail;
    if (typeof parsed.title === 'string' && parsed.title.trim()) return parsed.title;
  } catch {
    // Not JSON: a proxy's page, say. Its first line is still better than nothing.
  }
  return body.trim().split('\n')[0]?.slice(0, 300) || undefined;
}

function networkReason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? error.message;
}
