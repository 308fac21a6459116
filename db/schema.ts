import { sql } from 'drizzle-orm';
import {
  bigint,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  text,
  timestamp,
  uniqueIndex,
  uuid,
  varchar,
} from 'drizzle-orm/pg-core';
import { JOB_PRIORITIES } from '../common/priorities';
import { JOB_STATUSES, MEDIA_STATUSES, OUTPUT_FORMATS } from '../common/statuses';

const timestamps = {
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' })
    .notNull()
    .defaultNow()
    .$onUpdate(() => sql`now()`),
};

export const jobs = pgTable(
  'jobs',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    status: text('status', { enum: JOB_STATUSES }).notNull().default('PENDING'),
    model: text('model').notNull(),
    prompt: text('prompt').notNull(),
    numOutputs: integer('num_outputs').notNull(),
    seed: bigint('seed', { mode: 'number' }).notNull(),
    outputFormat: text('output_format', { enum: OUTPUT_FORMATS }).notNull(),
    errorMessage: text('error_message'),
    retryCount: integer('retry_count').notNull().default(0),
    predictionId: text('prediction_id'),
    /** Who submitted it: an API key id, or 'anonymous' when AUTH_MODE=off. */
    owner: text('owner').notNull().default('anonymous'),
    /** The submitter's network address: the quota subject when AUTH_MODE=off. */
    clientAddress: text('client_address'),
    /** Idempotency-Key of the submit, unique per owner, with a hash of the request it came with. */
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash'),
    webhookUrl: text('webhook_url'),
    webhookEvents: text('webhook_events').array(),
    deadlineSeconds: integer('deadline_seconds'),
    /** The request's priority: its Temporal priority key (common/priorities.ts). */
    priority: text('priority', { enum: JOB_PRIORITIES }).notNull().default('normal'),
    /** The last job_events sequence number: bumped with every change of the job or its media. */
    eventSeq: integer('event_seq').notNull().default(0),
    ...timestamps,
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }),
    /** When the provider's prediction succeeded: generation ends and storing begins. */
    generatedAt: timestamp('generated_at', { withTimezone: true, mode: 'date' }),
    completedAt: timestamp('completed_at', { withTimezone: true, mode: 'date' }),
    /** retention_seconds of the request: how long its outputs are kept once the job ended. */
    retentionSeconds: integer('retention_seconds'),
    /** When its stored outputs are removed: set when the job ends, from its retention; null keeps them. */
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }),
    /** When its stored outputs were removed (a DELETE or its expiry); the row itself stays. */
    dataRemovedAt: timestamp('data_removed_at', { withTimezone: true, mode: 'date' }),
    /** The FAILED job this one regenerates (POST /api/v1/jobs/{id}/retry with regenerate); one per job. */
    retryOf: uuid('retry_of'),
    /** The batch it was submitted in (POST /api/v1/batches), and its place in the batch's `jobs`. */
    batchId: uuid('batch_id'),
    batchIndex: integer('batch_index'),
    /** When the provider stops serving the prediction's outputs (Replicate: an hour after it ends); null: never. */
    providerOutputsExpireAt: timestamp('provider_outputs_expire_at', { withTimezone: true, mode: 'date' }),
    /**
     * Set when the job was ended outside its workflow (the reconciler, a cancel of a job whose
     * workflow was gone), in the same statement, and cleared once its settleOrphanedJob workflow
     * was started: the reconciler starts the ones still due (jobs/lifecycle.ts settleDueJobs).
     */
    settleDueAt: timestamp('settle_due_at', { withTimezone: true, mode: 'date' }),
  },
  (table) => [
    index('jobs_created_at_id_idx').on(table.createdAt.desc(), table.id.desc()),
    index('jobs_status_created_at_id_idx').on(table.status, table.createdAt.desc(), table.id.desc()),
    uniqueIndex('jobs_owner_idempotency_key_idx')
      .on(table.owner, table.idempotencyKey)
      .where(sql`${table.idempotencyKey} is not null`),
    index('jobs_owner_status_idx').on(table.owner, table.status),
    index('jobs_expires_at_idx')
      .on(table.expiresAt)
      .where(sql`${table.expiresAt} is not null and ${table.dataRemovedAt} is null`),
    index('jobs_client_address_status_idx').on(table.clientAddress, table.status),
    // The start rate of the queue estimate counts the jobs started in the last five minutes.
    index('jobs_started_at_idx')
      .on(table.startedAt)
      .where(sql`${table.startedAt} is not null`),
    // A FAILED job is regenerated once: a second regenerate answers with the job the first made.
    uniqueIndex('jobs_retry_of_idx')
      .on(table.retryOf)
      .where(sql`${table.retryOf} is not null`),
    uniqueIndex('jobs_batch_id_batch_index_idx')
      .on(table.batchId, table.batchIndex)
      .where(sql`${table.batchId} is not null`),
    index('jobs_settle_due_at_idx')
      .on(table.settleDueAt)
      .where(sql`${table.settleDueAt} is not null`),
  ],
);

