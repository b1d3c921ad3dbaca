import { z } from 'zod';

const port = z.number().int().min(1, 'port must be in 1..65535').max(65535, 'port must be in 1..65535');

export const instanceSchema = z.strictObject({
  address: z.string().min(1, 'address must not be empty'),
  port,
  protocol: z.string().optional(),
  weight: z.number().nonnegative().default(1),
  healthy: z.boolean().default(true),
  enabled: z.boolean().default(true),
  metadata: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
  locality: z.string().optional(),
});

export const serviceSchema = z.strictObject({
  name: z.string().min(1, 'name must not be empty'),
  namespace: z.string().default(''),
  group: z.string().default(''),
  /** Explicit host instead of the naming template (e.g. an external service). */
  host: z.string().optional(),
  protocol: z.string().optional(),
  ports: z.array(z.strictObject({ number: port, protocol: z.string(), name: z.string().optional() })).optional(),
  instances: z.array(instanceSchema).default([]),
});
export type StaticService = z.infer<typeof serviceSchema>;

export const registryFileSchema = z.object({ services: z.array(z.unknown()) });
