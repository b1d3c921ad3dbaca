/**
 * The ZooKeeper session reaches into node-zookeeper-client for its connection's socket (the
 * handshake timeout and the corked writes; the library has no public API for either). Should
 * an upgrade move it, those would silently stop working: this fails instead. No server is
 * needed: a connect attempt to a closed loopback port creates the socket.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { socketOf } from '../../adapters/zookeeper/session.js';

const zk = createRequire(import.meta.url)('node-zookeeper-client') as typeof import('node-zookeeper-client');

describe('node-zookeeper-client internals the session relies on', () => {
  it("keeps the current connection attempt's net.Socket where socketOf looks for it", async () => {
    const client = zk.createClient('127.0.0.1:1', { sessionTimeout: 30_000, spinDelay: 1000, retries: 0 });
    expect(socketOf(client)).toBeUndefined();
    client.connect();
    try {
      await new Promise((r) => setTimeout(r, 20));
      const socket = socketOf(client);
      expect(socket).toBeDefined();
      for (const m of ['cork', 'uncork', 'destroy'] as const) expect(typeof socket![m], m).toBe('function');
      expect(typeof socket!.connecting).toBe('boolean');
      expect(typeof socket!.destroyed).toBe('boolean');
    } finally {
      client.close();
    }
  });
});
