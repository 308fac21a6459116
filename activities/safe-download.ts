import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { ApplicationFailure } from '@temporalio/activity';
import { NonRetryable } from '../common/errors';
import { checkedLookup, isPublicAddress } from '../common/public-address';
import type { OutputStream } from './providers/provider';
import { retryAfterSeconds } from './helpers';

/** Retryable: the source did not answer well this time (network, timeout, 429, 5xx). */
export const OUTPUT_UNAVAILABLE = 'OutputUnavailable';

export interface DownloadLimits {
  connectTimeoutMs: number;
  /** Longest silence while waiting for headers or body bytes. */
  idleTimeoutMs: number;
  /** From the first request to the last body byte, redirects included. */
  totalTimeoutMs: number;
  maxRedirects: number;
}

export const DEFAULT_DOWNLOAD_LIMITS: DownloadLimits = {
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  totalTimeoutMs: 30 * 60_000,
  maxRedirects: 5,
};

export interface SafeDownloadOptions extends Partial<DownloadLimits> {
  signal: AbortSignal;
  maxBytes: number;
  /** MEDIA_FETCH_ALLOW_PRIVATE: plain http and any address, for local stand-ins only. */
  allowPrivate: boolean;
  /** Overrides the address rule that allowPrivate picks (tests use it to call loopback "public"). */
  isAllowedAddress?: (address: string) => boolean;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * Opens an output URL for streaming, refusing anything that could reach inside the network: only
 * HTTPS, only public addresses, checked on the address actually resolved and connected to (so a
 * DNS answer that changes between check and use gains nothing) and again on every redirect.
 */
export async function safeDownload(source: string, options: SafeDownloadOptions): Promise<OutputStream> {
  const limits: DownloadLimits = { ...DEFAULT_DOWNLOAD_LIMITS, ...definedOnly(options) };
  const allowHttp = options.allowPrivate;
  const isAllowedAddress = options.isAllowedAddress ?? (options.allowPrivate ? () => true : isPublicAddress);
  options.signal.throwIfAborted();

  let current: Exchange | undefined;
  const stop = (error: Error) => current?.stop(error);
  const onAbort = () => stop(abortReason(options.signal));
  const totalTimer = setTimeout(
    () => stop(unavailable(`the download did not finish within ${limits.totalTimeoutMs / 1000}s`)),
    limits.totalTimeoutMs,
  );
  options.signal.addEventListener('abort', onAbort, { once: true });
  const release = () => {
    clearTimeout(totalTimer);
    options.signal.removeEventListener('abort', onAbort);
  };

  try {
    let url = checkedUrl(new URL(source), allowHttp, isAllowedAddress);
    for (let redirects = 0; ; redirects++) {
      current = startExchange(url, limits, isAllowedAddress);
      const response = await current.response;
      const status = response.statusCode ?? 0;
      if (REDIRECT_STATUSES.has(status)) {
        response.destroy();
        const location = response.headers.location;
        if (!location) throw unavailable(`${url.host} answered ${status} without a Location`, true);
        if (redirects >= limits.maxRedirects)
          throw forbidden(`more than ${limits.maxRedirects} redirects, last from ${url.host}`);
        url = checkedUrl(new URL(location, url), allowHttp, isAllowedAddress);
        continue;
      }
      if (status !== 200) {
        response.destroy();
        throw statusFailure(status, url, response.headers['retry-after']);
      }
      const declaredLength = parseLength(response.headers['content-length']);
      if (declaredLength !== undefined && declaredLength > options.maxBytes) {
        response.destroy();
        throw ApplicationFailure.create({
          type: NonRetryable.OutputTooLarge,
          message: `the output is ${declaredLength} bytes, over the ${options.maxBytes}-byte limit (MEDIA_MAX_BYTES)`,
          nonRetryable: true,
        });
      }
      response.once('close', release);
      return { body: response, declaredLength };
    }
  } catch (error) {
    release();
    throw options.signal.aborted ? abortReason(options.signal) : error;
  }
}

interface Exchange {
  response: Promise<IncomingMessage>;
  stop(error: Error): void;
}

function startExchange(url: URL, limits: DownloadLimits, isAllowedAddress: (address: string) => boolean): Exchange {
  let request: ClientRequest;
  let response: IncomingMessage | undefined;
  const stop = (error: Error) => {
    response?.destroy(error);
    request.destroy(error);
  };
  const pending = new Promise<IncomingMessage>((resolve, reject) => {
    const transport = url.protocol === 'https:' ? https : http;
    request = transport.request(url, {
      method: 'GET',
      agent: false,
      lookup: checkedLookup(isAllowedAddress, forbidden),
      headers: { accept: 'image/*, video/*, */*;q=0.5', 'user-agent': 'media-generation' },
    });
    const connectTimer = setTimeout(
      () => stop(unavailable(`no connection to ${url.host} within ${limits.connectTimeoutMs / 1000}s`)),
      limits.connectTimeoutMs,
    );
    request.once('socket', (socket) => {
      socket.once('connect', () => {
        clearTimeout(connectTimer);
        // IP literals skip the lookup; this also covers any path to a socket the lookup did not see.
        const remote = socket.remoteAddress;
        if (!remote || !isAllowedAddress(remote))
          stop(forbidden(`${url.host} connected to ${remote ?? 'an unknown address'}, which is not public`));
      });
    });
    request.setTimeout(limits.idleTimeoutMs, () =>
      stop(unavailable(`${url.host} sent nothing for ${limits.idleTimeoutMs / 1000}s`)),
    );
    request.once('error', (error) => {
      clearTimeout(connectTimer);
      reject(
        error instanceof ApplicationFailure
          ? error
          : unavailable(`could not fetch the output from ${url.host}: ${errorCode(error)}`),
      );
    });
    request.once('response', (incoming) => {
      clearTimeout(connectTimer);
      response = incoming;
      // Errors reach whoever reads the body; without a listener, one raised before reading starts would crash the worker.
      incoming.on('error', () => undefined);
      resolve(incoming);
    });
    request.end();
  });
  return { response: pending, stop: (error) => stop(error) };
}

function checkedUrl(url: URL, allowHttp: boolean, isAllowedAddress: (address: string) => boolean): URL {
  if (url.protocol !== 'https:' && !(allowHttp && url.protocol === 'http:')) {
    throw forbidden(`only https output URLs are fetched, not ${url.protocol.replace(/:$/, '')}`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && !isAllowedAddress(host)) throw forbidden(`${host} is not a public address`);
  return url;
}

function statusFailure(status: number, url: URL, retryAfter: string | undefined): ApplicationFailure {
  if (status === 404 || status === 410) {
    return ApplicationFailure.create({
      type: NonRetryable.OutputExpired,
      message: `the output URL on ${url.host} answered ${status}: it has expired or was removed`,
      nonRetryable: true,
    });
  }
  const transient = status === 408 || status === 425 || status === 429 || status >= 500;
  const delaySeconds = transient ? retryAfterSeconds(retryAfter) : undefined;
  return ApplicationFailure.create({
    type: OUTPUT_UNAVAILABLE,
    message: `the output URL on ${url.host} answered ${status}`,
    nonRetryable: !transient,
    ...(delaySeconds !== undefined ? { nextRetryDelay: `${delaySeconds}s` as const } : {}),
  });
}

function parseLength(value: string | undefined): number | undefined {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

function forbidden(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: NonRetryable.ForbiddenSource, message, nonRetryable: true });
}

function unavailable(message: string, nonRetryable = false): ApplicationFailure {
  return ApplicationFailure.create({ type: OUTPUT_UNAVAILABLE, message, nonRetryable });
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('the download was cancelled');
}

function errorCode(error: Error): string {
  return (error as NodeJS.ErrnoException).code ?? error.message;
}

function definedOnly(options: Partial<DownloadLimits>): Partial<DownloadLimits> {
  const { connectTimeoutMs, idleTimeoutMs, totalTimeoutMs, maxRedirects } = options;
  return Object.fromEntries(
    Object.entries({ connectTimeoutMs, idleTimeoutMs, totalTimeoutMs, maxRedirects }).filter(
      ([, value]) => value !== undefined,
    ),
  );
}
