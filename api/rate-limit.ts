import type { RequestHandler } from 'express';
import { countRequest, pruneRateLimitWindows } from '../db/queries/rate-limits';
import { callerOf } from './auth';
import type { ApiDependencies } from './dependencies';
import { Problem } from './problem';

/**
 * RATE_LIMIT_PER_MINUTE per API key (per client address when AUTH_MODE=off), counted in fixed
 * one-minute windows in Postgres, so the limit holds across API processes. Every answer carries
 * RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset; a 429 adds Retry-After.
 */
export function rateLimit({ config, db, logger }: ApiDependencies): RequestHandler {
  const limit = config.RATE_LIMIT_PER_MINUTE;
  return async (_req, res, next) => {
    if (limit === undefined) return next();
    const caller = callerOf(res);
    const subject = caller.authenticated ? `key:${caller.owner}` : `address:${caller.clientAddress}`;
    const window = await countRequest(db, subject);
    if (Math.random() < 0.01) void pruneRateLimitWindows(db).catch((error: unknown) => logger.warn({ err: error }, 'could not prune rate-limit windows'));
    res.setHeader('RateLimit-Limit', String(limit));
    res.setHeader('RateLimit-Remaining', String(Math.max(0, limit - window.count)));
    res.setHeader('RateLimit-Reset', String(window.resetSeconds));
    res.setHeader('RateLimit-Policy', `${limit};w=60`);
    if (window.count > limit) {
      throw new Problem(
        429,
        'Too many requests',
        `More than ${limit} requests in a minute (RATE_LIMIT_PER_MINUTE); retry in ${window.resetSeconds} s.`,
        { headers: { 'Retry-After': String(window.resetSeconds) } },
      );
    }
    next();
  };
}
