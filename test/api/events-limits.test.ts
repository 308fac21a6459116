import { Client } from 'pg';
import { createTestKey, readEvents, type ServerSentEvent } from '../support/public-api';
import { getJson, postJson, validRequest } from '../support/stack';
import { useTestStack } from '../support/use-stack';
import { sleep } from '../support/wait';

interface OpenStream {
  status: number;
  headers: Headers;
  /** The first event of a 200 stream; the problem body of a refusal. */
  first: string;
  /** The ids of the events received so far. */
  ids: number[];
  close(): void;
}

const eventIds = (text: string) => [...text.matchAll(/(?:^|\n)id: (\d+)\n/g)].map((match) => Number(match[1]));

/** Opens an event stream and keeps it open: reads up to its first event (or the whole refusal). */
async function openStream(url: string, headers: Record<string, string>): Promise<OpenStream> {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  });
  if (response.status !== 200) {
    return {
      status: response.status,
      headers: response.headers,
      first: await response.text(),
      ids: [],
      close: () => controller.abort(),
    };
  }
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  while (!/(^|\n)id: \d+\n[\s\S]*?\n\n/.test(buffer)) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
  }
  const stream = { status: 200, headers: response.headers, first: buffer, ids: eventIds(buffer) };
  // Keep reading in the background so that the server's writes never back up, noting each event.
  void (async () => {
    let rest = buffer.slice(buffer.lastIndexOf('\n\n') + 2);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      rest += decoder.decode(value, { stream: true });
      const end = rest.lastIndexOf('\n\n');
      if (end === -1) continue;
      stream.ids.push(...eventIds(rest.slice(0, end + 2)));
      rest = rest.slice(end + 2);
    }
  })().catch(() => undefined);
  return { ...stream, close: () => controller.abort() } as OpenStream;
}

/**
 * SSE_MAX_STREAMS, SSE_MAX_STREAMS_PER_KEY and the streams' own database budget: 300 clients on
 * one job, a pool of 5 connections, and the status route keeps answering.
 */
