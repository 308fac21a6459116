import { randomUUID } from 'node:crypto';
import { and, asc, count, desc, eq, gt, inArray, isNull, lt, notInArray, or, sql, type SQL } from 'drizzle-orm';
import { JOB_PRIORITIES, PRIORITY_KEYS, type JobPriority } from '../../common/priorities';
import { TERMINAL_STATUSES, type JobStatus, type OutputFormat, type TerminalStatus } from '../../common/statuses';
import { mediaObjectKey } from '../../common/storage-keys';
import type { Database } from '../client';
import { batches, jobEvents, jobs, media, type JobRow, type MediaRow } from '../schema';
import { appendJobEvent, type Executor } from './events';

export interface NewJob {
  model: string;
  prompt: string;
  numOutputs: number;
  seed: number;
  outputFormat: OutputFormat;
  owner?: string;
  clientAddress?: string;
  idempotencyKey?: string;
  requestHash?: string;
  webhookUrl?: string;
  webhookEvents?: string[];
  deadlineSeconds?: number;
  /** How long its outputs are kept once it ended; undefined keeps them. */
  retentionSeconds?: number;
  priority?: JobPriority;
  /** The FAILED job it regenerates: one per failed job (a unique index). */
  retryOf?: string;
}

export type JobWithMedia = JobRow & { media: MediaRow[] };

/** Who a running-jobs cap counts against: an owner (API key), or a client address. */
export type RunningJobsCap = { limit: number } & ({ owner: string } | { clientAddress: string });

/** The subject already has `limit` unfinished jobs: nothing was created. */
export class RunningJobsCapReached extends Error {
  override readonly name = 'RunningJobsCapReached';
  constructor(
    readonly limit: number,
    readonly running: number,
  ) {
    super(`${running} jobs are already PENDING or PROCESSING (the limit is ${limit})`);
  }
}

/**
 * Every job column a submission sets, each given: what the request leaves out is the column's
 * default (owner, priority) or null, so that one prepared statement serves every submission.
 */
function jobParameters(id: string, request: NewJob) {
  return {
    id,
    model: request.model,
    prompt: request.prompt,
    numOutputs: request.numOutputs,
    seed: request.seed,
    outputFormat: request.outputFormat,
    owner: request.owner ?? jobs.owner.default,
    clientAddress: request.clientAddress ?? null,
    idempotencyKey: request.idempotencyKey ?? null,
    requestHash: request.requestHash ?? null,
    webhookUrl: request.webhookUrl ?? null,
    webhookEvents: request.webhookEvents ?? null,
    deadlineSeconds: request.deadlineSeconds ?? null,
    retentionSeconds: request.retentionSeconds ?? null,
    priority: request.priority ?? jobs.priority.default,
    retryOf: request.retryOf ?? null,
    // Millisecond precision, so that list cursors (JavaScript dates) compare exactly.
    now: new Date(),
  };
}
/** Those values, or the placeholders of the same names. */
type JobParameters = Record<keyof ReturnType<typeof jobParameters>, unknown>;

/**
 * The job's insert with its media rows and first event as WITH clauses, for `numOutputs` outputs,
 * its values either given (`values`) or placeholders of those names (a prepared statement).
 */
function createJobQuery(
  executor: Pick<Database, '$with' | 'with' | 'insert'>,
  numOutputs: number,
  values: { job: JobParameters; s3Keys: unknown[] },
) {
  const { job } = values;
  const mediaRows = executor.$with('inserted_media').as(
    executor.insert(media).values(
      Array.from({ length: numOutputs }, (_, outputIndex) => ({
        jobId: job.id as string,
        outputIndex,
        s3Key: values.s3Keys[outputIndex] as string,
        createdAt: job.now as Date,
        updatedAt: job.now as Date,
      })),
    ),
  );
  // The job's sequence starts at 1: this is its first event.
  const firstEvent = executor
    .$with('inserted_event')
    .as(
      executor
        .insert(jobEvents)
        .values({ jobId: job.id as string, seq: 1, type: 'status', data: { status: 'PENDING', error_message: null } }),
    );
  const { now, ...columns } = job;
  return executor
    .with(mediaRows, firstEvent)
    .insert(jobs)
    .values({ ...(columns as NewJob & { id: string }), eventSeq: 1, createdAt: now as Date, updatedAt: now as Date })
    .returning();
}

