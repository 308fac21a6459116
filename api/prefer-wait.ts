import type { Request, Response } from 'express';
import { abortWhen } from '../common/abort';

/** The longest a request may wait for its job (Replicate's limit too). */
export const MAX_WAIT_SECONDS = 60;

/**
 * `Prefer: wait` (RFC 7240; as Replicate's API takes it): `wait` alone asks for the longest wait,
 * `wait=N` for N seconds, capped at MAX_WAIT_SECONDS. Undefined when the request does not ask to wait.
 */
export function preferredWaitSeconds(req: Request): number | undefined {
  const prefer = req.header('prefer');
  if (!prefer) return undefined;
  for (const preference of prefer.split(',')) {
    const match = /^\s*wait(?:\s*=\s*"?(\d{1,6})"?)?\s*(?:;.*)?$/i.exec(preference);
    if (!match) continue;
    const asked = match[1] === undefined ? MAX_WAIT_SECONDS : Number(match[1]);
    return Math.min(Math.max(asked, 0), MAX_WAIT_SECONDS);
  }
  return undefined;
}

/**
 * When a wait stops short: the client hung up (`res` is then destroyed: nothing is answered), or the
 * process began to shut down (the wait answers at once, rather than be cut off by the exit).
 */
export function waitEndSignal(res: Response, stopping: AbortSignal | undefined): AbortSignal {
  const controller = new AbortController();
  // The response closes before it was written only when the connection went away; `close` is
  // emitted once, so a client gone before the wait began (during the submit) is seen here.
  if (res.destroyed) {
    if (!res.writableEnded) controller.abort();
    return controller.signal;
  }
  // Off the process's signal again once the response closes, answered or not.
  const detach = abortWhen(stopping, controller);
  res.once('close', () => {
    detach();
    if (!res.writableEnded) controller.abort();
  });
  return controller.signal;
}
