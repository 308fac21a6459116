import { sql } from 'drizzle-orm';
import { bigint, index, integer, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
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
    ...timestamps,
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }),
    completedAt: timestamp('completed_at', { withTimezone: true, mode: 'date' }),
  },
  (table) => [
    index('jobs_created_at_id_idx').on(table.createdAt.desc(), table.id.desc()),
    index('jobs_status_created_at_id_idx').on(table.status, table.createdAt.desc(), table.id.desc()),
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
    ...timestamps,
    completedAt: timestamp('completed_at', { withTimezone: true, mode: 'date' }),
  },
  (table) => [uniqueIndex('media_job_id_output_index_idx').on(table.jobId, table.outputIndex)],
);

export type JobRow = typeof jobs.$inferSelect;
export type NewJobRow = typeof jobs.$inferInsert;
export type MediaRow = typeof media.$inferSelect;
