import { z } from 'zod';
import { durationField } from '../../src/config/duration.js';
import { secretRefSchema } from '../../src/config/secret.js';
import { applicationLevelModes } from '../dubbo/schema.js';

/**
 * The `sources[i].nacos` block. Secrets are references ({env} | {file}), never inline values.
 */
const serverUrl = z.string().refine(
  (s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === '';
    } catch {
      return false;
    }
  },
  {
    message:
      'expected an http(s) URL like http://nacos-0:8848 (context path /nacos is added when none is given; no credentials in the URL)',
  },
);

export const nacosAuthSchema = z.union([
  z.strictObject({
    username: z.string().min(1).describe('Nacos user (not secret).'),
    password: secretRefSchema.describe('Password of the Nacos user.'),
  }),
  z.strictObject({
    accessKey: secretRefSchema.describe('Access key id; a reference, as some deployments treat it as secret too.'),
    secretKey: secretRefSchema.describe('Secret key that signs the requests.'),
    appName: z.string().optional().describe('`app` parameter sent with signed requests.'),
  }),
]);
export type NacosAuth = z.infer<typeof nacosAuthSchema>;

export const nacosConfigSchema = z.strictObject({
  servers: z
    .array(serverUrl)
    .min(1, 'at least one server URL is required')
    .describe(
      'One or more http(s) server URLs of the same Nacos cluster, tried in order, failing over. The context path /nacos is added when none is given; no credentials in the URL.',
    ),
  namespaces: z
    .array(z.string())
    .min(1)
    .default(['public'])
    .describe(
      "Namespace ids to mirror; '' and 'public' both mean the public namespace. `*`: every namespace of the server (Nacos 3 admin API /v3/admin/core/namespace/list; with auth, a user with the admin role).",
    ),
  groups: z
    .array(z.string().min(1))
    .min(1)
    .default(['DEFAULT_GROUP'])
    .describe(
      'Groups to mirror in every namespace, matched exactly (the service list is per group). `*`: every group (Nacos 3 admin API /v3/admin/ns/service/list; with auth, read permission on the namespace).',
    ),
  auth: nacosAuthSchema.optional().describe('Nacos authentication: a user and password, or an access key pair.'),
  relistInterval: durationField('sources[].nacos.relistInterval')
    .default(30_000)
    .describe(
      'Full re-list of services and instances: the truth for services without a live push, and the check of the pushes for those with one (a disagreement seen on two re-lists in a row wins).',
    ),
  relistRate: z
    .number()
    .positive()
    .default(50)
    .describe(
      'At most this many services a second are read by a re-list while their gRPC push is live (services without a live push are read at once): 1,000 services are checked within a 30 s interval, 10,000 over 200 s.',
    ),
  serviceListInterval: durationField('sources[].nacos.serviceListInterval')
    .default(5_000)
    .describe(
      'Poll of the service names only: a service registered after start-up is reconciled within this interval instead of at the next re-list. 0 turns it off.',
    ),
  fuzzyWatch: z
    .boolean()
    .default(true)
    .describe(
      'Fuzzy watch (Nacos 3.x, `push: grpc`): the server announces each new service of a watched group within milliseconds, and the names poll stops for that group. Where the server has none (Nacos 2.x, r-nacos), refuses it, or a group holds 500 services or more, the names poll stays.',
    ),
  pageSize: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(1000)
    .describe(
      'Page size of the service list (gRPC ServiceListRequest, v1 /v1/ns/service/list). Java Nacos sorts every name of the group for each page it answers, so large pages are cheaper.',
    ),
  healthyOnly: z
    .boolean()
    .default(false)
    .describe('Ask the server for healthy instances only (unhealthy ones are then invisible).'),
  push: z
    .union([z.boolean(), z.enum(['grpc', 'sdk'])])
    .default('grpc')
    .describe(
      'How changes are pushed between re-lists: `grpc` (the Nacos 2.x/3.x and r-nacos gRPC subscription, changes within milliseconds), `sdk` (the nacos npm SDK: v1 UDP push where the server sends it, else its ≈ 10 s poll; for Nacos 1.x), or `false` (re-list only). `true` means `grpc`.',
    )
    .transform((p) => (p === true ? 'grpc' : p)),
  api: z
    .enum(['auto', 'grpc', 'v1'])
    .default('auto')
    .describe(
      'How services and instances are read: `grpc` (ServiceListRequest and ServiceQueryRequest over the 2.x/3.x gRPC protocol, no v1 HTTP needed: Nacos 3.2, and 3.0/3.1 with the v1 client API switched off), `v1` (the v1 HTTP OpenAPI: Nacos 1.x), or `auto` (v1 where the server serves it, gRPC where it refuses v1 with HTTP 404, 410 or 501; decided once per start and logged).',
    ),
  grpcPort: z
    .number()
    .int()
    .min(1)
    .max(65535)
    .optional()
    .describe("gRPC port of the servers (the gRPC read path and `push: grpc`). Unset: each server's HTTP port + 1000."),
  emptyProtection: z
    .strictObject({
      keepFor: durationField('sources[].nacos.emptyProtection.keepFor').describe(
        'How long the last known instances are kept.',
      ),
    })
    .optional()
    .describe('A service whose instances suddenly drop to zero keeps its last known instances for `keepFor`.'),
  tls: z
    .strictObject({
      caFile: z
        .string()
        .min(1)
        .optional()
        .describe('PEM file of the CA that signed the server certificate (relative to the config file).'),
      insecureSkipVerify: z.boolean().default(false).describe('Do not verify the server certificate (testing only).'),
    })
    .optional()
    .describe('TLS settings for https:// server URLs.'),
  dubboHostTemplate: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Host template of Dubbo interface services (`providers:<iface>:<version>:<group>`). Unset: the shared Dubbo template, so they get the same host as from ZooKeeper.',
    ),
  dubbo: z
    .strictObject({
      applicationLevel: z
        .enum(applicationLevelModes)
        .default('merge')
        .describe(
          'Dubbo 3 application-level services (a Nacos service named after the application, whose instances carry `dubbo.endpoints`). `merge`: instances that an interface-level service of the same application already lists add nothing and the application is not published again; the rest (providers registered at application level only, `register-mode=instance`) are published on the entries of the interfaces the metadata report names (see `metadataReport`), else on the application entry. `separate`: the application is published on its own as well. `ignore`: not published.',
        ),
      metadataReport: z
        .boolean()
        .default(true)
        .describe(
          "Read Dubbo's metadata report in the Nacos config service (the service definitions Dubbo writes in group `metadataGroup`, one config search per application and revision, cached) to map `merge` application-level services to their interfaces. `false`: no config is read; such providers stay on the application entry.",
        ),
      metadataGroup: z
        .string()
        .min(1)
        .default('dubbo')
        .describe(
          "Config group of Dubbo's service definitions: the metadata report's `group` (Dubbo's default `dubbo`).",
        ),
    })
    .default({ applicationLevel: 'merge', metadataReport: true, metadataGroup: 'dubbo' })
    .describe('How Dubbo registrations in this Nacos map to mesh services.'),
  requestTimeout: durationField('sources[].nacos.requestTimeout')
    .default(5_000)
    .describe('Timeout of each HTTP request.'),
  concurrency: z.number().int().min(1).max(64).default(8).describe('Parallel instance-list requests.'),
});
export type NacosConfig = z.infer<typeof nacosConfigSchema>;

