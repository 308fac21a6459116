import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { renderImage } from '../../activities/providers/fake-provider';
import type { OutputFormat } from '../../common/statuses';

export interface CreatedPrediction {
  id: string;
  route: 'model' | 'version';
  model?: string;
  version?: string;
  input: Record<string, unknown>;
  cancelAfter?: string;
  createdAt: number;
  canceledAt?: number;
  runMs: number;
  error?: string;
}

export type CreateFault =
  | { status: number; retryAfterSeconds?: number; detail?: string }
  /** The prediction is created, then the connection drops before the answer: the ambiguous case. */
  | { dropAfterCreate: true };

/** What the next predictions do; tests change it between jobs. */
export interface StandInBehaviour {
  runMs: number;
  /** Predictions end `failed` with this error instead of succeeding. */
  predictionError?: string;
  /** Output files answer this status instead of their bytes (410: expired). */
  outputStatus?: number;
  /** Output files are padded with zeros after the image to this many bytes: a large output. */
  outputBytes?: number;
  /** Output files are sent at about this many bytes a second: a slow download. */
  outputBytesPerSecond?: number;
  /** Cancel requests answer this status and cancel nothing (503: Replicate down). */
  cancelStatus?: number;
  /** Every second status poll answers this instead of the prediction (429 with Retry-After, 503). */
  everySecondPollFails?: { status: number; retryAfterSeconds?: number };
}

/**
 * Speaks the part of Replicate's HTTP API the service uses, on 127.0.0.1, and serves the outputs
 * (real images) itself. Records what it was asked, and can be told to misbehave.
 */
export class ReplicateStandIn {
  readonly predictions: CreatedPrediction[] = [];
  /** Every create request that passed the token check, answered or faulted. */
  readonly createCalls: { at: number; status: number }[] = [];
  readonly cancelRequests: string[] = [];
  readonly fileRequests: string[] = [];
  /** Status polls, and how each was answered. */
  readonly pollAnswers: number[] = [];
  behaviour: StandInBehaviour = { runMs: 300 };
  private readonly createFaults: CreateFault[] = [];

  private constructor(
    private readonly server: http.Server,
    readonly token: string,
  ) {}

