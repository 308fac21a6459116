import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { ApplicationFailure, Context, type Info } from '@temporalio/activity';
import { msToNumber } from '@temporalio/common/lib/time';
import { NonRetryable } from '../common/errors';
import { type Presigner } from '../common/presigner';
import { toBatchReply } from '../jobs/batch-reply';
import { toStatusReply } from '../jobs/status-reply';
import type { BatchWebhookMessage, WebhookMessage } from '../common/temporal';
import { signWebhook } from '../common/webhooks';
import type { Database } from '../db/client';
import { getBatch, listBatchJobs } from '../db/queries/batches';
import { getJob } from '../db/queries/jobs';
import { beginDeliveryAttempt, finishDeliveryAttempt } from '../db/queries/webhook-deliveries';
import { checkedLookup, isPublicAddress } from '../common/public-address';
import { retryAfterSeconds } from './helpers';

/** Retryable: the receiver did not take the message this time (network, timeout, non-2xx). */
export const WEBHOOK_REJECTED = 'WebhookRejected';
const SNIPPET_CHARS = 500;

export interface WebhookDependencies {
  /** WEBHOOK_SIGNING_SECRET; it stays here, never in workflow or activity payloads. */
  signingSecret?: string;
  /** MEDIA_FETCH_ALLOW_PRIVATE: the same address rules as downloads. */
  allowPrivate: boolean;
  presigner: Presigner;
  timeoutMs?: number;
}

export interface DeliveryResult {
  statusCode: number;
  attempt: number;
}

interface Answer {
  statusCode: number;
  snippet: string;
  retryAfter?: string;
}

/**
 * Sends one webhook message: the job's status reply (as GET /api/v1/status answers it, presigned
 * URLs included) plus `event`, signed per Standard Webhooks, to a public HTTPS address. Every
 * attempt is recorded as it begins, and then how it ended; anything but a 2xx answer is thrown for
 * the retry policy.
 */
export async function deliverWebhook(
  db: Database,
  deps: WebhookDependencies | undefined,
  message: WebhookMessage,
  signal: AbortSignal,
): Promise<DeliveryResult> {
  const webhooks = configured(deps);
  const job = await getJob(db, message.jobId);
  if (!job)
    throw ApplicationFailure.create({
      type: NonRetryable.JobNotFound,
      message: `job ${message.jobId} has no row in the database`,
      nonRetryable: true,
    });
  const reply = await toStatusReply(job, webhooks.presigner);
  const body = JSON.stringify({
    event: message.event,
    ...(message.outputIndex !== undefined ? { output_index: message.outputIndex } : {}),
    ...reply,
  });
  const row = await beginDeliveryAttempt(db, {
    jobId: message.jobId,
    messageId: message.messageId,
    event: message.event,
    outputIndex: message.outputIndex,
    url: message.url,
  });
  const { answer, failure } = await sendSigned(webhooks, message.url, message.messageId, body, signal);
  await finishDeliveryAttempt(db, row.id, {
    statusCode: answer?.statusCode,
    responseSnippet: answer?.snippet,
    error: failure?.message,
  });
  if (failure) throw failure;
  return { statusCode: answer!.statusCode, attempt: row.attempt };
}

/** The worker's webhook settings with their signing secret; without it no message may go out (not retried: configuration, not a fault). */
function configured(deps: WebhookDependencies | undefined): WebhookDependencies & { signingSecret: string } {
  if (deps?.signingSecret) return { ...deps, signingSecret: deps.signingSecret };
  throw ApplicationFailure.create({
    type: NonRetryable.WebhookNotConfigured,
    message: 'WEBHOOK_SIGNING_SECRET is not set on the worker',
    nonRetryable: true,
  });
}

/**
 * Sends a batch's webhook: the batch as GET /api/v1/batches/{id} answers it (each job's status reply,
 * presigned URLs included) plus `"event": "batch_ended"`, signed and sent as a job's messages are.
 * Its attempts are the activity's: Temporal shows the count and the last failure while it retries,
 * and the outcome in the workflow's history; none is listed in a job's webhook_deliveries.
 */
export async function deliverBatchWebhook(
  db: Database,
  deps: WebhookDependencies | undefined,
  message: BatchWebhookMessage,
  signal: AbortSignal,
): Promise<{ statusCode: number }> {
  const webhooks = configured(deps);
  const batch = await getBatch(db, message.batchId);
  if (!batch)
    throw ApplicationFailure.create({
      type: NonRetryable.BatchNotFound,
      message: `batch ${message.batchId} has no row in the database`,
      nonRetryable: true,
    });
  const reply = await toBatchReply(batch, await listBatchJobs(db, batch.id), webhooks.presigner);
  const body = JSON.stringify({ event: 'batch_ended', ...reply });
  const { answer, failure } = await sendSigned(webhooks, message.url, message.messageId, body, signal);
  if (failure) throw failure;
  return { statusCode: answer!.statusCode };
}

/**
 * The delay before the next attempt that a receiver's `Retry-After` asks for, when it is longer than
 * the retry policy's own next backoff; undefined leaves the policy's backoff. A shorter one is not
 * taken: a receiver answering `Retry-After: 1` every time would otherwise be called every second
 * for the policy's whole day. A longer one than the retries have left (their schedule-to-close,
 * less one attempt's time) is cut to what is left: the server gives up at once on a retry that
 * would start too late, and the message would never be tried again.
 */
