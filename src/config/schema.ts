import { z } from 'zod';
import type { AdapterFactory } from '../sources/adapter.js';
import { baseTemplateVariables, templateVariables } from '../synth/naming.js';
import { durationField } from './duration.js';

/** Sources in one configuration: each keeps connections, watches and timers of its own. */
export const MAX_SOURCES = 1000;

const dns1123Label = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'expected a DNS-1123 label (lowercase letters, digits, "-")')
  .max(63);

const istioProtocol = z.enum([
  'HTTP',
  'HTTPS',
  'HTTP2',
  'GRPC',
  'GRPC-Web',
  'TCP',
  'TLS',
  'UDP',
  'Mongo',
  'Redis',
  'MySQL',
]);

export const serviceEntrySettingsSchema = z
  .strictObject({
    location: z
      .enum(['MESH_INTERNAL', 'MESH_EXTERNAL'])
      .default('MESH_INTERNAL')
      .describe(
        '`MESH_INTERNAL`: the instances are part of the mesh (they run sidecars); `MESH_EXTERNAL`: they are outside it.',
      ),
    exportTo: z
      .array(
        z
          .string()
          .refine(
            (e) => e === '*' || e === '.' || e === '~' || (e.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(e)),
            { message: 'expected "*", ".", "~" or a namespace name (DNS-1123 label)' },
          ),
      )
      .superRefine((list, ctx) => {
        if (list.includes('~') && list.length > 1)
          ctx.addIssue({ code: 'custom', message: '"~" (visible nowhere) cannot be combined with other entries' });
        const dup = list.find((e, i) => list.indexOf(e) !== i);
        if (dup !== undefined) ctx.addIssue({ code: 'custom', message: `"${dup}" is listed twice` });
      })
      .optional()
      .describe("Namespaces the ServiceEntries are visible to (`.` this one, `*` all); unset: Istio's default, all."),
    includeUnhealthy: z
      .boolean()
      .default(false)
      .describe(
        'Also publish unhealthy instances as endpoints (by default they get no traffic). Disabled and weight-0 instances are never published.',
      ),
    excludeMetadata: z
      .array(z.string())
      .default([])
      .describe('Extra instance metadata keys never turned into endpoint labels (added to the built-in list).'),
    secretMetadata: z
      .strictObject({
        add: z
          .array(
            z
              .string()
              .refine((p) => p.toLowerCase().replace(/[^a-z0-9*]+/g, '').length > 0, 'must contain a letter or digit'),
          )
          .default([])
          .describe(
            'Secret-like metadata keys added to the built-in deny-list: words (`pin`, `session-id`) matched on the words of a key, or globs over the whole key (`*.otp`). Matching keys never become endpoint labels.',
          ),
        useDefaults: z
          .boolean()
          .default(true)
          .describe('`false` replaces the built-in deny-list (password, secret, token, apiKey…) with `add` alone.'),
      })
      .prefault({})
      .describe('Instance metadata keys that look like secrets and never become endpoint labels.'),
    protocols: z
      .record(z.string(), istioProtocol)
      .default({})
      .describe(
        'Registry protocol (lowercase) → Istio port protocol, e.g. `{ rest: HTTP }`; added to the built-in mapping (`dubbo` → TCP, `tri` → GRPC, unknown → TCP).',
      ),
  })
  .describe('How the ServiceEntries of this source are written.');

export const commonSourceFields = {
  name: dns1123Label.describe(
    'Source name (DNS-1123 label), unique among sources; the value of the `registry-bridge.io/source` label on its ServiceEntries.',
  ),
  hostTemplate: z
    .string()
    .min(1)
    .optional()
    .describe(
      "Host template: variables {service} {group} {namespace} {source} and the adapter's own (listed per kind below). Unset: the kind's default.",
    ),
  targetNamespace: dns1123Label
    .default('default')
    .describe("Kubernetes namespace the source's ServiceEntries are written to."),
  serviceEntry: serviceEntrySettingsSchema.prefault({}),
};

