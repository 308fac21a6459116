import { Client } from 'pg';

/** One announcement: the event's sequence number, its type, and for a status event the new status. */
export interface JobChange {
  seq: number;
  /** Undefined in announcements of the older "{job_id}:{seq}" form. */
  type?: string;
  status?: string;
  /** The event's row as written (migration 0015); undefined when it was too large to announce. */
  event?: { createdAt: Date; data: unknown };
}

/**
 * "{job_id}:{seq}:{type}:{status}:{json}" (migration 0015), or one of the older forms it extends:
 * "{job_id}:{seq}:{type}:{status}" (0013) and "{job_id}:{seq}" (0004). Undefined when it is none.
 */
export function parseAnnouncement(payload: string): { jobId: string; change: JobChange } | undefined {
  // The event's JSON has colons of its own: the fields are the first four, the JSON all the rest.
  const [jobId, seq, type, status, ...rest] = payload.split(':');
  const json = rest.join(':');
  if (!jobId || !seq || !/^\d+$/.test(seq)) return undefined;
  const change: JobChange = { seq: Number(seq), type: type || undefined, status: status || undefined };
  if (json) {
    try {
      const { at, data } = JSON.parse(json) as { at?: unknown; data?: unknown };
      if (typeof at === 'number' && data !== undefined) change.event = { createdAt: new Date(at), data };
    } catch {
      // Not an event this process can read: its subscribers read it from the table instead.
    }
  }
  return { jobId, change };
}

/** Called when a job may have new events: with what was announced, or with nothing after a reconnect. */
export type JobChangeListener = (change?: JobChange) => void;

export interface JobChangesOptions {
  url: string;
  /** Connection trouble of the listening connection: logged by the caller, handled here. */
  onError?: (error: Error) => void;
  /** First delay before reconnecting; doubles up to 5 s. */
  reconnectDelayMs?: number;
  /**
   * How often the listening connection is asked a `select 1`, and how long it has to answer: a
   * connection that a NAT or a load balancer dropped while idle raises no error (an AWS NLB drops
   * idle flows after 350 s), and would hear nothing from then on. Default 30 s and 10 s.
   */
  livenessIntervalMs?: number;
  livenessTimeoutMs?: number;
}

const CHANNEL = 'job_events';

/** A listening connection that lasted this long starts the reconnect backoff over when it is lost. */
const STEADY_CONNECTION_MS = 10_000;

/**
 * The change feed of one process: a single connection LISTENs on job_events (each insert into
 * job_events is announced there by a trigger, at commit) and fans each announcement out in memory
 * to the subscribers of that job. Subscribers cost nothing while their job is idle, and any number
 * of them share the one connection. Each time it starts listening (at first, and after it lost its
 * connection and reconnected) it tells every subscriber to read again: what was announced before
 * was heard by no one.
 */
