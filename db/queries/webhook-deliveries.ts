import { and, asc, eq, sql } from 'drizzle-orm';
import type { Database } from '../client';
import { webhookDeliveries, type WebhookDeliveryRow } from '../schema';

export interface DeliveryAttempt {
  jobId: string;
  messageId: string;
  event: WebhookDeliveryRow['event'];
  outputIndex?: number;
  url: string;
}

/** What the receiver answered, or why there was no answer. */
export interface DeliveryOutcome {
  statusCode?: number;
  responseSnippet?: string;
  error?: string;
}

/**
 * Records an attempt as it begins, before anything is sent: an attempt cut off with its worker
 * (after the receiver took the message, say) stays listed, unfinished (`finished_at` null). Its
 * number follows the message's earlier attempts, retries and redeliveries alike: attempts at one
 * message are numbered one at a time, under a transaction-scoped advisory lock per message id, so a
 * redelivery beside a retry reads the count the other wrote. The unique index on
 * (message_id, attempt) stands behind it.
 */
export async function beginDeliveryAttempt(db: Database, attempt: DeliveryAttempt): Promise<WebhookDeliveryRow> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`webhook-message:${attempt.messageId}`}))`);
    const [row] = await tx
      .insert(webhookDeliveries)
      .values({
        jobId: attempt.jobId,
        messageId: attempt.messageId,
        event: attempt.event,
        outputIndex: attempt.outputIndex ?? null,
        attempt: sql`(select coalesce(max(${webhookDeliveries.attempt}), 0) + 1 from ${webhookDeliveries} where ${webhookDeliveries.messageId} = ${attempt.messageId})`,
        url: attempt.url,
      })
      .returning();
    return row!;
  });
}

/** Records how a begun attempt ended. */
export async function finishDeliveryAttempt(db: Database, deliveryId: string, outcome: DeliveryOutcome): Promise<void> {
  await db
    .update(webhookDeliveries)
    .set({
      statusCode: outcome.statusCode ?? null,
      responseSnippet: outcome.responseSnippet ?? null,
      error: outcome.error ?? null,
      finishedAt: sql`now()`,
    })
    .where(eq(webhookDeliveries.id, deliveryId));
}

export async function listDeliveries(db: Database, jobId: string): Promise<WebhookDeliveryRow[]> {
  return db
    .select()
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.jobId, jobId))
    .orderBy(asc(webhookDeliveries.createdAt), asc(webhookDeliveries.attempt));
}

export async function getDelivery(
  db: Database,
  jobId: string,
  deliveryId: string,
): Promise<WebhookDeliveryRow | undefined> {
  const [row] = await db
    .select()
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.jobId, jobId), eq(webhookDeliveries.id, deliveryId)));
  return row;
}
