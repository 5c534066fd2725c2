// Command-line flags from a config schema: every field `x` of the schema becomes `--x <value>` (booleans:
// `--x [true|false]`, bare `--x` meaning true), with the field's description and default in --help.
// `flagOverrides` returns only the flags the user typed, coerced to the field's type, ready for
// `parseConfig(schema, { file, overrides })` — which validates them and reports problems as `--x: message`.
//
// The same introspection renders the Markdown reference of a schema (docs/training-config.md).
import { Option, type Command } from 'commander';
import { z } from 'zod';

/** What a field accepts, read from its zod schema. */
export interface FieldInfo {
  key: string;
  description: string;
  /** Whether the field has a default (fields without one are required). */
  hasDefault: boolean;
  default: unknown;
  /** Basic kinds of value accepted. */
  kinds: Set<'number' | 'integer' | 'boolean' | 'string' | 'null' | 'list' | 'mapping'>;
  /** Allowed strings / literals, when the field (or a union member) is an enum or literal. */
  choices: (string | number | boolean)[];
  /** Human-readable type, e.g. "integer ≥ 1 or null", "'no' | 'steps' | 'epoch'". */
  typeText: string;
}

/** The description of a schema: its own, else the one of the schema it wraps. */
function descriptionOf(s: z.ZodType): string {
  let cur: z.ZodType | undefined = s;
  while (cur) {
    if (cur.description) return cur.description;
    cur = inner(cur);
  }
  return '';
}

/** The schema a wrapper (default, optional, nullable, pipe input) wraps, or undefined. */
function inner(s: z.ZodType): z.ZodType | undefined {
  if (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable || s instanceof z.ZodPrefault) return s.unwrap() as z.ZodType;
  if (s instanceof z.ZodPipe) return s.in as z.ZodType;
  return undefined;
}

function numberRange(s: z.ZodNumber): string {
  let lo = '';
  let hi = '';
  for (const c of s._zod.def.checks ?? []) {
    const d = c._zod.def as { check: string; value?: unknown; inclusive?: boolean };
    if (d.check === 'greater_than') lo = `${d.inclusive ? '≥' : '>'} ${String(d.value)}`;
    if (d.check === 'less_than') hi = `${d.inclusive ? '≤' : '<'} ${String(d.value)}`;
  }
  return [lo, hi].filter(Boolean).join(', ');
}

function fmtChoice(v: string | number | boolean): string {
  return typeof v === 'string' ? `'${v}'` : String(v);
}

/** Collects kinds, choices and a type text for one (unwrapped) schema. */
function describeType(s: z.ZodType, info: Pick<FieldInfo, 'kinds' | 'choices'>): string {
  if (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodPrefault || s instanceof z.ZodPipe) return describeType(inner(s) as z.ZodType, info);
  if (s instanceof z.ZodNullable) {
    info.kinds.add('null');
    return `${describeType(s.unwrap() as z.ZodType, info)} or null`;
  }
  if (s instanceof z.ZodNull) {
    info.kinds.add('null');
    return 'null';
  }
  if (s instanceof z.ZodNumber) {
    const isInt = s.format === 'safeint' || s.format === 'int32' || s.format === 'uint32';
    info.kinds.add(isInt ? 'integer' : 'number');
    const range = numberRange(s);
    return `${isInt ? 'integer' : 'number'}${range ? ` ${range}` : ''}`;
  }
  if (s instanceof z.ZodBoolean) {
    info.kinds.add('boolean');
    return 'boolean';
  }
  if (s instanceof z.ZodString) {
    info.kinds.add('string');
    return 'string';
  }
  if (s instanceof z.ZodEnum) {
    info.kinds.add('string');
    const values = s.options as (string | number)[];
    info.choices.push(...values);
    return values.map(fmtChoice).join(' | ');
  }
  if (s instanceof z.ZodLiteral) {
    const values = [...s.values] as (string | number | boolean)[];
    for (const v of values) info.kinds.add(typeof v === 'boolean' ? 'boolean' : typeof v === 'number' ? 'number' : 'string');
    info.choices.push(...values);
    return values.map(fmtChoice).join(' | ');
  }
  if (s instanceof z.ZodArray) {
    info.kinds.add('list');
    const el = describeType(s.element as z.ZodType, { kinds: new Set(), choices: [] });
    return `list of ${el.includes(' | ') ? `(${el})` : `${el}s`}`;
  }
  if (s instanceof z.ZodRecord || s instanceof z.ZodObject) {
    info.kinds.add('mapping');
    return s instanceof z.ZodRecord ? `mapping of ${describeType(s.valueType as z.ZodType, { kinds: new Set(), choices: [] })}s` : 'mapping';
  }
  if (s instanceof z.ZodUnion) return (s.options as z.ZodType[]).map((o) => describeType(o, info)).join(' or ');
  return 'value';
}

/** The default of a field, when it has one. */
function defaultOf(s: z.ZodType): { has: boolean; value: unknown } {
  let cur: z.ZodType | undefined = s;
  while (cur) {
    if (cur instanceof z.ZodDefault) return { has: true, value: cur._zod.def.defaultValue };
    cur = inner(cur);
  }
  return { has: false, value: undefined };
}

/** The fields of an object schema (refinements included) with what each accepts. */
export function schemaFields(schema: z.ZodType): FieldInfo[] {
  if (!(schema instanceof z.ZodObject)) throw new TypeError('schemaFields: expected an object schema');
  return Object.entries(schema.shape as Record<string, z.ZodType>).map(([key, field]) => {
    const info = { kinds: new Set<FieldInfo['kinds'] extends Set<infer K> ? K : never>(), choices: [] as FieldInfo['choices'] };
    const typeText = describeType(field, info);
    const d = defaultOf(field);
    return { key, description: descriptionOf(field), hasDefault: d.has, default: d.value, kinds: info.kinds, choices: info.choices, typeText };
  });
}

