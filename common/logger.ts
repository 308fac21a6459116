import pino, { type Logger } from 'pino';

export function createLogger(name: string, level: string = 'info'): Logger {
  return pino({
    name,
    level,
    // Provider tokens travel in Authorization headers; keep them out of any logged object.
    redact: {
      paths: [
        '*.authorization',
        '*.Authorization',
        '*.headers.authorization',
        'token',
        '*.token',
        'REPLICATE_API_TOKEN',
      ],
      censor: '[redacted]',
    },
  });
}
