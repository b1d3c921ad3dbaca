/**
 * Smoke test of the real ZooKeeper peer (Debian's 3.8, started by test/peers/global-setup.ts):
 * create a znode with node-zookeeper-client, watch it, see the watch fire; then restart the
 * server through the harness and see the client reconnect.
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { control, hasPeer, peers } from '../peers/endpoints.js';
import { startupWindowHits, zkLogOffset } from './zookeeper-startup-window.js';

// node-zookeeper-client ships no types: the few calls used here.
interface ZkEvent {
  getType(): number;
  getPath(): string;
}
interface ZkClient {
  connect(): void;
  close(): void;
  once(event: 'connected' | 'disconnected' | 'expired', cb: () => void): void;
  getState(): { getName(): string };
  create(path: string, data: Buffer, mode: number, cb: (err: Error | null, path: string) => void): void;
  getData(path: string, watcher: ((e: ZkEvent) => void) | null, cb: (err: Error | null, data: Buffer) => void): void;
  setData(path: string, data: Buffer, cb: (err: Error | null) => void): void;
}
interface ZkModule {
  createClient(connect: string, opts?: { sessionTimeout?: number; spinDelay?: number; retries?: number }): ZkClient;
  CreateMode: { PERSISTENT: number; EPHEMERAL: number };
  Event: { NODE_DATA_CHANGED: number };
}
const zookeeper = createRequire(import.meta.url)('node-zookeeper-client') as ZkModule;

const cb = <T>(fn: (done: (err: Error | null, v?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));

describe.skipIf(!hasPeer('zookeeper'))('ZooKeeper peer', () => {
  let client: ZkClient;
  const root = `/rb-smoke-${process.pid}-${Date.now()}`;
  const connect = async () => {
    const c = zookeeper.createClient(peers().zookeeper.connect, { sessionTimeout: 30_000, spinDelay: 200 });
    const connected = new Promise<void>((resolve) => c.once('connected', resolve));
    c.connect();
    await connected;
    return c;
  };

  beforeAll(async () => {
    client = await connect();
  });

  afterAll(() => client?.close());

  it('answers srvr on the loopback endpoint', () => {
    expect(peers().zookeeper.connect).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('creates a znode and fires a data watch', async () => {
    const created = await cb<string>((d) => client.create(root, Buffer.from('v1'), zookeeper.CreateMode.PERSISTENT, d));
    expect(created).toBe(root);

    let fired!: (e: ZkEvent) => void;
    const watchFired = new Promise<ZkEvent>((r) => (fired = r));
    const data = await cb<Buffer>((d) => client.getData(root, (e) => fired(e), d));
    expect(data.toString()).toBe('v1');

    await cb<void>((d) => client.setData(root, Buffer.from('v2'), d));
    const event = await watchFired;
    expect(event.getType()).toBe(zookeeper.Event.NODE_DATA_CHANGED);
    expect(event.getPath()).toBe(root);
  });

  it('survives a server restart through the harness (outage simulation)', async () => {
    const ctl = control('zookeeper');
    const before = ctl.pid;
    const logAt = await zkLogOffset();
    const disconnected = new Promise<void>((r) => client.once('disconnected', r));
    await ctl.stop();
    await disconnected;
    const reconnected = new Promise<boolean>((r) => client.once('connected', () => r(true)));
    await ctl.start();
    expect(ctl.pid).not.toBe(before);
    // The raw client reconnects within its session, unless it connected while ZooKeeper was
    // still loading its database: then it waits forever on a connection the server dropped
    // without closing (see zookeeper-startup-window.ts; the bridge's session recovers from
    // that, zookeeper-adapter.test.ts). Only that server bug, proven by its log, excuses it.
    const back = await Promise.race([reconnected, new Promise<boolean>((r) => setTimeout(() => r(false), 15_000))]);
    if (!back) {
      expect(
        await startupWindowHits(logAt),
        'the client did not reconnect, and ZooKeeper left no connection hanging while starting',
      ).toBeGreaterThan(0);
      console.log(
        "the client connected in ZooKeeper's start-up window and was left hanging (server bug); a new client reads the data",
      );
      client.close();
      client = await connect();
    }
    const data = await cb<Buffer>((d) => client.getData(root, null, d));
    expect(data.toString()).toBe('v2');
    // The new PID is what teardown will stop.
    expect(control('zookeeper').pid).toBe(ctl.pid);
  });
});
