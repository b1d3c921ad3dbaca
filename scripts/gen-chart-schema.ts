/**
 * Generates charts/registry-bridge/values.schema.json from the zod schemas, so the chart's
 * `config:` value is checked by `helm install/template/lint` against the very schema the CLI
 * parses its config file with (src/config/schema.ts + every adapter's configSchema).
 *
 *   npm run chart:schema            # rewrite the committed file
 *   npm run chart:schema -- --check # exit 1 when the committed file is stale
 *
 * The chart's own values (image, replicas, rbac, ...) are described here with zod too; the
 * rule "replicaCount > 1 needs config.leaderElection.enabled" is an if/then in the schema
 * (the Deployment template enforces it again with `fail`).
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  controllerSchema,
  leaderElectionSchema,
  policySchema,
  propagationSchema,
  serverSchema,
  serviceEntrySettingsSchema,
  sinkSchema,
} from '../src/config/schema.js';
import type { AdapterFactory } from '../src/sources/adapter.js';
import { adapterFactories } from '../src/sources/registry.js';

type Json = Record<string, unknown>;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CHART_SCHEMA_PATH = path.join(ROOT, 'charts', 'registry-bridge', 'values.schema.json');

/** zod → JSON Schema (draft-07, what every Helm 3 validates), as the *input* a user writes. */
function toJson(schema: z.ZodType): Json {
  const out = z.toJSONSchema(schema, { target: 'draft-7', io: 'input', unrepresentable: 'any' }) as Json;
  delete out.$schema;
  return out;
}

/**
 * One `sources[]` element per adapter. bridgeConfigSchema() dispatches on `kind` inside a
 * transform (not representable), so the per-kind objects are rebuilt here from the exported
 * pieces. `name`, `targetNamespace` and `hostTemplate` mirror commonSourceFields in
 * src/config/schema.ts (not exported there); test/unit/chart-schema.test.ts checks they agree.
 */
function sourceJsonSchema(a: AdapterFactory): Json {
  const dns1123Label = z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
    .max(63);
  return toJson(
    z.strictObject({
      name: dns1123Label.describe('Source name (DNS-1123 label), unique among sources.'),
      kind: z.literal(a.kind),
      hostTemplate: z.string().min(1).optional().describe('Host template, e.g. "{service}.{group}.{namespace}.nacos".'),
      targetNamespace: dns1123Label
        .default('default')
        .describe('Namespace the ServiceEntries of this source are written to.'),
      serviceEntry: serviceEntrySettingsSchema.optional(),
      [a.kind]: a.configSchema,
    }),
  );
}

/** JSON Schema of the bridge config file (= the chart's `config:` value). */
export function bridgeConfigJsonSchema(adapters: readonly AdapterFactory[] = adapterFactories): Json {
  const section = (s: z.ZodType) => toJson(s.optional());
  return {
    type: 'object',
    description: 'The registry-bridge config file (docs/configuration.md); rendered into the ConfigMap.',
    additionalProperties: false,
    required: ['sources'],
    properties: {
      sources: { type: 'array', minItems: 1, items: { oneOf: adapters.map(sourceJsonSchema) } },
      policy: section(policySchema),
      sink: section(sinkSchema),
      controller: section(controllerSchema),
      server: section(serverSchema),
      leaderElection: section(leaderElectionSchema),
      propagation: section(propagationSchema),
      log: section(
        z.strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).optional() }),
      ),
    },
  };
}

const quantity = z.union([z.string(), z.number()]);
const stringMap = z.record(z.string(), z.string());
/** Kubernetes objects passed through verbatim (securityContext, affinity, ...). */
const k8sObject = z.record(z.string(), z.unknown());
/** What the sync and verify CronJobs share. */
const cronJobValues = z.strictObject({
  enabled: z.boolean(),
  schedule: z.string(),
  backoffLimit: z.number().int().min(0),
  activeDeadlineSeconds: z.number().int().min(1),
  successfulJobsHistoryLimit: z.number().int().min(0),
  failedJobsHistoryLimit: z.number().int().min(0),
});

