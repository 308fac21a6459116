import { isPriorityAllowed, JOB_PRIORITIES, PRIORITY_KEYS, type JobPriority } from '../../common/priorities';
import { temporalPriorityOf } from '../../jobs/lifecycle';

describe('job priorities', () => {
  it('map to Temporal priority keys within the server default of 5 levels, normal on the default key (3)', () => {
    expect(JOB_PRIORITIES.map((priority) => PRIORITY_KEYS[priority])).toEqual([1, 3, 5]);
  });

  it.each<[JobPriority, JobPriority, boolean]>([
    ['high', 'high', true],
    ['normal', 'high', true],
    ['low', 'high', true],
    ['high', 'normal', false],
    ['normal', 'normal', true],
    ['low', 'normal', true],
    ['high', 'low', false],
    ['normal', 'low', false],
    ['low', 'low', true],
  ])('asking for %s with --max-priority %s is allowed: %s', (requested, allowed, expected) => {
    expect(isPriorityAllowed(requested, allowed)).toBe(expected);
  });

  it("give the workflow its priority key, and the submitter's fairness key and weight", () => {
    expect(temporalPriorityOf({ priority: 'low' }, { key: 'key_0123456789ab', weight: 2.5 })).toEqual({
      priorityKey: 5,
      fairnessKey: 'key_0123456789ab',
      fairnessWeight: 2.5,
    });
  });
});
