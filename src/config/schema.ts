import { z } from 'zod';
import type { AdapterFactory } from '../sources/adapter.js';
import { baseTemplateVariables, templateVariables } from '../synth/naming.js';
import { durationSchema } from './duration.js';

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

export const serviceEntrySettingsSchema = z.strictObject({
  location: z.enum(['MESH_INTERNAL', 'MESH_EXTERNAL']).default('MESH_INTERNAL'),
  exportTo: z.array(z.string()).optional(),
  includeUnhealthy: z.boolean().default(false),
  /** Extra metadata keys never turned into endpoint labels (added to the built-in list). */
  excludeMetadata: z.array(z.string()).default([]),
  /** Registry protocol (lowercase) → Istio protocol, e.g. `{ rest: HTTP }`. */
  protocols: z.record(z.string(), istioProtocol).default({}),
});

const commonSourceFields = {
  name: dns1123Label,
  /** Host template; variables {service} {group} {namespace} {source} and the adapter's own. */
  hostTemplate: z.string().min(1).optional(),
  /** Kubernetes namespace the source's ServiceEntries go to. */
  targetNamespace: dns1123Label.default('default'),
  serviceEntry: serviceEntrySettingsSchema.prefault({}),
};

export const policySchema = z.strictObject({
  mode: z.enum(['sync', 'upsert-only', 'create-only']).default('sync'),
  maxDeletesPerRun: z.number().int().nonnegative().default(100),
});

export const sinkSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('stdout'), format: z.enum(['yaml', 'json']).default('yaml') }),
  z.strictObject({ kind: z.literal('files'), dir: z.string().min(1) }),
  z.strictObject({
    kind: z.literal('kube'),
    kubeconfig: z.string().optional(),
    context: z.string().optional(),
    /** `auto` discovers v1, then v1beta1, then v1alpha3 from the API server. */
    apiVersion: z
      .enum(['auto', 'networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'])
      .default('auto'),
    fieldManager: z.string().min(1).default('registry-bridge'),
    /** Client-side rate limit of writes. */
    qps: z.number().positive().default(50),
    concurrency: z.number().int().positive().default(8),
  }),
]);

export const controllerSchema = z.strictObject({
  resyncInterval: durationSchema.default(60_000),
  debounce: durationSchema.default(100),
  /** /healthz fails when no reconcile finished for this many resync intervals. */
  healthMultiplier: z.number().positive().default(3),
});

export const leaderElectionSchema = z.strictObject({
  /** Required when more than one replica runs: only the leader writes. */
  enabled: z.boolean().default(false),
  namespace: z.string().min(1).default('default'),
  name: z.string().min(1).default('registry-bridge'),
  leaseDuration: durationSchema.default(15_000),
  renewDeadline: durationSchema.default(10_000),
  retryPeriod: durationSchema.default(2_000),
});

export const propagationSchema = z.strictObject({
  /** Verify every changed host through kube, istiod and an xDS probe after each apply. */
  enabled: z.boolean().default(false),
  /** istiod's debug base URL, e.g. http://istiod.istio-system.svc:15014 */
  istiod: z.string().url().optional(),
  /** istiod's plaintext xDS address (host:port) for the proxy probe, e.g. istiod.istio-system.svc:15010 */
  xds: z.string().optional(),
  /** Namespace the xDS probe pretends to run in. */
  probeNamespace: z.string().default('default'),
  /** Bearer token file for istiod's debug endpoints (audience istio-ca). */
  tokenFile: z.string().optional(),
  /** A hop not reached within this time counts as a propagation failure. */
  deadline: durationSchema.default(30_000),
  maxHostsPerRound: z.number().int().positive().default(50),
});

export const serverSchema = z.strictObject({
  address: z.string().default('0.0.0.0'),
  port: z.number().int().min(0).max(65535).default(8080),
});

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
      sources: z.array(sourceSchema).min(1, 'at least one source is required'),
      policy: policySchema.prefault({}),
      sink: sinkSchema.default({ kind: 'stdout', format: 'yaml' }),
      controller: controllerSchema.prefault({}),
      server: serverSchema.prefault({}),
      leaderElection: leaderElectionSchema.prefault({}),
      propagation: propagationSchema.prefault({}),
      log: z
        .strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
        .prefault({}),
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