/** The chart's own values (everything but `config`). Keep in step with values.yaml. */
export const chartValuesSchema = z.object({
  replicaCount: z.number().int().min(0),
  image: z.strictObject({
    repository: z.string().min(1),
    tag: z.string(),
    digest: z.string().optional(),
    pullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']),
  }),
  imagePullSecrets: z.array(z.strictObject({ name: z.string() })),
  nameOverride: z.string(),
  fullnameOverride: z.string(),
  mode: z.enum(['deployment', 'sidecar']),
  configFiles: z.record(z.string().regex(/^[-._a-zA-Z0-9]+$/), z.string()),
  extraArgs: z.array(z.string()),
  serviceAccount: z.strictObject({
    create: z.boolean(),
    name: z.string(),
    annotations: stringMap,
    automountServiceAccountToken: z.boolean(),
  }),
  rbac: z.strictObject({
    create: z.boolean(),
    targetNamespaces: z.array(z.string()),
    verification: z.strictObject({ enabled: z.boolean() }),
    otherNamespaces: z.strictObject({ enabled: z.boolean() }),
  }),
  registryCredentials: z.array(
    z.strictObject({
      env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
      secretName: z.string().min(1),
      secretKey: z.string().min(1),
      optional: z.boolean().optional(),
    }),
  ),
  secretMounts: z.array(
    z.strictObject({ name: z.string().min(1), secretName: z.string().min(1), mountPath: z.string().min(1) }),
  ),
  extraEnv: z.array(k8sObject),
  podAnnotations: stringMap,
  podLabels: stringMap,
  podSecurityContext: k8sObject,
  securityContext: k8sObject,
  resources: k8sObject,
  livenessProbe: k8sObject,
  readinessProbe: k8sObject,
  terminationGracePeriodSeconds: z.number().int().min(0),
  priorityClassName: z.string(),
  nodeSelector: stringMap,
  tolerations: z.array(k8sObject),
  affinity: k8sObject,
  topologySpreadConstraints: z.array(k8sObject),
  service: z.strictObject({
    enabled: z.boolean(),
    type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']),
    port: z.number().int().min(1).max(65535),
    annotations: stringMap,
  }),
  serviceMonitor: z.strictObject({
    enabled: z.boolean(),
    interval: z.string(),
    scrapeTimeout: z.string(),
    labels: stringMap,
  }),
  podDisruptionBudget: z.strictObject({
    enabled: z.boolean(),
    minAvailable: quantity.optional(),
    maxUnavailable: quantity.optional(),
  }),
  syncJob: cronJobValues,
  verifyJob: cronJobValues.extend({ extraArgs: z.array(z.string()) }),
});

/** The whole values.schema.json. */
export function chartJsonSchema(adapters: readonly AdapterFactory[] = adapterFactories): Json {
  const chart = toJson(chartValuesSchema.partial());
  const properties = { ...(chart.properties as Json), config: bridgeConfigJsonSchema(adapters) };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'registry-bridge Helm chart values',
    $comment: 'GENERATED by `npm run chart:schema` (scripts/gen-chart-schema.ts) from the zod schemas. Do not edit.',
    type: 'object',
    properties,
    required: ['config'],
    // More than one replica writes only safely behind a leader lease.
    if: { required: ['replicaCount'], properties: { replicaCount: { type: 'integer', minimum: 2 } } },
    then: {
      properties: {
        config: {
          required: ['leaderElection'],
          properties: { leaderElection: { required: ['enabled'], properties: { enabled: { const: true } } } },
        },
      },
    },
  };
}

export function renderChartSchema(): string {
  return `${JSON.stringify(chartJsonSchema(), null, 2)}\n`;
}

async function cli(argv: readonly string[]): Promise<number> {
  const text = renderChartSchema();
  if (argv.includes('--check')) {
    const current = await readFile(CHART_SCHEMA_PATH, 'utf8').catch(() => '');
    if (current === text) return 0;
    process.stderr.write(`${path.relative(ROOT, CHART_SCHEMA_PATH)} is stale: run \`npm run chart:schema\`\n`);
    return 1;
  }
  await writeFile(CHART_SCHEMA_PATH, text);
  process.stdout.write(`wrote ${path.relative(ROOT, CHART_SCHEMA_PATH)}\n`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
