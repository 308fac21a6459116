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

/**
 * 415 unless the body is JSON. A request without any body has no type to refuse: it is read as `{}`,
 * which the routes whose body is optional take, and the others' schemas answer with the fields it lacks (422).
 */
export function requireJsonBody(): RequestHandler {
  return (req, _res, next) => {
    if (!hasBody(req)) {
      // Express 5 parses no body at all when a request says nothing of its length (`curl -X POST`).
      req.body ??= {};
      return next();
    }
    if (!req.is('application/json')) {
      const got = req.headers['content-type'] ? `'${req.headers['content-type']}'` : 'no content type';
      return next(new Problem(415, 'Unsupported media type', `Send the body as application/json (got ${got}).`));
    }
    next();
  };
}