export function retryDelaySeconds(
  retryAfter: string | undefined,
  attempt: Pick<Info, 'attempt' | 'retryPolicy'> &
    Partial<Pick<Info, 'scheduledTimestampMs' | 'scheduleToCloseTimeoutMs' | 'startToCloseTimeoutMs'>>,
  now = Date.now(),
): number | undefined {
  const requested = retryAfterSeconds(retryAfter);
  const leftSeconds =
    attempt.scheduleToCloseTimeoutMs && attempt.scheduledTimestampMs !== undefined
      ? Math.floor(
          (attempt.scheduledTimestampMs +
            attempt.scheduleToCloseTimeoutMs -
            now -
            (attempt.startToCloseTimeoutMs ?? 0)) /
            1000,
        )
      : Infinity;
  const asked = requested === undefined ? undefined : Math.max(0, Math.min(requested, leftSeconds));
  const policy = attempt.retryPolicy;
  if (asked === undefined || !policy?.initialInterval) return asked;
  const initialSeconds = msToNumber(policy.initialInterval) / 1000;
  const maximumSeconds = policy.maximumInterval ? msToNumber(policy.maximumInterval) / 1000 : Infinity;
  const backoffSeconds = Math.min(
    initialSeconds * (policy.backoffCoefficient ?? 2) ** (attempt.attempt - 1),
    maximumSeconds,
  );
  return asked > backoffSeconds ? asked : undefined;
}

/** One signed POST; what the receiver answered, and the failure to throw for anything but a 2xx. */
async function sendSigned(
  deps: WebhookDependencies & { signingSecret: string },
  url: string,
  messageId: string,
  body: string,
  signal: AbortSignal,
): Promise<{ answer?: Answer; failure?: ApplicationFailure }> {
  const timestamp = Math.floor(Date.now() / 1000);
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'media-generation-webhooks',
    'webhook-id': messageId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signWebhook(deps.signingSecret, messageId, timestamp, body),
  };
  try {
    const answer = await post(new URL(url), headers, body, {
      allowPrivate: deps.allowPrivate,
      timeoutMs: deps.timeoutMs ?? 15_000,
      signal,
    });
    if (answer.statusCode >= 200 && answer.statusCode < 300) return { answer };
    const delay =
      answer.statusCode === 429 || answer.statusCode === 503
        ? retryDelaySeconds(answer.retryAfter, Context.current().info)
        : undefined;
    return {
      answer,
      failure: ApplicationFailure.create({
        type: WEBHOOK_REJECTED,
        message: `the receiver answered ${answer.statusCode}`,
        ...(delay !== undefined ? { nextRetryDelay: `${delay}s` as const } : {}),
      }),
    };
  } catch (error) {
    return {
      failure:
        error instanceof ApplicationFailure
          ? error
          : ApplicationFailure.create({ type: WEBHOOK_REJECTED, message: (error as Error).message }),
    };
  }
}

function forbidden(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: NonRetryable.ForbiddenWebhookUrl, message, nonRetryable: true });
}

/**
 * One POST, no redirects followed, to an address checked after DNS and again on connect. Its answer
 * is its status line: the body is read for the record until it ends, fills the snippet or the
 * timeout passes, and then the connection is closed, so a 2xx whose body never ends is delivered.
 */
function post(
  url: URL,
  headers: Record<string, string>,
  body: string,
  options: { allowPrivate: boolean; timeoutMs: number; signal: AbortSignal },
): Promise<Answer> {
  const isAllowed = options.allowPrivate ? () => true : isPublicAddress;
  if (url.protocol !== 'https:' && !(options.allowPrivate && url.protocol === 'http:')) {
    return Promise.reject(forbidden(`webhooks go only to https URLs, not ${url.protocol.replace(/:$/, '')}`));
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && !isAllowed(host)) return Promise.reject(forbidden(`${host} is not a public address`));

  return new Promise<Answer>((resolve, reject) => {
    const transport = url.protocol === 'https:' ? https : http;
    const request = transport.request(url, {
      method: 'POST',
      agent: false,
      lookup: checkedLookup(isAllowed, forbidden),
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      signal: options.signal,
      timeout: options.timeoutMs,
    });
    let answered: ((bodyEnded: boolean) => void) | undefined;
    const timer = setTimeout(() => {
      if (answered) answered(false);
      else request.destroy(new Error(`the receiver did not answer within ${options.timeoutMs / 1000}s`));
    }, options.timeoutMs);
    request.once('socket', (socket) => {
      socket.once('connect', () => {
        const remote = socket.remoteAddress;
        if (!remote || !isAllowed(remote))
          request.destroy(forbidden(`${url.host} connected to ${remote ?? 'an unknown address'}, which is not public`));
      });
    });
    request.once('timeout', () =>
      request.destroy(new Error(`the receiver sent nothing for ${options.timeoutMs / 1000}s`)),
    );
    request.once('error', (error) => {
      clearTimeout(timer);
      reject(
        error instanceof ApplicationFailure
          ? error
          : new Error(`could not deliver to ${url.host}: ${(error as NodeJS.ErrnoException).code ?? error.message}`),
      );
    });
    request.once('response', (response: IncomingMessage) => {
      let snippet = '';
      answered = (bodyEnded) => {
        answered = () => undefined;
        clearTimeout(timer);
        resolve({
          statusCode: response.statusCode ?? 0,
          snippet: snippet.slice(0, SNIPPET_CHARS),
          retryAfter: response.headers['retry-after'],
        });
        // The rest of a body is not read: the answer is known, and the connection is not kept (agent: false).
        if (!bodyEnded) request.destroy();
      };
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        snippet += chunk;
        if (snippet.length >= SNIPPET_CHARS) answered?.(false);
      });
      response.once('end', () => answered?.(true));
      // Cut off after its status line: the answer stands, with what of its body came.
      response.once('error', () => answered?.(false));
    });
    request.end(body);
  });
}
