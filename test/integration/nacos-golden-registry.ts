/**
 * The Nacos registry that test/fixtures/nacos/golden/integration.yaml describes: every instance
 * the Nacos suites register (v1 API in nacos-adapter.test.ts, v3 admin API in
 * nacos3-native.test.ts) before they expect those golden ServiceEntries.
 */

export const NS_A = 'rb-it-a';
export const NS_B = 'rb-it-b';
/** The groups the golden registry uses. */
export const GROUPS = ['DEFAULT_GROUP', 'GROUP_B', 'DUBBO_GROUP'];
/** Where the golden ServiceEntries are (relative to test/integration). */
export const GOLDEN_YAML = '../fixtures/nacos/golden/integration.yaml';

/** One persistent instance as a test means it (health, enabled and weight as registered). */
export interface Reg {
  ns: string;
  group: string;
  service: string;
  ip: string;
  port: number;
  healthy?: boolean;
  enabled?: boolean;
  weight?: number;
  metadata?: Record<string, string>;
}

/** The registry the golden file describes. */
export const registrations: readonly Reg[] = [
  {
    ns: NS_A,
    group: 'DEFAULT_GROUP',
    service: 'orders',
    ip: '127.1.0.1',
    port: 8080,
    metadata: { protocol: 'http', version: 'v1' },
  },
  {
    ns: NS_A,
    group: 'DEFAULT_GROUP',
    service: 'orders',
    ip: '127.1.0.2',
    port: 8080,
    healthy: false,
    metadata: { protocol: 'http' },
  },
  {
    ns: NS_A,
    group: 'DEFAULT_GROUP',
    service: 'orders',
    ip: '127.1.0.3',
    port: 8080,
    enabled: false,
    metadata: { protocol: 'http' },
  },
  {
    ns: NS_A,
    group: 'DEFAULT_GROUP',
    service: 'orders',
    ip: '127.1.0.4',
    port: 8080,
    weight: 0,
    metadata: { protocol: 'http' },
  },
  {
    ns: NS_A,
    group: 'DEFAULT_GROUP',
    service: 'orders',
    ip: '127.1.0.5',
    port: 8080,
    weight: 3,
    metadata: { protocol: 'http', version: 'v2' },
  },
  { ns: NS_A, group: 'GROUP_B', service: 'payments', ip: '127.1.1.1', port: 9090, metadata: { protocol: 'grpc' } },
  { ns: NS_A, group: 'GROUP_B', service: 'all-down', ip: '127.1.1.2', port: 80, healthy: false },
  {
    ns: NS_A,
    group: 'DUBBO_GROUP',
    service: 'providers:org.example.DemoService:1.0.0:',
    ip: '127.1.2.1',
    port: 20880,
    metadata: { protocol: 'dubbo', application: 'demo', side: 'provider', timestamp: '1700000000000' },
  },
  {
    ns: NS_A,
    group: 'DUBBO_GROUP',
    service: 'consumers:org.example.DemoService:1.0.0:',
    ip: '127.1.2.9',
    port: 1,
    metadata: { side: 'consumer' },
  },
  {
    ns: NS_B,
    group: 'DEFAULT_GROUP',
    service: 'inventory',
    ip: '127.2.0.1',
    port: 80,
    metadata: { 'preserved.register.source': 'SPRING_CLOUD' },
  },
];