/** The prepared insert of a job of `numOutputs` outputs: building its SQL costs more than running it. */
function prepareCreateJob(db: Database, numOutputs: number, names: string[]) {
  const job = Object.fromEntries(names.map((name) => [name, sql.placeholder(name)])) as JobParameters;
  // drizzle encodes a placeholder's value with its column, and its array encoder refuses null: this
  // one goes to pg as it is (a JavaScript array, or null).
  job.webhookEvents = sql`${sql.placeholder('webhookEvents')}::text[]`;
  const s3Keys = Array.from({ length: numOutputs }, (_, index) => sql.placeholder(`s3Key${index}`));
  return createJobQuery(db, numOutputs, { job, s3Keys }).prepare(`create_job_${numOutputs}`);
}
const createJobStatements = new WeakMap<Database, Map<number, ReturnType<typeof prepareCreateJob>>>();

/**
 * Inserts the job, one PENDING media row per output and the job's first event in one statement
 * (the media and the event are written by WITH clauses of the job's insert), prepared once per
 * number of outputs. With a cap, counts the subject's unfinished jobs under a transaction-scoped
 * advisory lock first, so that concurrent submits (from any number of API processes) cannot pass
 * it together. A second submit with the same (owner, idempotency key) fails on the unique index:
 * see findJobByIdempotencyKey.
 */
export async function createJob(db: Database, request: NewJob, cap?: RunningJobsCap): Promise<JobRow> {
  const id = randomUUID();
  const job = jobParameters(id, request);
  const s3Keys = Array.from({ length: request.numOutputs }, (_, index) =>
    mediaObjectKey(id, index, request.outputFormat),
  );
  if (cap) {
    return db.transaction(async (tx) => {
      await checkRunningJobsCap(tx, cap);
      const [created] = await createJobQuery(tx, request.numOutputs, { job, s3Keys });
      return created!;
    });
  }
  let statements = createJobStatements.get(db);
  if (!statements) createJobStatements.set(db, (statements = new Map()));
  let statement = statements.get(request.numOutputs);
  if (!statement)
    statements.set(request.numOutputs, (statement = prepareCreateJob(db, request.numOutputs, Object.keys(job))));
  const [created] = await statement.execute({
    ...job,
    ...Object.fromEntries(s3Keys.map((key, index) => [`s3Key${index}`, key])),
  });
  return created!;
}

/**
 * Throws RunningJobsCapReached when `adding` more jobs would take the subject past its cap. Counts
 * under a transaction-scoped advisory lock per subject, held until the transaction that inserts the
 * jobs commits, so that concurrent submits (from any number of API processes) cannot pass it together.
 */
