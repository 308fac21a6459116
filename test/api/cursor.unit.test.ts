import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { decodeCursor, encodeCursor } from '../../api/cursor';

const encode = (text: string) => Buffer.from(text).toString('base64url');

describe('job list cursors', () => {
  it('decode to the job they were made from', () => {
    const job = { createdAt: new Date('2026-03-04T05:06:07.089Z'), id: randomUUID() };
    expect(decodeCursor(encodeCursor(job))).toEqual(job);
  });

  it('round-trip for any job a page can end on, and are URL-safe', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('1970-01-01T00:00:00.000Z'),
          max: new Date('9999-12-31T23:59:59.999Z'),
          noInvalidDate: true,
        }),
        fc.uuid(),
        (createdAt, id) => {
          const cursor = encodeCursor({ createdAt, id });
          expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
          expect(decodeCursor(cursor)).toEqual({ createdAt, id });
        },
      ),
    );
  });

  it.each([
    ['not base64 of a cursor', 'bogus'],
    ['empty', ''],
    ['no id', encode('2026-01-01T00:00:00.000Z')],
    ['an id that is not a job id', encode('2026-01-01T00:00:00.000Z|1; drop table jobs')],
    ['an upper-case id', encode(`2026-01-01T00:00:00.000Z|${randomUUID().toUpperCase()}`)],
    ['no date', encode(`|${randomUUID()}`)],
    ['an unreadable date', encode(`yesterday|${randomUUID()}`)],
    ['a date before 1970', encode(`1969-12-31T23:59:59.999Z|${randomUUID()}`)],
    ['a date past 9999', encode(`+010000-01-01T00:00:00.000Z|${randomUUID()}`)],
  ])('refuses a cursor with %s', (_label, cursor) => {
    expect(decodeCursor(cursor)).toBeUndefined();
  });
});
