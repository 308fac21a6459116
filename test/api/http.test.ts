import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { jobs } from '../../db/schema';
import { getJson, postJson, validRequest } from '../support/stack';
import { useTestStack } from '../support/use-stack';

/** The HTTP surface with no worker polling: jobs stay PENDING, so what the API records is what is checked. */
describe('HTTP API', () => {
  const stack = useTestStack({ worker: false });

  async function jobsWithPrompt(prompt: string): Promise<number> {
    return (await stack.database.db.select({ id: jobs.id }).from(jobs).where(eq(jobs.prompt, prompt))).length;
  }

  async function expectProblem(
    response: Response | { status: number; headers: Headers; body?: Record<string, any> },
    status: number,
  ) {
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const body = 'json' in response ? await response.json() : response.body;
    expect(body).toMatchObject({ status, title: expect.any(String), detail: expect.any(String) });
    expect(JSON.stringify(body)).not.toMatch(/at .+\.ts:\d+/);
    return body as Record<string, any>;
  }

  it('accepts a job: 202, PENDING, a Location, and a job row with one media row per output', async () => {
    const prompt = `accepted ${randomUUID()}`;
    const reply = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, prompt, num_outputs: 3 });
    expect(reply.status).toBe(202);
    expect(reply.body).toMatchObject({ job_id: expect.any(String), status: 'PENDING', message: expect.any(String) });
    expect(reply.headers.get('location')).toBe(`/api/v1/status/${reply.body!.job_id}`);
    expect(reply.headers.get('server-timing')).toMatch(/^db;dur=\d+\.\d, temporal;dur=\d+\.\d$/);
    const status = await getJson(stack.baseUrl, `/api/v1/status/${reply.body!.job_id}`);
    expect(status.body).toMatchObject({
      job_id: reply.body!.job_id,
      status: 'PENDING',
      model: validRequest.model,
      prompt,
      num_outputs: 3,
      seed: validRequest.seed,
      output_format: 'png',
      error_message: null,
      retry_count: 0,
      started_at: null,
      completed_at: null,
    });
    expect(status.body!.media).toHaveLength(3);
    expect(status.body!.media[2]).toMatchObject({
      status: 'PENDING',
      presigned_media_url: null,
      s3_key: `jobs/${reply.body!.job_id}/output-2.png`,
    });
  });

  it('fills defaults the earlier service had: one png output and a recorded random seed', async () => {
    const reply = await postJson(stack.baseUrl, '/api/v1/generate', {
      model: 'a/b',
      prompt: `defaults ${randomUUID()}`,
    });
    expect(reply.status).toBe(202);
    const { body } = await getJson(stack.baseUrl, `/api/v1/status/${reply.body!.job_id}`);
    expect(body).toMatchObject({ num_outputs: 1, output_format: 'png', seed: expect.any(Number) });
  });

  it.each([
    ['an unknown field', { extra: 1 }, 'extra', /not a known field/],
    ['a string num_outputs', { num_outputs: '2' }, 'num_outputs', /number/],
    ['too many outputs', { num_outputs: 11 }, 'num_outputs', /10/],
    ['zero outputs', { num_outputs: 0 }, 'num_outputs', /1/],
    ['a fractional seed', { seed: 1.5 }, 'seed', /int/],
    ['a negative seed', { seed: -1 }, 'seed', /0/],
    ['an unknown format', { output_format: 'gif' }, 'output_format', /png/],
    ['a blank prompt', { prompt: '   ' }, 'prompt', /empty/],
    ['an overlong prompt', { prompt: 'x'.repeat(4001) }, 'prompt', /4000/],
    ['a model without an owner', { model: 'flux' }, 'model', /owner\/name/],
    ['a prototype key', JSON.parse('{"__proto__": {"admin": true}}'), '__proto__', /not a known field/],
  ])('rejects %s with a 422 naming the field, and creates nothing', async (_label, change, field, message) => {
    const prompt = typeof change.prompt === 'string' ? change.prompt : `rejected ${randomUUID()}`;
    const reply = await postJson(
      stack.baseUrl,
      '/api/v1/generate',
      JSON.stringify({ ...validRequest, prompt, ...change }),
    );
    const body = await expectProblem(reply, 422);
    expect(body.errors).toEqual(expect.arrayContaining([{ field, message: expect.stringMatching(message) }]));
    expect(body.detail).toContain(field);
    expect(await jobsWithPrompt(prompt)).toBe(0);
  });

  it('names every missing field at once', async () => {
    const body = await expectProblem(await postJson(stack.baseUrl, '/api/v1/generate', {}), 422);
    expect(body.errors.map((error: { field: string }) => error.field).sort()).toEqual(['model', 'prompt']);
  });

  it('answers a JSON request without a body with a 422 naming the missing fields, not a 415', async () => {
    for (const [path, fields] of [
      ['/api/v1/generate', ['model', 'prompt']],
      ['/api/v1/batches', ['jobs']],
    ] as const) {
      const empty = await fetch(`${stack.baseUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      });
      const problem = await expectProblem(empty, 422);
      expect(problem.errors.map((error: { field: string }) => error.field).sort()).toEqual(fields);
      // Nor Content-Length nor Transfer-Encoding, as `curl -X POST` sends it: the same answer.
      const { port } = new URL(stack.baseUrl);
      const raw = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(port), '127.0.0.1', () =>
          socket.end(
            `POST ${path} HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n`,
          ),
        );
        let answer = '';
        socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
        socket.on('end', () => resolve(answer)).on('error', reject);
      });
      expect(raw).toMatch(/^HTTP\/1\.1 422 /);
      const bare = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { errors: { field: string }[] };
      expect(bare.errors.map((error) => error.field).sort()).toEqual(fields);
    }
  });

  it('answers 400 for malformed JSON, 415 for another content type and 413 for a large body', async () => {
    const prompt = `malformed ${randomUUID()}`;
    const malformed = await fetch(`${stack.baseUrl}/api/v1/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"model": "a/b", "prompt": "${prompt}",`,
    });
    await expectProblem(malformed, 400);
    const form = await fetch(`${stack.baseUrl}/api/v1/generate`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ ...validRequest, prompt }),
    });
    expect((await expectProblem(form, 415)).detail).toMatch(/application\/json/);
    const large = await postJson(stack.baseUrl, '/api/v1/generate', {
      ...validRequest,
      prompt,
      padding: 'x'.repeat(70_000),
    });
    await expectProblem(large, 413);
    expect(await jobsWithPrompt(prompt)).toBe(0);
  });

  it('answers 404 problems for unknown jobs, odd ids and unknown routes', async () => {
    await expectProblem(await getJson(stack.baseUrl, `/api/v1/status/${randomUUID()}`), 404);
    await expectProblem(await getJson(stack.baseUrl, '/api/v1/status/not-a-job'), 404);
    await expectProblem(await getJson(stack.baseUrl, '/api/v1/status/%2e%2e%2f'), 404);
    await expectProblem(await postJson(stack.baseUrl, `/api/v1/jobs/${randomUUID()}/cancel`, {}), 404);
    await expectProblem(await getJson(stack.baseUrl, '/api/v2/anything'), 404);
  });

  it('pages through jobs newest first, with a status filter and a cursor', async () => {
    const model = `page/${randomUUID().slice(0, 8)}`;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, model })).body!.job_id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body?: Record<string, any> } = await getJson(
        stack.baseUrl,
        `/api/v1/jobs?status=PENDING&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.body!.jobs.length).toBeLessThanOrEqual(2);
      for (const job of page.body!.jobs) {
        expect(job.status).toBe('PENDING');
        if (job.model === model) seen.push(job.job_id);
      }
      cursor = page.body!.next_cursor;
    } while (cursor && seen.length < 3);
    expect(seen).toEqual([...ids].reverse());
    await expectProblem(await getJson(stack.baseUrl, '/api/v1/jobs?status=DONE'), 422);
    await expectProblem(await getJson(stack.baseUrl, '/api/v1/jobs?cursor=bogus'), 422);
    await expectProblem(await getJson(stack.baseUrl, '/api/v1/jobs?limit=1000'), 422);
  });

  it('reports health and readiness, and serves its OpenAPI document and docs', async () => {
    expect((await getJson(stack.baseUrl, '/healthz')).body).toEqual({ status: 'ok' });
    const ready = await getJson(stack.baseUrl, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', checks: { postgres: 'ok', temporal: 'ok', s3: 'ok' } });
    const openapi = await getJson(stack.baseUrl, '/openapi.json');
    expect(Object.keys(openapi.body!.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/generate',
        '/api/v1/status/{job_id}',
        '/api/v1/jobs',
        '/api/v1/jobs/{job_id}/cancel',
        '/healthz',
        '/readyz',
      ]),
    );
    expect(openapi.body!.components.schemas.GenerateRequest.properties.num_outputs.maximum).toBe(10);
    const docs = await fetch(`${stack.baseUrl}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toMatch(/swagger-ui/i);
  });

  it("declares in /openapi.json the headers of a submit's reply, and the events' query", async () => {
    const reply = await fetch(`${stack.baseUrl}/api/v1/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'wait=1' },
      body: JSON.stringify(validRequest),
    });
    const sent = ['location', 'server-timing', 'preference-applied'].filter((name) => reply.headers.has(name));
    expect(sent).toEqual(['location', 'server-timing', 'preference-applied']);
    const openapi = (await getJson(stack.baseUrl, '/openapi.json')).body!;
    const declared = Object.keys(openapi.paths['/api/v1/generate'].post.responses[String(reply.status)].headers ?? {});
    expect(declared.map((name) => name.toLowerCase())).toEqual(expect.arrayContaining(sent));
    expect(Object.keys(openapi.paths['/api/v1/generate'].post.responses['503'].headers)).toContain('Retry-After');
    const events = openapi.paths['/api/v1/jobs/{job_id}/events'].get.parameters.map((parameter: any) => parameter.name);
    expect(events).toEqual(expect.arrayContaining(['Last-Event-ID', 'last_event_id']));
  });

  it('declares in /openapi.json what the routes that take a JSON body answer to a bad one', async () => {
    const jobId = (await postJson(stack.baseUrl, '/api/v1/generate', validRequest)).body!.job_id as string;
    const openapi = (await getJson(stack.baseUrl, '/openapi.json')).body!;
    const bodies: Array<[string, string | undefined, string]> = [
      ['{"reason": ', 'application/json', 'malformed'],
      ['reason=stop', 'application/x-www-form-urlencoded', 'not JSON'],
      ['{"reason": "stop", "force": true}', 'application/json', 'unknown field'],
      ['{"regenerate": "yes"}', 'application/json', 'not a boolean'],
    ];
    for (const path of ['/api/v1/jobs/{job_id}/cancel', '/api/v1/jobs/{job_id}/retry']) {
      for (const [body, contentType] of bodies) {
        const reply = await fetch(`${stack.baseUrl}${path.replace('{job_id}', jobId)}`, {
          method: 'POST',
          headers: contentType ? { 'content-type': contentType } : {},
          body,
        });
        expect(reply.status).toBeGreaterThanOrEqual(400);
        expect(Object.keys(openapi.paths[path].post.responses)).toContain(String(reply.status));
      }
    }
    // Every /api reply carries the rate limiter's headers while RATE_LIMIT_PER_MINUTE is set.
    for (const path of ['/api/v1/status/{job_id}', '/api/v1/jobs']) {
      expect(Object.keys(openapi.paths[path].get.responses['200'].headers)).toContain('RateLimit-Remaining');
    }
    expect(Object.keys(openapi.paths['/api/v1/jobs'].get.responses)).toContain('503');
  });
});

describe('HTTP API with Temporal unreachable', () => {
  const stack = useTestStack({ worker: false, apiTemporalAddress: '127.0.0.1:1' });

  it('answers 503 to a submission and leaves no job row behind', async () => {
    const prompt = `no temporal ${randomUUID()}`;
    const reply = await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, prompt });
    expect(reply.status).toBe(503);
    expect(reply.headers.get('content-type')).toMatch(/problem\+json/);
    expect(reply.body!.detail).toMatch(/Temporal is unavailable/);
    const rows = await stack.database.db.select().from(jobs).where(eq(jobs.prompt, prompt));
    expect(rows).toHaveLength(0);
  });

  it('is not ready, and says Temporal is what is down', async () => {
    const ready = await getJson(stack.baseUrl, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body!.detail).toBe('Unreachable: temporal.');
    expect(ready.body!.checks).toMatchObject({
      postgres: 'ok',
      s3: 'ok',
      temporal: expect.stringMatching(/^unavailable/),
    });
  });
});
