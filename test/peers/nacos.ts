/**
 * The Java Nacos server (real server modules, republished on Maven Central as
 * io.github.pig-mesh.nacos; alibaba never publishes them), started by our own launcher class
 * (nacos/NacosTestLauncher.java) from a Maven-resolved classpath: standalone, embedded Derby
 * under nacos.home (the data folder), client API on 127.0.0.1:<port>/nacos, gRPC on port+1000.
 *
 * install(): nacos/pom.xml -> `mvn dependency:build-classpath` -> classpath.txt, and javac of the
 * launcher, into <cache>/nacos-<version>/. start(): writes <dataDir>/conf/application.properties
 * and runs java; ready when the naming v1 API and (console on) the console answer.
 *
 * Binding: the HTTP servers follow server.address=127.0.0.1; Nacos's gRPC servers (port+1000,
 * port+1001) and its JRaft port (port-1000) have no bind-address setting and listen on all
 * interfaces.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startManaged, type ManagedHandle } from './lib/managed.js';
import { PEERS_DIR, cacheDir, exists, readMarker, versionEntry, writeMarker } from './lib/paths.js';
import { assertPortsFree, noLog, run, withLock } from './lib/process.js';
import type { InstallResult, Log, StartOptions } from './lib/types.js';

export const NAME = 'nacos';
const LAUNCHER_SRC = path.join(PEERS_DIR, 'nacos', 'NacosTestLauncher.java');
const POM_TEMPLATE = path.join(PEERS_DIR, 'nacos', 'pom.xml');
const LAUNCHER_CLASS = 'registrybridge.peers.NacosTestLauncher';

interface Marker {
  version: string;
  java: string;
  classpathFile: string;
  classesDir: string;
  launcherSha: string;
  pomSha: string;
}

const sha = async (file: string) =>
  crypto
    .createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex')
    .slice(0, 16);

async function classpathOk(file: string): Promise<boolean> {
  const cp = await fs.readFile(file, 'utf8').catch(() => '');
  const jars = cp.trim().split(':').filter(Boolean);
  if (jars.length < 20) return false;
  for (const jar of jars) if (!(await exists(jar))) return false;
  return true;
}

async function upToDate(dir: string, version: string): Promise<Marker | null> {
  const m = await readMarker<Marker>(dir);
  if (!m || m.version !== version) return null;
  if (m.launcherSha !== (await sha(LAUNCHER_SRC)) || m.pomSha !== (await sha(POM_TEMPLATE))) return null;
  if (!(await exists(path.join(m.classesDir, ...LAUNCHER_CLASS.split('.')) + '.class'))) return null;
  return (await classpathOk(m.classpathFile)) ? m : null;
}

/** Resolves the Nacos server modules with Maven and compiles the launcher; cached per version. */
export async function install(log: Log = noLog): Promise<InstallResult> {
  const { version } = await versionEntry(NAME);
  const dir = cacheDir(NAME, version);
  const cached = await upToDate(dir, version);
  if (cached) return { binary: cached.java, version };
  return withLock(`${dir}.lock`, log, async () => {
    const again = await upToDate(dir, version);
    if (again) return { binary: again.java, version };
    await fs.mkdir(dir, { recursive: true });
    const logFile = path.join(dir, 'install.log');
    const pom = (await fs.readFile(POM_TEMPLATE, 'utf8')).replaceAll('@NACOS_VERSION@', version);
    await fs.writeFile(path.join(dir, 'pom.xml'), pom);
    const classpathFile = path.join(dir, 'classpath.txt');
    if (!(await classpathOk(classpathFile))) {
      log(`resolving io.github.pig-mesh.nacos ${version} from Maven Central`);
      await run('mvn', ['-B', '-q', '-ntp', 'dependency:build-classpath', `-Dmdep.outputFile=${classpathFile}`], {
        cwd: dir,
        logFile,
        log,
        timeoutMs: 30 * 60_000,
      });
      if (!(await classpathOk(classpathFile))) throw new Error(`mvn wrote no usable ${classpathFile}; see ${logFile}`);
    }
    const classesDir = path.join(dir, 'classes');
    await fs.rm(classesDir, { recursive: true, force: true });
    // Argument files keep the 160-jar classpath out of logs and `ps`.
    const cp = (await fs.readFile(classpathFile, 'utf8')).trim();
    const javacArgs = path.join(dir, 'javac.args');
    await fs.writeFile(javacArgs, `-cp ${cp}\n`);
    await run('javac', ['-nowarn', '-d', classesDir, `@${javacArgs}`, LAUNCHER_SRC], { logFile, log });
    const marker: Marker = {
      version,
      java: 'java',
      classpathFile,
      classesDir,
      launcherSha: await sha(LAUNCHER_SRC),
      pomSha: await sha(POM_TEMPLATE),
    };
    await writeMarker(dir, marker);
    return { binary: marker.java, version };
  });
}