export const policySchema = z
  .strictObject({
    mode: z
      .enum(['sync', 'upsert-only', 'create-only'])
      .default('sync')
      .describe(
        '`sync`: create, update and delete; `upsert-only`: never delete; `create-only`: never update or delete.',
      ),
    maxDeletesPerRun: z
      .number()
      .int()
      .nonnegative()
      .default(100)
      .describe('At most this many deletions in one run; the rest wait for the next run (`sync --once` then exits 4).'),
    shrinkHold: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            'Hold the deletions of a source whose read shrinks sharply (a registry restarted empty or without all of its data) until the shrink is confirmed. `sync --allow-shrink` turns it off for one process.',
          ),
        percent: z
          .number()
          .min(0)
          .max(100)
          .default(50)
          .describe(
            'A shrink is sharp when one run would delete more than this percentage of the entries a source owns (and at least `minEntries` of them); a source that lists no service at all while it owns entries is always a sharp shrink.',
          ),
        minEntries: z
          .number()
          .int()
          .min(1)
          .max(1_000_000)
          .default(3)
          .describe(
            'Fewer deletions than this in one run are never a sharp shrink (unless the source lists no service).',
          ),
        confirmFor: durationField('policy.shrinkHold.confirmFor')
          .default(120_000)
          .describe(
            'Continuous mode: the held deletions go through once the shrink has persisted this long and a full run reads the source again; the entries stay if the services come back meanwhile.',
          ),
        recheckAfter: durationField('policy.shrinkHold.recheckAfter')
          .default(10_000)
          .describe(
            '`sync --once`: on a sharp shrink, read every source again after this delay, once, within the run; a shrink that persists is held and the run exits 4 (`--allow-shrink` accepts it). 0: no second read.',
          ),
      })
      .prefault({})
      .describe(
        'Sharp-shrink hold: the deletions of a source whose read would delete a large share of its entries wait for confirmation (see docs/lifecycle.md).',
      ),
  })
  .describe('Which changes the bridge may make to the objects it owns.');

export const sinkSchema = z
  .discriminatedUnion('kind', [
    z
      .strictObject({
        kind: z.literal('stdout').describe('Print the ServiceEntries to standard output.'),
        format: z
          .enum(['yaml', 'json'])
          .default('yaml')
          .describe('`yaml`: documents like `kubectl get -o yaml`; `json`: one `List`.'),
      })
      .describe('Prints the desired ServiceEntries; nothing is written anywhere.'),
    z
      .strictObject({
        kind: z.literal('files').describe('Write one YAML file per ServiceEntry.'),
        dir: z
          .string()
          .min(1)
          .describe('Directory the files go to, as `<dir>/<namespace>/<name>.yaml` (relative to the config file).'),
      })
      .describe('Writes the ServiceEntries as files, for GitOps.'),
    z
      .strictObject({
        kind: z.literal('kube').describe('Apply the ServiceEntries to kube-apiserver.'),
        kubeconfig: z
          .string()
          .optional()
          .describe('kubeconfig file. Unset: `--kubeconfig`, else KUBECONFIG, ~/.kube/config, in-cluster.'),
        context: z.string().optional().describe('kubeconfig context. Unset: the current context.'),
        apiVersion: z
          .enum(['auto', 'networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'])
          .default('auto')
          .describe('ServiceEntry API version; `auto` discovers v1, then v1beta1, then v1alpha3 from the API server.'),
        fieldManager: z
          .string()
          .min(1)
          .default('registry-bridge')
          .describe('Field manager of the server-side applies.'),
        qps: z.number().positive().default(50).describe('Client-side rate limit of writes, per second.'),
        concurrency: z.number().int().positive().default(8).describe('Writes in flight at once.'),
        requestTimeout: durationField('sink.requestTimeout')
          .default(30_000)
          .describe(
            'Deadline of one kube-apiserver request (connection, answer and body); a request past it fails and is retried like other failures.',
          ),
      })
      .describe('Reconciles into kube-apiserver with server-side apply.'),
  ])
  .describe('Where the ServiceEntries go: `stdout`, `files` or `kube`.');