export async function checkRunningJobsCap(tx: Executor, cap: RunningJobsCap, adding = 1): Promise<void> {
  const subject = 'owner' in cap ? eq(jobs.owner, cap.owner) : eq(jobs.clientAddress, cap.clientAddress);
  const lockKey = 'owner' in cap ? `owner:${cap.owner}` : `address:${cap.clientAddress}`;
  await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${lockKey}))`);
  const [row] = await tx
    .select({ running: count() })
    .from(jobs)
    .where(and(subject, inArray(jobs.status, ['PENDING', 'PROCESSING'])));
  const running = row?.running ?? 0;
  if (running + adding > cap.limit) throw new RunningJobsCapReached(cap.limit, running);
}

export async function findJobByIdempotencyKey(
  db: Database,
  owner: string,
  idempotencyKey: string,
): Promise<JobRow | undefined> {
  const [job] = await db
    .select()
    .from(jobs)
    .where(and(eq(jobs.owner, owner), eq(jobs.idempotencyKey, idempotencyKey)));
  return job;
}

/** The job that regenerates `jobId` (POST /api/v1/jobs/{id}/retry with regenerate), if one was made. */
export async function findRegeneration(db: Database, jobId: string): Promise<JobRow | undefined> {
  const [job] = await db.select().from(jobs).where(eq(jobs.retryOf, jobId));
  return job;
}

/** Whether an error, or one of its causes, is the unique index `index` refusing a row. */
export function violatesUniqueIndex(error: unknown, index: string): boolean {
  for (
    let current = error as { code?: string; constraint?: string; cause?: unknown } | undefined;
    current;
    current = current.cause as typeof current
  ) {
    if (current.code === '23505' && current.constraint === index) return true;
  }
  return false;
}

/** Whether an error is the unique index on (owner, idempotency_key) refusing a second job. */
export function isIdempotencyConflict(error: unknown): boolean {
  return violatesUniqueIndex(error, 'jobs_owner_idempotency_key_idx');
}

/** Whether an error is the unique index on retry_of refusing a second regeneration of one job. */
export function isRegenerationConflict(error: unknown): boolean {
  return violatesUniqueIndex(error, 'jobs_retry_of_idx');
}

/**
 * Removes a job whose workflow could not be started, so that a rejected request leaves nothing;
 * returns whether it did. Only a job no workflow has touched goes: still PENDING (a workflow's first
 * step marks it PROCESSING) and without a prediction. A workflow that did start and finds its row
 * gone fails on JobNotFound before doing anything billed.
 */
export async function deleteJob(db: Database, jobId: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [deleted] = await tx
      .delete(jobs)
      .where(and(eq(jobs.id, jobId), eq(jobs.status, 'PENDING'), isNull(jobs.predictionId)))
      .returning({ batchId: jobs.batchId });
    // The jobs of its batch that ended before it went saw it unfinished: the batch may be over now.
    if (deleted?.batchId) await endBatchIfDone(tx, deleted.batchId);
    return deleted !== undefined;
  });
}

function prepareGetJob(db: Database) {
  return db
    .select({ job: jobs, media })
    .from(jobs)
    .leftJoin(media, eq(media.jobId, jobs.id))
    .where(eq(jobs.id, sql.placeholder('jobId')))
    .orderBy(asc(media.outputIndex))
    .prepare('get_job_with_media');
}
const getJobStatements = new WeakMap<Database, ReturnType<typeof prepareGetJob>>();

/**
 * The job and its media in one round trip. It answers every status poll, so the query is built
 * once per database and prepared once per connection.
 */
export async function getJob(db: Database, jobId: string): Promise<JobWithMedia | undefined> {
  let statement = getJobStatements.get(db);
  if (!statement) getJobStatements.set(db, (statement = prepareGetJob(db)));
  const rows = await statement.execute({ jobId });
  const job = rows[0]?.job;
  if (!job) return undefined;
  return { ...job, media: rows.flatMap((row) => (row.media ? [row.media] : [])) };
}

export interface ListJobsParams {
  status?: JobStatus;
  priority?: JobPriority;
  /** Only this owner's jobs (AUTH_MODE=required). */
  owner?: string;
  limit: number;
  cursor?: { createdAt: Date; id: string };
}

/** Newest first, keyset-paginated on (created_at, id); returns at most `limit` jobs with their media. */
export async function listJobs(
  db: Database,
  { status, priority, owner, limit, cursor }: ListJobsParams,
): Promise<JobWithMedia[]> {
  const conditions = [
    status ? eq(jobs.status, status) : undefined,
    priority ? eq(jobs.priority, priority) : undefined,
    owner !== undefined ? eq(jobs.owner, owner) : undefined,
    cursor
      ? or(lt(jobs.createdAt, cursor.createdAt), and(eq(jobs.createdAt, cursor.createdAt), lt(jobs.id, cursor.id)))
      : undefined,
  ].filter((condition) => condition !== undefined);
  const jobRows = await db
    .select()
    .from(jobs)
    .where(conditions.length > 0 ? and(...conditions) : undefined)
    .orderBy(desc(jobs.createdAt), desc(jobs.id))
    .limit(limit);
  if (jobRows.length === 0) return [];
  const mediaRows = await db
    .select()
    .from(media)
    .where(
      inArray(
        media.jobId,
        jobRows.map((job) => job.id),
      ),
    )
    .orderBy(asc(media.outputIndex));
  return jobRows.map((job) => ({ ...job, media: mediaRows.filter((row) => row.jobId === job.id) }));
}

/** A job's row as a worker starting it finds it: its status after the start, and its prediction when it has one. */
export interface JobStart {
  status: JobStatus;
  predictionId?: string;
}

/**
 * PENDING → PROCESSING, with its event, in one statement (a job in any other status is left as it
 * is). Idempotent; returns the row as it is afterwards, or undefined when the job does not exist.
 */
export async function markJobProcessing(db: Database, jobId: string): Promise<JobStart | undefined> {
  const event = { status: 'PROCESSING', error_message: null };
  const result = await db.execute<{ status: JobStatus; prediction_id: string | null }>(sql`
    with started as (
      update ${jobs}
      set status = 'PROCESSING', started_at = coalesce(started_at, now()), event_seq = event_seq + 1, updated_at = now()
      where id = ${jobId} and status = 'PENDING'
      returning id, event_seq, prediction_id
    ), recorded as (
      insert into ${jobEvents} (job_id, seq, type, data)
      select id, event_seq, 'status', ${JSON.stringify(event)}::jsonb from started
    )
    select 'PROCESSING' as status, prediction_id from started
    union all
    select status, prediction_id from ${jobs} where id = ${jobId} and not exists (select from started)`);
  const row = result.rows[0];
  return row ? { status: row.status, predictionId: row.prediction_id ?? undefined } : undefined;
}

/**
 * Records the upstream prediction for a job, keeping the first one recorded: returns the id that
 * is on record afterwards. A job that has ended takes none (its end cancelled what was on record,
 * and nothing would follow this one): undefined when none is on record.
 */
export async function recordPredictionId(
  db: Database,
  jobId: string,
  predictionId: string,
): Promise<string | undefined> {
  const result = await db.execute<{ prediction_id: string | null }>(sql`
    with recorded as (
      update ${jobs} set prediction_id = ${predictionId}, updated_at = now()
      where id = ${jobId} and prediction_id is null and ${notInArray(jobs.status, [...TERMINAL_STATUSES])}
      returning prediction_id
    )
    select coalesce((select prediction_id from recorded), (select prediction_id from ${jobs} where id = ${jobId})) as prediction_id`);
  return result.rows[0]?.prediction_id ?? undefined;
}

/** The prediction succeeded: the first time on record stays (a retried wait changes nothing). */
export async function recordJobGenerated(db: Database, jobId: string, outputLifetimeSeconds?: number): Promise<void> {
  await db
    .update(jobs)
    .set({
      generatedAt: sql`coalesce(${jobs.generatedAt}, now())`,
      providerOutputsExpireAt:
        outputLifetimeSeconds === undefined
          ? null
          : sql`coalesce(${jobs.generatedAt}, now()) + ${outputLifetimeSeconds} * interval '1 second'`,
    })
    .where(eq(jobs.id, jobId));
}

export async function getJobStatus(db: Database, jobId: string): Promise<JobStatus | undefined> {
  const [row] = await db.select({ status: jobs.status }).from(jobs).where(eq(jobs.id, jobId));
  return row?.status;
}

export async function getPredictionId(db: Database, jobId: string): Promise<string | undefined> {
  const [row] = await db.select({ predictionId: jobs.predictionId }).from(jobs).where(eq(jobs.id, jobId));
  return row?.predictionId ?? undefined;
}

export interface FinishOptions {
  /** Ended outside its workflow: its settleOrphanedJob workflow is due (jobs.settle_due_at). */
  settleDue?: boolean;
  /**
   * A retry whose run never started: its count is taken back. Otherwise retry_count never goes
   * down (an end outside the workflow knows none of the generation's retries): each retry's number
   * is the job's retry_count, and names its webhook messages and its settle.
   */
  uncountRetry?: boolean;
}

/** A job ended outside its workflow whose settleOrphanedJob workflow has been due for over `olderThanSeconds`. */
export async function listDueSettles(
  db: Database,
  olderThanSeconds: number,
  limit: number,
): Promise<Pick<JobRow, 'id' | 'status' | 'webhookUrl' | 'webhookEvents'>[]> {
  return db
    .select({ id: jobs.id, status: jobs.status, webhookUrl: jobs.webhookUrl, webhookEvents: jobs.webhookEvents })
    .from(jobs)
    .where(sql`${jobs.settleDueAt} < now() - ${olderThanSeconds} * interval '1 second'`)
    .orderBy(asc(jobs.settleDueAt))
    .limit(limit);
}

/**
 * Its settleOrphanedJob workflow was started: clears the mark, or only the mark `dueAt` (as
 * dueSettleOf read it), so that a clear that comes late leaves the mark of a later end alone.
 */
export async function clearSettleDue(db: Database, jobId: string, dueAt?: string): Promise<void> {
  await db
    .update(jobs)
    .set({ settleDueAt: null })
    .where(and(eq(jobs.id, jobId), dueAt === undefined ? undefined : sql`${jobs.settleDueAt} = ${dueAt}::timestamptz`));
}

export interface JobOutcome {
  status: TerminalStatus;
  errorMessage?: string | null;
  /** Retries spent on generation; the outputs' retries are counted from their rows. */
  generationRetries?: number;
}

/**
 * Ends a job and settles every output that did not end on its own (CANCELLED with the job, or
 * FAILED). A job that already ended keeps its first outcome, so running this twice changes nothing.
 * Returns whether this call ended the job.
 */
export async function finishJob(
  db: Database,
  jobId: string,
  outcome: JobOutcome,
  options: FinishOptions = {},
): Promise<boolean> {
  if (!options.uncountRetry && (await finishSettledJob(db, jobId, outcome, options))) return true;
  const counted = sql`${outcome.generationRetries ?? 0} + coalesce((select sum(greatest(${media.attempts} - 1, 0)) from ${media} where ${media.jobId} = ${jobId}), 0)`;
  return db.transaction(async (tx) => {
    const ended = await tx
      .update(jobs)
      .set({
        status: outcome.status,
        errorMessage: outcome.errorMessage ?? null,
        retryCount: options.uncountRetry ? counted : sql`greatest(${jobs.retryCount}, ${counted})`,
        completedAt: sql`now()`,
        // The outputs' lifetime counts from the end; an earlier expiry (a DELETE while it ran) stays.
        expiresAt: sql`least(${jobs.expiresAt}, now() + ${jobs.retentionSeconds} * interval '1 second')`,
        ...(options.settleDue ? { settleDueAt: sql`now()` } : {}),
      })
      .where(and(eq(jobs.id, jobId), notInArray(jobs.status, [...TERMINAL_STATUSES])))
      .returning({ id: jobs.id, batchId: jobs.batchId });
    if (ended.length === 0) return false;
    if (ended[0]!.batchId) await endBatchIfDone(tx, ended[0]!.batchId);
    const unsettledStatus = outcome.status === 'CANCELLED' ? 'CANCELLED' : 'FAILED';
    const settled = await tx
      .update(media)
      .set({
        status: unsettledStatus,
        errorMessage: sql`coalesce(${media.errorMessage}, ${outcome.errorMessage ?? null})`,
      })
      .where(and(eq(media.jobId, jobId), inArray(media.status, ['PENDING', 'PROCESSING'])))
      .returning();
    for (const row of settled.sort((a, b) => a.outputIndex - b.outputIndex)) {
      await appendJobEvent(tx, jobId, 'output', outputEventData(row));
    }
    // The terminal status is the stream's last event.
    await appendJobEvent(tx, jobId, 'status', { status: outcome.status, error_message: outcome.errorMessage ?? null });
    return true;
  });
}

/**
 * finishJob in one statement for the common end: a job of no batch whose outputs have all ended on
 * their own (every COMPLETED job), so there is nothing to settle and one event to write. Returns
 * false, changing nothing, for any other job, which takes finishJob's transaction. Outputs that
 * have ended stay ended (no write moves one back), so the snapshot's answer cannot go stale.
 */
async function finishSettledJob(
  db: Database,
  jobId: string,
  outcome: JobOutcome,
  options: FinishOptions,
): Promise<boolean> {
  const event = { status: outcome.status, error_message: outcome.errorMessage ?? null };
  const result = await db.execute<{ id: string }>(sql`
    with ended as (
      update ${jobs}
      set status = ${outcome.status}, error_message = ${outcome.errorMessage ?? null},
          retry_count = greatest(retry_count, ${outcome.generationRetries ?? 0} + coalesce((select sum(greatest(attempts - 1, 0)) from ${media} where job_id = ${jobId}), 0)),
          completed_at = now(),
          expires_at = least(expires_at, now() + retention_seconds * interval '1 second'),
          event_seq = event_seq + 1, updated_at = now()${options.settleDue ? sql`, settle_due_at = now()` : sql``}
      where id = ${jobId} and batch_id is null
        and status not in (${sql.join(
          TERMINAL_STATUSES.map((status) => sql`${status}`),
          sql`, `,
        )})
        and not exists (select 1 from ${media} where job_id = ${jobId} and status in ('PENDING', 'PROCESSING'))
      returning id, event_seq
    )
    insert into ${jobEvents} (job_id, seq, type, data)
    select id, event_seq, 'status', ${JSON.stringify(event)}::jsonb from ended
    returning job_id as id`);
  return result.rows.length > 0;
}

/**
 * In the transaction that ended one of its jobs: records that the batch has ended when no job of it
 * is left unfinished. The batch row's lock makes the jobs of one batch that end at once take turns:
 * each checks after the others' transactions have committed (a new snapshot per statement), so the
 * last one sees every end, and `ended_at is null` lets exactly one transaction set it. The clock's
 * time, not the transaction's start: the jobs it waited for ended after that.
 */
async function endBatchIfDone(tx: Executor, batchId: string): Promise<void> {
  await tx.execute(sql`select id from ${batches} where id = ${batchId} for update`);
  await tx.execute(sql`
    update ${batches} set ended_at = clock_timestamp()
    where id = ${batchId} and ended_at is null
      and not exists (
        select 1 from ${jobs} where batch_id = ${batchId} and status not in (${sql.join(
          TERMINAL_STATUSES.map((status) => sql`${status}`),
          sql`, `,
        )}))`);
}

/**
 * Non-terminal jobs, `limit` at a time in id order: candidates for reconciliation. Pass the last id
 * of a page as `afterId` for the next one.
 */
export async function listUnfinishedJobs(db: Database, limit: number, afterId?: string): Promise<JobRow[]> {
  return db
    .select()
    .from(jobs)
    .where(and(notInArray(jobs.status, [...TERMINAL_STATUSES]), afterId ? gt(jobs.id, afterId) : undefined))
    .orderBy(asc(jobs.id))
    .limit(limit);
}

/** What an `output` event says about one media row (outputEventJson is the same in SQL). */
export function outputEventData(row: MediaRow): Record<string, unknown> {
  return {
    index: row.outputIndex,
    status: row.status,
    s3_key: row.s3Key,
    attempts: row.attempts,
    error_message: row.errorMessage,
  };
}

/** outputEventData built in SQL from `row`, a relation with media's columns (one round trip instead of two). */
export function outputEventJson(row: SQL): SQL {
  return sql`jsonb_build_object('index', ${row}.output_index, 'status', ${row}.status, 's3_key', ${row}.s3_key, 'attempts', ${row}.attempts, 'error_message', ${row}.error_message)`;
}

/** Unfinished (PENDING or PROCESSING) jobs of one owner. */
export async function countRunningJobs(db: Database, owner: string): Promise<number> {
  const [row] = await db
    .select({ running: count() })
    .from(jobs)
    .where(and(eq(jobs.owner, owner), inArray(jobs.status, ['PENDING', 'PROCESSING'])));
  return row?.running ?? 0;
}

/** Jobs per status, for the jobs gauge. */
export async function countJobsByStatus(db: Database): Promise<Array<{ status: JobStatus; jobs: number }>> {
  return db.select({ status: jobs.status, jobs: count() }).from(jobs).groupBy(jobs.status);
}

export interface QueueEstimate {
  /** 1 for the next job to start: the PENDING jobs that go before this one, plus one. */
  position: number;
  /** Jobs started per second over the last five minutes, across every worker. */
  startsPerSecond: number;
}

/** The Temporal priority key of a priority column, in SQL (constants of the code, not input). */
function priorityKeyOf(column: typeof jobs.priority): SQL {
  const cases = JOB_PRIORITIES.map((priority) => sql.raw(`when '${priority}' then ${PRIORITY_KEYS[priority]}`));
  return sql`(case ${column} ${sql.join(cases, sql` `)} end)`;
}

/** How long one process reuses the start rate it read: a five-minute average moves little in that time. */
export const START_RATE_REUSE_MS = 5_000;
const START_RATE_WINDOW_SECONDS = 300;

/** The start rate each database handle last read, and when; a read in flight is shared by the polls asking meanwhile. */
const startRates = new WeakMap<Database, { readAt: number; rate: Promise<number> }>();

/**
 * Jobs started per second over the last five minutes, across every worker: read at most once per
 * START_RATE_REUSE_MS per process (every PENDING job's status poll needs it), from the
 * `jobs_started_at_idx` index rather than the whole table.
 */
export function recentStartRate(db: Database, now = Date.now()): Promise<number> {
  const cached = startRates.get(db);
  if (cached && now - cached.readAt < START_RATE_REUSE_MS) return cached.rate;
  const rate = db
    .execute<{ started: string }>(
      sql`select count(*) as started from ${jobs}
          where started_at > now() - ${sql.raw(String(START_RATE_WINDOW_SECONDS))} * interval '1 second'`,
    )
    .then((result) => Number(result.rows[0]?.started ?? 0) / START_RATE_WINDOW_SECONDS);
  startRates.set(db, { readAt: now, rate });
  // A failed read is not kept: the next poll reads again.
  rate.catch(() => {
    if (startRates.get(db)?.rate === rate) startRates.delete(db);
  });
  return rate;
}

/**
 * Where a PENDING job stands: what the rows know (jobs ahead of it, how fast jobs started lately).
 * Ahead of it are the PENDING jobs of a more urgent priority, and those of its own submitted before
 * it: a batch's jobs, submitted at one instant, in the order of its items (their workflows start
 * in that order). How fairness interleaves the keys is not counted.
 */
export async function queueEstimate(
  db: Database,
  job: Pick<JobRow, 'id' | 'createdAt' | 'priority' | 'batchIndex'>,
): Promise<QueueEstimate> {
  let statement = jobsAheadStatements.get(db);
  if (!statement) jobsAheadStatements.set(db, (statement = prepareJobsAhead(db)));
  const [ahead, startsPerSecond] = await Promise.all([
    statement.execute({
      priorityKey: PRIORITY_KEYS[job.priority],
      priority: job.priority,
      createdAt: job.createdAt.toISOString(),
      batchIndex: job.batchIndex ?? -1,
      id: job.id,
    }),
    recentStartRate(db),
  ]);
  return { position: (ahead[0]?.ahead ?? 0) + 1, startsPerSecond };
}

/** The count of a PENDING job's status poll: prepared once per connection, as getJob is. */
function prepareJobsAhead(db: Database) {
  return db
    .select({ ahead: count() })
    .from(jobs)
    .where(
      sql`${jobs.status} = 'PENDING' and (${priorityKeyOf(jobs.priority)} < ${sql.placeholder('priorityKey')}::int
        or (${jobs.priority} = ${sql.placeholder('priority')}
          and (${jobs.createdAt}, coalesce(${jobs.batchIndex}, -1), ${jobs.id})
            < (${sql.placeholder('createdAt')}::timestamptz, ${sql.placeholder('batchIndex')}::int, ${sql.placeholder('id')}::uuid)))`,
    )
    .prepare('jobs_ahead_in_queue');
}
const jobsAheadStatements = new WeakMap<Database, ReturnType<typeof prepareJobsAhead>>();
