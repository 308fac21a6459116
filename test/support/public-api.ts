import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateApiKey } from '../../common/api-keys';
import type { Database } from '../../db/client';
import { insertApiKey } from '../../db/queries/api-keys';

/** A new API key, stored the way `npm run apikey -- create` stores it. */
export async function createTestKey(
  db: Database,
  name = 'test',
): Promise<{ id: string; key: string; auth: Record<string, string> }> {
  const key = generateApiKey();
  await insertApiKey(db, { id: key.id, name, keyHash: key.keyHash });
  return { id: key.id, key: key.key, auth: { authorization: `Bearer ${key.key}` } };
}

export interface ReceivedWebhook {
  headers: http.IncomingHttpHeaders;
  body: string;
  answeredWith: number;
}

/** A local webhook receiver that answers 500 to its first `failures` requests and 200 afterwards. */
export async function startWebhookReceiver(failures = 0) {
  const received: ReceivedWebhook[] = [];
  let remainingFailures = failures;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const status = remainingFailures > 0 ? 500 : 200;
      if (remainingFailures > 0) remainingFailures--;
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), answeredWith: status });
      res
        .writeHead(status, { 'content-type': 'text/plain' })
        .end(status === 200 ? 'thanks' : 'receiver is down (scripted)');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/media`;
  return {
    url,
    received,
    async waitFor(count: number, timeoutMs = 30_000): Promise<ReceivedWebhook[]> {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`the receiver got ${received.length} of ${count} webhooks`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return received;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * What a receiver does (Standard Webhooks), written independently of the service's signer: HMAC-SHA256
 * with the base64-decoded secret over "{id}.{timestamp}.{body}", compared in constant time.
 */
export function verifyWebhook(
  secret: string,
  headers: http.IncomingHttpHeaders,
  body: string,
  toleranceSeconds = 300,
): boolean {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const key = Buffer.from(secret.split('_')[1]!, 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.split(' ').some((entry) => {
    const [version, signature] = entry.split(',');
    const given = Buffer.from(signature ?? '', 'base64');
    return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

export interface ServerSentEvent {
  id?: string;
  event?: string;
  data: string;
}

/**
 * Reads a Server-Sent Events stream until it ends, `stopAfter` events arrived, or the timeout.
 * Returns the events and the response status.
 */
export async function readEvents(
  url: string,
  options: { headers?: Record<string, string>; stopAfter?: number; timeoutMs?: number } = {},
): Promise<{ status: number; contentType: string | null; events: ServerSentEvent[]; ended: boolean }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 30_000);
  const events: ServerSentEvent[] = [];
  let ended = false;
  try {
    const response = await fetch(url, {
      headers: { accept: 'text/event-stream', ...options.headers },
      signal: controller.signal,
    });
    if (!response.body)
      return { status: response.status, contentType: response.headers.get('content-type'), events, ended: true };
    const decoder = new TextDecoder();
    let buffer = '';
    const reader = response.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      buffer += decoder.decode(value, { stream: true });
      let boundary: number;
      while ((boundary = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        const event: ServerSentEvent = { data: '' };
        let hasData = false;
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const [field, ...rest] = line.split(':');
          const value = rest.join(':').replace(/^ /, '');
          if (field === 'id') event.id = value;
          else if (field === 'event') event.event = value;
          else if (field === 'data') {
            event.data += (hasData ? '\n' : '') + value;
            hasData = true;
          }
        }
        if (hasData) events.push(event);
      }
      if (options.stopAfter !== undefined && events.length >= options.stopAfter) {
        controller.abort();
        break;
      }
    }
    return { status: response.status, contentType: response.headers.get('content-type'), events, ended };
  } catch (error) {
    if ((error as Error).name === 'AbortError')
      return { status: 200, contentType: 'text/event-stream', events, ended: false };
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
