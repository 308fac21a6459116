import {
  CancellationScope,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
} from '@temporalio/workflow';
import type { MediaActivities } from '../activities/create-activities';
import { cancelSignal, type RetryFailedOutputsInput } from '../common/temporal';
import { activityPolicies } from './policies';

/**
 * A FAILED job's failed outputs stored again from the prediction's recorded output URLs: no
 * prediction is created or awaited, so nothing is billed again. Then the job ends COMPLETED, or
 * FAILED once more with what failed this time. Runs under the job's workflow id, so a cancel
 * (API, signal, workflow cancel) reaches it as it reaches the job's first run.
 */
export async function retryFailedOutputs(input: RetryFailedOutputsInput): Promise<void> {
  const policies = activityPolicies(input.policies);
  const jobRows = proxyLocalActivities<MediaActivities>(policies.database);
  const { persistOutput } = proxyActivities<MediaActivities>(policies.persist);
  const { jobId } = input;

  let cancelReason: string | undefined;
  const work = new CancellationScope();
  setHandler(cancelSignal, (signal) => {
    cancelReason ??= signal?.reason?.trim() || 'Cancelled by an operator signal';
    work.cancel();
  });
  const finish = (status: 'COMPLETED' | 'FAILED' | 'CANCELLED', errorMessage?: string) =>
    CancellationScope.nonCancellable(() =>
      jobRows.finishJob({ jobId, status, errorMessage, generationRetries: input.baseRetries }),
    );

  try {
    const outcomes = await work.run(() =>
      Promise.allSettled(
        input.outputs.map((output) =>
          persistOutput({
            jobId,
            outputIndex: output.index,
            sourceUrl: output.sourceUrl,
            outputFormat: input.outputFormat,
            maxFailedAttempts: input.policies?.persistMaxAttempts,
          }),
        ),
      ),
    );
    if (work.consideredCancelled) throw new Error('cancelled');
    const failures: string[] = [];
    await CancellationScope.nonCancellable(async () => {
      for (const [position, outcome] of outcomes.entries()) {
        if (outcome.status === 'fulfilled') continue;
        const index = input.outputs[position]!.index;
        const message = failureMessage(outcome.reason);
        failures.push(`output ${index}: ${message}`);
        await jobRows.recordOutputFailure({ jobId, outputIndex: index, errorMessage: message });
      }
    });
    if (failures.length === 0) await finish('COMPLETED');
    else await finish('FAILED', `${failures.length} of ${input.numOutputs} outputs failed: ${failures.join('; ')}`);
  } catch (error) {
    if (!isCancellation(error) && !work.consideredCancelled) throw error;
    await finish('CANCELLED', cancelReason ?? 'Cancelled by an operator (workflow cancellation)');
  }
}

/** The most specific message in a failure chain: the source's or storage's own words. */
function failureMessage(error: unknown): string {
  let current: unknown = error;
  while (current instanceof Error && 'cause' in current && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}
