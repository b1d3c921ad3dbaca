/**
 * ZooKeeper 3.8 from Debian's `zookeeper` package, run as a plain standalone
 * `java ... org.apache.zookeeper.server.ZooKeeperServerMain zoo.cfg` on 127.0.0.1 (no systemd,
 * no zkServer.sh). Readiness is the `srvr` four-letter word (`ruok` answers before it serves).
 * A short tickTime (opts.tickTime / RB_ZOOKEEPER_TICK_MS) gives short sessions for expiry tests;
 * the handle's stop()/start()/restart() simulate an outage.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startManaged, type ManagedHandle } from './lib/managed.js';
import { cacheDir, exists, readMarker, versionEntry, writeMarker } from './lib/paths.js';
import { assertPortsFree, capture, noLog, run, withLock } from './lib/process.js';
import type { InstallResult, Log, StartOptions } from './lib/types.js';

export const NAME = 'zookeeper';
const ZK_JAR = '/usr/share/java/zookeeper.jar';
const LOG_JARS = ['/usr/share/java/slf4j-log4j12.jar', '/usr/share/java/log4j-1.2.jar'];

interface Marker {
  version: string;
  java: string;
  classpath: string[];
}

async function debVersion(pkg: string): Promise<string | null> {
  const r = await capture('dpkg-query', ['-W', '-f=${Status}|${Version}', pkg]);
  if (r.code !== 0) return null;
  const [status, version] = r.stdout.split('|');
  return status?.includes('install ok installed') && version ? version : null;
}

async function aptInstall(log: Log, logFile: string): Promise<void> {
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const args = ['install', '-y', '--no-install-recommends', 'zookeeper'];
  if (process.getuid?.() !== 0) {
    throw new Error(
      'ZooKeeper is not installed and this is not root: run `apt-get install -y zookeeper` (Debian) first',
    );
  }
  try {
    await run('apt-get', args, { env, logFile, log });
  } catch {
    log('apt-get install failed; running apt-get update and trying again');
    await run('apt-get', ['update'], { env, logFile, log });
    await run('apt-get', args, { env, logFile, log });
  }
}

/** Installs Debian's zookeeper package when missing; cached per package version. */
export async function install(log: Log = noLog): Promise<InstallResult> {
  const want = (await versionEntry(NAME)).version; // e.g. "3.8": a prefix of the Debian version
  let version = await debVersion('zookeeper');
  if (version && (await exists(ZK_JAR))) {
    const m = await readMarker<Marker>(cacheDir(NAME, version));
    if (m) return { binary: m.java, version: m.version };
  }
  const lockRoot = cacheDir(NAME, 'install');
  return withLock(`${lockRoot}.lock`, log, async () => {
    version = await debVersion('zookeeper');
    if (!version || !(await exists(ZK_JAR))) {
      log('installing Debian package zookeeper');
      await fs.mkdir(lockRoot, { recursive: true });
      await aptInstall(log, path.join(lockRoot, 'apt.log'));
      version = await debVersion('zookeeper');
      if (!version) throw new Error('apt-get reported success but the zookeeper package is not installed');
    }
    if (!version.startsWith(want)) {
      log(`warning: Debian's zookeeper is ${version}, test/peers/versions.json asks for ${want}`);
    }
    const dir = cacheDir(NAME, version);
    await fs.mkdir(dir, { recursive: true });
    // zookeeper.jar's manifest Class-Path names its Debian dependencies (netty, jute, slf4j-api...)
    // but no slf4j binding: add log4j 1.2 + its binding when Debian has them (else logs are NOP).
    const classpath = [ZK_JAR];
    for (const jar of LOG_JARS) if (await exists(jar)) classpath.push(jar);
    const marker: Marker = { version, java: 'java', classpath };
    await writeMarker(dir, marker);
    return { binary: marker.java, version };
  });
}

