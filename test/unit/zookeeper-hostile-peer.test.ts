/**
 * Something that is not ZooKeeper answering on the configured ZooKeeper address (a proxy, an
 * HTTP server, a half-written frame). node-zookeeper-client throws inside its socket 'data'
 * handler on such bytes (`Unknown code: 1208549393`, a RangeError on a short frame), which ended
 * the whole process. The peers here are plain TCP servers that answer with bytes of their own:
 * hostile endpoints, not stand-ins for ZooKeeper. The session (and the built binary) must survive,
 * fail the reads with an error that names the cause, and count the source error.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { ZkSession, ZkUnavailableError, guardSocketData } from '../../adapters/zookeeper/session.js';
import { zookeeperClient } from '../../src/util/lazy-modules.js';

type Behaviour = 'short-frame' | 'unknown-error-code';

/** A TCP server answering ZooKeeper's handshake with bytes that break node-zookeeper-client's parser. */
async function hostileServer(
  behaviour: Behaviour,
): Promise<{ port: number; answered: () => number; close(): Promise<void> }> {
  let answered = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.once('data', () => {
      answered++;
      if (behaviour === 'short-frame') {
        // A frame that claims 4 bytes: too short for a ConnectResponse (the parser reads past it).
        const b = Buffer.alloc(8);
        b.writeInt32BE(4, 0);
        s.write(b);
        return;
      }
      // A well-formed ConnectResponse (protocol 0, timeout 30 s, session 0, 16-byte password)...
      const r = Buffer.alloc(4 + 4 + 4 + 8 + 4 + 16);
      r.writeInt32BE(r.length - 4, 0);
      r.writeInt32BE(30_000, 8);
      r.writeInt32BE(16, 20);
      s.write(r);
      // ...then every request answered with its own xid and an error code ZooKeeper has not.
      s.on('data', (d: Buffer) => {
        if (d.length < 8) return;
        const h = Buffer.alloc(4 + 16);
        h.writeInt32BE(16, 0);
        h.writeInt32BE(d.readInt32BE(4), 4);
        h.writeInt32BE(1208549393, 16);
        s.write(h);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    answered: () => answered,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function memoryLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  return { logger, lines };
}

describe('ZooKeeper session against an endpoint that does not speak ZooKeeper', () => {
  it('guards the parser node-zookeeper-client binds to each socket (the library shape the guard needs)', () => {
    const client = zookeeperClient().createClient('127.0.0.1:1', {
      sessionTimeout: 30_000,
      spinDelay: 1000,
      retries: 0,
    });
    expect(guardSocketData(client, () => {})).toBe(true);
  });

  for (const behaviour of ['short-frame', 'unknown-error-code'] as const) {
    it(`${behaviour}: reads fail with an error naming the cause; the process goes on`, async () => {
      const server = await hostileServer(behaviour);
      const { logger, lines } = memoryLogger();
      const session = new ZkSession({
        connect: `127.0.0.1:${server.port}`,
        sessionTimeout: 6000,
        requestTimeout: 1500,
        logger: logger as never,
      });
      try {
        const err = await session.getChildren('/dubbo').then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(ZkUnavailableError);
        expect((err as Error).message).toMatch(/not ZooKeeper's protocol/);
        expect(server.answered()).toBeGreaterThan(0);
        const logged = lines.filter((l) => String(l.msg).includes('not the ZooKeeper protocol'));
        expect(logged.length).toBeGreaterThanOrEqual(1);
        expect(logged[0]!.level).toBe(50);
        // A second read, over a new connection, fails the same way: nothing was left broken.
        await expect(session.getChildren('/services')).rejects.toThrow(ZkUnavailableError);
      } finally {
        session.close();
        await server.close();
      }
    });
  }
});

describe('the built binary against an endpoint that does not speak ZooKeeper', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rb-hostile-zk-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('sync keeps running, counts the source error and names the cause', { timeout: 60_000 }, async () => {
    const server = await hostileServer('unknown-error-code');
    const config = join(dir, 'bridge.yaml');
    await writeFile(
      config,
      [
        'sources:',
        '  - name: zk',
        '    kind: zookeeper',
        '    zookeeper:',
        `      connect: 127.0.0.1:${server.port}`,
        '      sessionTimeout: 6s',
        '      requestTimeout: 1s',
        'sink: { kind: files, dir: ' + JSON.stringify(join(dir, 'out')) + ' }',
        'controller: { resyncInterval: 2s }',
        'server: { address: 127.0.0.1, port: 0 }',
        '',
      ].join('\n'),
    );
    const child = spawn(process.execPath, ['dist/registry-bridge.mjs', 'sync', '-c', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const t = setInterval(() => {
          const m = /"port":(\d+)[^\n]*serving \/healthz/.exec(stderr);
          if (m) {
            clearInterval(t);
            resolve(Number(m[1]));
          }
        }, 50);
        void exited.then((code) => {
          clearInterval(t);
          reject(new Error(`exited ${code} before serving:\n${stderr}`));
        });
      });
      // Wait until the bridge has read (and failed) at least twice, each over hostile answers.
      let metrics = '';
      for (;;) {
        metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const m = /registry_bridge_source_errors_total\{source="zk"\} (\d+)/.exec(metrics);
        if (m && Number(m[1]) >= 2) break;
        if (child.exitCode !== null) throw new Error(`the bridge exited ${child.exitCode}:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(server.answered()).toBeGreaterThan(0);
      expect(child.exitCode).toBeNull();
      expect(metrics).toMatch(/registry_bridge_source_up\{source="zk"\} 0/);
      expect(stderr).toContain('not the ZooKeeper protocol');
      expect(stderr).toContain('Unknown code: 1208549393');
      expect(stderr).not.toMatch(/uncaught|at ConnectionManager\./i);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await server.close();
    }
  });
});
