/**
 * Generates docs/configuration.md from the zod schemas the bridge validates its config file
 * with (src/config/schema.ts + every adapter's configSchema): every key, its type, default and
 * the schema's `.describe()` text. test/unit/config-docs.test.ts fails when the file is stale.
 *
 *   npm run docs:config            # rewrite docs/configuration.md
 *   npm run docs:config -- --check # exit 1 when the committed file is stale
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { formatDuration } from '../src/config/duration.js';
import { bridgeConfigSchema, commonSourceFields } from '../src/config/schema.js';
import type { AdapterFactory } from '../src/sources/adapter.js';
import { adapterFactories } from '../src/sources/registry.js';
import { baseTemplateVariables } from '../src/synth/naming.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CONFIG_DOCS_PATH = path.join(ROOT, 'docs', 'configuration.md');
export const CONFIG_DOCS_COMMAND = 'npm run docs:config';

/** What this script reads of a zod 4 schema's definition (`schema._zod.def`). */
interface Def {
  readonly type: string;
  readonly innerType?: z.ZodType;
  readonly defaultValue?: unknown;
  readonly in?: z.ZodType;
  readonly shape?: Record<string, z.ZodType>;
  readonly options?: readonly z.ZodType[];
  readonly element?: z.ZodType;
  readonly keyType?: z.ZodType;
  readonly valueType?: z.ZodType;
  readonly entries?: Record<string, string | number>;
  readonly values?: readonly unknown[];
}

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** A schema with its wrappers (optional, default, prefault, pipe) taken off. */
interface Field {
  readonly schema: z.ZodType;
  readonly description: string | undefined;
  readonly required: boolean;
  readonly hasDefault: boolean;
  readonly defaultValue: unknown;
}

function unwrap(schema: z.ZodType): Field {
  let s = schema;
  let description: string | undefined;
  let optional = false;
  let hasDefault = false;
  let defaultValue: unknown;
  for (;;) {
    description ??= s.description;
    const def = defOf(s);
    if (isDuration(s)) break;
    if (def.type === 'optional' || def.type === 'nullable') {
      optional = true;
      s = def.innerType!;
    } else if (def.type === 'default' || def.type === 'prefault') {
      if (!hasDefault) {
        hasDefault = true;
        defaultValue = def.defaultValue;
      }
      s = def.innerType!;
    } else if (def.type === 'pipe') {
      s = def.in!;
    } else break;
  }
  return { schema: s, description, required: !optional && !hasDefault, hasDefault, defaultValue };
}

/** `durationSchema` (src/config/duration.ts): a number of milliseconds or a string, through a transform. */
function isDuration(schema: z.ZodType): boolean {
  const def = defOf(schema);
  if (def.type !== 'pipe' || !def.in) return false;
  const inner = defOf(def.in);
  if (inner.type !== 'union') return false;
  const kinds = (inner.options ?? []).map((o) => defOf(o).type).sort();
  return kinds.join(',') === 'number,string';
}

/** `secretRefSchema` (src/config/secret.ts): `{ env }` or `{ file }`. */
function isSecretRef(schema: z.ZodType): boolean {
  const def = defOf(schema);
  if (def.type !== 'union') return false;
  const keys = (def.options ?? []).map((o) => Object.keys(defOf(o).shape ?? {}).join(','));
  return keys.length === 2 && keys.includes('env') && keys.includes('file');
}

/** A value as it would be written in the YAML config file (flow style). */
function yamlValue(value: unknown): string {
  if (typeof value === 'string') return /^[A-Za-z0-9_./:-]+$/.test(value) ? value : JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(yamlValue).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    return entries.length === 0 ? '{}' : `{ ${entries.map(([k, v]) => `${k}: ${yamlValue(v)}`).join(', ')} }`;
  }
  return String(value);
}

const code = (text: string) => `\`${text}\``;

