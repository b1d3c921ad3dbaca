import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { ConfigError } from '../errors.js';

export interface HealthSource {
  /** Liveness: false when the loop has made no progress for too long. */
  healthy(): { ok: boolean; detail: string };
  /** Readiness: true after the first successful reconcile (and while leading or standing by). */
  ready(): { ok: boolean; detail: string };
}

/** `/healthz`, `/readyz`, `/metrics`. Answers tell why, so `kubectl describe pod` is useful. */
export async function startHttpServer(options: {
  address: string;
  port: number;
  health: HealthSource;
  registry: Registry;
  propagation?: () => unknown;
}): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed\n');
    if (path === '/healthz' || path === '/livez') {
      const h = options.health.healthy();
      return reply(h.ok ? 200 : 503, `${h.ok ? 'ok' : 'unhealthy'}: ${h.detail}\n`);
    }
    if (path === '/readyz') {
      const r = options.health.ready();
      return reply(r.ok ? 200 : 503, `${r.ok ? 'ready' : 'not ready'}: ${r.detail}\n`);
    }
    if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => reply(200, text, options.registry.contentType),
        (err: unknown) => reply(500, `metrics failed: ${(err as Error).message}\n`),
      );
      return;
    }
    if (path === '/propagation') {
      if (!options.propagation)
        return reply(
          404,
          'propagation checks are off: /propagation answers when the configuration sets propagation.enabled: true\n',
        );
      return reply(200, `${JSON.stringify({ unpropagated: options.propagation() }, null, 2)}\n`, 'application/json');
    }
    reply(404, `not found: try /healthz, /readyz, /metrics${options.propagation ? ' or /propagation' : ''}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(listenError(err, options.address, options.port)));
    server.listen(options.port, options.address, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * One line naming the setting: a port another process holds is a failure of this start (exit 1,
 * a restart may succeed); an address that is not this machine's, or a port the process may not
 * open, is a configuration error (exit 2).
 */
function listenError(err: Error, address: string, port: number): Error {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  const where = `${address}:${port}`;
  switch (code) {
    case 'EADDRINUSE':
      return new Error(
        `server.port: ${where} is already in use (EADDRINUSE): another process listens there; stop it, or set another server.port or server.address`,
        { cause: err },
      );
    case 'EACCES':
    case 'EPERM':
      return new ConfigError(
        'server.port',
        `${where}: not allowed to listen on port ${port} (${code}); use a port above 1023`,
        {
          cause: err,
        },
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EINVAL':
      return new ConfigError('server.address', `${where}: "${address}" is not an address of this machine (${code})`, {
        cause: err,
      });
    default:
      return new Error(`server.address/server.port: cannot listen on ${where} (${code}: ${err.message})`, {
        cause: err,
      });
  }
}
