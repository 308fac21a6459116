import { patched } from '@temporalio/workflow';
import { isTerminalStatus, type JobStatus, type TerminalStatus } from '../common/statuses';

/** Runs recorded before a refused end showed the row's status showed the status they asked for. */
const STATUS_OF_A_REFUSED_END = 'status-of-a-refused-end';

/**
 * The status a job's run shows (MediaJobStatus) when the row refused the end it asked for: the job
 * was ended without this run (the reconciler, or a cancel that found no run to signal), and the
 * row's own status is shown, read by `readRowStatus` (startJob: it only reads an ended row). Called
 * only for a refused end, so a run whose end is taken carries no marker.
 */
export async function statusOfARefusedEnd(
  asked: TerminalStatus,
  readRowStatus: () => Promise<JobStatus>,
): Promise<JobStatus> {
  if (!patched(STATUS_OF_A_REFUSED_END)) return asked;
  const onRecord = await readRowStatus();
  return isTerminalStatus(onRecord) ? onRecord : asked;
}
