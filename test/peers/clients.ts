/**
 * Real registry clients (not servers): Apache Dubbo 3.3 providers, the official nacos-client and
 * Curator x-discovery, run by our launcher clients/RegistryClients.java from Maven Central jars.
 *
 * install(): clients/pom.xml -> `mvn dependency:build-classpath` -> classpath.txt, and javac of
 * the launcher, into <cache>/registry-clients-<version>_src-<sha of pom and sources>/ (cached per
 * machine like the servers).
 * Variant 'nacos3' (versions.json "registry-clients-nacos3") is the same launcher built against
 * the Nacos 3 client (nacos-client 3.2.x), in its own cache folder keyed by its version.
 * Variants with their own pom and sources: 'dubbo27' (clients/dubbo27: an Apache Dubbo 2.7
 * provider on ZooKeeper, `dubbo --registry ... --dubbo-port n`) and 'spring-zk'
 * (clients/spring-zk: a Spring Boot web application with Spring Cloud Zookeeper discovery,
 * started with Spring's own `--property=value` arguments).
 * startClient(): one JVM per client, ready when it prints READY (registered); stop() unregisters
 * gracefully ("stop" on stdin), kill() is SIGKILL (the registry expires the session itself).
 * Each JVM takes ~150-190 MB: tests start a few, never dozens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PEERS_DIR, cacheDir, exists, readMarker, versionEntry, writeMarker, type VersionEntry } from './lib/paths.js';
import { noLog, run, withLock } from './lib/process.js';
import type { Log } from './lib/types.js';

export const NAME = 'registry-clients';
/**
 * Which build of the launchers: the default one (Dubbo 3, nacos-client 2.x, Curator), the same
 * with nacos-client 3.x, a Dubbo 2.7 provider (`dubbo27`), or a Spring Boot application with
 * Spring Cloud Zookeeper discovery (`spring-zk`). Each has its own pom, sources and cache folder.
 */
export type Variant = 'default' | 'nacos3' | 'dubbo27' | 'spring-zk';

interface VariantSpec {
  /** Entry of versions.json; its string fields fill the pom's `@field@` placeholders. */
  readonly entry: string;
  readonly pom: string;
  readonly sources: readonly string[];
  readonly mainClass: string;
  /** JVM options the clients of this variant need (before the class path). */
  readonly jvmArgs: readonly string[];
  /** A classpath with fewer jars is an incomplete resolution. */
  readonly minJars: number;
}

const CLIENTS_DIR = path.join(PEERS_DIR, 'clients');
/** What every launcher shares: options, usage errors, READY / stop / STOPPED on stdio. */
const LAUNCHER_COMMON = path.join(CLIENTS_DIR, 'Launcher.java');
/** The Dubbo interface the providers export, and its implementation. */
const GREET = [
  path.join(CLIENTS_DIR, 'registrybridge', 'demo', 'GreetService.java'),
  path.join(CLIENTS_DIR, 'registrybridge', 'demo', 'GreetServiceImpl.java'),
];
const LAUNCHER: Omit<VariantSpec, 'entry'> = {
  pom: path.join(CLIENTS_DIR, 'pom.xml'),
  sources: [path.join(CLIENTS_DIR, 'RegistryClients.java'), LAUNCHER_COMMON, ...GREET],
  mainClass: 'registrybridge.clients.RegistryClients',
  jvmArgs: [],
  minJars: 20,
};
const VARIANTS: Record<Variant, VariantSpec> = {
  default: { entry: NAME, ...LAUNCHER },
  nacos3: { entry: `${NAME}-nacos3`, ...LAUNCHER },
  dubbo27: {
    entry: `${NAME}-dubbo27`,
    pom: path.join(CLIENTS_DIR, 'dubbo27', 'pom.xml'),
    sources: [path.join(CLIENTS_DIR, 'dubbo27', 'Dubbo27Provider.java'), LAUNCHER_COMMON, ...GREET],
    mainClass: 'registrybridge.clients.Dubbo27Provider',
    // Dubbo 2.7's javassist defines its generated classes through ClassLoader.defineClass.
    jvmArgs: ['--add-opens', 'java.base/java.lang=ALL-UNNAMED'],
    minJars: 10,
  },
  'spring-zk': {
    entry: `${NAME}-spring-zk`,
    pom: path.join(CLIENTS_DIR, 'spring-zk', 'pom.xml'),
    sources: [path.join(CLIENTS_DIR, 'spring-zk', 'SpringZkApp.java'), LAUNCHER_COMMON],
    mainClass: 'registrybridge.clients.SpringZkApp',
    jvmArgs: [],
    minJars: 40,
  },
};

