import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  CreatedPrediction,
  MediaActivities,
  PersistOutputInput,
  PersistOutputResult,
} from '../activities/create-activities';
import { NonRetryable } from '../common/errors';
import { isTerminalStatus, type JobStatus, type TerminalStatus } from '../common/statuses';
import {
  cancelSignal,
  DEFAULT_PERSIST_LOCALLY_MAX_BYTES,
  mediaJobStatusSearchAttribute,
  progressQuery,
  webhookMessageId,
  type JobProgress,
  type MediaGenerationInput,
  type OutputProgress,
} from '../common/temporal';
import type { WebhookEvent } from '../common/webhooks';
import { activityPolicies } from './policies';
import { statusOfARefusedEnd } from './refused-end';

/** Jobs that started before a failure cancelled a still-running prediction replay without it. */
const CANCEL_PREDICTION_ON_FAILURE = 'cancel-prediction-on-failure';
/** Jobs whose prediction was asked for once on create, and had its outputs, run no awaitPrediction. */
const OUTPUTS_WITH_THE_PREDICTION = 'outputs-with-the-prediction';
/** Jobs that store small outputs in a local activity first; jobs recorded before go straight to persistOutput. */
const SMALL_OUTPUTS_LOCALLY = 'small-outputs-locally';
/** Jobs that start and create their prediction in one local activity; jobs recorded before run startJob first. */
const START_WITH_THE_PREDICTION = 'start-with-the-prediction';
/**
 * Jobs whose end, once their work is over, outlasts a workflow cancel request that reaches it; jobs
 * recorded before ended CANCELLED in Temporal whatever the row said. Marked only when such a cancel
 * reaches the end, so a job that is not cancelled there carries no marker.
 */
const END_OUTLASTS_CANCEL = 'end-outlasts-cancel';

/**
 * One job: PROCESSING → create and await the prediction → store every output in parallel →
 * COMPLETED, FAILED or CANCELLED, mirrored in Postgres and in the MediaJobStatus search attribute.
 */
