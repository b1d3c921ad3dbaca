/**
 * ZooKeeper 3.8.0 (Debian's) binds its client port before it has loaded its database, and turns
 * a client that connects meanwhile away ("ZooKeeperServer not running"). In the first few tens
 * of milliseconds, before its ZKDatabase exists, that close throws a NullPointerException
 * (ZooKeeperServer.removeCnxn) before it reaches the socket: the TCP connection stays open and is
 * never answered. node-zookeeper-client has no timeout on the handshake, so such a client waits
 * forever. This counts those hung connections in the peer's log since a byte offset, so a test
 * can tell the server bug from a bridge bug.
 *
 * The harness's own readiness probe (a four-letter `srvr` command, logged "Processing srvr
 * command from …") hits the same NullPointerException when it lands in that window: its
 * connection is closed the same way. Those are not sessions, so they are not counted.
 */
import { open, stat } from 'node:fs/promises';
import { peerRecord } from '../peers/endpoints.js';

/** In the NullPointerException's message, once per connection left hanging. */
const LEFT_HANGING = 'ZKDatabase.removeCnxn(';
/** A four-letter command (the harness's readiness probe), once per such connection. */
const FOUR_LETTER = /Processing \w{4} command from/;
/** Logged by ZKDatabase's constructor: from here on the window is closed. */
const DATABASE_EXISTS = 'ZKDatabase - ';

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
    return sessionHits(buf.toString('utf8'));
  } finally {
    await fh.close();
  }
}

/** NullPointerExceptions in the window minus the four-letter probes that landed in it. */
export function sessionHits(log: string): number {
  let hits = 0;
  let probes = 0;
  let dbExists = false;
  for (const line of log.split('\n')) {
    if (line.includes('ZooKeeperServerMain - Starting server')) dbExists = false;
    if (line.includes(DATABASE_EXISTS)) dbExists = true;
    if (line.includes(LEFT_HANGING)) hits++;
    else if (!dbExists && FOUR_LETTER.test(line)) probes++;
  }
  return Math.max(0, hits - probes);
}
