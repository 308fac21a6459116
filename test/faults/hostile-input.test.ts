import { Readable } from 'node:stream';
import fc from 'fast-check';
import { LIMITS } from '../../api/schemas';
import { runMarker, waitForJobsToEnd } from '../support/faults';
import { submitJob } from '../support/jobs';
import { getJson, postJson, validRequest } from '../support/stack';
import { useTestStack } from '../support/use-stack';

/** Runs per property; FUZZ_RUNS raises it for a longer hunt. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
/** Each property stops after this long, whatever its runs, so the file stays bounded in time. */
const TIME_LIMIT_MS = Number(process.env.FUZZ_TIME_LIMIT_MS ?? 15_000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
/** A request that takes longer than this is a hang. */
const REQUEST_TIMEOUT_MS = 10_000;

interface Anomaly {
  property: string;
  request: string;
  status: number;
  problem: string;
  body: string;
}

/**
 * Fault family: hostile input. Property-based fuzzing (fast-check) of every endpoint: wrong types,
 * out-of-range numbers, huge and odd strings (unicode, NUL, lone surrogates), unknown and
 * prototype-polluting keys, malformed and deeply nested JSON, wrong content types and encodings,
 * oversize bodies, odd path parameters and query strings. Whatever comes in: never a 5xx, never a
 * hang, every error a problem+json, and nothing created by a request that was refused (every body
 * carries the run's marker, so a row created by a refused request would be found).
 */
describe('faults: hostile input', () => {
  const stack = useTestStack({ env: { FAKE_PROVIDER_LATENCY_MS: '60000' } });
  const marker = runMarker('fuzz');
  const accepted = new Set<string>();
  const anomalies: Anomaly[] = [];
  const statuses = new Map<number, number>();
  let requests = 0;
  /** Jobs that run for a while (slow fake provider), for the cancel endpoint to be fuzzed against. */
  const runningJobs: string[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) {
      const jobId = await submitJob(stack, { prompt: `${marker} running ${i}` });
      accepted.add(jobId);
      runningJobs.push(jobId);
    }
  });

  afterAll(() => {
    const byStatus = [...statuses.entries()]
      .sort(([a], [b]) => a - b)
      .map(([status, count]) => `${status}×${count}`)
      .join(' ');
    const kinds = new Map<string, Anomaly & { count: number }>();
    for (const anomaly of anomalies) {
      const kind = `${anomaly.property} ${anomaly.status} ${anomaly.problem}`;
      const seen = kinds.get(kind);
      if (seen) seen.count++;
      else kinds.set(kind, { ...anomaly, count: 1 });
    }
    const listed = [...kinds.values()]
      .map(
        (kind) =>
          `\n  ${kind.count}× ${kind.property}: ${kind.status} ${kind.problem}; e.g. ${kind.request} → ${kind.body}`,
      )
      .join('');
    console.log(
      `[faults] hostile input (seed ${SEED}): ${requests} fuzzed requests; statuses ${byStatus}; anomalies ${anomalies.length}${listed}`,
    );
  });

  /** Sends one request and checks what every answer must be; records anything else. */
  async function hit(
    property: string,
    method: string,
    path: string,
    init: { body?: string | Uint8Array; headers?: Record<string, string>; chunked?: boolean } = {},
  ) {
    requests++;
    const shown = (text: string) => (text.length > 200 ? `${text.slice(0, 200)}…(${text.length})` : text);
    const label = `${method} ${shown(path)}${init.headers && Object.keys(init.headers).length > 0 ? ` ${JSON.stringify(init.headers)}` : ''}${init.body !== undefined ? ` body ${JSON.stringify(shown(Buffer.from(init.body).toString('latin1')))}` : ''}`;
    let response: Response;
    try {
      response = await fetch(`${stack.baseUrl}${path}`, {
        method,
        headers: init.headers,
        // A stream is sent chunked, without a content-length.
        body:
          init.chunked && init.body !== undefined
            ? (Readable.toWeb(Readable.from([Buffer.from(init.body)])) as ReadableStream)
            : (init.body as string | Uint8Array | undefined),
        ...(init.chunked ? { duplex: 'half' } : {}),
        redirect: 'manual',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      anomalies.push({
        property,
        request: label,
        status: 0,
        problem: `no answer: ${(error as Error).name}: ${(error as Error).message}`,
        body: '',
      });
      return { status: 0, json: undefined as any };
    }
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    const type = response.headers.get('content-type') ?? '';
    // A stream (server-sent events) is not read to its end.
    const text = type.startsWith('text/event-stream') ? (await response.body?.cancel(), '') : await response.text();
    const record = (problem: string) =>
      anomalies.push({ property, request: label, status: response.status, problem, body: text.slice(0, 300) });
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (response.status >= 500) record('a 5xx');
    if (response.status >= 400 && method !== 'HEAD') {
      if (!type.startsWith('application/problem+json'))
        record(`an error that is not problem+json (${type || 'no content type'})`);
      else if (
        !json ||
        json.status !== response.status ||
        typeof json.title !== 'string' ||
        typeof json.detail !== 'string'
      )
        record('a malformed problem');
    }
    if (/\bat [^\s]+ \(?[^\s]+\.(ts|js):\d+/.test(text) || text.includes('node_modules'))
      record('a stack trace in the body');
    if (response.status === 202 && path === '/api/v1/generate' && json?.job_id) accepted.add(json.job_id);
    return { status: response.status, json };
  }

  /** Runs a property with the shared seed, bounded in runs and in time. */
  async function fuzz<T>(
    property: string,
    arbitrary: fc.Arbitrary<T>,
    send: (value: T) => Promise<unknown>,
    runs = RUNS,
  ): Promise<void> {
    await fc.assert(
      fc.asyncProperty(arbitrary, async (value) => {
        await send(value);
      }),
      { numRuns: runs, seed: SEED, plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS)] },
    );
  }

  function expectNoAnomalies(property: string): void {
    const found = anomalies.filter((anomaly) => anomaly.property === property);
    expect(found.slice(0, 5)).toEqual([]);
  }

  // ---------------------------------------------------------------------------------------------
  // Generators

  /** Percent-encodes every UTF-8 byte (encodeURIComponent throws on lone surrogates). */
  const percentEncode = (text: string) =>
    [...Buffer.from(text, 'utf8')].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');

  const oddStrings = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 64 }),
    fc.string({ unit: 'grapheme', maxLength: 32 }),
    fc.constantFrom(
      '',
      ' ',
      '\u0000',
      'a\u0000b',
      '\ud800',
      '\udfff',
      'x\ud83d',
      '\u202e\u202d',
      '\ufeff',
      '\r\n',
      '%00',
      '../../etc/passwd',
      '{{7*7}}',
      "'; drop table jobs; --",
      '<script>',
      'null',
      'undefined',
      'NaN',
    ),
    fc.nat({ max: 20_000 }).map((length) => 'é'.repeat(length)),
    fc.nat({ max: 10_000 }).map((length) => '\u0000'.repeat(length)),
  );
  /** Raw JSON number texts, including ones JavaScript cannot hold. */
  const oddNumberTexts = fc.oneof(
    fc.integer().map(String),
    fc.double().map((value) => (Number.isFinite(value) ? JSON.stringify(value) : '1e400')),
    fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map(String),
    fc.constantFrom(
      '-0',
      '0.0',
      '1e400',
      '-1e400',
      '1e-400',
      '9007199254740993',
      '4294967296',
      '4294967295',
      '11',
      '10',
      '1.5',
      '0',
      '-1',
      '1E2',
    ),
  );
  /** A JSON text for any value, hostile or not. */
  const hostileValueText: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      oddStrings.map((value) => JSON.stringify(value)),
      oddNumberTexts,
      fc.constantFrom('true', 'false', 'null', '[]', '{}'),
      fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
      fc
        .array(fc.tuple(fc.oneof(oddStrings, fc.constantFrom('__proto__', 'constructor', 'prototype')), tie('value')), {
          maxLength: 3,
        })
        .map((entries) => `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`),
    ),
  })).value;
  const knownFields = [
    'model',
    'prompt',
    'num_outputs',
    'seed',
    'output_format',
    'webhook_url',
    'webhook_events_filter',
    'deadline_seconds',
  ];
  const pollutingKeys = [
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'valueOf',
    '__defineGetter__',
  ];
  /** A generate body: each known field absent, valid or hostile, plus unknown and polluting keys; always carries the marker. */
  const generateBodyText = fc
    .record({
      model: fc.oneof(fc.constant(JSON.stringify(validRequest.model)), hostileValueText),
      promptTail: fc.oneof(fc.constant(''), oddStrings),
      promptKind: fc.constantFrom('marker', 'marker', 'marker', 'long'),
      num_outputs: fc.option(fc.oneof(fc.integer({ min: -2, max: 12 }).map(String), oddNumberTexts, hostileValueText)),
      seed: fc.option(fc.oneof(oddNumberTexts, hostileValueText)),
      output_format: fc.option(
        fc.oneof(fc.constantFrom('"png"', '"jpg"', '"webp"', '"gif"', '"PNG"', '"png "'), hostileValueText),
      ),
      // Never a second `prompt`: the last of two keys wins, and a job without the marker would be missed.
      extra: fc.array(
        fc.tuple(
          fc.oneof(
            fc.constantFrom(...pollutingKeys, ...knownFields.filter((field) => field !== 'prompt')),
            oddStrings.filter((key) => key !== 'prompt'),
          ),
          hostileValueText,
        ),
        { maxLength: 3 },
      ),
    })
    .map((body) => {
      const prompt =
        body.promptKind === 'long' ? `${marker} ${'x'.repeat(LIMITS.maxPromptLength)}` : `${marker} ${body.promptTail}`;
      const fields: [string, string][] = [
        ['model', body.model],
        ['prompt', JSON.stringify(prompt)],
      ];
      if (body.num_outputs !== null) fields.push(['num_outputs', body.num_outputs]);
      if (body.seed !== null) fields.push(['seed', body.seed]);
      if (body.output_format !== null) fields.push(['output_format', body.output_format]);
      fields.push(...body.extra);
      return `{${fields.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`;
    });
  const deepJson = fc.oneof(
    fc.integer({ min: 1_000, max: 10_000 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
    fc
      .integer({ min: 1_000, max: 6_000 })
      .map((depth) => `{"prompt":"${marker}","model":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`),
    fc.integer({ min: 100, max: 10_000 }).map((depth) => `${'['.repeat(depth)}`),
  );
  const contentTypes = fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'application/json; charset=utf-16',
    'application/json; charset=latin1',
    'application/json; charset=',
    'application/JSON',
    'application/merge-patch+json',
    'application/problem+json',
    'text/plain',
    'text/json',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=xyz',
    'application/octet-stream',
    '*/*',
    ';;;',
    'application/json, text/plain',
    'application/json; boundary="',
    '',
  );
  const contentEncodings = fc.constantFrom(
    undefined,
    undefined,
    undefined,
    'gzip',
    'deflate',
    'br',
    'identity',
    'x-unknown',
    'gzip, gzip',
  );
  /** Path segments: arbitrary text (encoded), raw odd escapes, traversal, very long. */
  const oddSegment = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 40 }).map(percentEncode),
    fc.uuid(),
    fc.constantFrom(
      '%',
      '%%',
      '%zz',
      '%00',
      '%2F',
      '%2f..%2f',
      '..',
      '.',
      '%2e%2e',
      '%2e%2e%2f%2e%2e',
      '%C0%AF',
      '%ED%A0%80',
      '%FF',
      '%uD800',
      'a%2Fb',
      '\u00e9',
      ';',
      '%3B',
      '*',
      '00000000-0000-0000-0000-000000000000',
      'ffffffff-ffff-ffff-ffff-ffffffffffff',
      'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz',
    ),
    fc.integer({ min: 100, max: 8_000 }).map((length) => 'a'.repeat(length)),
  );
  /** A query string: known and unknown keys, repeated keys, hostile values, odd escapes, extreme cursors. */
  const cursorText = fc
    .tuple(
      fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true }),
      fc.oneof(fc.uuid(), fc.stringMatching(/^[0-9a-f-]{36}$/), oddStrings),
    )
    .map(([date, id]) => Buffer.from(`${date.toISOString()}|${id}`).toString('base64url'));
  const queryText = fc
    .array(
      fc.tuple(
        fc.oneof(
          fc.constantFrom('status', 'limit', 'cursor', 'status[]', '__proto__', 'constructor[prototype]', 'limit[0]'),
          oddStrings.map(percentEncode),
        ),
        fc.oneof(
          fc.constantFrom(
            'PENDING',
            'COMPLETED',
            'pending',
            '',
            '0',
            '-1',
            '101',
            '100',
            '1',
            '1e2',
            '0x10',
            'NaN',
            'Infinity',
            '20.5',
            '%',
            '%00',
          ),
          oddNumberTexts.map(percentEncode),
          oddStrings.map(percentEncode),
          cursorText,
        ),
      ),
      { maxLength: 5 },
    )
    .map((pairs) => pairs.map(([key, value]) => `${key}=${value}`).join('&'));
  const methods = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD');

  // ---------------------------------------------------------------------------------------------
  // Properties

  it('POST /api/v1/generate: hostile JSON bodies', async () => {
    await fuzz('generate-json', fc.oneof(generateBodyText, hostileValueText), (text) =>
      hit('generate-json', 'POST', '/api/v1/generate', { body: text, headers: { 'content-type': 'application/json' } }),
    );
    expectNoAnomalies('generate-json');
  }, 60_000);

  it('POST /api/v1/generate: valid bodies but for one hostile field', async () => {
    const field = fc.oneof(
      oddStrings.map((tail) => ({ prompt: `${marker} ${tail}` })),
      oddStrings.map((model) => ({ model })),
      fc
        .oneof(oddStrings, fc.constantFrom('a/b\u0000', 'a\u0000/b', 'a/b:\u0000', 'owner/name:v1\n'))
        .map((model) => ({ model: `${model}` })),
      oddStrings.map((output_format) => ({ output_format })),
    );
    await fuzz('generate-field', field, (change) =>
      hit('generate-field', 'POST', '/api/v1/generate', {
        body: JSON.stringify({ ...validRequest, prompt: `${marker} field`, ...change }),
        headers: { 'content-type': 'application/json' },
      }),
    );
    expectNoAnomalies('generate-field');
  }, 60_000);

  it('POST /api/v1/generate: malformed and deeply nested JSON, raw bytes, wrong content types and encodings', async () => {
    const rawBody = fc.oneof(
      deepJson,
      generateBodyText.map((text) => text.slice(0, Math.max(1, text.length - 3))),
      generateBodyText.map((text) => `${text}}garbage`),
      generateBodyText.map((text) => `\ufeff${text}`),
      fc
        .uint8Array({ maxLength: 2_048 })
        .map((bytes) => Buffer.concat([Buffer.from(`{"prompt":"${marker}`), Buffer.from(bytes)]).toString('latin1')),
      fc.constantFrom(
        '',
        ' ',
        'null',
        '"just a string"',
        '42',
        'true',
        '[]',
        '{',
        '}',
        '{"a":}',
        `{"prompt":"${marker}\\ud800"}`,
        `{"prompt":"${marker}\\u0000"}`,
      ),
    );
    await fuzz(
      'generate-raw',
      fc.tuple(rawBody, contentTypes, contentEncodings),
      ([body, type, encoding]) =>
        hit('generate-raw', 'POST', '/api/v1/generate', {
          body: Buffer.from(body, 'latin1'),
          headers: { ...(type ? { 'content-type': type } : {}), ...(encoding ? { 'content-encoding': encoding } : {}) },
        }),
      Math.max(100, Math.floor(RUNS / 2)),
    );
    expectNoAnomalies('generate-raw');
  }, 60_000);

  it('POST /api/v1/generate: bodies around and far over the size limit answer 413 above it and nothing is created', async () => {
    await fuzz(
      'generate-size',
      fc.tuple(fc.integer({ min: LIMITS.maxBodyBytes - 200, max: 4 * LIMITS.maxBodyBytes }), fc.boolean()),
      async ([size, chunked]) => {
        const head = `{"model":"a/b","prompt":"${marker}","padding":"`;
        const body = `${head}${'x'.repeat(Math.max(0, size - head.length - 2))}"}`;
        const bytes = Buffer.from(body);
        const reply = await hit('generate-size', 'POST', '/api/v1/generate', {
          body: bytes,
          headers: { 'content-type': 'application/json' },
          chunked,
        });
        // Over the limit: 413. Under it: 422 (padding is not a known field).
        const expected = bytes.length > LIMITS.maxBodyBytes ? 413 : 422;
        if (reply.status !== expected)
          anomalies.push({
            property: 'generate-size',
            request: `${bytes.length} bytes${chunked ? ' chunked' : ''}`,
            status: reply.status,
            problem: `expected ${expected}`,
            body: '',
          });
      },
      40,
    );
    // Far over it: a megabyte and more, announced and not.
    for (const size of [1024 * 1024, 8 * 1024 * 1024]) {
      await hit('generate-size', 'POST', '/api/v1/generate', {
        body: Buffer.alloc(size, 'x'),
        headers: { 'content-type': 'application/json' },
      });
    }
    expectNoAnomalies('generate-size');
  }, 60_000);

  it('GET /api/v1/status/{job_id}: odd job ids', async () => {
    await fuzz('status', oddSegment, (segment) => hit('status', 'GET', `/api/v1/status/${segment}`));
    for (const jobId of runningJobs) expect((await hit('status', 'GET', `/api/v1/status/${jobId}`)).status).toBe(200);
    expectNoAnomalies('status');
  }, 60_000);

  it('GET /api/v1/jobs: hostile query strings and cursors', async () => {
    await fuzz('jobs', queryText, (query) => hit('jobs', 'GET', `/api/v1/jobs?${query}`));
    expectNoAnomalies('jobs');
  }, 60_000);

  it('POST /api/v1/jobs/{job_id}/cancel: odd ids, hostile bodies, and hostile reasons for running jobs', async () => {
    const reasonBody = fc.oneof(
      oddStrings.map((reason) => JSON.stringify({ reason })),
      hostileValueText.map((value) => `{"reason":${value}}`),
      hostileValueText,
      fc.constant(''),
    );
    await fuzz(
      'cancel',
      fc.tuple(
        fc.oneof(oddSegment, fc.constantFrom(...runningJobs)),
        reasonBody,
        fc.constantFrom('application/json', 'application/json', 'text/plain', ''),
      ),
      ([segment, body, type]) =>
        hit('cancel', 'POST', `/api/v1/jobs/${segment}/cancel`, {
          body: body || undefined,
          headers: type ? { 'content-type': type } : {},
        }),
    );
    // A reason the database cannot store (NUL) must not leave a job unable to end.
    const target = await postJson(stack.baseUrl, '/api/v1/generate', {
      ...validRequest,
      prompt: `${marker} cancelled with a NUL`,
    });
    accepted.add(target.body!.job_id);
    await hit('cancel', 'POST', `/api/v1/jobs/${target.body!.job_id}/cancel`, {
      body: JSON.stringify({ reason: 'stop\u0000now' }),
      headers: { 'content-type': 'application/json' },
    });
    expectNoAnomalies('cancel');
  }, 60_000);

  it('every other route in /openapi.json, and unknown ones: odd methods, path parameters, queries and bodies', async () => {
    const document = (await getJson(stack.baseUrl, '/openapi.json')).body!;
    const templates = [
      ...Object.keys(document.paths as Record<string, unknown>),
      '/docs/',
      '/api/v2/generate',
      '/api/v1',
      '/',
      '/api/v1/jobs/x/y/z',
    ];
    await fuzz(
      'routes',
      fc.tuple(
        fc.constantFrom(...templates),
        methods,
        fc.array(oddSegment, { minLength: 4, maxLength: 4 }),
        fc.option(queryText),
        fc.option(generateBodyText),
        contentTypes,
      ),
      ([template, method, segments, query, body, type]) => {
        let index = 0;
        const path = template.replace(/\{[^}]+\}/g, () => segments[index++ % segments.length]!);
        const withBody = body !== null && !['GET', 'HEAD'].includes(method);
        return hit('routes', method, `${path}${query ? `?${query}` : ''}`, {
          body: withBody ? body : undefined,
          headers: withBody && type ? { 'content-type': type } : {},
        });
      },
    );
    expectNoAnomalies('routes');
  }, 60_000);

  it('/openapi.json states the limits that the API enforces with 422 and 413', async () => {
    const document = (await getJson(stack.baseUrl, '/openapi.json')).body!;
    const request = document.components.schemas.GenerateRequest;
    expect(request.properties.num_outputs).toMatchObject({ minimum: 1, maximum: LIMITS.maxOutputs });
    expect(request.properties.prompt).toMatchObject({ maxLength: LIMITS.maxPromptLength });
    expect(request.properties.model).toMatchObject({ maxLength: LIMITS.maxModelLength });
    expect(request.properties.seed).toMatchObject({ minimum: 0, maximum: LIMITS.maxSeed });
    expect(request.additionalProperties).toBe(false);
    const generate = document.paths['/api/v1/generate'].post;
    expect(generate.description).toContain(`${LIMITS.maxBodyBytes} bytes`);
    expect(Object.keys(generate.responses)).toEqual(expect.arrayContaining(['413', '422']));
    expect(document.components.schemas.CancelRequest.properties.reason).toMatchObject({
      maxLength: expect.any(Number),
    });
    // Every array and string a client can send is bounded.
    for (const [name, schema] of Object.entries(document.components.schemas as Record<string, any>)) {
      if (!/Request$/.test(name)) continue;
      for (const [field, property] of Object.entries(schema.properties as Record<string, any>)) {
        const bounded =
          property.type === 'array'
            ? 'maxItems' in property
            : property.type === 'string'
              ? 'maxLength' in property || 'enum' in property
              : true;
        expect({ schema: name, field, bounded }).toEqual({ schema: name, field, bounded: true });
      }
    }

    // And the API enforces them.
    const prompt = `${marker} limits`;
    expect(
      (
        await postJson(stack.baseUrl, '/api/v1/generate', {
          ...validRequest,
          prompt,
          num_outputs: LIMITS.maxOutputs + 1,
        })
      ).status,
    ).toBe(422);
    expect(
      (
        await postJson(stack.baseUrl, '/api/v1/generate', {
          ...validRequest,
          prompt: `${prompt} ${'x'.repeat(LIMITS.maxPromptLength)}`,
        })
      ).status,
    ).toBe(422);
    expect(
      (await postJson(stack.baseUrl, '/api/v1/generate', { ...validRequest, prompt, seed: LIMITS.maxSeed + 1 })).status,
    ).toBe(422);
    expect(
      (
        await postJson(
          stack.baseUrl,
          '/api/v1/generate',
          `{"model":"a/b","prompt":"${prompt}","p":"${'x'.repeat(LIMITS.maxBodyBytes)}"}`,
        )
      ).status,
    ).toBe(413);
  });

  it('leaves the books straight: only accepted requests made jobs, and every one of them ends', async () => {
    // Jobs the fuzzing got accepted (valid by chance) are cancelled, so that they end quickly.
    for (const jobId of accepted)
      await postJson(stack.baseUrl, `/api/v1/jobs/${jobId}/cancel`, { reason: 'fuzz run over' });
    const { rows } = await stack.database.pool.query<{ id: string }>(
      `select id from jobs where prompt like $1 || '%'`,
      [marker],
    );
    expect(rows.map((row) => row.id).filter((id) => !accepted.has(id))).toEqual([]);
    expect([...accepted].filter((id) => !rows.some((row) => row.id === id))).toEqual([]);
    // A hostile cancel reason must not leave a job unable to end.
    const ended = await waitForJobsToEnd(stack.database.pool, [...accepted], 30_000);
    expect([...ended.values()].every((entry) => ['CANCELLED', 'COMPLETED'].includes(entry.status))).toBe(true);
    console.log(
      `[faults] hostile input: ${accepted.size} requests were valid by chance and made jobs (all ended); ${anomalies.length} anomalies`,
    );
  }, 60_000);
});
