import type { ChildProcess } from 'node:child_process';
import { resolveBinary } from '../../scripts/binaries';
import { findFreePort, spawnPrefixed, stopProcess, waitForPort } from '../../scripts/processes';

/** Toxiproxy's toxic types that the fault tests use; see https://github.com/Shopify/toxiproxy#toxics */
export type ToxicType = 'latency' | 'bandwidth' | 'slow_close' | 'timeout' | 'reset_peer' | 'slicer' | 'limit_data';

export interface Toxic {
  name?: string;
  type: ToxicType;
  /** downstream: server → client (the default); upstream: client → server. */
  stream?: 'upstream' | 'downstream';
  /** Share of connections the toxic applies to, 0..1. */
  toxicity?: number;
  attributes?: Record<string, number>;
}

/** One TCP proxy: clients connect to `host:port`, which forwards to `upstream` until it is cut. */
export class Proxy {
  constructor(
    private readonly toxiproxy: Toxiproxy,
    readonly name: string,
    readonly upstream: string,
    readonly host: string,
    readonly port: number,
  ) {}

  /** `host:port`, for addresses such as TEMPORAL_ADDRESS. */
  get listen(): string {
    return `${this.host}:${this.port}`;
  }

  /** Cuts the link: open connections are closed and new ones refused, as when a server goes away. */
  async disable(): Promise<void> {
    await this.toxiproxy.api('PATCH', `/proxies/${this.name}`, { enabled: false });
  }

  async enable(): Promise<void> {
    await this.toxiproxy.api('PATCH', `/proxies/${this.name}`, { enabled: true });
  }

  /** Adds a toxic (a flaky link); returns its name for removeToxic. */
  async addToxic(toxic: Toxic): Promise<string> {
    const name = toxic.name ?? `${toxic.type}_${toxic.stream ?? 'downstream'}`;
    await this.toxiproxy.api('POST', `/proxies/${this.name}/toxics`, {
      name,
      type: toxic.type,
      stream: toxic.stream ?? 'downstream',
      toxicity: toxic.toxicity ?? 1,
      attributes: toxic.attributes ?? {},
    });
    return name;
  }

  async removeToxic(name: string): Promise<void> {
    await this.toxiproxy.api('DELETE', `/proxies/${this.name}/toxics/${name}`);
  }

  /** Removes every toxic and enables the proxy again. */
  async heal(): Promise<void> {
    const proxy = (await this.toxiproxy.api('GET', `/proxies/${this.name}`)) as { toxics: { name: string }[] };
    for (const toxic of proxy.toxics) await this.removeToxic(toxic.name);
    await this.enable();
  }
}

/**
 * A Toxiproxy server of the test's own, on a free port, driven through its HTTP API. The binary is
 * the one scripts/provision-binaries.sh keeps as `toxiproxy-server`.
 */
export class Toxiproxy {
  private constructor(
    private readonly process: ChildProcess,
    readonly apiUrl: string,
  ) {}

  static async start(): Promise<Toxiproxy> {
    const port = await findFreePort();
    const child = spawnPrefixed(
      'toxiproxy',
      resolveBinary('toxiproxy-server'),
      ['-host', '127.0.0.1', '-port', String(port)],
      {
        quiet: !process.env.TEST_LOG_LEVEL,
      },
    );
    await waitForPort(port, 'toxiproxy-server', 20_000);
    return new Toxiproxy(child, `http://127.0.0.1:${port}`);
  }

  /** A proxy to `upstream` (`host:port`), listening on a free port of 127.0.0.1. */
  async proxy(name: string, upstream: string): Promise<Proxy> {
    const created = (await this.api('POST', '/proxies', { name, listen: '127.0.0.1:0', upstream, enabled: true })) as {
      listen: string;
    };
    const [host, port] = created.listen.split(':');
    return new Proxy(this, name, upstream, host!, Number(port));
  }

  async api(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(`${this.apiUrl}${path}`, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5_000),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`toxiproxy ${method} ${path} answered ${response.status}: ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  }

  async stop(): Promise<void> {
    await stopProcess(this.process, 5_000);
  }
}

/** A URL with its host and port replaced by a proxy's, e.g. a DATABASE_URL that goes through Toxiproxy. */
export function throughProxy(url: string, proxy: Proxy): string {
  const parsed = new URL(url);
  parsed.hostname = proxy.host;
  parsed.port = String(proxy.port);
  return parsed.toString();
}
