import {
  CancellationScope,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { MediaActivities } from '../activities/create-activities';
import { isTerminalStatus, type JobStatus, type TerminalStatus } from '../common/statuses';
import {
  cancelSignal,
  mediaJobStatusSearchAttribute,
  webhookMessageId,
  type RetryFailedOutputsInput,
} from '../common/temporal';
import type { WebhookEvent } from '../common/webhooks';
import { activityPolicies } from './policies';
import { statusOfARefusedEnd } from './refused-end';

/** Retries started before a retry announced its end ran without webhooks: they replay without them. */
const ANNOUNCE_RETRY = 'announce-retry';
/** Retries started before a retry kept MediaJobStatus ran without it: they replay without it. */
const LABEL_RETRY_STATUS = 'label-retry-status';
/** Retries started before a retry read its row first ran on whatever the row said: they replay without the read. */
const READ_THE_REOPENED_ROW = 'read-the-reopened-row';

const TERMINAL_EVENT: Record<TerminalStatus, WebhookEvent> = {
  COMPLETED: 'completed',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
};

/**
 * A FAILED job's failed outputs stored again from the prediction's recorded output URLs: no
 * prediction is created or awaited, so nothing is billed again. Then the job ends COMPLETED, or
 * FAILED once more with what failed this time, and its webhook says so (the retry's own messages).
 * Runs under the job's workflow id, so a cancel (API, signal, workflow cancel) reaches it as it
 * reaches the job's first run.
 */
export async function retryFailedOutputs(input: RetryFailedOutputsInput): Promise<void> {
  const policies = activityPolicies(input.policies);
  const jobRows = proxyLocalActivities<MediaActivities>(policies.database);
  const { persistOutput } = proxyActivities<MediaActivities>(policies.persist);
  const { deliverWebhook } = proxyActivities<MediaActivities>(policies.webhook);
  const { jobId } = input;
  const announces = patched(ANNOUNCE_RETRY);
  // The retry is the job's workflow's latest run, the one the Web UI and `temporal workflow list`
  // find by MediaJobStatus: it says PROCESSING, then how the job ended, as the first run did.
  const labels = patched(LABEL_RETRY_STATUS);
  const setStatus = (status: JobStatus) => {
    if (labels) upsertSearchAttributes([{ key: mediaJobStatusSearchAttribute, value: status }]);
  };
  // The API reopens the row, then starts this run: a cancel in between (or a DELETE) found no run
  // to signal and ended the job without it, and announced that. Such a run has nothing to do.
  if (patched(READ_THE_REOPENED_ROW)) {
    // Not cancellable: a cancel request already waiting ends the job below, as the work's cancel does.
    const status = await CancellationScope.nonCancellable(() => jobRows.startJob(jobId));
    if (isTerminalStatus(status)) {
      setStatus(status);
      return;
    }
  }
  setStatus('PROCESSING');

  let cancelReason: string | undefined;
  const work = new CancellationScope();
  setHandler(cancelSignal, (signal) => {
    cancelReason ??= signal?.reason?.trim() || 'Cancelled by an operator signal';
    work.cancel();
  });

  // As in the job's first run: each message is an activity with the webhook policy, and a cancel does not stop it.
  const deliveryScope = new CancellationScope({ cancellable: false });
  const deliveries: Promise<void>[] = [];
  const notify = (event: WebhookEvent, outputIndex?: number): void => {
    const webhook = input.webhook;
    if (!announces || !webhook?.events.includes(event)) return;
    const message = {
      jobId,
      messageId: webhookMessageId(jobId, event, outputIndex, input.retryCount),
      event,
      url: webhook.url,
      outputIndex,
    };
    deliveries.push(
      deliveryScope
        .run(() => deliverWebhook(message))
        .then(
          () => undefined,
          () => undefined,
        ),
    );
  };
  const finish = (status: TerminalStatus, errorMessage?: string) =>
    CancellationScope.nonCancellable(async () => {
      const ended = await jobRows.finishJob({ jobId, status, errorMessage, generationRetries: input.baseRetries });
      // Only once the row has it, as in the first run. An end refused was made by someone else (a
      // cancel that found no run to signal, as this run started): the row's status is the one shown.
      setStatus(ended ? status : await statusOfARefusedEnd(status, () => jobRows.startJob(jobId)));
      if (ended) notify(TERMINAL_EVENT[status]);
      await Promise.all(deliveries);
    });

  try {
    const outcomes = await work.run(() =>
      Promise.allSettled(
        input.outputs.map(async (output) => {
          const stored = await persistOutput({
            jobId,
            outputIndex: output.index,
            sourceUrl: output.sourceUrl,
            outputFormat: input.outputFormat,
            maxFailedAttempts: input.policies?.persistMaxAttempts,
          });
          notify('output', output.index);
          return stored;
        }),
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
