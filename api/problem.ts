import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import type { z } from 'zod';
import { isDatabaseUnavailable } from '../db/availability';

export interface FieldError {
  field: string;
  message: string;
}

/** An RFC 9457 problem: the only shape errors leave the API in. */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly extras: { errors?: FieldError[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
  }

  /**
   * A 422 naming each bad field by its path: `a.b.0`, or with `indexes: 'brackets'` `jobs[3].prompt`
   * (the items of a batch; the other routes keep the dotted paths their clients know).
   */
  static validation(
    error: z.ZodError,
    where: 'body' | 'query' | 'path',
    options: { indexes?: 'dots' | 'brackets' } = {},
  ): Problem {
    const name = (path: PropertyKey[]) =>
      options.indexes === 'brackets'
        ? path.reduce<string>(
            (field, segment) =>
              typeof segment === 'number'
                ? `${field}[${segment}]`
                : field
                  ? `${field}.${String(segment)}`
                  : String(segment),
            '',
          )
        : path.join('.');
    const errors = error.issues.flatMap((issue): FieldError[] => {
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => ({ field: name([...issue.path, key]), message: 'is not a known field' }));
      }
      return [{ field: name(issue.path) || where, message: issue.message }];
    });
    const detail = errors.map((e) => `${e.field}: ${e.message}`).join('; ');
    return new Problem(422, 'Invalid request', `The request ${where} is invalid: ${detail}`, { errors });
  }

  static unavailable(dependency: string): Problem {
    return new Problem(
      503,
      'Service unavailable',
      `${dependency} is unavailable; nothing was created. Retry shortly.`,
      {
        headers: { 'Retry-After': '5' },
      },
    );
  }
}

export function sendProblem(res: Response, problem: Problem, instance?: string): void {
  for (const [name, value] of Object.entries(problem.extras.headers ?? {})) res.setHeader(name, value);
  res
    .status(problem.status)
    .type('application/problem+json')
    .send(
      JSON.stringify({
        type: 'about:blank',
        title: problem.title,
        status: problem.status,
        detail: problem.detail,
        ...(instance ? { instance } : {}),
        ...(problem.extras.errors ? { errors: problem.extras.errors } : {}),
      }),
    );
}

export const notFoundHandler: RequestHandler = (req, res) => {
  sendProblem(res, new Problem(404, 'Not found', `There is no route ${req.method} ${req.path}.`), req.originalUrl);
};

/** body-parser's error types, mapped to what the client did wrong. */
const BODY_ERRORS: Record<string, (error: { message: string; limit?: number }) => Problem> = {
  'entity.parse.failed': () => new Problem(400, 'Malformed JSON', 'The request body is not valid JSON.'),
  'entity.too.large': (error) =>
    new Problem(413, 'Body too large', `The request body is larger than the ${error.limit ?? ''}-byte limit.`),
  'charset.unsupported': (error) => new Problem(415, 'Unsupported charset', `${error.message}; send UTF-8 JSON.`),
  'encoding.unsupported': (error) => new Problem(415, 'Unsupported content encoding', `${error.message}.`),
  'request.aborted': () => new Problem(400, 'Request aborted', 'The client aborted the request body.'),
};

// Shared with the activities, which wait for the database rather than fail on it.
export { isDatabaseUnavailable };

/** The 4xx status of an error Express or body-parser raised for the client's own mistake (http-errors style). */
function clientErrorStatus(error: unknown): number | undefined {
  const { status, statusCode } = (error ?? {}) as { status?: unknown; statusCode?: unknown };
  const code = Number(status ?? statusCode);
  return Number.isInteger(code) && code >= 400 && code < 500 ? code : undefined;
}

function clientProblem(error: { name?: string; message?: string }, status: number): Problem {
  // Express cannot decode a path parameter: a malformed percent-escape, or bytes that are not UTF-8.
  if (error.name === 'URIError')
    return new Problem(400, 'Malformed path', 'The request path is not valid percent-encoded UTF-8.');
  return new Problem(
    status,
    STATUS_CODES[status] ?? 'Bad request',
    `The request could not be read (${error.message ?? status}).`,
  );
}

export function errorHandler(logger: { error: (obj: object, msg: string) => void }): ErrorRequestHandler {
  return (error, req, res, next) => {
    if (res.headersSent) return next(error);
    let problem: Problem;
    if (error instanceof Problem) problem = error;
    else if (typeof error?.type === 'string' && BODY_ERRORS[error.type]) problem = BODY_ERRORS[error.type]!(error);
    else if (clientErrorStatus(error)) problem = clientProblem(error, clientErrorStatus(error)!);
    else if (isDatabaseUnavailable(error)) problem = Problem.unavailable('The database');
    else {
      logger.error({ err: error, path: req.path }, 'unhandled error');
      problem = new Problem(500, 'Internal error', 'The server failed to handle the request; it has been logged.');
    }
    sendProblem(res, problem, req.originalUrl);
  };
}