export interface NacosStartOptions extends StartOptions {
  /** HTTP port (client API under /nacos); gRPC is +1000/+1001, JRaft -1000. Default RB_NACOS_PORT or 8848. */
  port?: number;
  /** Console port (Nacos's default 8080 belongs to istiod here). Default RB_NACOS_CONSOLE_PORT or 18080. */
  consolePort?: number;
  /** Run the console context too (deployment type "merged"). Default: true unless RB_NACOS_CONSOLE=0. */
  console?: boolean;
  /** Enable auth; `username` gets read/write everywhere (the built-in admin `nacos` gets the same password). */
  auth?: { username: string; password: string };
  /**
   * Serve the v1 client OpenAPI (`nacos.core.api.compatibility.client.enabled`). Default true;
   * false makes the server answer HTTP 410 there, as a Nacos 3.2 server refuses it altogether.
   */
  v1ClientApi?: boolean;
  /** Lifetime of a login token (`nacos.core.auth.plugin.nacos.token.expire.seconds`). Default 18000. */
  tokenTtlSeconds?: number;
  heapMb?: number;
  timeoutMs?: number;
}

export type NacosHandle = ManagedHandle;

export async function start(opts: NacosStartOptions): Promise<NacosHandle> {
  const log = opts.log ?? noLog;
  const { version } = await install(log);
  const m = await readMarker<Marker>(cacheDir(NAME, version));
  if (!m) throw new Error('nacos install marker missing after install()');
  const port = opts.port ?? Number(process.env.RB_NACOS_PORT || 8848);
  const consolePort = opts.consolePort ?? Number(process.env.RB_NACOS_CONSOLE_PORT || 18080);
  const withConsole = opts.console ?? process.env.RB_NACOS_CONSOLE !== '0';
  await assertPortsFree(NAME, [port, port + 1000, port + 1001, port - 1000, ...(withConsole ? [consolePort] : [])]);

  const home = opts.dataDir;
  const conf = path.join(home, 'conf');
  await fs.mkdir(conf, { recursive: true });
  const secret = crypto.randomBytes(48).toString('base64'); // 3.x: base64, >= 32 bytes
  const auth = !!opts.auth;
  const props: Record<string, string> = {
    'nacos.standalone': 'true',
    'nacos.home': home,
    'nacos.deployment.type': withConsole ? 'merged' : 'server',
    'nacos.server.main.port': String(port),
    'nacos.server.contextPath': '/nacos',
    'nacos.console.port': String(consolePort),
    'nacos.console.contextPath': '',
    'nacos.console.remote.server.context-path': '/nacos',
    'server.address': '127.0.0.1',
    'nacos.inetutils.ip-address': '127.0.0.1',
    'nacos.inetutils.prefer-hostname-over-ip': 'false',
    'nacos.core.auth.enabled': String(auth),
    'nacos.core.auth.admin.enabled': String(auth),
    'nacos.core.auth.console.enabled': String(auth),
    'nacos.core.auth.system.type': 'nacos',
    // Without this, users are read from a cache refreshed every 15 s: a new user cannot log in at once.
    'nacos.core.auth.caching.enabled': 'false',
    'nacos.core.auth.plugin.nacos.token.secret.key': secret,
    'nacos.core.auth.plugin.nacos.token.expire.seconds': String(opts.tokenTtlSeconds ?? 18000),
    'nacos.core.auth.server.identity.key': 'rbtestidentity',
    'nacos.core.auth.server.identity.value': 'rbtestidentity',
    'nacos.core.api.compatibility.client.enabled': String(opts.v1ClientApi ?? true),
    'nacos.istio.mcp.server.enabled': 'false',
    'nacos.k8s.sync.enabled': 'false',
    'nacos.naming.empty-service.auto-clean': 'false',
    'nacos.plugin.datasource.log.enabled': 'false',
    'server.tomcat.accesslog.enabled': 'false',
    'server.tomcat.basedir': path.join(home, 'tomcat'),
    'management.endpoints.web.exposure.include': 'prometheus,health',
    'spring.sql.init.platform': '',
    // The server batches pushes for this long after a change (Nacos default 500 ms); the
    // benchmark can lower it to measure the bridge's own share of the latency.
    ...(process.env.RB_NACOS_PUSH_TASK_DELAY_MS
      ? { 'nacos.naming.push.pushTaskDelay': String(Number(process.env.RB_NACOS_PUSH_TASK_DELAY_MS)) }
      : {}),
  };
  await fs.writeFile(
    path.join(conf, 'application.properties'),
    Object.entries(props)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n') + '\n',
  );
  const cpArgs = path.join(conf, 'classpath.args');
  await fs.writeFile(cpArgs, `-cp ${m.classesDir}:${(await fs.readFile(m.classpathFile, 'utf8')).trim()}\n`);
  const heap = opts.heapMb ?? 512;
  const base = `http://127.0.0.1:${port}/nacos`;
  const t0 = Date.now();
  const handle = await startManaged({
    name: NAME,
    version,
    dataDir: home,
    timeoutMs: opts.timeoutMs ?? 240_000,
    log,
    graceMs: 15_000,
    spec: {
      command: m.java,
      args: [
        '-Xms128m',
        `-Xmx${heap}m`,
        '-XX:MaxMetaspaceSize=256m',
        '-XX:+UseSerialGC',
        '-XX:TieredStopAtLevel=1',
        '-Djava.security.egd=file:/dev/./urandom',
        '-Dnacos.logs.path=' + path.join(home, 'logs'),
        ...Object.entries(props).map(([k, v]) => `-D${k}=${v}`),
        `@${cpArgs}`,
        LAUNCHER_CLASS,
        `--spring.config.additional-location=file:${conf}/`,
      ],
      env: {},
      cwd: home,
      logFile: path.join(home, 'nacos.log'),
    },
    ready: [
      // Answers 200 with auth on too (Nacos exempts it); the console is checked last.
      // With the v1 client API off it answers 410 Gone, which says as much.
      { kind: 'http', url: `${base}/v1/ns/operator/metrics`, status: opts.v1ClientApi === false ? 410 : 200 },
      ...(withConsole
        ? [{ kind: 'http' as const, url: `http://127.0.0.1:${consolePort}/v3/console/health/readiness` }]
        : []),
    ],
    endpoints: {
      serverAddr: `127.0.0.1:${port}`,
      http: base,
      grpc: `127.0.0.1:${port + 1000}`,
      ...(withConsole ? { console: `http://127.0.0.1:${consolePort}` } : {}),
      ...(opts.auth ? { username: opts.auth.username, password: opts.auth.password } : {}),
      v1ClientApi: String(opts.v1ClientApi ?? true),
      // What the server batches pushes for (ms): the benchmark reports it.
      pushTaskDelayMs: props['nacos.naming.push.pushTaskDelay'] ?? '500',
    },
  });
  if (opts.auth) {
    try {
      await initAuth(base, withConsole ? `http://127.0.0.1:${consolePort}` : undefined, opts.auth);
    } catch (e) {
      await handle.stop();
      throw e;
    }
  }
  log(`nacos ${version} ready on ${base} in ${Date.now() - t0} ms (pid ${handle.pid})`);
  return handle;
}

