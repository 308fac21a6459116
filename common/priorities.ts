/**
 * A job's priority, as clients name it, and the Temporal priority key it runs with. Temporal
 * dispatches a task queue's backlog lowest key first (1-5 with the server's `matching.priorityLevels`
 * of 5); `normal` is the key a task without one gets (3), so work started without a priority (the
 * reconciler, a job's clean-up, webhook redeliveries) runs beside `normal` jobs.
 */
export const JOB_PRIORITIES = ['high', 'normal', 'low'] as const;
export type JobPriority = (typeof JOB_PRIORITIES)[number];

export const DEFAULT_JOB_PRIORITY: JobPriority = 'normal';

/** Keys 2 and 4 stay free: a later level can sit between these without renumbering the others. */
export const PRIORITY_KEYS: Record<JobPriority, number> = { high: 1, normal: 3, low: 5 };

/** Whether `requested` is at most as urgent as `allowed` (a key's --max-priority). */
export function isPriorityAllowed(requested: JobPriority, allowed: JobPriority): boolean {
  return PRIORITY_KEYS[requested] >= PRIORITY_KEYS[allowed];
}

/** Temporal clamps weights to this range; the operator's CLI refuses what lies outside it. */
export const FAIRNESS_WEIGHT_RANGE = { min: 0.001, max: 1000 } as const;
/** Temporal's limit on a fairness key, in bytes. */
export const FAIRNESS_KEY_MAX_BYTES = 64;
