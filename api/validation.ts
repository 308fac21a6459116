import type { RequestHandler } from 'express';
import type { z } from 'zod';
import { Problem } from './problem';

export function parseOrThrow<T extends z.ZodType>(
  schema: T,
  value: unknown,
  where: 'body' | 'query' | 'path',
  options?: Parameters<typeof Problem.validation>[2],
): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw Problem.validation(result.error, where, options);
  return result.data;
}

function hasBody(req: Parameters<RequestHandler>[0]): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** 415 unless the body is JSON; `optional` lets a request without any body through. */
export function requireJsonBody({ optional = false } = {}): RequestHandler {
  return (req, _res, next) => {
    if (optional && !hasBody(req)) return next();
    if (!req.is('application/json')) {
      const got = req.headers['content-type'] ? `'${req.headers['content-type']}'` : 'no content type';
      return next(new Problem(415, 'Unsupported media type', `Send the body as application/json (got ${got}).`));
    }
    next();
  };
}
