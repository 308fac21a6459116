import type { Server } from 'node:http';

/**
 * The API's part of a shutdown (a deploy): it takes no new connection, ends what waits (`Prefer: wait`
 * answers with the job's current state, event streams end and their clients reconnect elsewhere),
 * and resolves once every request in flight was answered. Each keep-alive connection is closed as
 * soon as its last reply is written, so no client sends a request to a process that is leaving.
 */
export function drainServer(server: Server, stopping: AbortController): Promise<void> {
  stopping.abort();
  const closing = new Promise<void>((resolve) => server.close(() => resolve()));
  const closeIdle = setInterval(() => server.closeIdleConnections(), 100);
  closeIdle.unref();
  server.closeIdleConnections();
  return closing.finally(() => clearInterval(closeIdle));
}
