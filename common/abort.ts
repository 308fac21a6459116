/**
 * Aborts `controller` when `signal` fires, through a listener that the returned function takes off
 * again. For a long-lived signal (the process shutting down) followed by short-lived work (one
 * request): AbortSignal.any keeps an entry on its sources for as long as they live, one per call.
 */
export function abortWhen(signal: AbortSignal | undefined, controller: AbortController): () => void {
  if (!signal) return () => undefined;
  if (signal.aborted) {
    controller.abort();
    return () => undefined;
  }
  const abort = () => controller.abort();
  signal.addEventListener('abort', abort, { once: true });
  return () => signal.removeEventListener('abort', abort);
}