// ---- Payloads of the v1 OpenAPI. Lenient: only what we use is required. ----

const metadataValue = z
  .union([z.string(), z.number(), z.boolean(), z.null()])
  .transform((v) => (v === null ? '' : String(v)));

/**
 * A number, or a decimal number in a string (some servers and proxies quote them). Not
 * z.coerce: that turns `true` into 1, `[80]` into 80 and `""` into 0.
 */
const numeric = z.union(
  [
    z.number(),
    z
      .string()
      .trim()
      .regex(/^-?\d+(\.\d+)?$/)
      .transform(Number),
  ],
  { error: 'expected a number' },
);

/** One entry of `hosts`, Nacos 1.x (`valid`, `instanceId`, `marked`) and 2.x/3.x shapes alike. */
export const nacosHostSchema = z.object({
  ip: z.string().min(1, 'ip must not be empty'),
  port: numeric.pipe(z.number().int().min(1, 'port must be in 1..65535').max(65535, 'port must be in 1..65535')),
  weight: numeric.pipe(z.number().nonnegative()).optional(),
  healthy: z.boolean().optional(),
  /** Nacos 1.x name of `healthy`. */
  valid: z.boolean().optional(),
  enabled: z.boolean().optional(),
  ephemeral: z.boolean().optional(),
  clusterName: z.string().optional(),
  metadata: z.record(z.string(), metadataValue).nullish(),
});
export type NacosHost = z.infer<typeof nacosHostSchema>;

export const instanceListSchema = z.object({
  hosts: z.array(z.unknown()).nullish(),
  /** The service's protectThreshold was reached: the server returns every instance, marked healthy. */
  reachProtectionThreshold: z.boolean().optional(),
  checksum: z.string().optional(),
  lastRefTime: z.number().optional(),
});

export const serviceListSchema = z.object({
  count: numeric.pipe(z.number().int().nonnegative()),
  doms: z.array(z.string()).nullish(),
});

export const loginSchema = z.object({
  accessToken: z.string().min(1),
  tokenTtl: z.coerce.number().positive().optional(),
});
