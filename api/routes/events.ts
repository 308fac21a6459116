import { Router } from 'express';
import { isTerminalStatus } from '../../common/statuses';
import { presignedUrl } from '../../common/status-reply';
import { listJobEvents } from '../../db/queries/events';
import { getJob } from '../../db/queries/jobs';
import type { JobEventRow } from '../../db/schema';
import type { ApiDependencies } from '../dependencies';
import { parseJobId, visibleJob } from './jobs';

export const EVENTS_POLL_INTERVAL_MS = 250;
export const EVENTS_HEARTBEAT_MS = 15_000;

function lastEventId(value: string | undefined): number {
  return value !== undefined && /^\d{1,9}$/.test(value.trim()) ? Number(value) : 0;
}

/**
 * GET /api/v1/jobs/{job_id}/events: Server-Sent Events of the job's recorded changes (`status` and
 * `output`), in order, each with its sequence number as id; ends after the terminal status. A
 * client that reconnects with Last-Event-ID gets the events after that one; 204 once nothing is left.
 */
export function eventsRouter({ db, presigner, logger }: ApiDependencies): Router {
  const router = Router();

  const eventData = async (event: JobEventRow) => {
    const data: Record<string, unknown> = { job_id: event.jobId, ...(event.data as Record<string, unknown>), at: event.createdAt.toISOString() };
    if (event.type === 'output' && data.status === 'COMPLETED' && typeof data.s3_key === 'string') {
      return { ...data, presigned_media_url: await presignedUrl(presigner, data.s3_key) };
    }
    return data;
  };

  router.get('/api/v1/jobs/:job_id/events', async (req, res) => {
    const job = await visibleJob(db, res, parseJobId(req.params));
    let after = lastEventId(req.header('last-event-id') ?? (typeof req.query.last_event_id === 'string' ? req.query.last_event_id : undefined));
    const pending = await listJobEvents(db, job.id, after);
    if (pending.length === 0 && isTerminalStatus(job.status)) {
      // Everything up to the end was delivered: 204 tells an EventSource to stop reconnecting.
      res.status(204).end();
      return;
    }

    res.status(200).set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    res.write('retry: 1000\n\n');

    let closed = false;
    req.on('close', () => {
      closed = true;
    });
    const heartbeat = setInterval(() => res.write(': keepalive\n\n'), EVENTS_HEARTBEAT_MS);
    try {
      let batch = pending;
      while (!closed) {
        for (const event of batch) {
          res.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(await eventData(event))}\n\n`);
          after = event.seq;
          const status = (event.data as { status?: string }).status;
          if (event.type === 'status' && status && isTerminalStatus(status)) closed = true;
        }
        if (closed) break;
        await new Promise((resolve) => setTimeout(resolve, EVENTS_POLL_INTERVAL_MS));
        batch = await listJobEvents(db, job.id, after);
        if (batch.length === 0 && !(await getJob(db, job.id))) break;
      }
    } catch (error) {
      logger.warn({ err: error, jobId: job.id }, 'event stream ended by an error');
    } finally {
      clearInterval(heartbeat);
      res.end();
    }
  });

  return router;
}