export interface ZooKeeperStartOptions extends StartOptions {
  /** Client port on 127.0.0.1; default RB_ZOOKEEPER_PORT or 2181. */
  port?: number;
  /** ms; sessions may last 2..20 ticks. Default RB_ZOOKEEPER_TICK_MS or 2000 (ZooKeeper's). */
  tickTime?: number;
  minSessionTimeout?: number;
  maxSessionTimeout?: number;
  timeoutMs?: number;
}

export type ZooKeeperHandle = ManagedHandle;

export async function start(opts: ZooKeeperStartOptions): Promise<ZooKeeperHandle> {
  const log = opts.log ?? noLog;
  const { version } = await install(log);
  const marker = await readMarker<Marker>(cacheDir(NAME, version));
  const classpath = marker?.classpath ?? [ZK_JAR];
  const port = opts.port ?? Number(process.env.RB_ZOOKEEPER_PORT || 2181);
  const tickTime = opts.tickTime ?? Number(process.env.RB_ZOOKEEPER_TICK_MS || 2000);
  await assertPortsFree(NAME, [port]);

  const conf = path.join(opts.dataDir, 'conf');
  await fs.mkdir(conf, { recursive: true });
  await fs.mkdir(path.join(opts.dataDir, 'data'), { recursive: true });
  // zoo.cfg allows no trailing comments: keep every line bare.
  const cfg = [
    `tickTime=${tickTime}`,
    `dataDir=${path.join(opts.dataDir, 'data')}`,
    `clientPort=${port}`,
    'clientPortAddress=127.0.0.1',
    'maxClientCnxns=0',
    'admin.enableServer=false',
    '4lw.commands.whitelist=srvr,ruok,mntr,stat',
    'autopurge.purgeInterval=0',
    ...(opts.minSessionTimeout ? [`minSessionTimeout=${opts.minSessionTimeout}`] : []),
    ...(opts.maxSessionTimeout ? [`maxSessionTimeout=${opts.maxSessionTimeout}`] : []),
  ];
  await fs.writeFile(path.join(conf, 'zoo.cfg'), cfg.join('\n') + '\n');
  // Logging through Debian's log4j 1.2 + slf4j-log4j12 (see install()).
  await fs.writeFile(
    path.join(conf, 'log4j.properties'),
    [
      'log4j.rootLogger=INFO, CONSOLE',
      'log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender',
      'log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} %-5p [%t] %c{1} - %m%n',
      '',
    ].join('\n'),
  );

  const t0 = Date.now();
  const handle = await startManaged({
    name: NAME,
    version,
    dataDir: opts.dataDir,
    timeoutMs: opts.timeoutMs ?? 60_000,
    log,
    graceMs: 5000,
    spec: {
      command: 'java',
      args: [
        '-Xms32m',
        '-Xmx256m',
        '-XX:+UseSerialGC',
        '-XX:TieredStopAtLevel=1',
        `-Djava.io.tmpdir=${os.tmpdir()}`,
        `-Dzookeeper.log.dir=${opts.dataDir}`,
        `-Dlog4j.configuration=file:${path.join(conf, 'log4j.properties')}`,
        '-Dzookeeper.jmx.log4j.disable=true',
        '-cp',
        [conf, ...classpath].join(':'),
        'org.apache.zookeeper.server.ZooKeeperServerMain',
        path.join(conf, 'zoo.cfg'),
      ],
      env: {},
      cwd: opts.dataDir,
      logFile: path.join(opts.dataDir, 'zookeeper.log'),
    },
    ready: [{ kind: 'tcp-text', host: '127.0.0.1', port, send: 'srvr', expect: 'Mode: standalone' }],
    endpoints: {
      connect: `127.0.0.1:${port}`,
      host: '127.0.0.1',
      port: String(port),
      tickTime: String(tickTime),
    },
  });
  log(`zookeeper ${version} ready on 127.0.0.1:${port} in ${Date.now() - t0} ms (pid ${handle.pid})`);
  return handle;
}
