import { z } from 'zod';
import { durationField } from '../../src/config/duration.js';
import { secretRefSchema } from '../../src/config/secret.js';
import { dubboSettingsSchema } from '../dubbo/schema.js';

const hostPort = String.raw`(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(?:[1-9]\d{0,4})`;
const chroot = String.raw`(?:/[^/\s,]+)+`;
const connectRe = new RegExp(`^${hostPort}(?:,${hostPort})*(?:${chroot})?$`);

const znodePath = z
  .string()
  .regex(/^\/$|^(\/[^/\s]+)+$/, 'expected an absolute znode path like /dubbo (no trailing "/")');

export const zookeeperConfigSchema = z
  .strictObject({
    connect: z
      .string()
      .describe('`host:port[,host:port...][/chroot]`, as for every ZooKeeper client.')
      .regex(connectRe, 'expected host:port[,host:port...][/chroot], e.g. zk-0:2181,zk-1:2181/prod')
      .refine(
        (s) =>
          s
            .split('/')[0]!
            .split(',')
            .every((hp) => Number(hp.slice(hp.lastIndexOf(':') + 1)) <= 65535),
        'expected host:port with a port in 1..65535',
      ),
    layout: z
      .enum(['auto', 'dubbo', 'curator'])
      .default('auto')
      .describe(
        '`dubbo`: `/<root>/<interface>/providers/<URL-encoded provider URL>`; `curator`: `/<root>/<name>/<id>` holding Curator ServiceInstance JSON (Spring Cloud Zookeeper, Dubbo 3 application level); `auto`: decided per child of each root (a child with providers/ or configurators/ is a Dubbo interface, anything else a Curator service).',
      ),
    root: znodePath
      .optional()
      .describe('One root znode. Unset (and no `roots`): /dubbo (dubbo), /services (curator), both (auto).'),
    roots: z.array(znodePath).min(1).optional().describe('Several root znodes; set either `root` or `roots`.'),
    dubbo: dubboSettingsSchema({
      registry: 'ZooKeeper',
      applicationLevel:
        'Dubbo 3 application-level registrations (`/services/<app>`, register-mode all or instance). `merge`: instances that an interface-level service of the same application already lists add nothing and the application is not published again (one mesh service per interface + version + group); the rest (providers registered at application level only) stay on the application entry `<app>.dubbo`. `separate`: `<app>.dubbo` is published with every instance as well. `ignore`: not published.',
    }),
    curatorProtocol: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Protocol of plain Curator x-discovery instances, which name none (`http`, `grpc`, ...). Spring Cloud Zookeeper instances are always http (https on sslPort); Dubbo ones say theirs. Unset: TCP.',
      ),
    sessionTimeout: durationField('sources[].zookeeper.sessionTimeout')
      .default(30_000)
      .describe(
        'ZooKeeper session timeout. A connection whose handshake is not answered within a third of it is dropped and retried in the same session.',
      ),
    relistInterval: durationField('sources[].zookeeper.relistInterval')
      .default(300_000)
      .describe(
        'Full re-walk of the tree that re-arms every watch: a safety net, as watches stay armed within a session and every new session or reconnect walks again. At 10,000 services a walk is about 30,000 reads.',
      ),
    requestTimeout: durationField('sources[].zookeeper.requestTimeout')
      .default(5_000)
      .describe('Longest wait for the connection and for each request before the source is unavailable.'),
    maxDataBytes: z
      .number()
      .int()
      .positive()
      .default(256 * 1024)
      .describe('Znode data larger than this many bytes (Curator JSON) is rejected as malformed.'),
    auth: z
      .strictObject({
        scheme: z.literal('digest').describe('The ZooKeeper auth scheme; only `digest`.'),
        credentials: secretRefSchema.describe('`user:password`, from an env var or a file. Never logged.'),
      })
      .optional()
      .describe('ZooKeeper authentication, added to the session.'),
  })
  .refine((c) => c.root === undefined || c.roots === undefined, {
    message: 'set either root or roots, not both',
    path: ['roots'],
  })
  .transform(({ root, roots, ...rest }) => ({
    ...rest,
    roots:
      roots ??
      (root !== undefined
        ? [root]
        : rest.layout === 'dubbo'
          ? ['/dubbo']
          : rest.layout === 'curator'
            ? ['/services']
            : ['/dubbo', '/services']),
  }));

export type ZooKeeperConfig = z.output<typeof zookeeperConfigSchema>;

/** The chroot of a connect string ('' when none). */
export function chrootOf(connect: string): string {
  const i = connect.indexOf('/');
  return i >= 0 ? connect.slice(i).replace(/\/+$/, '') : '';
}

/**
 * Curator ServiceInstance JSON (`org.apache.curator.x.discovery.ServiceInstance`), leniently:
 * only what the adapter uses is required, unknown fields pass.
 */
export const curatorInstanceSchema = z.looseObject({
  name: z.string().optional(),
  id: z.string().optional(),
  address: z.string().min(1, 'address is empty'),
  port: z.number().int().min(1).max(65535).nullable().optional(),
  sslPort: z.number().int().min(1).max(65535).nullable().optional(),
  enabled: z.boolean().optional(),
  serviceType: z.string().optional(),
  payload: z
    .looseObject({
      '@class': z.string().optional(),
      metadata: z.record(z.string(), z.unknown()).nullable().optional(),
    })
    .nullable()
    .optional(),
});
export type CuratorInstance = z.infer<typeof curatorInstanceSchema>;

/** `dubbo.endpoints` metadata: JSON inside a string. */
export const dubboEndpointsSchema = z.array(
  z.looseObject({ port: z.number().int().min(1).max(65535), protocol: z.string().min(1) }),
);
