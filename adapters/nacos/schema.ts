import { z } from 'zod';
import { durationSchema } from '../../src/config/duration.js';
import { secretRefSchema } from '../../src/config/secret.js';

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
    /** Nacos user (not secret). */
    username: z.string().min(1),
    password: secretRefSchema,
  }),
  z.strictObject({
    /** Access key id; a reference, as some deployments treat it as secret too. */
    accessKey: secretRefSchema,
    secretKey: secretRefSchema,
    /** `app` parameter sent with signed requests. */
    appName: z.string().optional(),
  }),
]);
export type NacosAuth = z.infer<typeof nacosAuthSchema>;

export const nacosConfigSchema = z.strictObject({
  /** One or more server URLs of the same Nacos cluster; tried in order, failing over. */
  servers: z.array(serverUrl).min(1, 'at least one server URL is required'),
  /** Namespace ids to mirror; '' and 'public' both mean the public namespace. */
  namespaces: z.array(z.string()).min(1).default(['public']),
  /** Groups to mirror in every namespace (the v1 service list is per group). */
  groups: z.array(z.string().min(1)).min(1).default(['DEFAULT_GROUP']),
  auth: nacosAuthSchema.optional(),
  /**
   * Full re-list of services and instances over HTTP (with gRPC push, spread over half the
   * interval): the truth for services without a live subscription, and the check of the pushes
   * for those with one (a disagreement seen on two re-lists in a row wins).
   */
  relistInterval: durationSchema.default(30_000),
  /**
   * At most this many services a second are read by a re-list while their gRPC push is live
   * (the check of the pushes; services without a live push are read at once). It bounds what
   * the check costs the servers and the bridge as the registry grows: 1,000 services are
   * checked within a 30 s interval, 10,000 over 200 s instead of all in 15 s (about 7 s of the
   * bridge's CPU and 10,000 server requests every 30 s).
   */
  relistRate: z.number().positive().default(50),
  /**
   * Poll of the service names only (no instance lists): a service registered after start-up is
   * reconciled within this interval instead of at the next full re-list. Naming pushes cover
   * instances of known services only. 0 turns it off.
   */
  serviceListInterval: durationSchema.default(5_000),
  /**
   * Page size of /v1/ns/service/list. Java Nacos sorts every name of the group for each page it
   * answers: 10,000 names cost 100 requests (2.4 s) in pages of 100, 10 (0.24 s) in pages of
   * 1,000, and the names are polled every serviceListInterval.
   */
  pageSize: z.number().int().min(1).max(1000).default(1000),
  /** Ask the server for healthy instances only (unhealthy ones are then invisible). */
  healthyOnly: z.boolean().default(false),
  /**
   * How changes are pushed between re-lists: `grpc` (default; the Nacos 2.x/3.x and r-nacos
   * gRPC subscription, changes within milliseconds), `sdk` (the nacos npm SDK: v1 UDP push where
   * the server sends it, else its ≈ 10 s poll; for Nacos 1.x), or `false` (re-list only).
   * `true` means `grpc`.
   */
  push: z
    .union([z.boolean(), z.enum(['grpc', 'sdk'])])
    .default('grpc')
    .transform((p) => (p === true ? 'grpc' : p)),
  /** gRPC port of the servers (push: grpc); default each server's HTTP port + 1000. */
  grpcPort: z.number().int().min(1).max(65535).optional(),
  /** A service whose instances suddenly drop to zero keeps its last known instances this long. */
  emptyProtection: z.strictObject({ keepFor: durationSchema }).optional(),
  tls: z
    .strictObject({
      /** PEM file of the CA that signed the server certificate (relative to the config file). */
      caFile: z.string().min(1).optional(),
      insecureSkipVerify: z.boolean().default(false),
    })
    .optional(),
  /**
   * Host template of Dubbo interface services (`providers:<iface>:<version>:<group>`); the
   * default is the shared Dubbo one, so they get the same host as from ZooKeeper.
   */
  dubboHostTemplate: z.string().min(1).optional(),
  /** Per-request timeout. */
  requestTimeout: durationSchema.default(5_000),
  /** Parallel instance-list requests. */
  concurrency: z.number().int().min(1).max(64).default(8),
});
export type NacosConfig = z.infer<typeof nacosConfigSchema>;

// ---- Payloads of the v1 OpenAPI. Lenient: only what we use is required. ----

const metadataValue = z
  .union([z.string(), z.number(), z.boolean(), z.null()])
  .transform((v) => (v === null ? '' : String(v)));

/** One entry of `hosts`, Nacos 1.x (`valid`, `instanceId`, `marked`) and 2.x/3.x shapes alike. */
export const nacosHostSchema = z.object({
  ip: z.string().min(1, 'ip must not be empty'),
  port: z.coerce.number().int().min(1, 'port must be in 1..65535').max(65535, 'port must be in 1..65535'),
  weight: z.coerce.number().nonnegative().optional(),
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
  checksum: z.string().optional(),
  lastRefTime: z.number().optional(),
});

export const serviceListSchema = z.object({
  count: z.coerce.number().int().nonnegative(),
  doms: z.array(z.string()).nullish(),
});

export const loginSchema = z.object({
  accessToken: z.string().min(1),
  tokenTtl: z.coerce.number().positive().optional(),
});
