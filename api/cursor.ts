/** GET /api/v1/jobs pages: a cursor is the last job of a page, opaque to clients. */
export function encodeCursor(job: { createdAt: Date; id: string }): string {
  return Buffer.from(`${job.createdAt.toISOString()}|${job.id}`).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: Date; id: string } | undefined {
  const [createdAt, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const date = new Date(createdAt ?? '');
  // Only what encodeCursor writes: a job id (a UUID) and a date Postgres can compare with.
  const year = date.getUTCFullYear();
  if (
    !id ||
    Number.isNaN(date.getTime()) ||
    year < 1970 ||
    year > 9999 ||
    !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)
  )
    return undefined;
  return { createdAt: date, id };
}
