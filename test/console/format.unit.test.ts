import { between, formatAge, formatBytes, formatDuration } from '../../console/format';

describe("the console's formatting", () => {
  it('sizes in binary units, with the bytes below one KiB', () => {
    expect([0, 1023, 1024, 2746, 5 * 1024 ** 2, 300 * 1024 ** 3].map(formatBytes)).toEqual([
      '0 B',
      '1023 B',
      '1.0 KiB',
      '2.7 KiB',
      '5.0 MiB',
      '300 GiB',
    ]);
    expect(formatBytes(null)).toBe('—');
  });

  it('durations from milliseconds to hours', () => {
    expect([485, 1_060, 12_500, 125_000, 3_900_000].map(formatDuration)).toEqual([
      '485 ms',
      '1.06 s',
      '12.5 s',
      '2 min 5 s',
      '1 h 5 min',
    ]);
    expect(formatDuration(null)).toBe('—');
  });

  it('the time between two timestamps, when both are known', () => {
    expect(between('2026-11-25T14:30:06.723Z', '2026-11-25T14:30:07.571Z')).toBe(848);
    expect(between('2026-11-25T14:30:06.723Z', null)).toBeNull();
  });

  it('ages relative to now, then the date', () => {
    const now = Date.parse('2026-11-25T15:00:00Z');
    expect(formatAge('2026-11-25T14:59:50Z', now)).toBe('just now');
    expect(formatAge('2026-11-25T14:50:00Z', now)).toBe('10 min ago');
    expect(formatAge('2026-11-25T12:00:00Z', now)).toBe('3 h ago');
    expect(formatAge('2026-11-20T12:00:00Z', now)).toBe('2026-11-20');
  });
});