/** A default as a user would type it on the command line. */
export function formatDefault(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.join(',');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function valueHint(f: FieldInfo): string {
  if (f.kinds.has('mapping')) return '<json>';
  if (f.choices.length && f.kinds.size <= 2 && !f.kinds.has('list')) {
    const text = `${f.choices.join('|')}${f.kinds.has('null') ? '|null' : ''}`;
    return text.length <= 30 ? `<${text}>` : '<name>'; // long lists are in the description
  }
  if (f.kinds.has('list')) return '<a,b,...>';
  if (f.kinds.has('integer') && !f.kinds.has('string')) return '<int>';
  if (f.kinds.has('number') && !f.kinds.has('string')) return '<number>';
  return '<value>';
}

const isBooleanField = (f: FieldInfo) => f.kinds.has('boolean') && [...f.kinds].every((k) => k === 'boolean' || k === 'null');

/**
 * Adds `--<key> <value>` for every field of `schema` to `cmd`, described as in the schema, with the default in
 * --help. Keys in `exclude` (or already defined on the command) are left out.
 */
export function registerConfigFlags(cmd: Command, schema: z.ZodType, opts: { exclude?: readonly string[] } = {}): void {
  const taken = new Set(cmd.options.map((o) => o.long));
  for (const f of schemaFields(schema)) {
    if (opts.exclude?.includes(f.key) || taken.has(`--${f.key}`)) continue;
    const flags = isBooleanField(f) ? `--${f.key} [${f.kinds.has('null') ? 'true|false|null' : 'true|false'}]` : `--${f.key} ${valueHint(f)}`;
    const option = new Option(flags, f.description + (f.hasDefault ? '' : ' (required: in the config file or as this flag)'));
    if (f.hasDefault) option.default(f.default, formatDefault(f.default));
    cmd.addOption(option);
  }
}

/** Candidate typed values for a flag's text, in the order they are tried against the field's schema. */
function candidates(raw: string): unknown[] {
  const out: unknown[] = [];
  const t = raw.trim();
  if (t === 'null' || t === 'None') out.push(null);
  const lower = t.toLowerCase();
  if (lower === 'true' || lower === 'false') out.push(lower === 'true');
  if (t !== '' && Number.isFinite(Number(t))) out.push(Number(t));
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      out.push(JSON.parse(t));
    } catch {
      /* not JSON: tried as text below */
    }
  }
  out.push(raw);
  out.push(t.split(',').map((s) => s.trim()).filter((s) => s !== ''));
  return out;
}

/** The FieldInfo kind a candidate value has ('number' stands for integers too). */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'mapping';
  return typeof v;
}

/**
 * Converts a flag's text to the field's type: the first of null, boolean, number, JSON, the text itself and
 * a comma-separated list that the field accepts. When none does, the candidate of the field's kind is
 * returned so that validation reports the real problem ("must be > 0, got -1").
 */
export function coerceFlagValue(raw: string | boolean, field: z.ZodType): unknown {
  if (typeof raw === 'boolean') return raw; // a bare boolean flag
  const cands = candidates(raw);
  for (const c of cands) if (field.safeParse(c).success) return c;
  const info = { kinds: new Set<string>(), choices: [] };
  describeType(field, info as Pick<FieldInfo, 'kinds' | 'choices'>);
  if (info.kinds.has('integer')) info.kinds.add('number'); // 1.5 for an integer field: report "must be an integer"
  for (const c of cands) if (c !== null && info.kinds.has(kindOf(c))) return c;
  return raw;
}

/** The values of the schema's flags that the user gave on the command line, coerced to their types. */
export function flagOverrides(cmd: Command, schema: z.ZodType): Record<string, unknown> {
  if (!(schema instanceof z.ZodObject)) throw new TypeError('flagOverrides: expected an object schema');
  const values = cmd.opts<Record<string, unknown>>();
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
    if (cmd.getOptionValueSource(key) !== 'cli') continue;
    const raw = values[key];
    if (typeof raw === 'string' || typeof raw === 'boolean') out[key] = coerceFlagValue(raw, field);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Markdown reference

function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A Markdown table of the schema's fields (key, type, default, description); `only` limits it to some keys. */
export function renderConfigTable(schema: z.ZodType, only?: readonly string[]): string {
  const rows = schemaFields(schema).filter((f) => !only || only.includes(f.key));
  const lines = ['| key | type | default | description |', '|---|---|---|---|'];
  for (const f of rows) {
    const def = f.hasDefault ? `\`${formatDefault(f.default)}\`` : '**required**';
    lines.push(`| \`${f.key}\` | ${mdCell(f.typeText)} | ${mdCell(def)} | ${mdCell(f.description)} |`);
  }
  return lines.join('\n');
}

const BEGIN = /<!-- BEGIN GENERATED: ([\w-]+) -->\n[\s\S]*?<!-- END GENERATED: \1 -->/g;

/**
 * Replaces every `<!-- BEGIN GENERATED: name -->…<!-- END GENERATED: name -->` region of `markdown` with
 * `render(name)`. Throws on a region name `render` does not know (it returns undefined).
 */
export function updateGeneratedSections(markdown: string, render: (name: string) => string | undefined): string {
  return markdown.replace(BEGIN, (_m, name: string) => {
    const body = render(name);
    if (body === undefined) throw new Error(`unknown generated section '${name}'`);
    return `<!-- BEGIN GENERATED: ${name} -->\n${body}\n<!-- END GENERATED: ${name} -->`;
  });
}
