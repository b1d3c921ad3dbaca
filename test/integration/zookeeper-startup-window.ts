/**
 * ZooKeeper 3.8.0 (Debian's) binds its client port before it has loaded its database, and turns
 * a client that connects meanwhile away ("ZooKeeperServer not running"). In the first few tens
 * of milliseconds, before its ZKDatabase exists, that close throws a NullPointerException
 * (ZooKeeperServer.removeCnxn) before it reaches the socket: the TCP connection stays open and is
 * never answered. node-zookeeper-client has no timeout on the handshake, so such a client waits
 * forever. This counts those hung connections in the peer's log since a byte offset, so a test
 * can tell the server bug from a bridge bug.
 */
import { open, stat } from 'node:fs/promises';
import { peerRecord } from '../peers/endpoints.js';

/** In the NullPointerException's message, once per connection left hanging. */
const LEFT_HANGING = 'ZKDatabase.removeCnxn(';

function logFile(): string {
  const file = peerRecord('zookeeper').logFile;
  if (!file) throw new Error('the zookeeper peer record names no log file');
  return file;
}

/** Where the ZooKeeper log ends now (pass it to startupWindowHits later). */
export async function zkLogOffset(): Promise<number> {
  return (await stat(logFile())).size;
}

/** Connections ZooKeeper left open and unanswered while starting, logged after `offset`. */
export async function startupWindowHits(offset: number): Promise<number> {
  const fh = await open(logFile(), 'r');
  try {
    const { size } = await fh.stat();
    const buf = Buffer.alloc(Math.max(0, size - offset));
    await fh.read(buf, 0, buf.length, offset);
    return buf.toString('utf8').split(LEFT_HANGING).length - 1;
  } finally {
    await fh.close();
  }
}
