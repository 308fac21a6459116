import http from 'node:http';

export interface JsonReply {
  status: number;
  body: any;
  headers: http.IncomingHttpHeaders;
}

/**
 * A small JSON client on node:http with keep-alive: lighter than fetch, so the load generator
 * takes less of the CPU it shares with the stack it measures.
 */
export class JsonClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
  /** Event streams hold their connection for as long as they follow: no cap, no reuse. */
  private readonly streamAgent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  private readonly bases: URL[];
  private turn = 0;

  /** Several base URLs (the API processes of a cluster): each request goes to the next, as a round-robin load balancer sends it. */
  constructor(baseUrl: string | string[]) {
    this.bases = (Array.isArray(baseUrl) ? baseUrl : [baseUrl]).map((url) => new URL(url));
  }

  private nextBase(): URL {
    return this.bases[this.turn++ % this.bases.length]!;
  }

  async request(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<JsonReply> {
    try {
      return await this.send(method, path, body, headers);
    } catch (error) {
      // A kept-alive connection the server closed as this request went out: the request never
      // reached the application, so it is sent again once on a new connection.
      if ((error as { staleSocket?: boolean }).staleSocket) return this.send(method, path, body, headers);
      throw error;
    }
  }

  /**
   * Follows a Server-Sent Events stream, handing each event to `onEvent` until it returns true
   * (done), the stream ends, or `signal` fires. Resolves with whether `onEvent` said done.
   */
  followEvents(
    path: string,
    onEvent: (event: { id?: string; event?: string; data: string }) => boolean,
    signal: AbortSignal,
  ): Promise<boolean> {
    const base = this.nextBase();
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: base.hostname, port: base.port || 80, method: 'GET', path, agent: this.streamAgent, signal },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            resolve(false);
            return;
          }
          let buffer = '';
          let done = false;
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buffer += chunk;
            for (let end = buffer.indexOf('\n\n'); end >= 0 && !done; end = buffer.indexOf('\n\n')) {
              const block = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              const fields: { id?: string; event?: string; data: string } = { data: '' };
              for (const line of block.split('\n')) {
                const colon = line.indexOf(':');
                if (colon <= 0) continue;
                const [name, value] = [line.slice(0, colon), line.slice(colon + 1).trimStart()];
                if (name === 'id') fields.id = value;
                else if (name === 'event') fields.event = value;
                else if (name === 'data') fields.data += value;
              }
              if (fields.event && onEvent(fields)) {
                done = true;
                req.destroy();
                resolve(true);
              }
            }
          });
          res.on('end', () => resolve(done));
          res.on('error', () => resolve(done));
        },
      );
      req.on('error', (error) => (signal.aborted ? resolve(false) : reject(error)));
      req.end();
    });
  }

  private send(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    extraHeaders: Record<string, string> = {},
  ): Promise<JsonReply> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const base = this.nextBase();
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: base.hostname,
          port: base.port || 80,
          method,
          path,
          agent: this.agent,
          headers: {
            ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
            ...extraHeaders,
          },
          // A `Prefer: wait` reply may take its whole minute.
          timeout: 75_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              // Not JSON: keep the text for the error message.
            }
            resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on('error', (error: NodeJS.ErrnoException) => {
        reject(req.reusedSocket && error.code === 'ECONNRESET' ? Object.assign(error, { staleSocket: true }) : error);
      });
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
    this.streamAgent.destroy();
  }
}
