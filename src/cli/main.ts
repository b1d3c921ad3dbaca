#!/usr/bin/env node
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { pino } from 'pino';
import { runSync } from './sync.js';
// The verifier (gRPC, Envoy protos) loads only for verify/trace: `sync` stays small.
import type { VerifyFlags } from './verify.js';
import { ExitCode } from '../controller/exit-code.js';
import type { CliIo, SyncFlags } from './types.js';

export type { CliIo, SyncFlags } from './types.js';
import { BridgeError, describeError } from '../errors.js';

/** The version in package.json, found from src/ (tests), dist/src/ and the bundle in dist/ alike. */
export function packageVersion(): string {
  for (const rel of ['../package.json', '../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'registry-bridge') return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0-unknown';
}

const syncHelp = `
Exit codes:
  0  converged: every source read, every write applied
  1  a source could not be read or a write failed
  2  bad usage or configuration
  3  --dry-run: changes are pending
  4  done what was allowed, but some registry entries, instances or services were rejected,
     conflict with objects the bridge does not own, or collide in Istio (one host twice, a
     TCP port shared without addresses); or deletions wait for a later run
     (policy.maxDeletesPerRun reached), or are held because a source would lose a large
     share of its entries at once, also after a second read (policy.shrinkHold; accept it
     with --allow-shrink)`;

/** Parses argv and runs the command; resolves to the process exit code. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let code: number = ExitCode.Converged;
  const program = new Command()
    .name('registry-bridge')
    .description('Bring registry services (Nacos, ZooKeeper, files) into an Istio mesh as ServiceEntries.')
    .version(packageVersion(), '-v, --version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError();

  program
    .command('sync')
    .description('reconcile ServiceEntries with the configured registries (continuously, or once)')
    .requiredOption('-c, --config <file>', 'configuration file (YAML)')
    .option('--once', 'read every source once, reconcile, and exit')
    .addOption(
      new Option('-o, --output <format>', 'print the desired ServiceEntries instead of applying them').choices([
        'yaml',
        'json',
      ]),
    )
    .option('--dry-run', 'plan (and validate, for kube: server-side dry-run) without persisting')
    .option(
      '--allow-shrink',
      'accept a sharp shrink of a source: delete its entries even when it lists few or no services (policy.shrinkHold)',
    )
    .option('--kubeconfig <file>', 'kubeconfig for the kube sink (else KUBECONFIG, ~/.kube/config, in-cluster)')
    .option('--context <name>', 'kubeconfig context for the kube sink')
    .addOption(
      new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']),
    )
    .addHelpText('after', syncHelp)
    .action(async (opts: SyncFlags) => {
      code = await runSync(opts, io, io.shutdown);
    });

  const verifyHelp = `
Exit codes:
  0  every host is present and as written at every configured hop (--host alone: found)
  2  bad usage or configuration; a local file (--desired, --registryz, --syncz, --config-dump)
     that cannot be used, named with its line and column (the good ones are still checked);
     nothing to check
  5  propagation failed: a hop is missing a host or shows something else than the bridge wrote
     (--host alone: not found)
  6  a hop could not be checked (unreachable, 401 Unauthorized, 403 Forbidden) and none failed

Hops: kube (owned ServiceEntry, content hash), istiod (/debug/registryz), proxy (xDS probe,
config dump), sync (/debug/syncz: the proxy ACKed the push). A hop without a source is skipped.
Offline (files are read once, no waiting):
  verify --no-kube --desired se.yaml --registryz registryz.json --config-dump dump.json --syncz syncz.json
  verify --no-kube --host www.example.com --registryz registryz.json   # is the host there, and with what
See docs/troubleshooting.md for every message.`;
  const addVerifyOptions = (cmd: Command): Command =>
    cmd
      .option(
        '-c, --config <file>',
        'configuration file: read the registries once and verify what the bridge would write',
      )
      .option('--desired <file>', 'ServiceEntry YAML to verify against (e.g. the output of sync --once -o yaml)')
      .option('--kubeconfig <file>', 'kubeconfig (else KUBECONFIG, ~/.kube/config, in-cluster)')
      .option('--context <name>', 'kubeconfig context')
      .option('-n, --namespace <ns>', 'only ServiceEntries in this namespace')
      .option('--no-kube', 'do not read kube')
      .option('--istiod <url>', "istiod's debug/monitoring base URL, e.g. http://127.0.0.1:15014")
      .option('--token-file <file>', 'bearer token (audience istio-ca) for istiod debug endpoints')
      .option('--token-request <ns/sa>', 'get a bearer token for this service account with the TokenRequest API')
      .option('--xds <host:port>', "istiod's plaintext xDS address (15010): run the xDS probe")
      .option('--probe-namespace <ns>', 'namespace the xDS probe poses as a sidecar of', 'default')
      .option('--probe-dns-capture', 'the probe captures DNS like a sidecar: VIP listeners, NDS')
      .option('--proxy-id <id>', 'a connected proxy (<pod>.<namespace>) whose sync status / config_dump to check')
      .option('--istiod-config-dump', "read the proxy's configuration from istiod's /debug/config_dump?proxyID=")
      .option(
        '--config-dump <file|url...>',
        'Envoy admin config_dump, istiod config_dump or istioctl proxy-config -o json output',
      )
      .option('--registryz <file>', 'saved /debug/registryz output (offline)')
      .option('--syncz <file>', 'saved /debug/syncz output (offline; with --proxy-id unless it lists one proxy)')
      .option('--timeout <duration>', 'keep checking until every hop is ok or this passes')
      .option('--interval <duration>', 'time between checks')
      .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
      .addOption(
        new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']),
      )
      .addHelpText('after', verifyHelp);

  addVerifyOptions(
    program
      .command('verify')
      .description('check that every owned (or --host) ServiceEntry reached kube, istiod and the proxies')
      .option('--host <host...>', 'only these hosts'),
  ).action(async (opts: VerifyFlags) => {
    code = await (await import('./verify.js')).runVerify(opts, io);
  });

  addVerifyOptions(
    program
      .command('trace')
      .description('follow one host hop by hop, measuring from now how long each hop takes')
      .argument('<host>', 'the ServiceEntry host'),
  ).action(async (host: string, opts: VerifyFlags) => {
    code = await (await import('./verify.js')).runTrace(host, opts, io);
  });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
        return 0;
      return ExitCode.Usage;
    }
    if (err instanceof BridgeError && err.kind === 'config') {
      io.stderr.write(`registry-bridge: invalid configuration:\n${err.message}\n`);
      return ExitCode.Usage;
    }
    io.stderr.write(`registry-bridge: ${describeError(err)}\n`);
    return ExitCode.Failed;
  }
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const shutdown = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => shutdown.abort(new Error(sig)));
  main(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    shutdown: shutdown.signal,
  }).then(
    (code) => {
      process.exitCode = code;
      // Done: a request the kube client cannot abort (an API server that accepted the
      // connection and went silent) must not keep the process alive. Unref'd: a process whose
      // event loop empties exits at once, as usual.
      setTimeout(() => process.exit(), 2_000).unref();
    },
    (err: unknown) => {
      pino().fatal({ err }, 'unexpected failure');
      process.exitCode = ExitCode.Failed;
    },
  );
}
