import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { problemSchema } from './schemas';

/** The pieces every route's OpenAPI registration shares; each route registers its own paths. */

export type OpenApiRegistry = OpenAPIRegistry;

export const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: problemSchema } },
});
export const json = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { 'application/json': { schema } },
});
export const jobIdParam = z.object({
  job_id: z.string().openapi({ description: 'The id returned by POST /api/v1/generate.' }),
});
/** Sent on every /api reply while RATE_LIMIT_PER_MINUTE is set, not only on a 429 (buildOpenApiDocument adds them to each). */
export const rateLimitHeaders = {
  'RateLimit-Limit': { description: 'RATE_LIMIT_PER_MINUTE, when set', schema: { type: 'integer' as const } },
  'RateLimit-Remaining': {
    description: 'Requests left under the policy nearest to refusing: the minute, or the one-second burst',
    schema: { type: 'integer' as const },
  },
  'RateLimit-Reset': {
    description: 'Seconds until that policy allows requests again',
    schema: { type: 'integer' as const },
  },
  'RateLimit-Policy': {
    description: 'Both policies: `LIMIT;w=60, BURST;w=1`',
    schema: { type: 'string' as const },
  },
};
const retryAfterHeader = { 'Retry-After': { description: 'Seconds', schema: { type: 'integer' as const } } };
/** A dependency (Postgres, Temporal) is down: `Retry-After` says when to try again. */
export const unavailable = (description: string) => ({ ...problem(description), headers: retryAfterHeader });
/** The answers every /api route can give besides its own. */
export const common = {
  401: {
    ...problem('AUTH_MODE=required and no valid `Authorization: Bearer <key>`'),
    headers: {
      'WWW-Authenticate': { description: '`Bearer realm="media-generation"`', schema: { type: 'string' as const } },
    },
  },
  429: {
    description:
      'Over RATE_LIMIT_PER_MINUTE (per key, or per client address when AUTH_MODE=off); `Retry-After` says when to retry.',
    headers: { ...retryAfterHeader, ...rateLimitHeaders },
    content: { 'application/problem+json': { schema: problemSchema } },
  },
};
/** The answers of a route that takes a JSON body, before its own checks; its 422 is its own. */
export const jsonBodyProblems = {
  400: problem('Malformed JSON'),
  413: problem('Body too large'),
  415: problem('Not JSON'),
};
/** `Prefer: wait[=N]`: the reply waits for the job to end, N seconds at most (60). */
export const preferWaitHeader = z.string().optional().openapi({
  description:
    '`wait` or `wait=N` (N ≤ 60): the reply waits until the job ends or N seconds pass, then carries the status reply; `Preference-Applied: wait=N` says so.',
});
export const preferenceAppliedHeader = {
  'Preference-Applied': {
    description: '`wait=N` when `Prefer: wait` was honoured',
    schema: { type: 'string' as const },
  },
};

/** A replay of an earlier request's Idempotency-Key (or regenerate) answers with what that one made. */
export const idempotentReplayedHeader = {
  'Idempotent-Replayed': { description: 'Always `true`', schema: { type: 'string' as const } },
};
/** `Location`: where what the request made (or found) is read. */
export const locationHeader = (description: string) => ({
  Location: { description, schema: { type: 'string' as const } },
});

export const security = [{ bearerAuth: [] }];