async function post(
  url: string,
  form: Record<string, string>,
  token?: string,
): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (token) headers.accessToken = token;
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body: new URLSearchParams(form),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.text() };
}

/**
 * 3.x ships no default password: set the built-in `nacos` admin's (through the console when it
 * runs, else the server's admin API), then add the requested user with read/write on everything.
 */
async function initAuth(
  base: string,
  consoleBase: string | undefined,
  a: { username: string; password: string },
): Promise<void> {
  const authBase = consoleBase ?? base;
  const r = await post(`${authBase}/v3/auth/user/admin`, { password: a.password });
  if (r.status !== 200 || !r.body.includes('nacos'))
    throw new Error(`nacos: setting the admin password failed: ${r.status} ${r.body}`);
  if (a.username === 'nacos') return;
  const login = await post(`${authBase}/v3/auth/user/login`, { username: 'nacos', password: a.password });
  const token = (JSON.parse(login.body) as { accessToken?: string }).accessToken;
  if (!token) throw new Error(`nacos: admin login failed: ${login.status} ${login.body}`);
  const u = await post(`${authBase}/v3/auth/user`, { username: a.username, password: a.password }, token);
  if (u.status !== 200) throw new Error(`nacos: creating user ${a.username} failed: ${u.status} ${u.body}`);
  // ROLE_ADMIN cannot be granted: give the user a role with read/write on every namespace.
  const role = await post(`${authBase}/v3/auth/role`, { role: 'rb_test_rw', username: a.username }, token);
  if (role.status !== 200)
    throw new Error(`nacos: creating role for ${a.username} failed: ${role.status} ${role.body}`);
  for (const resource of ['public:*:*', '*:*:*']) {
    const p = await post(`${authBase}/v3/auth/permission`, { role: 'rb_test_rw', resource, action: 'rw' }, token);
    if (p.status !== 200) throw new Error(`nacos: granting ${resource} rw failed: ${p.status} ${p.body}`);
  }
}
