import { WorkflowIdReusePolicy, type Client, type WorkflowStartOptions } from '@temporalio/client';
import { withTemporalTimeout } from './timeout';

/** Long enough for a busy server, short enough that a client with Temporal down gets its 503 promptly. */
export const TEMPORAL_START_DEADLINE_MS = 5_000;

/** The start found a workflow under its id already: started by a concurrent call, or by an earlier one whose answer was lost. */
export function isWorkflowAlreadyStarted(error: unknown): boolean {
  return (error as Error | undefined)?.name === 'WorkflowExecutionAlreadyStartedError';
}

/**
 * Starts a workflow whose id may run once ever (REJECT_DUPLICATE), bounded in time. A start
 * repeated after a lost answer, or racing another, finds the first one and resolves all the same.
 */
export async function startWorkflowOnce(
  temporal: Client,
  workflowType: string,
  options: Omit<WorkflowStartOptions, 'workflowIdReusePolicy'>,
): Promise<void> {
  try {
    await withTemporalTimeout(
      temporal.connection,
      () =>
        temporal.workflow.start(workflowType, {
          ...options,
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        }),
      TEMPORAL_START_DEADLINE_MS,
    );
  } catch (error) {
    if (!isWorkflowAlreadyStarted(error)) throw error;
  }
}