export const media = pgTable(
  'media',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    outputIndex: integer('output_index').notNull(),
    status: text('status', { enum: MEDIA_STATUSES }).notNull().default('PENDING'),
    /** Where the provider served the output from. */
    mediaUrl: text('media_url'),
    s3Key: text('s3_key').notNull(),
    contentType: text('content_type'),
    sizeBytes: bigint('size_bytes', { mode: 'number' }),
    sha256: text('sha256'),
    errorMessage: text('error_message'),
    attempts: integer('attempts').notNull().default(0),
    /** Attempts that failed on the source's or storage's own error; worker deaths and stops do not count. */
    failedAttempts: integer('failed_attempts').notNull().default(0),
    ...timestamps,
    completedAt: timestamp('completed_at', { withTimezone: true, mode: 'date' }),
  },
  (table) => [uniqueIndex('media_job_id_output_index_idx').on(table.jobId, table.outputIndex)],
);

/** A batch of jobs submitted in one request (POST /api/v1/batches); its jobs carry its id. */
export const batches = pgTable(
  'batches',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    owner: text('owner').notNull().default('anonymous'),
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash').notNull(),
    /** Receives one signed webhook once every job of the batch has ended. */
    webhookUrl: text('webhook_url'),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /** When its last unfinished job ended: set once, in that job's transaction. */
    endedAt: timestamp('ended_at', { withTimezone: true, mode: 'date' }),
    /** When its webhook's delivery workflow was started (once per batch). */
    webhookStartedAt: timestamp('webhook_started_at', { withTimezone: true, mode: 'date' }),
  },
  (table) => [
    uniqueIndex('batches_owner_idempotency_key_idx')
      .on(table.owner, table.idempotencyKey)
      .where(sql`${table.idempotencyKey} is not null`),
    // The ended batches whose webhook is still to be started: what the reconciler looks for.
    index('batches_webhook_due_idx')
      .on(table.endedAt)
      .where(sql`${table.webhookUrl} is not null and ${table.webhookStartedAt} is null`),
  ],
);

/** Every change of a job or one of its outputs, in order: what GET /api/v1/jobs/{id}/events streams. */
export const jobEvents = pgTable(
  'job_events',
  {
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    type: text('type', { enum: ['status', 'output'] }).notNull(),
    data: jsonb('data').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.jobId, table.seq] })],
);

/** API keys: only a SHA-256 of each key is kept; the id is the key's public prefix. */
export const apiKeys = pgTable('api_keys', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  keyHash: text('key_hash').notNull().unique(),
  /** The key's share of the task queues against other keys with a backlog (Temporal fairness weight). */
  fairnessWeight: real('fairness_weight').notNull().default(1),
  /** The most urgent priority its requests may ask for. */
  maxPriority: text('max_priority', { enum: JOB_PRIORITIES }).notNull().default('normal'),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
});

/**
 * rate-limiter-flexible's RateLimiterPostgres store (api/rate-limit.ts), shared by every API
 * process: one row per limiter key and window, in the shape the library reads and writes (`expire`
 * in milliseconds since the epoch); the library itself is told not to create it.
 */
export const rateLimits = pgTable(
  'rate_limits',
  {
    key: varchar('key', { length: 255 }).primaryKey(),
    points: integer('points').notNull().default(0),
    expire: bigint('expire', { mode: 'number' }),
  },
  (table) => [index('rate_limits_expire_idx').on(table.expire)],
);

/** One row per attempt at delivering a webhook; attempts of one message share its message id. */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    /** The webhook-id header: the same for every attempt at one message. */
    messageId: text('message_id').notNull(),
    event: text('event', { enum: ['completed', 'failed', 'cancelled', 'output'] }).notNull(),
    outputIndex: integer('output_index'),
    attempt: integer('attempt').notNull(),
    url: text('url').notNull(),
    statusCode: integer('status_code'),
    responseSnippet: text('response_snippet'),
    error: text('error'),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'date' }),
  },
  (table) => [
    index('webhook_deliveries_job_id_created_at_idx').on(table.jobId, table.createdAt),
    // One number per attempt at a message, and the index its next number is read from.
    uniqueIndex('webhook_deliveries_message_id_attempt_idx').on(table.messageId, table.attempt),
  ],
);

export type JobRow = typeof jobs.$inferSelect;
export type BatchRow = typeof batches.$inferSelect;
export type NewJobRow = typeof jobs.$inferInsert;
export type MediaRow = typeof media.$inferSelect;
export type JobEventRow = typeof jobEvents.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;
