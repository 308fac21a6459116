import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Config } from '../common/config';
import {
  BATCH_ENDED_WEBHOOK_WORKFLOW_TYPE,
  batchWebhookMessageId,
  batchWebhookWorkflowId,
  type BatchEndedWebhookInput,
} from '../common/temporal';
import { startWorkflowOnce } from '../common/workflow-start';
import type { Database } from '../db/client';
import {
  dueWebhookOfJobBatch,
  listDueBatchWebhooks,
  markBatchWebhookStarted,
  type DueBatchWebhook,
} from '../db/queries/batches';

/**
 * A batch's webhook: one signed message once every job of it has ended. The end is recorded once,
 * in the transaction of the last job's terminal transition (finishJob sets batches.ended_at); then
 * whoever ended that job starts the batch's delivery workflow (one per batch: its workflow id), and
 * records that it did. The step is repeated until it is recorded: by the activity that ended the
 * job (retried by its workflow), and by the reconciler for a batch still due a minute later.
 */

export interface BatchWebhookDependencies {
  db: Database;
  temporal: Client;
  config: Pick<Config, 'TEMPORAL_TASK_QUEUE'> & { WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS?: number };
}

/** The job's own announcer has this long before the reconciler takes a due batch webhook over. */
const ANNOUNCER_GRACE_SECONDS = 60;
const DUE_PAGE = 100;

async function startBatchWebhook(deps: BatchWebhookDependencies, batch: DueBatchWebhook): Promise<void> {
  const input: BatchEndedWebhookInput = {
    message: { batchId: batch.id, messageId: batchWebhookMessageId(batch.id), url: batch.webhookUrl },
    policies: { webhookInitialIntervalSeconds: deps.config.WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS },
  };
  // One message per batch: a start repeated after a lost answer finds the first one.
  await startWorkflowOnce(deps.temporal, BATCH_ENDED_WEBHOOK_WORKFLOW_TYPE, {
    taskQueue: deps.config.TEMPORAL_TASK_QUEUE,
    workflowId: batchWebhookWorkflowId(batch.id),
    args: [input],
  });
  await markBatchWebhookStarted(deps.db, batch.id);
}

/** After a job ended: when that ended its batch, and the batch has a webhook, its delivery is started. */
export async function announceBatchEnd(deps: BatchWebhookDependencies, jobId: string): Promise<boolean> {
  const batch = await dueWebhookOfJobBatch(deps.db, jobId);
  if (!batch) return false;
  await startBatchWebhook(deps, batch);
  return true;
}

/** The reconciler's share: batch webhooks still due a minute after their batch ended (their announcer was cut off). */
export async function announceOverdueBatches(deps: BatchWebhookDependencies & { logger: Logger }): Promise<number> {
  const due = await listDueBatchWebhooks(deps.db, ANNOUNCER_GRACE_SECONDS, DUE_PAGE);
  let started = 0;
  for (const batch of due) {
    await startBatchWebhook(deps, batch).then(
      () => (started += 1),
      (error: unknown) => deps.logger.warn({ err: error, batchId: batch.id }, 'could not start a batch webhook'),
    );
  }
  if (started > 0) deps.logger.info({ started }, 'started the webhooks of batches whose announcer was cut off');
  return started;
}