export const controllerSchema = z
  .strictObject({
    resyncInterval: durationField('controller.resyncInterval')
      .default(60_000)
      .describe('Full reconcile at least this often (continuous mode); repairs drift whatever the watches do.'),
    debounce: durationField('controller.debounce')
      .default(100)
      .describe(
        'Change-triggered runs start at most once per window: a change after a quiet window runs at once, changes inside the window share one run at its end.',
      ),
    healthMultiplier: z
      .number()
      .positive()
      .default(3)
      .describe('/healthz fails when no reconcile finished for this many resync intervals.'),
    applicationSettle: durationField('controller.applicationSettle')
      .default(5000)
      .describe(
        'A Dubbo application that would get an entry of its own in `merge` mode (application level only, as far as the registries say) is created only once it has been so this long: Dubbo writes the interface level of a `register-mode=all` provider beside its application level, and a run between the two would publish a duplicate. 0 turns it off.',
      ),
    shutdownGrace: durationField('controller.shutdownGrace')
      .default(10_000)
      .describe(
        'On SIGTERM/SIGINT, kube requests in flight get this long to finish; those still unanswered are then aborted and reported as not written, and the process exits.',
      ),
  })
  .describe('The continuous controller (`sync` without `--once`).');

export const leaderElectionSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe('Hold a Lease; only the leader writes. Required when more than one replica runs; kube sink only.'),
    namespace: z.string().min(1).default('default').describe('Namespace of the Lease.'),
    name: z.string().min(1).default('registry-bridge').describe('Name of the Lease.'),
    leaseDuration: durationField('leaderElection.leaseDuration')
      .default(15_000)
      .describe('How long a lease not renewed stays with its holder before a standby may take it.'),
    renewDeadline: durationField('leaderElection.renewDeadline')
      .default(10_000)
      .describe(
        'The leader gives up (stops writing and exits 1) when it cannot renew within this; shorter than leaseDuration.',
      ),
    retryPeriod: durationField('leaderElection.retryPeriod')
      .default(2_000)
      .describe('Time between attempts to take or renew the lease; shorter than renewDeadline.'),
  })
  .describe('Leader election between replicas (continuous mode, kube sink).');

export const propagationSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe('Check every changed host through kube, istiod and an xDS probe after each apply (continuous mode).'),
    istiod: z
      .string()
      .url()
      .optional()
      .describe(
        "istiod's debug base URL, e.g. http://istiod.istio-system.svc:15014. Unset: the istiod hop is not checked.",
      ),
    xds: z
      .string()
      .optional()
      .describe(
        "istiod's plaintext xDS address (host:port) for the proxy probe, e.g. istiod.istio-system.svc:15010. Unset: the proxy hop is not checked.",
      ),
    probeNamespace: z.string().default('default').describe('Namespace the xDS probe poses as a sidecar of.'),
    probeDnsCapture: z
      .boolean()
      .default(false)
      .describe(
        'The xDS probe presents itself as a DNS-capturing sidecar (DNS_CAPTURE, DNS_AUTO_ALLOCATE): it sees the VIP-bound listeners and the DNS name table such sidecars get, as `verify --probe-dns-capture` does.',
      ),
    tokenFile: z.string().optional().describe("Bearer token file for istiod's debug endpoints (audience istio-ca)."),
    deadline: durationField('propagation.deadline')
      .default(30_000)
      .describe('A hop that does not show a change within this time counts as a propagation failure.'),
    maxHostsPerRound: z
      .number()
      .int()
      .positive()
      .default(50)
      .describe(
        'Hosts checked per round; more changed hosts wait for the following rounds (keeps the load on istiod small).',
      ),
  })
  .describe('Propagation checks of continuous mode; results in /metrics and /propagation.');

export const serverSchema = z
  .strictObject({
    address: z.string().default('0.0.0.0').describe('Address the HTTP server listens on.'),
    port: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .default(8080)
      .describe('Port of /healthz, /readyz, /metrics, /propagation.'),
  })
  .describe('The HTTP server of continuous mode.');

