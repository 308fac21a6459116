import { limitSubject, type Caller } from './auth';
import { Problem } from './problem';

/** What a refused stream is told to wait before it tries again. */
export const STREAM_RETRY_AFTER_SECONDS = 5;

/** At most `size` tasks run at once; the others wait their turn, in order. */
export class Semaphore {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly size: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running < this.size) this.running++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      // Hand the place straight to the next waiter, or give it back.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

/**
 * The event streams open in this API process, in total (SSE_MAX_STREAMS) and per key or client
 * address (SSE_MAX_STREAMS_PER_KEY). A stream takes its place before it touches the database.
 */
export class StreamSlots {
  private total = 0;
  private readonly perKey = new Map<string, number>();

  constructor(
    private readonly maxStreams: number,
    private readonly maxStreamsPerKey: number,
  ) {}

  get open(): number {
    return this.total;
  }

  /** Takes a place for a stream of this caller, or throws the 429 naming the limit; the function returned gives it back (once). */
  acquire(caller: Caller): () => void {
    const subject = limitSubject(caller);
    const ofKey = this.perKey.get(subject.key) ?? 0;
    const headers = { 'Retry-After': String(STREAM_RETRY_AFTER_SECONDS) };
    if (ofKey >= this.maxStreamsPerKey) {
      throw new Problem(
        429,
        'Too many event streams',
        `${subject.name} already has ${ofKey} event streams open, the most allowed at once (SSE_MAX_STREAMS_PER_KEY=${this.maxStreamsPerKey}); close one, or retry in ${STREAM_RETRY_AFTER_SECONDS} s.`,
        { headers },
      );
    }
    if (this.total >= this.maxStreams) {
      throw new Problem(
        429,
        'Too many event streams',
        `This API process already has ${this.total} event streams open, the most it serves at once (SSE_MAX_STREAMS=${this.maxStreams}); retry in ${STREAM_RETRY_AFTER_SECONDS} s, or poll GET /api/v1/status/{job_id}.`,
        { headers },
      );
    }
    this.total++;
    this.perKey.set(subject.key, ofKey + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.perKey.get(subject.key) ?? 1) - 1;
      if (left > 0) this.perKey.set(subject.key, left);
      else this.perKey.delete(subject.key);
    };
  }
}