describe('event stream caps and database budget', () => {
  // No worker: the jobs stay PENDING, so every stream stays open, waiting on the change feed.
  const stack = useTestStack({
    worker: false,
    env: {
      AUTH_MODE: 'required',
      DATABASE_POOL_SIZE: '5',
      SSE_MAX_STREAMS: '310',
      SSE_MAX_STREAMS_PER_KEY: '300',
      SSE_DATABASE_CONNECTIONS: '2',
    },
  });

  it('holds 300 streams on one job while /status answers, and refuses streams past each cap with 429', async () => {
    const streams: OpenStream[] = [];
    try {
      const a = await createTestKey(stack.database.db, 'many-streams');
      const b = await createTestKey(stack.database.db, 'few-streams');
      const jobA = (await postJson(stack.baseUrl, '/api/v1/generate', validRequest, a.auth)).body!.job_id as string;
      const jobB = (await postJson(stack.baseUrl, '/api/v1/generate', validRequest, b.auth)).body!.job_id as string;
      const urlA = `${stack.baseUrl}/api/v1/jobs/${jobA}/events`;
      const urlB = `${stack.baseUrl}/api/v1/jobs/${jobB}/events`;

      // 300 clients at once on one job, and status polls of it while they connect and poll.
      const statusPolls = (async () => {
        const statuses: number[] = [];
        for (let round = 0; round < 20; round++) {
          const replies = await Promise.all(
            Array.from({ length: 5 }, () => getJson(stack.baseUrl, `/api/v1/status/${jobA}`, a.auth)),
          );
          statuses.push(...replies.map((reply) => reply.status));
          await sleep(100);
        }
        return statuses;
      })();
      streams.push(...(await Promise.all(Array.from({ length: 300 }, () => openStream(urlA, a.auth)))));
      expect(streams.map((stream) => stream.status)).toEqual(Array(300).fill(200));
      for (const stream of streams) expect(stream.first).toMatch(/id: 1\nevent: status\ndata: .*"status":"PENDING"/);
      // With every stream open and polling, more status polls.
      const during = await Promise.all(
        Array.from({ length: 20 }, () => getJson(stack.baseUrl, `/api/v1/status/${jobA}`, a.auth)),
      );
      expect([...(await statusPolls), ...during.map((reply) => reply.status)]).toEqual(Array(120).fill(200));
      // The streams alone, their job idle: they wait on the change feed and use no connection at all.
      const pool = stack.database.pool;
      let mostInUse = 0;
      for (const until = Date.now() + 2_000; Date.now() < until; await sleep(2))
        mostInUse = Math.max(mostInUse, pool.totalCount - pool.idleCount);
      expect(mostInUse).toBe(0);
      // The most connections of the pool in use until every stream has received event `seq`.
      const inUseUntilAllHave = async (seq: number) => {
        let most = 0;
        for (const until = Date.now() + 15_000; streams.some((stream) => !stream.ids.includes(seq)); await sleep(1)) {
          if (Date.now() > until) throw new Error(`not every stream received event ${seq}`);
          most = Math.max(most, pool.totalCount - pool.idleCount);
        }
        return most;
      };
      // Changes of the job, written from outside the API's pool.
      const writer = new Client({ connectionString: stack.config.DATABASE_URL });
      await writer.connect();
      const appendStatusEvent = (data: object) =>
        writer.query(
          `with bumped as (update jobs set event_seq = event_seq + 1 where id = $1 returning id, event_seq)
           insert into job_events (job_id, seq, type, data) select id, event_seq, 'status', $2::jsonb from bumped`,
          [jobA, JSON.stringify(data)],
        );
      try {
        // A change reaches all 300 in its announcement: none of them reads the table for it.
        const carried = inUseUntilAllHave(2);
        await appendStatusEvent({ status: 'PENDING', error_message: null });
        expect(await carried).toBe(0);
        // One too large to announce wakes all 300, which read it through SSE_DATABASE_CONNECTIONS only.
        const read = inUseUntilAllHave(3);
        await appendStatusEvent({ status: 'PENDING', error_message: 'x'.repeat(9_000) });
        expect(await read).toBeGreaterThanOrEqual(1);
        expect(await read).toBeLessThanOrEqual(2);
      } finally {
        await writer.end();
      }

      // Past the per-key cap.
      const overKey = await openStream(urlA, a.auth);
      streams.push(overKey);
      expect(overKey.status).toBe(429);
      expect(overKey.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(overKey.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(JSON.parse(overKey.first).detail).toMatch(/300 event streams open.*SSE_MAX_STREAMS_PER_KEY=300/);

      // Another key has its own budget, up to the process's total.
      const ofB = await Promise.all(Array.from({ length: 10 }, () => openStream(urlB, b.auth)));
      streams.push(...ofB);
      expect(ofB.map((stream) => stream.status)).toEqual(Array(10).fill(200));
      const overTotal = await openStream(urlB, b.auth);
      streams.push(overTotal);
      expect(overTotal.status).toBe(429);
      expect(overTotal.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(JSON.parse(overTotal.first).detail).toMatch(/310 event streams open.*SSE_MAX_STREAMS=310/);

      // A client that leaves frees its place.
      streams.shift()!.close();
      let again: OpenStream | undefined;
      for (let attempt = 0; attempt < 50 && again?.status !== 200; attempt++) {
        await sleep(100);
        again = await openStream(urlA, a.auth);
        streams.push(again);
      }
      expect(again!.status).toBe(200);
      expect((await getJson(stack.baseUrl, `/api/v1/status/${jobA}`, a.auth)).status).toBe(200);
    } finally {
      for (const stream of streams) stream.close();
    }
  }, 120_000);
});

/** SSE_MAX_STREAM_SECONDS: a stream ends after its lifetime; the client resumes with Last-Event-ID. */
describe('event stream lifetime', () => {
  // Predictions take 6 s: several stream lifetimes.
  const stack = useTestStack({ env: { FAKE_PROVIDER_LATENCY_MS: '6000', SSE_MAX_STREAM_SECONDS: '2' } });

  it('ends a stream after SSE_MAX_STREAM_SECONDS before the job ends, and a reconnect with Last-Event-ID resumes', async () => {
    const jobId = (await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, num_outputs: 1 })).body!
      .job_id as string;
    const url = `${stack.baseUrl}/api/v1/jobs/${jobId}/events`;

    const first = await readEvents(url, { timeoutMs: 15_000 });
    expect(first.status).toBe(200);
    // The server ended it (not the client's timeout), while the job was still running.
    expect(first.ended).toBe(true);
    expect(first.events.length).toBeGreaterThanOrEqual(1);
    expect(['PENDING', 'PROCESSING']).toContain(JSON.parse(first.events.at(-1)!.data).status);
    expect(['PENDING', 'PROCESSING']).toContain((await getJson(stack.baseUrl, `/api/v1/status/${jobId}`)).body!.status);

    // Reconnect as an EventSource does, until the terminal event (or 204).
    const events: ServerSentEvent[] = [...first.events];
    let reconnects = 0;
    for (;;) {
      const next = await readEvents(url, { headers: { 'Last-Event-ID': events.at(-1)!.id! }, timeoutMs: 15_000 });
      if (next.status === 204) break;
      expect(next.status).toBe(200);
      expect(next.ended).toBe(true);
      reconnects++;
      events.push(...next.events);
      const last = events.at(-1)!;
      if (last.event === 'status' && JSON.parse(last.data).status === 'COMPLETED') break;
      expect(reconnects).toBeLessThan(20);
    }
    expect(reconnects).toBeGreaterThanOrEqual(1);
    // Nothing lost and nothing repeated across the reconnects.
    expect(events.map((event) => Number(event.id))).toEqual(
      Array.from({ length: events.length }, (_, index) => index + 1),
    );
    expect(JSON.parse(events.at(-1)!.data)).toMatchObject({ job_id: jobId, status: 'COMPLETED' });
    // The whole history, read again in one go, is the same events.
    const replayed = await readEvents(url, { timeoutMs: 15_000 });
    expect(replayed.events.map((event) => event.id)).toEqual(events.map((event) => event.id));
  }, 60_000);
});
