import { ApplicationFailure } from '@temporalio/activity';
import { isRetryableFailure, pollRetryDelayMs, retryAfterSeconds, storableText } from '../../activities/helpers';

describe('retryAfterSeconds', () => {
  it.each([
    ['7', 7],
    [' 3 ', 3],
    ['0', 1],
    ['120', 120],
  ])('reads %j as %d seconds (at least one)', (value, seconds) => {
    expect(retryAfterSeconds(value)).toBe(seconds);
  });

  it('reads an HTTP date as the seconds until then, and a past date as one second', () => {
    const inThirtySeconds = new Date(Date.now() + 30_000).toUTCString();
    expect(retryAfterSeconds(inThirtySeconds)).toBeGreaterThanOrEqual(29);
    expect(retryAfterSeconds(inThirtySeconds)).toBeLessThanOrEqual(30);
    expect(retryAfterSeconds('Wed, 21 Oct 2015 07:28:00 GMT')).toBe(1);
  });

  it.each([undefined, null, '', 'soon', 'in a minute'])('has no answer for %j', (value) => {
    expect(retryAfterSeconds(value)).toBeUndefined();
  });
});

describe('pollRetryDelayMs', () => {
  const trouble = new Error('503 from the provider');

  it("waits as long as the provider's Retry-After asks", () => {
    const limited = ApplicationFailure.create({ message: '429', type: 'ProviderRateLimited', nextRetryDelay: '3s' });
    expect(pollRetryDelayMs(limited, 1, 100)).toBe(3_000);
  });

  it('backs off from the poll interval, doubling per trouble in a row', () => {
    expect([1, 2, 3, 4].map((troubles) => pollRetryDelayMs(trouble, troubles, 100))).toEqual([100, 200, 400, 800]);
  });

  it('never waits longer than 30 s between polls', () => {
    expect(pollRetryDelayMs(trouble, 20, 100)).toBe(30_000);
    const patient = ApplicationFailure.create({ message: '429', nextRetryDelay: '5m' });
    expect(pollRetryDelayMs(patient, 1, 100)).toBe(30_000);
  });
});

describe('storableText', () => {
  it('replaces NUL, which Postgres cannot store, and keeps everything else', () => {
    expect(storableText('bad\u0000input\u0000')).toBe('bad\ufffdinput\ufffd');
    expect(storableText('a prompt — with ünïcode 🎨')).toBe('a prompt — with ünïcode 🎨');
  });
});

describe('isRetryableFailure', () => {
  it('retries anything but a failure marked non-retryable', () => {
    expect(isRetryableFailure(ApplicationFailure.create({ message: 'expired', nonRetryable: true }))).toBe(false);
    expect(isRetryableFailure(ApplicationFailure.retryable('busy'))).toBe(true);
    expect(isRetryableFailure(new Error('connection reset'))).toBe(true);
  });
});