export function bridgeConfigSchema(adapters: readonly AdapterFactory[]) {
  const sourceSchemas = adapters.map((a) =>
    z
      .strictObject({ ...commonSourceFields, kind: z.literal(a.kind), [a.kind]: a.configSchema })
      .superRefine((src, ctx) => {
        const template = src.hostTemplate;
        if (template === undefined) return;
        const allowed = new Set<string>([...baseTemplateVariables, ...(a.templateAttributes ?? [])]);
        for (const v of templateVariables(template)) {
          if (!allowed.has(v)) {
            ctx.addIssue({
              code: 'custom',
              path: ['hostTemplate'],
              message: `unknown variable {${v}}; ${a.kind} sources know ${[...allowed].map((x) => `{${x}}`).join(' ')}`,
            });
          }
        }
        if (!template.includes('.'))
          ctx.addIssue({
            code: 'custom',
            path: ['hostTemplate'],
            message: 'must produce a dotted host (e.g. "{service}.example")',
          });
        const last = template.split('.').pop() ?? '';
        if (/^[0-9]+$/.test(last))
          ctx.addIssue({
            code: 'custom',
            path: ['hostTemplate'],
            message: `ends in the all-numeric label "${last}", which Istio refuses as the last label of a host`,
          });
      }),
  );
  const kinds = adapters.map((a) => a.kind);
  const sourceSchema = z.custom<unknown>().transform((value, ctx) => {
    const kind = (value as { kind?: unknown } | null)?.kind;
    const index = kinds.indexOf(typeof kind === 'string' ? kind : '');
    if (index < 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['kind'],
        message: `expected one of ${kinds.join(', ')}, got ${JSON.stringify(kind)}`,
      });
      return z.NEVER;
    }
    const parsed = sourceSchemas[index]!.safeParse(value);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: issue.path } as never);
      return z.NEVER;
    }
    return parsed.data as SourceConfig;
  });

  return z
    .strictObject({
      sources: z
        .array(sourceSchema)
        .min(1, 'at least one source is required')
        .max(MAX_SOURCES, `at most ${MAX_SOURCES} sources`)
        .describe(`The registries to read; at least one, at most ${MAX_SOURCES}.`),
      policy: policySchema.prefault({}),
      sink: sinkSchema.default({ kind: 'stdout', format: 'yaml' }),
      controller: controllerSchema.prefault({}),
      server: serverSchema.prefault({}),
      leaderElection: leaderElectionSchema.prefault({}),
      propagation: propagationSchema.prefault({}),
      log: z
        .strictObject({
          level: z
            .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
            .default('info')
            .describe('Log level (JSON lines on stderr); `--log-level` overrides it.'),
        })
        .prefault({})
        .describe('Logging.'),
    })
    .superRefine((cfg, ctx) => {
      const le = cfg.leaderElection;
      if (le.enabled && !(le.renewDeadline < le.leaseDuration)) {
        ctx.addIssue({
          code: 'custom',
          path: ['leaderElection', 'renewDeadline'],
          message: 'must be shorter than leaseDuration',
        });
      }
      if (le.enabled && !(le.retryPeriod < le.renewDeadline)) {
        ctx.addIssue({
          code: 'custom',
          path: ['leaderElection', 'retryPeriod'],
          message: 'must be shorter than renewDeadline',
        });
      }
      const seen = new Map<string, number>();
      cfg.sources.forEach((s, i) => {
        const prev = seen.get(s.name);
        if (prev !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['sources', i, 'name'],
            message: `"${s.name}" is already the name of sources[${prev}]`,
          });
        seen.set(s.name, i);
      });
    });
}

/** A source as configured, after validation. The adapter block sits under its `kind` key. */
export interface SourceConfig {
  readonly name: string;
  readonly kind: string;
  readonly hostTemplate?: string;
  readonly targetNamespace: string;
  readonly serviceEntry: z.infer<typeof serviceEntrySettingsSchema>;
  readonly [adapterBlock: string]: unknown;
}

export type SinkConfig = z.infer<typeof sinkSchema>;
export type PolicyConfig = z.infer<typeof policySchema>;
export type ControllerConfig = z.infer<typeof controllerSchema>;
export type ServerConfig = z.infer<typeof serverSchema>;
export type LeaderElectionConfig = z.infer<typeof leaderElectionSchema>;
export type PropagationConfig = z.infer<typeof propagationSchema>;

export interface BridgeConfig {
  readonly sources: readonly SourceConfig[];
  readonly policy: PolicyConfig;
  readonly sink: SinkConfig;
  readonly controller: ControllerConfig;
  readonly server: ServerConfig;
  readonly leaderElection: LeaderElectionConfig;
  readonly propagation: PropagationConfig;
  readonly log: { readonly level: string };
}
