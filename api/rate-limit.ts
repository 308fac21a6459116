import type { RequestHandler } from 'express';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { poolOf, type Database } from '../db/client';
import { callerOf, limitSubject } from './auth';
import type { ApiDependencies } from './dependencies';
import { Problem } from './problem';

/** The table of rate-limiter-flexible's Postgres store (db/schema.ts `rateLimits`, made by the migrations). */
const RATE_LIMIT_TABLE = 'rate_limits';

/** A second may carry this many seconds' worth of the per-minute rate... */
const BURST_SECONDS = 5;
/** ...and never fewer requests than this (a client's submit, status poll and stream in a row). */
const MIN_BURST = 5;

/** Requests one key may send within one second: RATE_LIMIT_PER_MINUTE / 60 × 5, at least 5, at most the limit. */
export function burstAllowance(limitPerMinute: number): number {
  return Math.min(limitPerMinute, Math.max(MIN_BURST, Math.ceil((limitPerMinute / 60) * BURST_SECONDS)));
}

/**
 * A fixed-window counter of rate-limiter-flexible's RateLimiterPostgres: `points` per `seconds`,
 * the window starting at a key's first request. One row per key in `rate_limits`, updated by one
 * atomic upsert per request, so every API process shares it.
 */
function postgresLimiter(db: Database, keyPrefix: string, points: number, seconds: number): RateLimiterPostgres {
  return new RateLimiterPostgres({
    storeClient: poolOf(db),
    storeType: 'pool',
    tableName: RATE_LIMIT_TABLE,
    // The migrations made the table; the library must not try (it would CREATE TABLE at start).
    tableCreated: true,
    keyPrefix,
    points,
    duration: seconds,
  });
}

/** A request counted: allowed, or refused (the store's own errors, e.g. the database down, are thrown). */
async function consume(
  limiter: RateLimiterPostgres,
  key: string,
): Promise<{ allowed: boolean; state: RateLimiterRes }> {
  try {
    return { allowed: true, state: await limiter.consume(key) };
  } catch (error) {
    if (error instanceof RateLimiterRes) return { allowed: false, state: error };
    throw error;
  }
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/**
 * RATE_LIMIT_PER_MINUTE per API key (per client address when AUTH_MODE=off), with
 * rate-limiter-flexible's RateLimiterPostgres in the service's own Postgres, so the limit holds
 * across API processes. Two limiters, asked in turn:
 *
 * - a burst guard of burstAllowance(limit) requests per second (5 at 60/min, 10 at 120/min);
 * - the minute: RATE_LIMIT_PER_MINUTE requests per 60 s.
 *
 * A minute counter alone is a fixed window: a client may spend the whole minute's budget in one
 * second, and twice that across a window's end (135 requests in a second got through a limit of
 * 120). The guard bounds any one-second span to twice its allowance (two adjacent windows) and
 * the minute still bounds the total. A request the guard refuses is not counted against the
 * minute, so a client that backs off for a second carries on. (BurstyRateLimiter does the
 * opposite: it lets a burst through *beyond* its main limiter, so it would add to the minute's
 * number rather than bound how fast it is spent.)
 *
 * Every answer carries RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset of the policy
 * nearest to refusing, and RateLimit-Policy naming both; a 429 adds Retry-After.
 */
export function rateLimit({ config, db }: ApiDependencies): RequestHandler {
  const limit = config.RATE_LIMIT_PER_MINUTE;
  if (limit === undefined) return (_req, _res, next) => next();
  const burst = burstAllowance(limit);
  const perSecond = postgresLimiter(db, 'api-burst', burst, 1);
  const perMinute = postgresLimiter(db, 'api-minute', limit, 60);
  return async (_req, res, next) => {
    const subject = limitSubject(callerOf(res)).key;
    const second = await consume(perSecond, subject);
    const minute = second.allowed ? await consume(perMinute, subject) : undefined;
    // The policy nearest to refusing: the second's when its remainder is the smaller one.
    const binding = minute && minute.state.remainingPoints <= second.state.remainingPoints ? minute : second;
    const reset = seconds(binding.state.msBeforeNext);
    res.setHeader('RateLimit-Limit', String(limit));
    res.setHeader('RateLimit-Remaining', String(second.allowed && minute?.allowed ? binding.state.remainingPoints : 0));
    res.setHeader('RateLimit-Reset', String(reset));
    res.setHeader('RateLimit-Policy', `${limit};w=60, ${burst};w=1`);
    if (!second.allowed) {
      const retry = seconds(second.state.msBeforeNext);
      throw new Problem(
        429,
        'Too many requests',
        `More than ${burst} requests in a second, the burst allowed by RATE_LIMIT_PER_MINUTE=${limit}; retry in ${retry} s.`,
        { headers: { 'Retry-After': String(retry) } },
      );
    }
    if (!minute!.allowed) {
      const retry = seconds(minute!.state.msBeforeNext);
      throw new Problem(
        429,
        'Too many requests',
        `More than ${limit} requests in a minute (RATE_LIMIT_PER_MINUTE); retry in ${retry} s.`,
        {
          headers: { 'Retry-After': String(retry) },
        },
      );
    }
    next();
  };
}

/** One redelivery limiter per database handle and limit (an API process has one of each). */
const redeliveryLimiters = new WeakMap<Database, Map<number, RateLimiterPostgres>>();

/**
 * WEBHOOK_REDELIVERIES_PER_MINUTE per job (POST .../webhook-deliveries/{id}/redeliver), in the same
 * Postgres store, so it holds across API processes: throws the 429 past it.
 */
export async function limitRedeliveries(
  { config, db }: Pick<ApiDependencies, 'config' | 'db'>,
  jobId: string,
): Promise<void> {
  const points = config.WEBHOOK_REDELIVERIES_PER_MINUTE;
  let ofDatabase = redeliveryLimiters.get(db);
  if (!ofDatabase) redeliveryLimiters.set(db, (ofDatabase = new Map()));
  let limiter = ofDatabase.get(points);
  if (!limiter) ofDatabase.set(points, (limiter = postgresLimiter(db, 'webhook-redeliveries', points, 60)));
  const counted = await consume(limiter, jobId);
  if (counted.allowed) return;
  const retry = seconds(counted.state.msBeforeNext);
  throw new Problem(
    429,
    'Too many redeliveries',
    `Job '${jobId}' already had ${points} redeliveries of its webhooks in this minute, the most allowed (WEBHOOK_REDELIVERIES_PER_MINUTE=${points}); retry in ${retry} s.`,
    { headers: { 'Retry-After': String(retry) } },
  );
}
