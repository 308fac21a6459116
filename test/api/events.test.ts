import { poolOf } from '../../db/client';
import { createJob } from '../../db/queries/jobs';
import { readEvents } from '../support/public-api';
import { getJson, postJson, validRequest } from '../support/stack';
import { useTestStack } from '../support/use-stack';

/** GET /api/v1/jobs/{id}/events: Server-Sent Events that end at the terminal state and resume with Last-Event-ID. */
describe('job events (SSE)', () => {
  // Predictions take 2 s, so a client connects while the job is still moving.
  const stack = useTestStack({ env: { FAKE_PROVIDER_LATENCY_MS: '2000' } });

  it('streams status and output changes, resumes after a disconnect with Last-Event-ID, and ends at the terminal state', async () => {
    const reply = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, num_outputs: 2 });
    const jobId = reply.body!.job_id as string;
    const url = `${stack.baseUrl}/api/v1/jobs/${jobId}/events`;

    // First connection: leave after two events (PENDING, PROCESSING), mid-job.
    const first = await readEvents(url, { stopAfter: 2 });
    expect(first.status).toBe(200);
    expect(first.contentType).toMatch(/^text\/event-stream/);
    expect(first.events.map((event) => [event.id, event.event, JSON.parse(event.data).status])).toEqual([
      ['1', 'status', 'PENDING'],
      ['2', 'status', 'PROCESSING'],
    ]);
    expect((await getJson(stack.baseUrl, `/api/v1/status/${jobId}`)).body!.status).toBe('PROCESSING');

    // Reconnect where it left off: the rest, through the terminal state, and then the stream ends.
    const rest = await readEvents(url, { headers: { 'Last-Event-ID': first.events.at(-1)!.id! } });
    expect(rest.ended).toBe(true);
    const ids = rest.events.map((event) => Number(event.id));
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, index) => index + 3));
    const last = rest.events.at(-1)!;
    expect(last.event).toBe('status');
    expect(JSON.parse(last.data)).toMatchObject({ job_id: jobId, status: 'COMPLETED', error_message: null });
    const outputs = rest.events
      .filter((event) => event.event === 'output')
      .map((event) => JSON.parse(event.data) as Record<string, any>);
    // Small outputs are stored in one local attempt each: PENDING, then COMPLETED, one event.
    for (const index of [0, 1]) {
      const ofOutput = outputs.filter((output) => output.index === index).map((output) => output.status);
      expect(ofOutput).toEqual(['COMPLETED']);
    }
    const stored = outputs.find((output) => output.status === 'COMPLETED')!;
    expect(stored.s3_key).toMatch(new RegExp(`^jobs/${jobId}/output-\\d\\.png$`));
    expect((await fetch(stored.presigned_media_url)).status).toBe(200);
    expect((await getJson(stack.baseUrl, `/api/v1/status/${jobId}`)).body!.status).toBe('COMPLETED');

    // Nothing left after the terminal event: 204, which tells an EventSource to stop reconnecting.
    const done = await readEvents(url, { headers: { 'Last-Event-ID': last.id! } });
    expect(done.status).toBe(204);
    // A new client after the end gets the whole history, the same events.
    const replayed = await readEvents(url);
    expect(replayed.events.map((event) => event.id)).toEqual(
      [...first.events, ...rest.events].map((event) => event.id),
    );
    expect(replayed.events.map((event) => event.data.replace(/"presigned_media_url":"[^"]*"/, ''))).toEqual(
      [...first.events, ...rest.events].map((event) => event.data.replace(/"presigned_media_url":"[^"]*"/, '')),
    );
  });

  it('writes the changes it hears from the change feed without reading them back', async () => {
    // Every read of job_events through the stack's pool: the API's streams are its only readers.
    const pool = poolOf(stack.database.db);
    const query = pool.query;
    const eventReads: string[] = [];
    pool.query = function (this: typeof pool, ...args: Parameters<typeof pool.query>) {
      const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string }).text;
      if (text && /^select\b[\s\S]*\bfrom "job_events"/i.test(text)) eventReads.push(text);
      return (query as (...args: unknown[]) => unknown).apply(this, args);
    } as typeof pool.query;
    try {
      const reply = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, num_outputs: 3 });
      const jobId = reply.body!.job_id as string;
      const followed = await readEvents(`${stack.baseUrl}/api/v1/jobs/${jobId}/events`);
      expect(followed.ended).toBe(true);
      expect(followed.events.map((event) => event.event)).toEqual([
        'status',
        'status',
        'output',
        'output',
        'output',
        'status',
      ]);
      // One read when the stream opened (what was recorded before it listened); none for the
      // four changes it heard while the job ran.
      expect(eventReads).toHaveLength(1);
    } finally {
      pool.query = query;
    }
  });

  it('streams a history longer than one read of the table, through its terminal event', async () => {
    // A job with 601 events before its end (an output retried for hours records one per attempt).
    const job = await createJob(stack.database.db, {
      model: 'a/b',
      prompt: 'a long history',
      numOutputs: 1,
      seed: 1,
      outputFormat: 'png',
    });
    await poolOf(stack.database.db).query(
      `insert into job_events (job_id, seq, type, data)
       select $1, seq, 'status', '{"status":"PROCESSING"}'::jsonb from generate_series(2, 601) as seq`,
      [job.id],
    );
    await poolOf(stack.database.db).query(
      `with ended as (update jobs set status = 'COMPLETED', event_seq = 602 where id = $1 returning id)
       insert into job_events (job_id, seq, type, data) select id, 602, 'status', '{"status":"COMPLETED"}'::jsonb from ended`,
      [job.id],
    );
    const followed = await readEvents(`${stack.baseUrl}/api/v1/jobs/${job.id}/events`, { timeoutMs: 10_000 });
    expect(followed.ended).toBe(true);
    expect(followed.events.map((event) => Number(event.id))).toEqual(Array.from({ length: 602 }, (_, i) => i + 1));
  });

  it('answers 404 for an unknown job', async () => {
    const reply = await readEvents(`${stack.baseUrl}/api/v1/jobs/00000000-0000-4000-8000-000000000000/events`, {
      timeoutMs: 5_000,
    });
    expect(reply.status).toBe(404);
  });
});
