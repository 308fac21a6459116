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

/** Concurrent inserts of one message (a redelivery beside a retry) may take one number: the later takes the next. */
const NUMBERING_TRIES = 5;

/**
 * Records an attempt as it begins, before anything is sent: an attempt cut off with its worker
 * (after the receiver took the message, say) stays listed, unfinished (`finished_at` null). Its
 * number follows the message's earlier attempts, retries and redeliveries alike.
 */
export async function beginDeliveryAttempt(db: Database, attempt: DeliveryAttempt): Promise<WebhookDeliveryRow> {
  return insertAttempt(db, attempt, undefined);
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

/** Records an attempt that began at `startedAt` and has ended. */
export async function recordDeliveryAttempt(
  db: Database,
  attempt: DeliveryAttempt & DeliveryOutcome & { startedAt: Date },
): Promise<WebhookDeliveryRow> {
  return insertAttempt(db, attempt, attempt);
}

async function insertAttempt(
  db: Database,
  attempt: DeliveryAttempt & { startedAt?: Date },
  outcome: DeliveryOutcome | undefined,
): Promise<WebhookDeliveryRow> {
  for (let tries = 1; ; tries++) {
    const [row] = await db
      .insert(webhookDeliveries)
      .values({
        jobId: attempt.jobId,
        messageId: attempt.messageId,
        event: attempt.event,
        outputIndex: attempt.outputIndex ?? null,
        attempt: sql`(select coalesce(max(${webhookDeliveries.attempt}), 0) + 1 from ${webhookDeliveries} where ${webhookDeliveries.messageId} = ${attempt.messageId})`,
        url: attempt.url,
        statusCode: outcome?.statusCode ?? null,
        responseSnippet: outcome?.responseSnippet ?? null,
        error: outcome?.error ?? null,
        ...(attempt.startedAt ? { createdAt: attempt.startedAt } : {}),
        finishedAt: outcome ? sql`now()` : null,
      })
      .onConflictDoNothing({ target: [webhookDeliveries.messageId, webhookDeliveries.attempt] })
      .returning();
    if (row) return row;
    if (tries >= NUMBERING_TRIES)
      throw new Error(`could not number an attempt at webhook message ${attempt.messageId}: ${tries} tries collided`);
  }
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
