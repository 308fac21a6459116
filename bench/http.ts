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
  private readonly base: URL;

  constructor(baseUrl: string) {
    this.base = new URL(baseUrl);
  }

  async request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<JsonReply> {
    try {
      return await this.send(method, path, body);
    } catch (error) {
      // A kept-alive connection the server closed as this request went out: the request never
      // reached the application, so it is sent again once on a new connection.
      if ((error as { staleSocket?: boolean }).staleSocket) return this.send(method, path, body);
      throw error;
    }
  }

  private send(method: 'GET' | 'POST', path: string, body?: unknown): Promise<JsonReply> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.base.hostname,
          port: this.base.port || 80,
          method,
          path,
          agent: this.agent,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
          timeout: 30_000,
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
  }
}
