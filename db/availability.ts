const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  '57P01',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08006',
  // too_many_connections: the server is full (max_connections), which passes as its clients let go.
  '53300',
]);

/** Whether an error means the database could not be reached (down, restarting, cut off), rather than a bug. */
export function isDatabaseUnavailable(error: unknown): boolean {
  return databaseUnavailableReason(error) !== undefined;
}

/** The error of its chain that says the database could not be reached, in its own words; undefined for any other error. */
export function databaseUnavailableReason(error: unknown): string | undefined {
  for (
    let current = error as { code?: string; message?: string; cause?: unknown } | undefined;
    current;
    current = current.cause as typeof current
  ) {
    if (current.code && CONNECTION_ERROR_CODES.has(current.code)) return current.message ?? current.code;
    if (
      /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connect ECONNREFUSED/i.test(
        current.message ?? '',
      )
    )
      return current.message;
  }
  return undefined;
}
