import type { Request, RequestHandler, Response } from 'express';
import { hashApiKey } from '../common/api-keys';
import { FAIRNESS_KEY_MAX_BYTES, type JobPriority } from '../common/priorities';
import { findActiveApiKey } from '../db/queries/api-keys';
import type { Fairness } from '../jobs/lifecycle';
import type { ApiDependencies } from './dependencies';
import { Problem } from './problem';

/** Who is calling: an API key, or nobody in particular when AUTH_MODE=off. */
export interface Caller {
  /** The jobs' owner: the API key id, or 'anonymous'. */
  owner: string;
  authenticated: boolean;
  /** The TCP peer's address (no proxy headers are trusted). */
  clientAddress: string;
  /** Whose share of the task queues its jobs take (Temporal fairness key): the key id, or the client address. */
  fairnessKey: string;
  /** The share's weight against other fairness keys with a backlog: the key's, or 1 when AUTH_MODE=off. */
  fairnessWeight: number;
  /** The most urgent priority its requests may ask for: the key's, or any when AUTH_MODE=off. */
  maxPriority: JobPriority;
}

export const ANONYMOUS = 'anonymous';

export function callerOf(res: Response): Caller {
  const caller = res.locals.caller as Caller | undefined;
  if (!caller) throw new Error('the caller middleware did not run for this route');
  return caller;
}

/** The caller's share of the task queues, as its jobs' workflows carry it. */
export function fairnessOf(caller: Caller): Fairness {
  return { key: caller.fairnessKey, weight: caller.fairnessWeight };
}

/** Whom the per-key limits count: the API key, or the client address when AUTH_MODE=off. */
export function limitSubject(caller: Caller): { key: string; name: string } {
  return caller.authenticated
    ? { key: `key:${caller.owner}`, name: `API key ${caller.owner}` }
    : { key: `address:${caller.clientAddress}`, name: `Client address ${caller.clientAddress}` };
}

function clientAddress(req: Request): string {
  return req.socket.remoteAddress ?? 'unknown';
}

function unauthorized(detail: string): Problem {
  return new Problem(401, 'Unauthorized', detail, {
    headers: { 'WWW-Authenticate': 'Bearer realm="media-generation"' },
  });
}

/**
 * AUTH_MODE=required: every /api route needs `Authorization: Bearer <key>` naming a key that is not
 * revoked (401 otherwise). AUTH_MODE=off: everyone is 'anonymous', as with the earlier service.
 */
export function authenticate({ config, db }: ApiDependencies): RequestHandler {
  return async (req, res, next) => {
    const address = clientAddress(req);
    if (config.AUTH_MODE === 'off') {
      // No keys, so no operator's limits: each client address gets its own equal share, and any priority.
      res.locals.caller = {
        owner: ANONYMOUS,
        authenticated: false,
        clientAddress: address,
        // Addresses are ASCII: the slice keeps a scoped IPv6 address within Temporal's limit.
        fairnessKey: `address:${address}`.slice(0, FAIRNESS_KEY_MAX_BYTES),
        fairnessWeight: 1,
        maxPriority: 'high',
      } satisfies Caller;
      return next();
    }
    const header = req.header('authorization');
    if (!header)
      throw unauthorized(
        'Send an API key as `Authorization: Bearer <key>`; `npm run apikey -- create --name NAME` makes one.',
      );
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw unauthorized('The Authorization header must read `Bearer <key>`.');
    const key = await findActiveApiKey(db, hashApiKey(match[1]!));
    if (!key) throw unauthorized('The API key is unknown or revoked.');
    res.locals.caller = {
      owner: key.id,
      authenticated: true,
      clientAddress: address,
      fairnessKey: key.id,
      fairnessWeight: key.fairnessWeight,
      maxPriority: key.maxPriority,
    } satisfies Caller;
    next();
  };
}

/** Only the owner sees a job when keys are required; otherwise every job is everyone's. */
export function canSee(caller: Caller, job: { owner: string }): boolean {
  return !caller.authenticated || job.owner === caller.owner;
}
