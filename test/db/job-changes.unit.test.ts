import { parseAnnouncement, type JobChange } from '../../db/job-changes';
import { announcedEvents } from '../../api/routes/events';

const JOB = '0b6f2f7e-4c55-4e5e-9c1e-0d8e1d9f1a2b';
const AT = Date.UTC(2026, 11, 1, 12, 0, 0, 123);

describe('announcements of job_events', () => {
  it('read each form the trigger has written', () => {
    expect(parseAnnouncement(`${JOB}:7`)).toEqual({
      jobId: JOB,
      change: { seq: 7, type: undefined, status: undefined },
    });
    expect(parseAnnouncement(`${JOB}:7:status:COMPLETED`)).toEqual({
      jobId: JOB,
      change: { seq: 7, type: 'status', status: 'COMPLETED' },
    });
    // The event's JSON has colons of its own: only the first four separate fields.
    const data = { status: 'FAILED', error_message: 'provider: 503: try later' };
    expect(parseAnnouncement(`${JOB}:8:status:FAILED:${JSON.stringify({ at: AT, data })}`)).toEqual({
      jobId: JOB,
      change: { seq: 8, type: 'status', status: 'FAILED', event: { createdAt: new Date(AT), data } },
    });
    expect(parseAnnouncement(`${JOB}:9:output::${JSON.stringify({ at: AT, data: { index: 0 } })}`)).toEqual({
      jobId: JOB,
      change: { seq: 9, type: 'output', status: undefined, event: { createdAt: new Date(AT), data: { index: 0 } } },
    });
  });

  it('keep the announcement but not an event they cannot read, and drop what is no announcement', () => {
    expect(parseAnnouncement(`${JOB}:8:status:FAILED:{not json`)).toEqual({
      jobId: JOB,
      change: { seq: 8, type: 'status', status: 'FAILED' },
    });
    expect(parseAnnouncement(`${JOB}:8:status:FAILED:{"data":{}}`)?.change.event).toBeUndefined();
    expect(parseAnnouncement('')).toBeUndefined();
    expect(parseAnnouncement(JOB)).toBeUndefined();
    expect(parseAnnouncement(`${JOB}:seven`)).toBeUndefined();
  });
});

describe("a stream's events from the announcements it heard", () => {
  const heard = (seq: number, withEvent = true): JobChange => ({
    seq,
    type: seq === 5 ? 'status' : 'output',
    status: seq === 5 ? 'COMPLETED' : undefined,
    ...(withEvent ? { event: { createdAt: new Date(AT + seq), data: { seq } } } : {}),
  });

  it('are the events after the last one sent, in order, skipping those sent already', () => {
    expect(announcedEvents(JOB, [heard(4), heard(2), heard(3), heard(5)], 2)).toEqual(
      [3, 4, 5].map((seq) => ({
        jobId: JOB,
        seq,
        type: seq === 5 ? 'status' : 'output',
        data: { seq },
        createdAt: new Date(AT + seq),
      })),
    );
    expect(announcedEvents(JOB, [heard(2)], 2)).toEqual([]);
    // One sent already needs no data: it is skipped, not read again.
    expect(announcedEvents(JOB, [heard(2, false), heard(3)], 2)).toEqual([
      { jobId: JOB, seq: 3, type: 'output', data: { seq: 3 }, createdAt: new Date(AT + 3) },
    ]);
    expect(announcedEvents(JOB, [], 2)).toEqual([]);
  });

  it('are read from the table instead after a gap, a reconnect, or an event not carried', () => {
    expect(announcedEvents(JOB, [heard(3), heard(5)], 2)).toBeUndefined();
    expect(announcedEvents(JOB, [heard(4)], 2)).toBeUndefined();
    expect(announcedEvents(JOB, [heard(3), undefined], 2)).toBeUndefined();
    expect(announcedEvents(JOB, [heard(3), heard(4, false)], 2)).toBeUndefined();
    expect(announcedEvents(JOB, [{ seq: 3, type: undefined, event: heard(3).event }], 2)).toBeUndefined();
  });
});