interface Marker {
  version: string;
  classpathFile: string;
  classesDir: string;
  sourcesSha: string;
  /** Seconds the last build took (Maven resolution + javac). */
  buildSeconds: number;
}

async function sourcesSha(spec: VariantSpec): Promise<string> {
  const h = crypto.createHash('sha256');
  for (const f of [spec.pom, ...spec.sources]) h.update(await fs.readFile(f));
  return h.digest('hex').slice(0, 16);
}

async function classpathOk(file: string, spec: VariantSpec): Promise<boolean> {
  const cp = await fs.readFile(file, 'utf8').catch(() => '');
  const jars = cp.trim().split(':').filter(Boolean);
  if (jars.length < spec.minJars) return false;
  for (const jar of jars) if (!(await exists(jar))) return false;
  return true;
}

/**
 * Classes are kept per sources digest (`classes-<sha>`): worktrees whose launchers differ share
 * one cache folder, and a build for one must never delete the classes another's running JVMs
 * load (NoClassDefFoundError in the middle of a test).
 */
const classesDirOf = (dir: string, sha: string) => path.join(dir, `classes-${sha}`);

async function upToDate(dir: string, version: string, spec: VariantSpec): Promise<Marker | null> {
  const m = await readMarker<Marker>(dir);
  if (!m || m.version !== version) return null;
  const sha = await sourcesSha(spec);
  const classesDir = classesDirOf(dir, sha);
  if (!(await exists(path.join(classesDir, ...spec.mainClass.split('.')) + '.class'))) return null;
  return (await classpathOk(m.classpathFile, spec)) ? { ...m, classesDir, sourcesSha: sha } : null;
}

/** The pom template with `@field@` (and the default launcher's `@DUBBO_VERSION@`...) filled in. */
function fillPom(template: string, v: VersionEntry): string {
  let pom = template
    .replaceAll('@DUBBO_VERSION@', String(v.dubbo))
    .replaceAll('@CURATOR_VERSION@', String(v.curator))
    .replaceAll('@NACOS_CLIENT_VERSION@', String(v.nacosClient));
  for (const [k, value] of Object.entries(v)) if (typeof value === 'string') pom = pom.replaceAll(`@${k}@`, value);
  const left = /@[A-Za-z_]+@/.exec(pom);
  if (left) throw new Error(`${v.source}: the pom template's ${left[0]} has no value in versions.json`);
  return pom;
}

