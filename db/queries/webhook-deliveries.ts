import { and, asc, eq, sql } from 'drizzle-orm';
import type { Database } from '../client';
import { webhookDeliveries, type WebhookDeliveryRow } from '../schema';

export interface DeliveryAttempt {
  jobId: string;
  messageId: string;
  event: WebhookDeliveryRow['event'];
  outputIndex?: number;
  url: string;
  statusCode?: number;
  responseSnippet?: string;
  error?: string;
  startedAt: Date;
}

/** Records one attempt; its number follows the message's earlier attempts (retries and redeliveries alike). */
export async function recordDeliveryAttempt(db: Database, attempt: DeliveryAttempt): Promise<WebhookDeliveryRow> {
  const [row] = await db
    .insert(webhookDeliveries)
    .values({
      jobId: attempt.jobId,
      messageId: attempt.messageId,
      event: attempt.event,
      outputIndex: attempt.outputIndex ?? null,
      attempt: sql`(select coalesce(max(${webhookDeliveries.attempt}), 0) + 1 from ${webhookDeliveries} where ${webhookDeliveries.messageId} = ${attempt.messageId})`,
      url: attempt.url,
      statusCode: attempt.statusCode ?? null,
      responseSnippet: attempt.responseSnippet ?? null,
      error: attempt.error ?? null,
      createdAt: attempt.startedAt,
      finishedAt: sql`now()`,
    })
    .returning();
  return row!;
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
