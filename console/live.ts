import { isTerminalStatus } from '../common/statuses';
import { ApiError, problemOf, type ApiClient } from './api';
import { EventStreamParser } from './sse';
import type { OutputEvent, StatusEvent } from './types';

export interface JobEventHandlers {
  status?(event: StatusEvent): void;
  output?(event: OutputEvent): void;
  /** The stream is over: the job ended (`ended`), or it cannot be followed (`lost`, with why). */
  done?(reason: 'ended' | 'lost', error?: Error): void;
}

/**
 * Browsers open at most six HTTP/1.1 connections to one origin, and every open stream holds one:
 * past three, the page's own requests (a cancel, the next page) would wait behind them.
 */
export const MAX_OPEN_STREAMS = 3;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

interface Watch {
  jobId: string;
  handlers: JobEventHandlers;
  /** Aborted when the page stops following the job. */
  controller: AbortController;
  priority: boolean;
  /** Keeps the last event id across turns, so a stream given back resumes where it left off. */
  parser: EventStreamParser;
  /** The current turn's stream; aborted to give its place to a job the user just submitted. */
  turn?: AbortController;
  yielded?: boolean;
}

/**
 * Follows jobs' event streams (GET /api/v1/jobs/{id}/events), at most MAX_OPEN_STREAMS at once;
 * the others wait their turn, newest watch with priority first. A stream that drops is resumed
 * with Last-Event-ID until the job's terminal status arrives.
 */
export class LiveJobs {
  private readonly running = new Set<Watch>();
  private readonly waiting: Watch[] = [];

  constructor(private readonly api: ApiClient) {}

  /** Starts following a job; the function it returns stops. `priority`: ahead of the waiting ones. */
  watch(jobId: string, handlers: JobEventHandlers, options: { priority?: boolean } = {}): () => void {
    const watch: Watch = {
      jobId,
      handlers,
      controller: new AbortController(),
      priority: Boolean(options.priority),
      parser: new EventStreamParser(),
    };
    if (watch.priority) {
      this.waiting.unshift(watch);
      // A job just submitted is followed at once: the oldest ordinary stream gives it its place
      // (jobs that never change, say, could hold every place) and waits for another turn.
      if (this.running.size >= MAX_OPEN_STREAMS) {
        const ordinary = [...this.running].find((candidate) => !candidate.priority && !candidate.yielded);
        if (ordinary) {
          ordinary.yielded = true;
          ordinary.turn?.abort();
        }
      }
    } else this.waiting.push(watch);
    this.next();
    return () => {
      watch.controller.abort();
      const at = this.waiting.indexOf(watch);
      if (at !== -1) this.waiting.splice(at, 1);
    };
  }

  private next(): void {
    while (this.running.size < MAX_OPEN_STREAMS && this.waiting.length > 0) {
      const watch = this.waiting.shift()!;
      this.running.add(watch);
      void this.follow(watch).finally(() => {
        this.running.delete(watch);
        if (watch.yielded && !watch.controller.signal.aborted) {
          watch.yielded = false;
          this.waiting.push(watch);
        }
        this.next();
      });
    }
  }

  private async follow(watch: Watch): Promise<void> {
    const { jobId, handlers, parser } = watch;
    watch.turn = new AbortController();
    const signal = AbortSignal.any([watch.controller.signal, watch.turn.signal]);
    let ended = false;
    let failures = 0;
    while (!signal.aborted && !ended) {
      try {
        // `as RequestInit`: Node's type of it (the unit tests compile this file too) has no `cache`.
        const response = await this.api.request(`/api/v1/jobs/${encodeURIComponent(jobId)}/events`, {
          headers: {
            accept: 'text/event-stream',
            ...(parser.lastEventId ? { 'last-event-id': parser.lastEventId } : {}),
          },
          signal,
          cache: 'no-store',
        } as RequestInit);
        // 204: everything up to the job's end was already delivered.
        if (response.status === 204) break;
        if (response.status === 429 || response.status >= 500) {
          const retryAfter = Number(response.headers.get('retry-after'));
          await sleep((Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : 5) * 1000, signal);
          continue;
        }
        if (!response.ok || !response.body) throw await problemOf(response);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          failures = 0;
          for (const event of parser.push(value)) {
            const data = JSON.parse(event.data) as StatusEvent | OutputEvent;
            if (event.event === 'status') {
              handlers.status?.(data as StatusEvent);
              // The latest status decides: a retried job's history holds the end of the run before it.
              ended = isTerminalStatus((data as StatusEvent).status);
            } else if (event.event === 'output') {
              handlers.output?.(data as OutputEvent);
            }
          }
        }
        if (!ended) await sleep(parser.retryMs ?? 1000, signal);
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ApiError) {
          handlers.done?.('lost', error);
          return;
        }
        // The connection dropped: resume after the last event, backing off while it keeps dropping.
        failures++;
        await sleep(Math.min(10_000, 500 * 2 ** failures), signal);
      }
    }
    if (!signal.aborted) handlers.done?.('ended');
    watch.turn = undefined;
  }
}
