import type { LogLevel, LogMetadata, Logger as SdkLogger } from '@temporalio/worker';
import type { Logger } from 'pino';

/** The Temporal SDK's logger interface around one function that takes every line. */
export function sdkLogger(log: (level: LogLevel, message: string, meta?: LogMetadata) => void): SdkLogger {
  return {
    log,
    trace: (message, meta) => log('TRACE', message, meta),
    debug: (message, meta) => log('DEBUG', message, meta),
    info: (message, meta) => log('INFO', message, meta),
    warn: (message, meta) => log('WARN', message, meta),
    error: (message, meta) => log('ERROR', message, meta),
  };
}

/** The SDK's messages through pino, their metadata as the line's fields. */
export function sdkLoggerOver(logger: Logger): SdkLogger {
  return sdkLogger((level, message, meta) => {
    const method = level.toLowerCase() as 'trace' | 'debug' | 'info' | 'warn' | 'error';
    logger[method]({ sdk: true, ...meta }, message);
  });
}