export async function mediaGeneration(input: MediaGenerationInput): Promise<JobProgress> {
  // The policies take per-deployment overrides from the input, so the proxies are built here.
  const policies = activityPolicies(input.policies);
  // The job's rows: quick conditional writes, run as local activities.
  const jobRows = proxyLocalActivities<MediaActivities>(policies.database);
  const { createPrediction, startJobWithPrediction } = proxyLocalActivities<MediaActivities>(policies.createPrediction);
  const { cancelPrediction } = proxyActivities<MediaActivities>(policies.cancelPrediction);
  const { awaitPrediction } = proxyActivities<MediaActivities>(policies.awaitPrediction);
  const { persistOutput } = proxyActivities<MediaActivities>(policies.persist);
  const { persistSmallOutput } = proxyLocalActivities<MediaActivities>(policies.persistLocally);
  const persistLocallyMaxBytes = input.policies?.persistLocallyMaxBytes ?? DEFAULT_PERSIST_LOCALLY_MAX_BYTES;
  const { deliverWebhook } = proxyActivities<MediaActivities>(policies.webhook);

  const { jobId } = input;
  const progress: JobProgress = {
    jobId,
    phase: 'starting',
    outputs: Array.from({ length: input.numOutputs }, (_, index) => ({ index, state: 'pending', attempts: 0 })),
  };
  setHandler(progressQuery, () => progress);

  const work = new CancellationScope();
  setHandler(cancelSignal, (signal) => {
    progress.cancelReason ??= signal?.reason?.trim() || 'Cancelled by an operator signal';
    work.cancel();
  });

  // Webhooks: each message is an activity with its own long retry policy; its attempts are recorded
  // by the activity, and a message that still fails after a day of retries does not fail the job.
  // Not cancellable: a workflow cancel request must not stop the messages, `cancelled` least of all.
  // The SDK records a stack trace for every promise a workflow makes, so a job without a webhook
  // makes none here: no scope, no resolved promise per output.
  const webhook = input.webhook;
  const deliveryScope = webhook ? new CancellationScope({ cancellable: false }) : undefined;
  const deliveries: Promise<void>[] = [];
  const notify = (event: WebhookEvent, outputIndex?: number): Promise<void> | undefined => {
    if (!webhook?.events.includes(event) || !deliveryScope) return undefined;
    const message = {
      jobId,
      messageId: webhookMessageId(jobId, event, outputIndex),
      event,
      url: webhook.url,
      outputIndex,
    };
    const delivery = deliveryScope
      .run(() => deliverWebhook(message))
      .then(
        () => undefined,
        () => undefined,
      );
    deliveries.push(delivery);
    return delivery;
  };
  const terminalEvent: Record<TerminalStatus, WebhookEvent> = {
    COMPLETED: 'completed',
    FAILED: 'failed',
    CANCELLED: 'cancelled',
  };

  // deadline_seconds counts from the submission (the workflow's start): a timer for what is left of
  // it races the work, and cancels it when it fires first. A job that no worker picked up before its
  // deadline is cancelled before it starts.
  let started = false;
  let deadlineExceeded = false;
  const deadlineLeftMs = input.deadlineSeconds
    ? workflowInfo().startTime.getTime() + input.deadlineSeconds * 1000 - Date.now()
    : undefined;
  const deadlineScope = deadlineLeftMs !== undefined && deadlineLeftMs > 0 ? new CancellationScope() : undefined;
  if (deadlineLeftMs !== undefined && deadlineLeftMs <= 0) {
    deadlineExceeded = true;
    work.cancel();
  } else if (deadlineScope && deadlineLeftMs !== undefined) {
    void deadlineScope
      .run(() => sleep(deadlineLeftMs))
      .then(
        () => {
          deadlineExceeded = true;
          work.cancel();
        },
        () => undefined,
      );
  }

  let generationRetries = 0;
  // Until the prediction has ended upstream, every end of the job other than COMPLETED cancels it.
  let predictionSettled = false;
  const setStatus = (status: JobStatus) =>
    upsertSearchAttributes([{ key: mediaJobStatusSearchAttribute, value: status }]);
  const finish = async (status: TerminalStatus, errorMessage?: string) => {
    deadlineScope?.cancel();
    progress.phase = status === 'COMPLETED' ? 'completed' : status === 'FAILED' ? 'failed' : 'cancelled';
    if (errorMessage) progress.error = errorMessage;
    const ended = await jobRows.finishJob({ jobId, status, errorMessage, generationRetries, inBatch: input.inBatch });
    // Only once the row has it: a closed workflow always carries its final status, and the status in
    // Temporal never runs ahead of the row (a finishJob that waits out a database outage). A refused
    // end (the row ended before this run's first task) shows the row's own.
    setStatus(ended ? status : await statusOfARefusedEnd(status, () => jobRows.startJob(jobId)));
    // Only the call that ended the job announces it; the workflow stays open while deliveries retry.
    if (ended) void notify(terminalEvent[status]);
    if (deliveries.length > 0) await CancellationScope.nonCancellable(() => Promise.all(deliveries));
  };

  try {
    const run = await work.run(async (): Promise<{ alreadyEnded: JobStatus } | { failures: string[] }> => {
      const request = {
        jobId,
        model: input.model,
        prompt: input.prompt,
        numOutputs: input.numOutputs,
        seed: input.seed,
        outputFormat: input.outputFormat,
      };
      let created: CreatedPrediction | undefined;
      if (patched(START_WITH_THE_PREDICTION)) {
        // The row is started by the activity's first statement: a job whose work is cancelled once
        // the activity runs ends as one that had started (a scope cancelled before runs nothing).
        started = !work.consideredCancelled;
        progress.phase = 'generating';
        const begun = await startJobWithPrediction(request);
        if ('alreadyEnded' in begun) return { alreadyEnded: begun.alreadyEnded };
        if ('predictionId' in begun) {
          setStatus('PROCESSING');
          created = begun;
        }
        // Otherwise the database did not answer: the job is started below, by startJob, which waits out the outage.
      }
      if (!created) {
        const recorded = await jobRows.startJob(jobId);
        if (isTerminalStatus(recorded)) return { alreadyEnded: recorded };
        started = true;
        setStatus('PROCESSING');
        progress.phase = 'generating';
        created = await createPrediction(request);
      }
      progress.predictionId = created.predictionId;
      // A prediction that had already succeeded when it was created needs no wait of its own: one
      // activity task fewer per job. Jobs recorded before this replay with their wait.
      const awaited =
        created.outputUrls && patched(OUTPUTS_WITH_THE_PREDICTION)
          ? { outputUrls: created.outputUrls, attempt: 1 }
          : await awaitPrediction({ jobId, predictionId: created.predictionId });
      predictionSettled = true;
      generationRetries = created.attempt - 1 + (awaited.attempt - 1);

      progress.phase = 'persisting';
      const outcomes = await Promise.allSettled(
        progress.outputs.map((output) => storeOutput(output, awaited.outputUrls)),
      );
      // Each output that failed keeps its own error, also when a cancel ends the others.
      const failed = outcomes.flatMap((outcome, index) =>
        outcome.status === 'rejected' && !isCancellation(outcome.reason) && progress.outputs[index]!.state === 'failed'
          ? [{ index, message: failureMessage(outcome.reason) }]
          : [],
      );
      const failures = failed.map(({ index, message }) => `output ${index}: ${message}`);
      if (failed.length > 0) {
        await CancellationScope.nonCancellable(async () => {
          for (const { index, message } of failed) {
            progress.outputs[index]!.error = message;
            await jobRows.recordOutputFailure({
              jobId,
              outputIndex: index,
              errorMessage: message,
              attempts: progress.outputs[index]!.attempts,
            });
          }
        });
      }
      const cancellation = outcomes.find((outcome) => outcome.status === 'rejected' && isCancellation(outcome.reason));
      if (cancellation?.status === 'rejected') throw cancellation.reason;
      // An upload that ended with an error of its own after the cancel reached it.
      if (work.consideredCancelled) throw new CancelledFailure('the job was cancelled while its outputs were stored');
      return { failures };
    });

    deadlineScope?.cancel();
    if ('alreadyEnded' in run) {
      // Ended elsewhere before this workflow got to it (the reconciler): nothing to do.
      progress.phase =
        run.alreadyEnded === 'COMPLETED' ? 'completed' : run.alreadyEnded === 'FAILED' ? 'failed' : 'cancelled';
      setStatus(run.alreadyEnded);
      return progress;
    }
    progress.phase = 'finishing';
    if (run.failures.length === 0) await finishAfterWork('COMPLETED');
    else
      await finishAfterWork(
        'FAILED',
        `${run.failures.length} of ${input.numOutputs} outputs failed: ${run.failures.join('; ')}`,
      );
    return progress;
  } catch (error) {
    // A cancel that arrived while a step failed (a create refused, say) still ends the job cancelled.
    const cancelled = isCancellation(error) || work.consideredCancelled;
    if (cancelled && deadlineExceeded && !progress.cancelReason) {
      const message = `The job did not finish within its deadline of ${input.deadlineSeconds} s (deadline_seconds)${started ? '' : '; it had not started'}.`;
      await endCancelled(started ? 'FAILED' : 'CANCELLED', message);
      return progress;
    }
    if (cancelled) {
      await endCancelled('CANCELLED', progress.cancelReason ?? 'Cancelled by an operator (workflow cancellation)');
      // A signalled cancel is the workflow's own decision and completes it; a workflow cancel request ends it as cancelled.
      if (progress.cancelReason || !isCancellation(error)) return progress;
      throw error;
    }
    if (failureType(error) === NonRetryable.JobNotFound) throw error;
    await CancellationScope.nonCancellable(async () => {
      if (started && !predictionSettled && patched(CANCEL_PREDICTION_ON_FAILURE)) await cancelPrediction(jobId);
      await finish('FAILED', failureMessage(error));
    });
    return progress;
  }

  /**
   * One output into S3: a small one by a local activity first (no task on the server), then, if that
   * did not store it, by persistOutput, the heartbeating activity with the long retry policy, which
   * counts the local attempt as its first. Failures no retry can mend end the output at once. One
   * function with one await on the common path: the SDK records a stack trace for every promise.
   */
  async function storeOutput(output: OutputProgress, outputUrls: string[]): Promise<PersistOutputResult> {
    const sourceUrl = outputUrls[output.index];
    if (sourceUrl === undefined) {
      output.state = 'failed';
      throw ApplicationFailure.create({
        message: `the provider returned ${outputUrls.length} outputs for ${input.numOutputs} requested`,
        nonRetryable: true,
      });
    }
    output.state = 'storing';
    const persist: PersistOutputInput = {
      jobId,
      outputIndex: output.index,
      sourceUrl,
      outputFormat: input.outputFormat,
      maxFailedAttempts: input.policies?.persistMaxAttempts,
    };
    let stored: PersistOutputResult;
    try {
      if (persistLocallyMaxBytes === 0 || !patched(SMALL_OUTPUTS_LOCALLY)) {
        stored = await persistOutput(persist);
      } else {
        let local: Awaited<ReturnType<typeof persistSmallOutput>> | { failed: true };
        try {
          local = await persistSmallOutput({ ...persist, maxBytes: persistLocallyMaxBytes });
        } catch (error) {
          if (work.consideredCancelled) throw error;
          if (!mayPassOnRetry(error, policies.persist.retry?.nonRetryableErrorTypes ?? [])) {
            output.attempts = 1;
            throw error;
          }
          local = { failed: true };
        }
        if ('failed' in local) stored = await persistOutput({ ...persist, attemptsBefore: 1 });
        else if ('handedOver' in local) stored = await persistOutput(persist);
        else stored = local;
      }
    } catch (error) {
      // What ends after the cancel reached it was cancelled, whatever error it ended with.
      if (!work.consideredCancelled) output.state = 'failed';
      throw error;
    }
    output.state = 'stored';
    output.attempts = stored.attempt;
    void notify('output', output.index);
    return stored;
  }

  /**
   * The job's end once its work is over. A workflow cancel request that reaches it (its write retried
   * after a database error, a batch's announcement refused) comes too late: the write may already
   * have committed the job's end, which no later write changes, so the end is made again, not
   * cancellable, and the workflow closes with it. An API cancel is a signal, taken in by the work's
   * scope only, and comes too late here in the same way.
   */
  async function finishAfterWork(status: TerminalStatus, errorMessage?: string): Promise<void> {
    try {
      await finish(status, errorMessage);
    } catch (error) {
      if (!isCancellation(error) || !patched(END_OUTLASTS_CANCEL)) throw error;
      await CancellationScope.nonCancellable(() => finish(status, errorMessage));
    }
  }

  /** The work was cancelled (a cancel, the deadline): what was not stored is cancelled, the prediction too. */
  async function endCancelled(status: TerminalStatus, message: string): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      for (const output of progress.outputs)
        if (output.state !== 'stored' && output.state !== 'failed') output.state = 'cancelled';
      await cancelPrediction(jobId);
      await finish(status, message);
    });
  }
}

/** Whether a failed attempt may pass when tried again: anything but a failure marked for good. */
function mayPassOnRetry(error: unknown, nonRetryableTypes: readonly string[]): boolean {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (!(cause instanceof ApplicationFailure)) return true;
  return !cause.nonRetryable && !nonRetryableTypes.includes(cause.type ?? '');
}

function failureType(error: unknown): string | undefined {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
}

/** The most specific message in a failure chain: the provider's or storage's own words. */
function failureMessage(error: unknown): string {
  let current: unknown = error;
  while (current instanceof ActivityFailure && current.cause) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}
