import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.js';

/**
 * A secret is never written inline in the config: it is a reference to an environment
 * variable or a file (a mounted Kubernetes Secret). Only the reference is ever logged.
 */
export const secretRefSchema = z.union([
  z.strictObject({ env: z.string().min(1) }),
  z.strictObject({ file: z.string().min(1) }),
]);
export type SecretRef = z.infer<typeof secretRefSchema>;

export function describeSecretRef(ref: SecretRef): string {
  return 'env' in ref ? `env ${ref.env}` : `file ${ref.file}`;
}

export function secretResolver(env: Readonly<Record<string, string | undefined>>, baseDir: string) {
  return async (ref: SecretRef, field: string): Promise<string> => {
    if ('env' in ref) {
      const value = env[ref.env];
      if (value === undefined || value === '')
        throw new ConfigError(field, `environment variable ${ref.env} is not set`);
      return value;
    }
    const path = isAbsolute(ref.file) ? ref.file : resolve(baseDir, ref.file);
    try {
      return (await readFile(path, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new ConfigError(field, `cannot read secret file ${path} (${code})`);
    }
  };
}

/** Every secret reference in a value, with its dotted path (`sources[0].nacos.auth.password`). */
export function secretRefsIn(value: unknown, path: string): { path: string; ref: SecretRef }[] {
  if (value === null || typeof value !== 'object') return [];
  if (Array.isArray(value)) return value.flatMap((v, i) => secretRefsIn(v, `${path}[${i}]`));
  const ref = secretRefSchema.safeParse(value);
  if (ref.success) return [{ path, ref: ref.data }];
  return Object.entries(value).flatMap(([k, v]) => secretRefsIn(v, path ? `${path}.${k}` : k));
}

/**
 * Resolves every secret reference of the sources once, at load: a variable that is not set or a
 * file that cannot be read is a configuration error naming the field (exit 2 at start), not a
 * source that fails at its first read. The values are dropped: adapters read them again when
 * they connect, so a rotated Secret is picked up.
 */
export async function checkSecretRefs(
  sources: readonly { readonly kind: string; readonly [block: string]: unknown }[],
  env: Readonly<Record<string, string | undefined>>,
  baseDir: string,
): Promise<void> {
  const resolveSecret = secretResolver(env, baseDir);
  for (const [i, source] of sources.entries()) {
    for (const { path, ref } of secretRefsIn(source[source.kind], `sources[${i}].${source.kind}`))
      await resolveSecret(ref, path);
  }
}
