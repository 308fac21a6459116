import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from './wait';

/** A Standard Webhooks secret of the run, for the stacks that send webhooks and the tests that check them. */
export const TEST_WEBHOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

/** A stack's configuration for signed webhooks to a local receiver, retried after 1 s, 2 s, … */
export const WEBHOOKS_TO_LOCAL_RECEIVERS: Record<string, string> = {
  WEBHOOK_SIGNING_SECRET: TEST_WEBHOOK_SECRET,
  MEDIA_FETCH_ALLOW_PRIVATE: 'true',
  WEBHOOK_RETRY_INITIAL_INTERVAL_SECONDS: '1',
};

export interface ReceivedWebhook {
  headers: http.IncomingHttpHeaders;
  body: string;
  answeredWith: number;
}

export type WebhookReceiver = Awaited<ReturnType<typeof startWebhookReceiver>>;

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
    waitFor: (count: number, timeoutMs = 30_000): Promise<ReceivedWebhook[]> =>
      waitFor(`${count} webhooks`, () => received.length >= count && received, timeoutMs).catch((error: Error) => {
        throw new Error(`${error.message}: the receiver got ${received.length}`);
      }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Receivers for the tests of the enclosing describe: each test starts its own, and they close after it. */
export function useWebhookReceivers(): { start(failures?: number): Promise<WebhookReceiver> } {
  const open: WebhookReceiver[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((receiver) => receiver.close()));
  });
  return {
    async start(failures = 0) {
      const receiver = await startWebhookReceiver(failures);
      open.push(receiver);
      return receiver;
    },
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
