import { Router, type Request, type Response } from 'express';
import { abortWhen } from '../../common/abort';
import { sseDatabaseConnections } from '../../common/config';
import { isTerminalStatus } from '../../common/statuses';
import { presignedUrl } from '../../common/presigner';
import { JOB_EVENTS_PAGE_SIZE, listJobEvents } from '../../db/queries/events';
import { JobChangeWaiter, type JobChange } from '../../db/job-changes';
import { getJob } from '../../db/queries/jobs';
import type { JobEventRow } from '../../db/schema';
import { callerOf } from '../auth';
import type { ApiDependencies } from '../dependencies';
import { Semaphore, StreamSlots } from '../event-stream-limits';
import { parseJobId, visibleJob } from './jobs';
import { z } from 'zod';
import { common, jobIdParam, problem, security, type OpenApiRegistry } from '../openapi-parts';

export const EVENTS_HEARTBEAT_MS = 15_000;

/**
 * The job's events after `after` from the announcements heard, when they carry every one of them
 * in turn from `after + 1` (those up to `after` were sent already); undefined when the table must
 * be read: after a reconnect, an event too large to announce, or a gap.
 */
export function announcedEvents(
  jobId: string,
  heard: readonly (JobChange | undefined)[],
  after: number,
): JobEventRow[] | undefined {
  const changes: JobChange[] = [];
  for (const change of heard) {
    if (!change) return undefined;
    if (change.seq <= after) continue;
    if (!change.event || (change.type !== 'status' && change.type !== 'output')) return undefined;
    changes.push(change);
  }
  const events: JobEventRow[] = [];
  let next = after + 1;
  for (const change of changes.sort((a, b) => a.seq - b.seq)) {
    if (change.seq < next) continue;
    if (change.seq !== next) return undefined;
    const { createdAt, data } = change.event!;
    events.push({ jobId, seq: change.seq, type: change.type as JobEventRow['type'], data, createdAt });
    next += 1;
  }
  return events;
}

function lastEventId(value: string | undefined): number {
  return value !== undefined && /^\d{1,9}$/.test(value.trim()) ? Number(value) : 0;
}

/**
 * GET /api/v1/jobs/{job_id}/events: Server-Sent Events of the job's recorded changes (`status` and
 * `output`), in order, each with its sequence number as id; ends after the terminal status, or
 * after SSE_MAX_STREAM_SECONDS (having sent what it heard until then). A client that
 * reconnects with Last-Event-ID gets the events after that one; 204 once nothing is left.
 *
 * A stream hears its job's events from the process's change feed (db/job-changes.ts, LISTEN
 * job_events), which carries each event: it costs no query while its job is idle, nor for the
 * changes it hears, and reads the table only when the feed cannot tell it everything (the events
 * before it connected, one too large to announce, a reconnect of the feed).
 *
 * Bounded: SSE_MAX_STREAMS streams in this process and SSE_MAX_STREAMS_PER_KEY per key (429 past
 * either), and every query of every stream waits its turn for one of SSE_DATABASE_CONNECTIONS
 * places, so however many streams read at once, the rest of the pool stays for the other routes.
 */
