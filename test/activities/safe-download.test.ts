import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { safeDownload, type SafeDownloadOptions } from '../../activities/safe-download';
import { failure } from '../support/failure';
import { sleep } from '../support/wait';

interface LocalServer {
  url: string;
  port: number;
  requests: string[];
  connections: number;
  close(): Promise<void>;
}

const servers: LocalServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function serve(
  handler: (request: IncomingMessage, response: ServerResponse) => void,
  host = '127.0.0.1',
): Promise<LocalServer> {
  const server = http.createServer((request, response) => {
    local.requests.push(request.url ?? '');
    handler(request, response);
  });
  server.on('connection', () => local.connections++);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  const local: LocalServer = {
    url: `http://${host}:${port}`,
    port,
    requests: [],
    connections: 0,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  servers.push(local);
  return local;
}

const bytes = (length: number) => Buffer.alloc(length, 7);
const options = (overrides: Partial<SafeDownloadOptions> = {}): SafeDownloadOptions => ({
  signal: new AbortController().signal,
  maxBytes: 1_000_000,
  allowPrivate: false,
  ...overrides,
});

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

describe('safe download of provider outputs', () => {
  it('refuses loopback and private addresses, by name or literal, before connecting', async () => {
    const server = await serve((_request, response) => response.end(bytes(10)));
    for (const url of [
      `https://localhost:${server.port}/out.png`,
      `https://127.0.0.1:${server.port}/out.png`,
      `https://[::1]:${server.port}/out.png`,
      `https://[::ffff:127.0.0.1]:${server.port}/out.png`,
      `https://10.1.2.3:${server.port}/out.png`,
    ]) {
      const error = await failure(safeDownload(url, options()));
      expect(error).toMatchObject({ type: 'ForbiddenSource', nonRetryable: true });
      expect(error.message).toMatch(/not (a )?public/);
    }
    expect(server.connections).toBe(0);

    // The same server is reachable once private addresses are allowed: the refusals above were the rule's.
    const allowed = await safeDownload(`${server.url}/out.png`, options({ allowPrivate: true }));
    expect(await readAll(allowed.body)).toEqual(bytes(10));
  });

  it('refuses plain http unless private fetching is allowed', async () => {
    const error = await failure(safeDownload('http://93.184.215.14/out.png', options({ connectTimeoutMs: 500 })));
    expect(error).toMatchObject({ type: 'ForbiddenSource', nonRetryable: true });
    expect(error.message).toMatch(/only https/);
  });

  it('checks every redirect target again', async () => {
    const inside = await serve((_request, response) => response.end(bytes(10)), '127.0.0.2');
    const outside = await serve((_request, response) => {
      response.writeHead(302, { location: `${inside.url}/secret` });
      response.end();
    });
    // 127.0.0.1 stands in for a public address here; 127.0.0.2 for an internal one.
    const onlyOutside = (address: string) => address === '127.0.0.1';
    const error = await failure(
      safeDownload(`${outside.url}/out.png`, options({ allowPrivate: true, isAllowedAddress: onlyOutside })),
    );
    expect(error).toMatchObject({ type: 'ForbiddenSource', nonRetryable: true });
    expect(outside.requests).toEqual(['/out.png']);
    expect(inside.connections).toBe(0);

    const followed = await safeDownload(`${outside.url}/out.png`, options({ allowPrivate: true }));
    expect(await readAll(followed.body)).toEqual(bytes(10));
    expect(inside.requests).toEqual(['/secret']);
  });

  it('follows at most five redirects', async () => {
    const server = await serve((request, response) => {
      response.writeHead(307, { location: `/hop${Number(request.url?.replace(/\D/g, '') || 0) + 1}` });
      response.end();
    });
    const error = await failure(safeDownload(`${server.url}/hop0`, options({ allowPrivate: true })));
    expect(error).toMatchObject({ type: 'ForbiddenSource', nonRetryable: true });
    expect(error.message).toMatch(/more than 5 redirects/);
    expect(server.requests).toHaveLength(6);
  });

  it('refuses an output whose Content-Length is over the cap, before reading it', async () => {
    const server = await serve((_request, response) => {
      response.writeHead(200, { 'content-length': 5_000 });
      response.end(bytes(5_000));
    });
    const error = await failure(
      safeDownload(`${server.url}/big.png`, options({ allowPrivate: true, maxBytes: 1_000 })),
    );
    expect(error).toMatchObject({ type: 'OutputTooLarge', nonRetryable: true });

    const fits = await safeDownload(`${server.url}/big.png`, options({ allowPrivate: true, maxBytes: 5_000 }));
    expect(fits.declaredLength).toBe(5_000);
    expect((await readAll(fits.body)).length).toBe(5_000);
  });

  it('maps 404 and 410 to OutputExpired, and 503 to a retry after Retry-After', async () => {
    let status = 410;
    const server = await serve((_request, response) => {
      response.writeHead(status, status === 503 ? { 'retry-after': '7' } : {});
      response.end();
    });
    for (status of [404, 410]) {
      const error = await failure(safeDownload(`${server.url}/gone.png`, options({ allowPrivate: true })));
      expect(error).toMatchObject({ type: 'OutputExpired', nonRetryable: true });
    }
    status = 503;
    const error = await failure(safeDownload(`${server.url}/busy.png`, options({ allowPrivate: true })));
    expect(error).toMatchObject({ type: 'OutputUnavailable', nonRetryable: false, nextRetryDelay: '7s' });
  });

  it('gives up on a source that goes quiet (idle timeout)', async () => {
    const server = await serve((_request, response) => {
      response.writeHead(200, { 'content-length': 1_000 });
      response.write(bytes(10));
    });
    const download = await safeDownload(`${server.url}/stall.png`, options({ allowPrivate: true, idleTimeoutMs: 300 }));
    const started = Date.now();
    const error = await failure(readAll(download.body));
    expect(error).toMatchObject({ type: 'OutputUnavailable', nonRetryable: false });
    expect(error.message).toMatch(/sent nothing for 0.3s/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('gives up on a source that trickles past the total timeout', async () => {
    const server = await serve((_request, response) => {
      response.writeHead(200);
      const timer = setInterval(() => response.write(bytes(1)), 50);
      response.on('close', () => clearInterval(timer));
    });
    const download = await safeDownload(
      `${server.url}/trickle.png`,
      options({ allowPrivate: true, idleTimeoutMs: 300, totalTimeoutMs: 700 }),
    );
    const error = await failure(readAll(download.body));
    expect(error).toMatchObject({ type: 'OutputUnavailable' });
    expect(error.message).toMatch(/did not finish within 0.7s/);
  });

  it('stops the download when its signal aborts', async () => {
    let serverSawClose = false;
    const server = await serve((_request, response) => {
      response.writeHead(200);
      const timer = setInterval(() => response.write(bytes(100)), 20);
      response.on('close', () => {
        clearInterval(timer);
        serverSawClose = true;
      });
    });
    const controller = new AbortController();
    const download = await safeDownload(
      `${server.url}/endless.png`,
      options({ allowPrivate: true, signal: controller.signal }),
    );
    const reading = failure(readAll(download.body));
    setTimeout(() => controller.abort(new Error('cancelled by the test')), 100);
    expect((await reading).message).toBe('cancelled by the test');
    await sleep(200);
    expect(serverSawClose).toBe(true);
  });
});
