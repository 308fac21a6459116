import type { ConnectionLike } from '@temporalio/client';
import { abortWhen } from './abort';

/**
 * Bounds a call to a dependency. The Temporal client retries an unreachable server for a long
 * time, longer than a client should wait for a 503, and an abort signal does not cut a connection
 * attempt short, so the race is settled here; `onTimeout` lets the caller stop the abandoned call.
 */
export function withTimeout<T>(
  work: () => Promise<T>,
  timeoutMs: number,
  what: string,
  onTimeout?: () => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new Error(`${what} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  return Promise.race([work(), timeout]).finally(() => clearTimeout(timer));
}

/**
 * A Temporal call bounded in time; past the limit it is also aborted, so no retry outlives the
 * request. `stopping` (the process shutting down) aborts it too: a long wait ends at once.
 */
export function withTemporalTimeout<T>(
  connection: ConnectionLike,
  work: () => Promise<T>,
  timeoutMs: number,
  stopping?: AbortSignal,
): Promise<T> {
  const controller = new AbortController();
  const detach = abortWhen(stopping, controller);
  return withTimeout(
    () => connection.withAbortSignal(controller.signal, work),
    timeoutMs,
    'Temporal',
    () => controller.abort(),
  ).finally(detach);
}