/** Resolves the clients with Maven and compiles the launcher; cached per version. */
export async function install(log: Log = noLog, variant: Variant = 'default'): Promise<Marker> {
  const spec = VARIANTS[variant];
  const v = await versionEntry(spec.entry);
  // One folder per version AND sources: worktrees with different launcher sources (several
  // engineers on one machine) would otherwise rebuild one folder in turn, deleting the classes
  // under each other's running clients.
  const dir = cacheDir(NAME, `${v.version}_src-${(await sourcesSha(spec)).slice(0, 8)}`);
  const cached = await upToDate(dir, v.version, spec);
  if (cached) return cached;
  return withLock(`${dir}.lock`, log, async () => {
    const again = await upToDate(dir, v.version, spec);
    if (again) return again;
    const t0 = Date.now();
    await fs.mkdir(dir, { recursive: true });
    const logFile = path.join(dir, 'install.log');
    await fs.writeFile(path.join(dir, 'pom.xml'), fillPom(await fs.readFile(spec.pom, 'utf8'), v));
    const classpathFile = path.join(dir, 'classpath.txt');
    log(`resolving ${spec.entry} ${v.version} from Maven Central`);
    await run('mvn', ['-B', '-q', '-ntp', 'dependency:build-classpath', `-Dmdep.outputFile=${classpathFile}`], {
      cwd: dir,
      logFile,
      log,
      timeoutMs: 20 * 60_000,
    });
    if (!(await classpathOk(classpathFile, spec)))
      throw new Error(`mvn wrote no usable ${classpathFile}; see ${logFile}`);
    const sha = await sourcesSha(spec);
    const classesDir = classesDirOf(dir, sha);
    const building = `${classesDir}.${process.pid}.tmp`;
    await fs.rm(building, { recursive: true, force: true });
    const cp = (await fs.readFile(classpathFile, 'utf8')).trim();
    const javacArgs = path.join(dir, 'javac.args');
    await fs.writeFile(javacArgs, `-cp ${cp}\n`);
    await run('javac', ['-nowarn', '-d', building, `@${javacArgs}`, ...spec.sources], { logFile, log });
    if (await exists(path.join(classesDir, ...spec.mainClass.split('.')) + '.class')) {
      await fs.rm(building, { recursive: true, force: true }); // same sources, maybe in use
    } else {
      await fs.rm(classesDir, { recursive: true, force: true }); // an incomplete one
      await fs.rename(building, classesDir);
    }
    const marker: Marker = {
      version: v.version,
      classpathFile,
      classesDir,
      sourcesSha: sha,
      buildSeconds: Math.round((Date.now() - t0) / 100) / 10,
    };
    await writeMarker(dir, marker);
    log(`registry clients (${variant}) built in ${marker.buildSeconds} s`);
    return marker;
  });
}

export interface ClientHandle {
  readonly pid: number;
  /** stdout and stderr so far (for failure messages). */
  output(): string;
  /** Graceful: the client unregisters and exits. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash: the registration stays until the registry expires it. */
  kill(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/**
 * Starts one client (`dubbo`, `nacos` or `curator` and its arguments, see RegistryClients.java)
 * and resolves once it has registered.
 */
export async function startClient(
  args: readonly string[],
  opts: {
    log?: Log;
    timeoutMs?: number;
    heapMb?: number;
    variant?: Variant;
    /** Extra environment, e.g. RB_CLIENT_NACOS_PASSWORD for `nacos --username` (kept off argv and messages). */
    env?: Record<string, string>;
  } = {},
): Promise<ClientHandle> {
  const m = await install(opts.log ?? noLog, opts.variant);
  const cp = `${m.classesDir}:${(await fs.readFile(m.classpathFile, 'utf8')).trim()}`;
  // Named by its content and written atomically: clients started at the same time must never
  // read each other's half-written file ("Could not find or load main class").
  const argText = `-cp ${cp}\n`;
  const argFile = path.join(
    path.dirname(m.classpathFile),
    `java-${crypto.createHash('sha256').update(argText).digest('hex').slice(0, 16)}.args`,
  );
  if (!(await exists(argFile))) {
    const tmp = `${argFile}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
    await fs.writeFile(tmp, argText);
    await fs.rename(tmp, argFile);
  }
  const child = spawn(
    'java',
    [
      `-Xmx${opts.heapMb ?? 128}m`,
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-Xss512k',
      ...VARIANTS[opts.variant ?? 'default'].jvmArgs,
      `@${argFile}`,
      VARIANTS[opts.variant ?? 'default'].mainClass,
      ...args,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } },
  );
  live.add(child);
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    }),
  );
  const timeoutMs = opts.timeoutMs ?? 120_000;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`client ${args.join(' ')} did not register within ${timeoutMs} ms:\n${out.slice(-3000)}`));
    }, timeoutMs);
    const onData = () => {
      if (!out.includes('READY')) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      resolve();
    };
    child.stdout.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(
        new Error(`client ${args.join(' ')} exited with ${String(code)} before registering:\n${out.slice(-3000)}`),
      );
    });
  });
  return {
    pid: child.pid!,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin.end('stop\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}