export function eventsRouter({ config, db, presigner, logger, changes, stopping }: ApiDependencies): Router {
  const router = Router();
  const slots = new StreamSlots(config.SSE_MAX_STREAMS, config.SSE_MAX_STREAMS_PER_KEY);
  const streamDatabase = new Semaphore(sseDatabaseConnections(config));
  const query = <T>(task: () => Promise<T>) => streamDatabase.run(task);
  const lifetimeMs = config.SSE_MAX_STREAM_SECONDS * 1000;

  const eventData = async (event: JobEventRow) => {
    const data: Record<string, unknown> = {
      job_id: event.jobId,
      ...(event.data as Record<string, unknown>),
      at: event.createdAt.toISOString(),
    };
    if (event.type === 'output' && data.status === 'COMPLETED' && typeof data.s3_key === 'string') {
      return { ...data, presigned_media_url: await presignedUrl(presigner, data.s3_key) };
    }
    return data;
  };

  router.get('/api/v1/jobs/:job_id/events', async (req, res) => {
    const jobId = parseJobId(req.params);
    const release = slots.acquire(callerOf(res));
    try {
      await streamEvents(jobId, req, res);
    } finally {
      release();
    }
  });

  async function streamEvents(jobId: string, req: Request, res: Response): Promise<void> {
    // Listening for the hang-up first: `close` is emitted once, and a client may leave while the
    // stream waits for its reads below.
    const closed = new AbortController();
    // A process that begins to shut down ends its streams: each client reconnects (retry: 1000),
    // with Last-Event-ID, to a process that stays.
    const endingController = new AbortController();
    const ending = endingController.signal;
    const detach = abortWhen(stopping, endingController);
    const onClose = () => {
      detach();
      closed.abort();
      endingController.abort();
    };
    req.on('close', onClose);
    res.on('close', onClose);
    const job = await query(() => visibleJob(db, res, jobId));
    let after = lastEventId(
      req.header('last-event-id') ??
        (typeof req.query.last_event_id === 'string' ? req.query.last_event_id : undefined),
    );
    // Listening before the first read: a change committed in between is announced, not missed.
    const changed = new JobChangeWaiter(changes, job.id, undefined, { keep: true });
    try {
      const pending = await query(() => listJobEvents(db, job.id, after));
      if (closed.signal.aborted) return;
      if (pending.length === 0 && isTerminalStatus(job.status)) {
        // Everything up to the end was delivered: 204 tells an EventSource to stop reconnecting.
        res.status(204).end();
        return;
      }
      const endsAt = Date.now() + lifetimeMs;

      res.status(200).set({
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      res.flushHeaders();
      res.write('retry: 1000\n\n');

      const heartbeat = setInterval(() => res.write(': keepalive\n\n'), EVENTS_HEARTBEAT_MS);
      try {
        let batch = pending;
        // Whether the latest status sent is terminal: a retried job's history holds the end of each
        // run before it, and only the last status says whether the job has ended.
        let ended = false;
        while (!closed.signal.aborted) {
          for (const event of batch) {
            res.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(await eventData(event))}\n\n`);
            after = event.seq;
            const status = (event.data as { status?: string }).status;
            if (event.type === 'status' && status) ended = isTerminalStatus(status);
          }
          if (closed.signal.aborted) break;
          if (ending.aborted && !ended) {
            res.write(': this API process is shutting down; reconnect with Last-Event-ID\n\n');
            break;
          }
          // A full page of the table: the rest is read at once, not when the job next changes.
          if (batch.length >= JOB_EVENTS_PAGE_SIZE) {
            batch = await query(() => listJobEvents(db, job.id, after));
            continue;
          }
          if (ended) break;
          const left = endsAt - Date.now();
          if (left <= 0) {
            // What was heard until now was sent: the client reconnects (retry: 1000) with
            // Last-Event-ID and resumes after it, and reads what came since.
            res.write(': stream lifetime reached (SSE_MAX_STREAM_SECONDS); reconnect with Last-Event-ID\n\n');
            break;
          }
          // Idle until the change feed announces this job (no query meanwhile), or the lifetime ends.
          await changed.next(left, ending);
          if (ending.aborted) {
            batch = [];
            continue;
          }
          // The announcements carry the events: read the table only when they do not.
          const announced = announcedEvents(job.id, changed.take(), after);
          if (announced) {
            batch = announced;
            continue;
          }
          batch = await query(() => listJobEvents(db, job.id, after));
          if (batch.length === 0 && !(await query(() => getJob(db, job.id)))) break;
        }
      } catch (error) {
        logger.warn({ err: error, jobId: job.id }, 'event stream ended by an error');
      } finally {
        clearInterval(heartbeat);
        res.end();
      }
    } finally {
      changed.close();
    }
  }

  return router;
}

/** This router's paths in the OpenAPI document (/openapi.json, /docs). */
export function registerEventsPaths(registry: OpenApiRegistry): void {
  registry.registerPath({
    method: 'get',
    path: '/api/v1/jobs/{job_id}/events',
    summary: "Live progress: Server-Sent Events of the job's changes",
    description:
      "Every recorded change, in order: `status` events (`{job_id, status, error_message, at}`) and `output` events (`{job_id, index, status, s3_key, attempts, error_message, at}`, plus `presigned_media_url` once stored). Each event's `id` is its sequence number within the job (1, 2, 3, …). The stream ends after the job's terminal status (its latest status: a retried job's history holds the end of each run before), when SSE_MAX_STREAM_SECONDS pass, or when the API process shuts down; reconnecting with `Last-Event-ID` resumes after that event, and answers 204 when nothing is left. A comment line every 15 s keeps idle connections open.",
    security,
    request: {
      params: jobIdParam,
      headers: z.object({ 'Last-Event-ID': z.string().optional().openapi({ description: 'Resume after this event' }) }),
      query: z.object({
        last_event_id: z
          .string()
          .optional()
          .openapi({ description: 'The same as `Last-Event-ID`, for clients that cannot set headers' }),
      }),
    },
    responses: {
      200: { description: 'The event stream', content: { 'text/event-stream': { schema: z.string() } } },
      204: { description: 'The job has ended and every event up to its end was delivered' },
      ...common,
      429: {
        ...common[429],
        description: `${common[429].description} Also: the caller already has SSE_MAX_STREAMS_PER_KEY streams open, or this API process SSE_MAX_STREAMS.`,
      },
      404: problem("Unknown job, or another key's"),
    },
  });
}
