import { ApplicationFailure, Context } from '@temporalio/activity';
import { msToNumber } from '@temporalio/common/lib/time';
import type { Logger } from 'pino';
import { isDatabaseUnavailable } from '../db/availability';

/** Helpers that more than one activity uses. */

/**
 * A database step of a long activity, waiting through a database outage (heartbeating) instead
 * of failing the attempt: the activity's attempts are for its source and its upload, and a
 * failed attempt would redo them (or, after a create, bill a second prediction).
 */
export async function waitOutDatabaseOutage<T>(step: () => Promise<T>, logger: Logger): Promise<T> {
  for (let delayMs = 250; ; delayMs = Math.min(delayMs * 2, 5_000)) {
    try {
      return await step();
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      logger.warn({ err: error, retryInMs: delayMs }, 'the database is unreachable; waiting for it');
      await Context.current().sleep(delayMs);
    }
  }
}

/**
 * A message Postgres can store: a NUL (from a provider's error, or an operator's cancel signal)
 * would make the write fail on every retry, and the job could never end.
 */
export function storableText(text: string): string {
  return text.replaceAll('\u0000', '\ufffd');
}

/**
 * Heartbeats twice a second while `work` runs (the SDK sends at most one a second), so that an
 * activity waiting on a slow call is not taken for a dead worker; a dead worker stops heartbeating
 * and is noticed after the timeout, which counts from the attempt's start. Work done within half a
 * second sends no heartbeat at all: each one is a write on the Temporal server.
 */
export async function heartbeatWhile<T>(work: () => Promise<T>, details: () => unknown = () => undefined): Promise<T> {
  const context = Context.current();
  // A local activity has no heartbeats: its workflow task's own keep-alive tells a live worker.
  if (context.info.isLocal) return work();
  const timer = setInterval(() => context.heartbeat(details()), 500);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** Whether a retry may help: anything but a failure marked non-retryable (invalid input, expired output…). */
export function isRetryableFailure(error: unknown): boolean {
  return !(error instanceof ApplicationFailure && error.nonRetryable);
}

/** The provider's Retry-After when it gave one, else a backoff from the poll interval up to 30 s. */
export function pollRetryDelayMs(error: unknown, troubles: number, pollIntervalMs: number): number {
  const asked =
    error instanceof ApplicationFailure && error.nextRetryDelay != null ? msToNumber(error.nextRetryDelay) : undefined;
  return Math.min(asked ?? pollIntervalMs * 2 ** (troubles - 1), 30_000);
}

/** Retry-After as seconds (a number or an HTTP date), or undefined when absent or unreadable. */
export function retryAfterSeconds(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  const seconds = /^\d+$/.test(value.trim()) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
  return Number.isFinite(seconds) ? Math.max(1, Math.ceil(seconds)) : undefined;
}
