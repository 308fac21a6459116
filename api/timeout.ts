/**
 * Bounds a call to a dependency. The Temporal client retries an unreachable server for a long
 * time, longer than a client should wait for a 503, and an abort signal does not cut a connection
 * attempt short, so the race is settled here.
 */
export function withTimeout<T>(work: () => Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  return Promise.race([work(), timeout]).finally(() => clearTimeout(timer));
}