  static async start(options: { token: string; port?: number }): Promise<ReplicateStandIn> {
    const server = http.createServer();
    const standIn = new ReplicateStandIn(server, options.token);
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      standIn.handle(request, response).catch((error: unknown) => {
        send(response, 500, { title: 'stand-in error', detail: String(error) });
      });
    });
    await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
    return standIn;
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** What REPLICATE_BASE_URL should be. */
  get apiUrl(): string {
    return `${this.origin}/v1`;
  }

  /** The next `count` creates answer `fault` instead of creating anything. */
  failNextCreates(count: number, fault: CreateFault): void {
    for (let i = 0; i < count; i++) this.createFaults.push(fault);
  }

  statusOf(id: string): string | undefined {
    const prediction = this.predictions.find((candidate) => candidate.id === id);
    return prediction && this.describe(prediction).status;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.origin);
    const path = url.pathname;
    if (request.method === 'GET' && path.startsWith('/files/')) return this.serveFile(path, response);
    if (request.headers.authorization !== `Bearer ${this.token}`) {
      return send(response, 401, {
        title: 'Unauthenticated',
        detail: 'You did not pass a valid authentication token',
        status: 401,
      });
    }
    const modelRoute = /^\/v1\/models\/([^/]+)\/([^/]+)\/predictions$/.exec(path);
    if (request.method === 'POST' && (path === '/v1/predictions' || modelRoute)) {
      const body = JSON.parse((await readBody(request)) || '{}') as {
        version?: string;
        input?: Record<string, unknown>;
      };
      return this.create(
        request,
        response,
        modelRoute
          ? { route: 'model', model: `${modelRoute[1]}/${modelRoute[2]}` }
          : { route: 'version', version: body.version },
        body.input,
      );
    }
    const get = /^\/v1\/predictions\/([^/]+)$/.exec(path);
    const cancel = /^\/v1\/predictions\/([^/]+)\/cancel$/.exec(path);
    const id = (get ?? cancel)?.[1];
    const prediction = this.predictions.find((candidate) => candidate.id === id);
    if (!prediction)
      return send(response, 404, {
        title: 'Not found',
        detail: 'The requested resource could not be found.',
        status: 404,
      });
    if (request.method === 'GET' && get) {
      const fault = this.behaviour.everySecondPollFails;
      if (fault && this.pollAnswers.length % 2 === 1) {
        this.pollAnswers.push(fault.status);
        if (fault.retryAfterSeconds !== undefined) response.setHeader('Retry-After', String(fault.retryAfterSeconds));
        return send(response, fault.status, {
          title: 'Injected fault',
          detail: 'the stand-in refuses every second poll',
          status: fault.status,
        });
      }
      this.pollAnswers.push(200);
      return send(response, 200, this.describe(prediction));
    }
    if (request.method === 'POST' && cancel) {
      this.cancelRequests.push(prediction.id);
      if (this.behaviour.cancelStatus)
        return send(response, this.behaviour.cancelStatus, {
          title: 'Injected fault',
          status: this.behaviour.cancelStatus,
        });
      if (!['succeeded', 'failed'].includes(this.describe(prediction).status)) prediction.canceledAt ??= Date.now();
      return send(response, 200, this.describe(prediction));
    }
    send(response, 405, { title: 'Method not allowed', status: 405 });
  }

  private create(
    request: IncomingMessage,
    response: ServerResponse,
    target: Pick<CreatedPrediction, 'route' | 'model' | 'version'>,
    input: Record<string, unknown> | undefined,
  ): void {
    const fault = this.createFaults.shift();
    this.createCalls.push({ at: Date.now(), status: fault && 'status' in fault ? fault.status : 201 });
    if (fault && 'status' in fault) {
      if (fault.retryAfterSeconds !== undefined) response.setHeader('Retry-After', String(fault.retryAfterSeconds));
      return send(response, fault.status, {
        title: 'Injected fault',
        detail: fault.detail ?? `injected ${fault.status}`,
        status: fault.status,
      });
    }
    if (target.route === 'version' && !target.version)
      return send(response, 422, { title: 'Invalid version', detail: 'version is required', status: 422 });
    if (typeof input?.prompt !== 'string')
      return send(response, 422, {
        title: 'Input validation failed',
        detail: '- input.prompt: Invalid type. Expected: string',
        status: 422,
      });
    const cancelAfter = request.headers['cancel-after'];
    const prediction: CreatedPrediction = {
      id: randomUUID().replace(/-/g, '').slice(0, 26),
      ...target,
      input,
      cancelAfter: typeof cancelAfter === 'string' ? cancelAfter : undefined,
      createdAt: Date.now(),
      runMs: this.behaviour.runMs,
      error: this.behaviour.predictionError,
    };
    this.predictions.push(prediction);
    if (fault) return void response.socket?.destroy();
    send(response, 201, this.describe(prediction));
  }

  /** The prediction as Replicate shows it now: starting, then processing, then its end (or its deadline's). */
  private describe(prediction: CreatedPrediction): { status: string } & Record<string, unknown> {
    const now = Date.now();
    const elapsed = now - prediction.createdAt;
    const deadlineMs = parseSeconds(prediction.cancelAfter) * 1000;
    const startingMs = Math.min(prediction.runMs / 5, 500);
    let status: string;
    if (prediction.canceledAt !== undefined)
      status = prediction.canceledAt - prediction.createdAt < startingMs ? 'aborted' : 'canceled';
    else if (elapsed >= deadlineMs && deadlineMs < prediction.runMs)
      status = deadlineMs < startingMs ? 'aborted' : 'canceled';
    else if (elapsed < startingMs) status = 'starting';
    else if (elapsed < prediction.runMs) status = 'processing';
    else status = prediction.error ? 'failed' : 'succeeded';
    const count = Number(prediction.input.num_outputs ?? 1);
    const format = String(prediction.input.output_format ?? 'webp');
    return {
      id: prediction.id,
      model: prediction.model ?? 'stand-in/model',
      version: prediction.version ?? 'hidden',
      input: prediction.input,
      status,
      output:
        status === 'succeeded'
          ? Array.from({ length: count }, (_, index) => `${this.origin}/files/${prediction.id}/${index}.${format}`)
          : null,
      error: status === 'failed' ? prediction.error : null,
      logs: '',
      created_at: new Date(prediction.createdAt).toISOString(),
      urls: {
        get: `${this.apiUrl}/predictions/${prediction.id}`,
        cancel: `${this.apiUrl}/predictions/${prediction.id}/cancel`,
      },
    };
  }

  private async serveFile(path: string, response: ServerResponse): Promise<void> {
    this.fileRequests.push(path);
    const match = /^\/files\/([^/]+)\/(\d+)\.(png|jpg|webp)$/.exec(path);
    const prediction = this.predictions.find((candidate) => candidate.id === match?.[1]);
    if (!match || !prediction) return send(response, 404, { detail: 'no such file' });
    if (this.behaviour.outputStatus)
      return send(response, this.behaviour.outputStatus, { detail: 'this file has expired' });
    const bytes = await renderImage(
      String(prediction.input.prompt),
      Number(prediction.input.seed),
      Number(match[2]),
      match[3] as OutputFormat,
    );
    const { outputBytes = 0, outputBytesPerSecond } = this.behaviour;
    const size = Math.max(bytes.length, outputBytes);
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    if (size === bytes.length && !outputBytesPerSecond) return void response.end(bytes);
    await sendSlowly(response, Buffer.concat([bytes, Buffer.alloc(size - bytes.length)]), outputBytesPerSecond);
  }
}

/** Writes `bytes` in 64 KiB chunks at about `bytesPerSecond`, stopping when the client goes away. */
async function sendSlowly(response: ServerResponse, bytes: Buffer, bytesPerSecond = Infinity): Promise<void> {
  const chunkSize = 64 * 1024;
  for (let offset = 0; offset < bytes.length && !response.destroyed; offset += chunkSize) {
    const chunk = bytes.subarray(offset, offset + chunkSize);
    if (!response.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          response.off('drain', done).off('close', done);
          resolve();
        };
        response.on('drain', done).on('close', done);
      });
    }
    if (Number.isFinite(bytesPerSecond))
      await new Promise((resolve) => setTimeout(resolve, (chunk.length / bytesPerSecond) * 1000));
  }
  response.end();
}

function parseSeconds(value: string | undefined): number {
  const match = /^(\d+)s$/.exec(value ?? '');
  return match ? Number(match[1]) : Infinity;
}

function send(response: ServerResponse, status: number, body: unknown): void {
  if (response.headersSent) return void response.end();
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': status >= 400 ? 'application/problem+json' : 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (text += chunk));
    request.on('end', () => resolve(text));
    request.on('error', reject);
  });
}

// `npx tsx test/support/replicate-stand-in.ts 8787 [token]`: a stand-in for trying the stack by hand.
if (require.main === module) {
  const port = Number(process.argv[2] ?? 8787);
  const token = process.argv[3] ?? 'r8_stand-in-token';
  const runMs = Number(process.argv[4] ?? 3000);
  void ReplicateStandIn.start({ token, port }).then((standIn) => {
    standIn.behaviour = { runMs };
    console.log(`Replicate stand-in on ${standIn.apiUrl} (token ${token}, runs take ${runMs} ms)`);
  });
}