export class JobChanges {
  private readonly listeners = new Map<string, Set<JobChangeListener>>();
  private client: Client | undefined;
  private stopped = false;
  private connected: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private backendPid: number | undefined;
  private livenessTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: JobChangesOptions) {}

  /** The Postgres backend of the listening connection (pg_stat_activity.pid), while connected. */
  get listenerPid(): number | undefined {
    return this.client ? this.backendPid : undefined;
  }

  /** Connects and listens; resolves once listening (or rejects on the first connection's error, and keeps trying). */
  start(): Promise<void> {
    this.connected ??= this.connect(this.firstReconnectDelayMs);
    return this.connected;
  }

  /** The wait before reconnecting a connection that was listening; it doubles while attempts fail, up to 5 s. */
  private get firstReconnectDelayMs(): number {
    return this.options.reconnectDelayMs ?? 250;
  }

  /** Listens to one job's changes until the function returned is called. */
  subscribe(jobId: string, listener: JobChangeListener): () => void {
    let set = this.listeners.get(jobId);
    if (!set) this.listeners.set(jobId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(jobId) === set) this.listeners.delete(jobId);
    };
  }

  /** Subscribers in this process (for metrics and tests). */
  get subscriberCount(): number {
    let count = 0;
    for (const set of this.listeners.values()) count += set.size;
    return count;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.livenessTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  /**
   * Connects and listens, then tells every subscriber to read again: what was announced before it
   * listened (a subscriber that read the table while the process started, or during an outage)
   * was heard by no one. `delayMs`: the wait before the next attempt if this one fails.
   */
  private async connect(delayMs: number): Promise<void> {
    const client = new Client({
      connectionString: this.options.url,
      // TCP keepalive as well, for a peer that is gone (its probes find it within minutes).
      keepAlive: true,
      query_timeout: this.options.livenessTimeoutMs ?? 10_000,
      connectionTimeoutMillis: 10_000,
    });
    client.on('notification', (message) => {
      if (message.channel !== CHANNEL || !message.payload) return;
      // Every event of the database is announced to every process: only those of a job followed here are read.
      if (!this.listeners.has(message.payload.slice(0, message.payload.indexOf(':')))) return;
      const announced = parseAnnouncement(message.payload);
      if (announced) this.announce(announced.jobId, announced.change);
    });
    // A connection that listened a while is replaced after the first delay; one that never got there,
    // or dies soon after (a pooler or a proxy resetting it), after a growing one: each reconnect
    // has every subscriber read the table again.
    const listening: { since?: number } = {};
    const nextDelayMs = () =>
      this.client === client && listening.since !== undefined && Date.now() - listening.since >= STEADY_CONNECTION_MS
        ? this.firstReconnectDelayMs
        : delayMs;
    client.on('error', (error) => {
      this.options.onError?.(error);
      this.reconnectLater(client, nextDelayMs());
    });
    client.on('end', () => this.reconnectLater(client, nextDelayMs()));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      this.backendPid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid;
    } catch (error) {
      this.options.onError?.(error as Error);
      this.reconnectLater(client, delayMs);
      throw error;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    listening.since = Date.now();
    this.checkLivenessLater(client);
    this.announceToAll();
  }

  /** Asks the listening connection a question now and then; one that does not answer is replaced. */
  private checkLivenessLater(client: Client): void {
    clearTimeout(this.livenessTimer);
    this.livenessTimer = setTimeout(() => {
      if (this.client !== client) return;
      client.query('select 1').then(
        () => this.checkLivenessLater(client),
        (error: Error) => {
          this.options.onError?.(error);
          this.reconnectLater(client, this.firstReconnectDelayMs);
        },
      );
    }, this.options.livenessIntervalMs ?? 30_000);
    // The check never keeps a process alive on its own.
    this.livenessTimer.unref();
  }

  private reconnectLater(client: Client, delayMs: number): void {
    if (this.stopped || (this.client !== client && this.client !== undefined)) return;
    if (this.reconnectTimer) return;
    this.client = undefined;
    void client.end().catch(() => undefined);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect(Math.min(delayMs * 2, 5_000)).catch(() => undefined);
    }, delayMs);
  }

  private announce(jobId: string, change?: JobChange): void {
    for (const listener of [...(this.listeners.get(jobId) ?? [])]) listener(change);
  }

  private announceToAll(): void {
    for (const jobId of [...this.listeners.keys()]) this.announce(jobId);
  }
}

/**
 * Waits for the next announcement of a job, or for `timeoutMs`, or for `signal`: one wake-up at a
 * time, and an announcement that came while nobody waited is not lost (the next wait returns at once).
 * `wakesOn` picks the announcements worth waking for; a reconnect (no announcement) always wakes.
 * With `keep`, the waiter also keeps what woke it, for `take` (a reconnect as undefined).
 */
export class JobChangeWaiter {
  private pending = false;
  private wake: (() => void) | undefined;
  private readonly unsubscribe: () => void;
  private heard: (JobChange | undefined)[] = [];

  constructor(
    changes: JobChanges,
    jobId: string,
    wakesOn: (change: JobChange) => boolean = () => true,
    { keep = false }: { keep?: boolean } = {},
  ) {
    this.unsubscribe = changes.subscribe(jobId, (change) => {
      if (change && !wakesOn(change)) return;
      if (keep) this.heard.push(change);
      this.pending = true;
      this.wake?.();
    });
  }

  /** The announcements kept since the last take, in the order they came. */
  take(): (JobChange | undefined)[] {
    const heard = this.heard;
    this.heard = [];
    return heard;
  }

  /** Resolves true on an announcement, false when the time ran out or the signal fired. */
  async next(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.pending) {
      this.pending = false;
      return true;
    }
    if (signal?.aborted || timeoutMs <= 0) return false;
    return new Promise<boolean>((resolve) => {
      const done = (announced: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.wake = undefined;
        this.pending = false;
        resolve(announced);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.wake = () => done(true);
    });
  }

  close(): void {
    this.unsubscribe();
    this.wake?.();
  }
}