/** Constraints JSON Schema knows and a reader needs (bounds, lengths, formats). */
function leafJson(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

const SAFE = Number.MAX_SAFE_INTEGER;

function numberType(schema: z.ZodType): string {
  const j = leafJson(schema);
  const name = j.type === 'integer' ? 'integer' : 'number';
  const min = typeof j.minimum === 'number' && j.minimum > -SAFE ? j.minimum : undefined;
  const max = typeof j.maximum === 'number' && j.maximum < SAFE ? j.maximum : undefined;
  const exMin = typeof j.exclusiveMinimum === 'number' ? j.exclusiveMinimum : undefined;
  if (min !== undefined && max !== undefined) return `${name} ${min}–${max}`;
  if (exMin !== undefined) return `${name} > ${exMin}`;
  if (min !== undefined) return `${name} ≥ ${min}`;
  if (max !== undefined) return `${name} ≤ ${max}`;
  return name;
}

function stringType(schema: z.ZodType): string {
  const j = leafJson(schema);
  if (j.format === 'uri') return 'URL';
  if (typeof j.maxLength === 'number') return `string (≤ ${j.maxLength} characters)`;
  if (typeof j.minLength === 'number' && j.minLength > 0) return 'string (non-empty)';
  return 'string';
}

/** The type column: what a user may write. */
function typeOf(schema: z.ZodType): string {
  if (isDuration(schema)) {
    // boundedDuration (src/config/duration.ts) describes its union with its limits.
    const range = /between (.+)\.$/.exec(defOf(schema).in?.description ?? '')?.[1];
    return range ? `duration, ${range.replace(' and ', ' to ')}` : 'duration';
  }
  if (isSecretRef(schema)) return 'secret reference';
  const def = defOf(schema);
  switch (def.type) {
    case 'string':
      return stringType(schema);
    case 'number':
      return numberType(schema);
    case 'boolean':
      return 'boolean';
    case 'enum':
      return Object.values(def.entries ?? {})
        .map((v) => code(String(v)))
        .join(' \\| ');
    case 'literal':
      return (def.values ?? []).map((v) => code(String(v))).join(' \\| ');
    case 'array':
      return `list of ${typeOf(unwrap(def.element!).schema)}`;
    case 'record':
      return `map of ${typeOf(unwrap(def.keyType!).schema)} → ${typeOf(unwrap(def.valueType!).schema)}`;
    case 'object':
      return 'object';
    case 'union': {
      const options = (def.options ?? []).map((o) => unwrap(o).schema);
      if (options.every((o) => defOf(o).type === 'object')) return `object (one of ${options.length} forms)`;
      return options.map(typeOf).join(' or ');
    }
    default:
      return def.type;
  }
}

function defaultOf(field: Field): string {
  if (field.required) return 'required';
  if (!field.hasDefault) return '–';
  const v = field.defaultValue;
  if (isDuration(field.schema) && typeof v === 'number') return code(formatDuration(v));
  return code(yamlValue(v));
}

interface Row {
  readonly key: string;
  readonly type: string;
  readonly default: string;
  readonly description: string;
}

/** One row per key of an object schema, then the rows of its nested objects (dotted keys). */
function rowsOf(shape: Record<string, z.ZodType>, prefix = ''): Row[] {
  const rows: Row[] = [];
  for (const [key, schema] of Object.entries(shape)) {
    const field = unwrap(schema);
    const name = `${prefix}${key}`;
    const def = defOf(field.schema);
    let description = field.description ?? '';
    const nested: Row[] = [];
    if (def.type === 'object' && def.shape) {
      nested.push(...rowsOf(def.shape, `${name}.`));
    } else if (def.type === 'union' && !isSecretRef(field.schema)) {
      const options = (def.options ?? []).map((o) => unwrap(o).schema);
      if (options.every((o) => defOf(o).type === 'object')) {
        const forms = options.map((o) => code(`{ ${Object.keys(defOf(o).shape ?? {}).join(', ')} }`));
        description = `${description}${description ? ' ' : ''}One of: ${forms.join(', ')}.`;
        const seen = new Set<string>();
        for (const o of options) {
          for (const row of rowsOf(defOf(o).shape ?? {}, `${name}.`)) {
            if (!seen.has(row.key)) nested.push(row);
            seen.add(row.key);
          }
        }
      }
    } else if (def.type === 'array') {
      const element = unwrap(def.element!).schema;
      const elementDef = defOf(element);
      if (elementDef.type === 'object' && elementDef.shape) nested.push(...rowsOf(elementDef.shape, `${name}[].`));
    }
    rows.push({ key: name, type: typeOf(field.schema), default: defaultOf(field), description });
    rows.push(...nested);
  }
  return rows;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');

function table(rows: readonly Row[]): string {
  const lines = ['| key | type | default | description |', '| --- | --- | --- | --- |'];
  for (const r of rows) {
    // The type column escapes its own alternatives ("a \| b"); descriptions are escaped here.
    lines.push(`| ${code(r.key)} | ${r.type} | ${r.default} | ${cell(r.description)} |`);
  }
  return lines.join('\n');
}

/** Every documented key with no `.describe()` text, as `section.key` paths (the test lists them). */
export function undescribedKeys(adapters: readonly AdapterFactory[] = adapterFactories): string[] {
  return sections(adapters).flatMap((s) =>
    s.rows.filter((r) => r.description.trim() === '').map((r) => `${s.path}${s.path ? '.' : ''}${r.key}`),
  );
}

interface Section {
  readonly heading: string;
  /** The key path of the section's rows, e.g. `sources[].nacos`. */
  readonly path: string;
  readonly intro: string;
  readonly rows: readonly Row[];
}

function topLevelShape(adapters: readonly AdapterFactory[]): Record<string, z.ZodType> {
  const schema = bridgeConfigSchema(adapters) as unknown as z.ZodType;
  return defOf(schema).shape ?? {};
}

function sections(adapters: readonly AdapterFactory[]): Section[] {
  const top = topLevelShape(adapters);
  const out: Section[] = [];
  const topRows: Row[] = Object.entries(top).map(([key, schema]) => {
    const field = unwrap(schema);
    const type = key === 'sources' ? 'list of source' : typeOf(field.schema);
    return { key, type, default: defaultOf(field), description: field.description ?? '' };
  });
  out.push({
    heading: 'Top level',
    path: '',
    intro: 'Every section but `sources` may be left out; its fields then take their defaults.',
    rows: topRows,
  });
  out.push({
    heading: '`sources[]`',
    path: 'sources[]',
    intro: [
      'Fields every source has, whatever its kind. The adapter-specific block sits under the',
      "source's `kind` (`kind: nacos` → a `nacos:` block), documented in the sections below.",
    ].join('\n'),
    rows: [
      {
        key: 'kind',
        type: adapters.map((a) => code(a.kind)).join(' \\| '),
        default: 'required',
        description: 'The registry adapter that reads this source.',
      },
      ...rowsOf(commonSourceFields),
    ],
  });
  for (const a of adapters) {
    const variables = [...baseTemplateVariables, ...(a.templateAttributes ?? [])].map((v) => code(`{${v}}`));
    out.push({
      heading: `\`sources[].${a.kind}\` (\`kind: ${a.kind}\`)`,
      path: `sources[].${a.kind}`,
      intro: [
        `Default \`hostTemplate\`: ${code(a.defaultHostTemplate)}. Template variables: ${variables.join(' ')}.`,
      ].join('\n'),
      rows: rowsOf(adapterShape(a)),
    });
  }
  for (const [key, schema] of Object.entries(top)) {
    if (key === 'sources') continue;
    const field = unwrap(schema);
    const def = defOf(field.schema);
    if (def.type === 'union') {
      for (const option of def.options ?? []) {
        const o = unwrap(option).schema;
        const shape = defOf(o).shape ?? {};
        const kind = defOf(unwrap(shape.kind!).schema).values?.[0];
        out.push({
          heading: `\`${key}\` with \`kind: ${String(kind)}\``,
          path: key,
          intro: o.description ?? '',
          rows: rowsOf(shape),
        });
      }
    } else {
      out.push({ heading: `\`${key}\``, path: key, intro: field.description ?? '', rows: rowsOf(def.shape ?? {}) });
    }
  }
  return out;
}

function adapterShape(a: AdapterFactory): Record<string, z.ZodType> {
  const field = unwrap(a.configSchema as z.ZodType);
  return defOf(field.schema).shape ?? {};
}

const INTRO = `# Configuration reference

<!-- GENERATED by \`${CONFIG_DOCS_COMMAND}\` (scripts/gen-config-docs.ts) from the zod schemas in
src/config/schema.ts and adapters/*/schema.ts. Do not edit: change a schema's .describe() text
and run the command. -->

registry-bridge reads one YAML file (\`registry-bridge sync -c config.yaml\`; the Helm chart's
\`config:\` value is the same file). It is validated at start against the schema this page is
generated from: unknown keys are errors, and every error names its field
(\`sources[1].zookeeper.connect: expected host:port...\`), so a bad file exits 2 before anything
is read or written. Complete examples: \`examples/quickstart.yaml\`, \`examples/nacos-to-kube.yaml\`,
\`examples/zookeeper-dubbo.yaml\`.

- **Durations** are a number of milliseconds or a string of numbers with units \`ms\`, \`s\`, \`m\`,
  \`h\`: \`500ms\`, \`30s\`, \`5m\`, \`1m30s\`. Each has limits (in the type column); why they are
  where they are: [configuration-limits.md](configuration-limits.md).
- **Secret references**: a secret (a password, a key, a ZooKeeper digest) is never written
  inline. It is \`{ env: VAR }\` (an environment variable) or \`{ file: /path }\` (a file, such as
  a mounted Kubernetes Secret; relative to the config file). Only the reference is ever logged.
  See [validation-and-secrets.md](validation-and-secrets.md).
- **Relative paths** (the static registry file, a CA file, a secret file) resolve against the
  directory of the config file.
- **Host templates** (\`hostTemplate\`) name variables in braces, e.g.
  \`{service}.{group}.{namespace}.nacos\`; each value is sanitized to DNS-1123 labels, empty
  values drop out, and a variable the source's kind does not provide is an error. See
  [identity.md](identity.md).
- In the tables, *required* marks a key that must be set and *–* an optional key without a
  default.
`;

export function renderConfigDocs(adapters: readonly AdapterFactory[] = adapterFactories): string {
  const parts = [INTRO];
  for (const s of sections(adapters)) {
    parts.push(`## ${s.heading}\n`);
    if (s.intro) parts.push(`${s.intro}\n`);
    parts.push(`${table(s.rows)}\n`);
  }
  return parts.join('\n');
}

async function cli(argv: readonly string[]): Promise<number> {
  const text = renderConfigDocs();
  const rel = path.relative(ROOT, CONFIG_DOCS_PATH);
  if (argv.includes('--check')) {
    const current = await readFile(CONFIG_DOCS_PATH, 'utf8').catch(() => '');
    if (current === text) return 0;
    process.stderr.write(`${rel} is stale: run \`${CONFIG_DOCS_COMMAND}\`\n`);
    return 1;
  }
  await writeFile(CONFIG_DOCS_PATH, text);
  process.stdout.write(`wrote ${rel}\n`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).then(
    (exitCode) => {
      process.exitCode = exitCode;
    },
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
