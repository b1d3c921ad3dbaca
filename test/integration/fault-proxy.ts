/**
 * Fault injection in front of a real server (not a fake of it): an HTTP reverse proxy and a TCP
 * proxy that forward everything to the real server and count what passes. Switched to `fail`,
 * the HTTP proxy answers every request itself with 503 (as an overloaded server or its load
 * balancer does) and the TCP proxy (for gRPC) closes the connections it holds and every new one
 * at once; switched back to `pass`, traffic reaches the real server again. The counts let a test
 * bound the load a client puts on a failing server.
 */
import http from 'node:http';
import net from 'node:net';

export type ProxyMode = 'pass' | 'fail';

export interface HttpCounts {
  /** Requests received, by path without the query (e.g. `/nacos/v1/ns/instance/list`). */
  readonly byPath: Map<string, number>;
  /** Answers of the real server, by status. */
  readonly upstreamStatus: Map<number, number>;
  /** Requests answered 503 by the proxy itself (mode `fail`). */
  injected: number;
  total: number;
}

/** HTTP reverse proxy on 127.0.0.1 to `target` (`host:port`). */
export class FaultHttpProxy {
  mode: ProxyMode = 'pass';
  /** In mode `fail`, only requests whose path matches fail (all when unset). */
  failOnly: RegExp | undefined;
  counts: HttpCounts = { byPath: new Map(), upstreamStatus: new Map(), injected: 0, total: 0 };
  private readonly server: http.Server;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Counts from now on (the previous counts are returned). */
  reset(): HttpCounts {
    const before = this.counts;
    this.counts = { byPath: new Map(), upstreamStatus: new Map(), injected: 0, total: 0 };
    return before;
  }

  /** Requests whose path ends with one of `suffixes`. */
  count(...suffixes: string[]): number {
    let n = 0;
    for (const [p, c] of this.counts.byPath) if (suffixes.some((s) => p.endsWith(s))) n += c;
    return n;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    const counts = this.counts;
    counts.total += 1;
    counts.byPath.set(path, (counts.byPath.get(path) ?? 0) + 1);
    if (this.mode === 'fail' && (this.failOnly === undefined || this.failOnly.test(path))) {
      counts.injected += 1;
      req.resume();
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('injected fault: service unavailable');
      return;
    }
    const up = http.request(
      {
        host: this.target.host,
        port: this.target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: this.agent,
      },
      (upRes) => {
        const status = upRes.statusCode ?? 0;
        counts.upstreamStatus.set(status, (counts.upstreamStatus.get(status) ?? 0) + 1);
        res.writeHead(status, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  }

  async close(): Promise<void> {
    this.agent.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** TCP proxy on 127.0.0.1 to `target` (the gRPC port): counts connections. */
export class FaultTcpProxy {
  private modeValue: ProxyMode = 'pass';
  /** Connections accepted (in either mode). */
  connections = 0;
  /** Connections closed at once because the mode was `fail`. */
  refused = 0;
  private readonly open = new Set<net.Socket>();
  private readonly server: net.Server;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.handle(client));
  }

  get mode(): ProxyMode {
    return this.modeValue;
  }

  /** `fail` also closes every connection open now. */
  set mode(m: ProxyMode) {
    this.modeValue = m;
    if (m === 'fail') for (const s of [...this.open]) s.destroy();
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  private handle(client: net.Socket): void {
    this.connections += 1;
    client.on('error', () => {});
    if (this.modeValue === 'fail') {
      this.refused += 1;
      client.destroy();
      return;
    }
    const up = net.connect(this.target.port, this.target.host);
    up.on('error', () => client.destroy());
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
    this.open.add(client);
    this.open.add(up);
    client.on('close', () => this.open.delete(client));
    up.on('close', () => this.open.delete(up));
    client.pipe(up);
    up.pipe(client);
  }

  async close(): Promise<void> {
    for (const s of this.open) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
