// Reading a pipeline file (YAML or JSON) into a validated plan, before anything runs:
//
//   output_dir: runs/demo            # where each stage gets <output_dir>/<stage name>/ (the CLI's --output wins)
//   seed: 0                          # the seed of every stage whose config has a seed field and leaves it out
//   vars: {sft_steps: 200}           # values used as ${vars.NAME}; --var NAME=VALUE overrides one
//   profiles: {quick: {sft_steps: 20}}   # named sets of var values (--profile quick)
//   stages:
//     - name: sft
//       type: sft                    # a registered stage type (registry.ts)
//       config: {...}                # the type's config: for trainers, exactly the trainer's config file
//
// Inside any string of a config: ${stages.NAME.KEY} is an output of an earlier stage (KEY: 'output', or another
// key the type declares), ${vars.NAME} a variable (a whole-string reference keeps the value's type), and
// ${pipeline.dir} / ${pipeline.output} the folder of the pipeline file / the output folder (absolute).
// References between stages define the order (a stage runs after every stage it references; otherwise file order).
//
// Every problem — unknown key, stage type or reference, a cycle, an invalid stage config — is collected into one
// ConfigError, each naming the file, line, stage and field.

import fs from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, isSeq, parseDocument, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { ConfigError, issueMessage, schemaKeys, unknownKeyMessage } from '../train/config.ts';
import type { AnyStageType } from './stage.ts';
import { STAGE_REGISTRY, stageType } from './registry.ts';

export interface PlannedStage {
  name: string;
  type: AnyStageType;
  /** 1-based line of the stage in the pipeline file. */
  line: number;
  /** <output_dir>/<name>, absolute. */
  outputDir: string;
  /** The user's config with ${vars.*} and ${pipeline.*} substituted; ${stages.*} references are kept (resolved at run time). */
  config: Record<string, unknown>;
  /** Stages this one references, in file order. */
  deps: string[];
  /** What ${stages.<name>.KEY} resolves to before the stage ran (its type's declared outputs). */
  declaredOutputs: Record<string, string>;
}

export interface PipelineSpec {
  file: string;
  /** Folder of the file, absolute. */
  dir: string;
  outputDir: string;
  seed: number;
  vars: Record<string, unknown>;
  /** In execution order. */
  stages: PlannedStage[];
}

export interface LoadPipelineOptions {
  /** Overrides output_dir. */
  outputDir?: string;
  /** A profile name from the file's profiles. */
  profile?: string;
  /** Variable overrides (text, typed as YAML would type it: 12 → number, true → boolean, null). */
  vars?: Record<string, string>;
}

const TOP_KEYS = ['description', 'output_dir', 'seed', 'vars', 'profiles', 'stages'];
const STAGE_KEYS = ['name', 'type', 'config', 'description'];
const NAME = /^[A-Za-z][\w-]*$/;
const REF = /\$\{([^}]*)\}/g;

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** Line of every key and list item, by dotted path ('stages.2.config.learning_rate'). */
function collectLines(node: unknown, prefix: string, text: string, out: Map<string, number>): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isScalar(pair.key) || !pair.key.range) continue;
      const p = prefix ? `${prefix}.${String(pair.key.value)}` : String(pair.key.value);
      out.set(p, lineOf(text, pair.key.range[0]));
      collectLines(pair.value, p, text, out);
    }
  } else if (isSeq(node)) {
    node.items.forEach((it, i) => {
      const p = `${prefix}.${i}`;
      const range = (it as YamlNode | null)?.range;
      if (range) out.set(p, lineOf(text, range[0]));
      collectLines(it, p, text, out);
    });
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A --var value typed as YAML types a plain scalar. */
function typedVar(text: string): unknown {
  const t = text.trim();
  if (t === 'null' || t === '~') return null;
  if (t === 'true' || t === 'false') return t === 'true';
  if (t !== '' && Number.isFinite(Number(t))) return Number(t);
  return text;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return JSON.stringify(v);
}

/** Calls fn on every string in a JSON-like value, replacing it with fn's result; `at` is the path of the string. */
export function mapStrings(v: unknown, fn: (s: string, at: (string | number)[]) => unknown, at: (string | number)[] = []): unknown {
  if (typeof v === 'string') return fn(v, at);
  if (Array.isArray(v)) return v.map((x, i) => mapStrings(x, fn, [...at, i]));
  if (isRecord(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mapStrings(x, fn, [...at, k])]));
  return v;
}

/**
 * Substitutes the ${...} references of one string: `lookup(ref)` gives a reference's value or a problem (a string).
 * A string that is exactly one reference becomes the value itself (keeping numbers numbers).
 */
export function substitute(s: string, lookup: (ref: string) => { value: unknown } | { problem: string }, problems: string[]): unknown {
  const whole = /^\$\{([^}]*)\}$/.exec(s);
  if (whole) {
    const r = lookup(whole[1].trim());
    if ('problem' in r) {
      problems.push(r.problem);
      return s;
    }
    return r.value;
  }
  return s.replace(REF, (m, ref: string) => {
    const r = lookup(ref.trim());
    if ('problem' in r) {
      problems.push(r.problem);
      return m;
    }
    return typeof r.value === 'string' ? r.value : JSON.stringify(r.value);
  });
}

export function formatPath(p: readonly (string | number | symbol)[]): string {
  let s = '';
  for (const part of p) s += typeof part === 'number' ? `[${part}]` : s === '' ? String(part) : `.${String(part)}`;
  return s;
}

function valueAt(root: unknown, p: readonly PropertyKey[]): unknown {
  let v = root;
  for (const part of p) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[part];
  }
  return v;
}

/**
 * The config a stage type validates: the user's (references resolved), the type's fill values (managed keys
 * forced, other keys defaults) and the pipeline seed. Problems (a managed key set by the user) go to `problems`.
 */
export function configForStage(type: AnyStageType, user: Record<string, unknown>, outputDir: string, seed: number): Record<string, unknown> {
  const fill = type.fill?.(outputDir, user) ?? {};
  const managed = new Set(type.managedKeys ?? []);
  const defaults = Object.fromEntries(Object.entries(fill).filter(([k]) => !managed.has(k)));
  const forced = Object.fromEntries(Object.entries(fill).filter(([k]) => managed.has(k)));
  const withSeed = schemaKeys(type.schema as z.ZodType).includes('seed') && user.seed === undefined ? { seed } : {};
  return { ...defaults, ...withSeed, ...user, ...forced };
}

/** Validates a stage's config; returns the parsed config or the problems, each naming the field (and its line). */
export function validateStageConfig(
  type: AnyStageType,
  merged: Record<string, unknown>,
  where: (key: string | null) => string,
): { ok: true; config: unknown } | { ok: false; problems: string[] } {
  const r = (type.schema as z.ZodType).safeParse(merged);
  if (r.success) return { ok: true, config: r.data };
  const known = schemaKeys(type.schema as z.ZodType);
  const problems: string[] = [];
  for (const issue of r.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push(`${where(issue.path.length ? String(issue.path[0]) : key)}key '${formatPath([...issue.path, key])}': ${issue.path.length ? 'unknown key' : unknownKeyMessage(key, known)}`);
      continue;
    }
    const top = issue.path.length ? String(issue.path[0]) : null;
    const msg = issueMessage(issue, valueAt(merged, issue.path));
    problems.push(`${where(top)}${top === null ? '' : `key '${formatPath(issue.path)}': `}${msg}`);
  }
  return { ok: false, problems };
}

/** Reads, checks and orders a pipeline file. Throws one ConfigError with every problem found. */
export function loadPipeline(file: string, o: LoadPipelineOptions = {}): PipelineSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError([`${file}: ${code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory, not a pipeline file' : (e as Error).message}`]);
  }
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    // the first error only: the ones after it are usually its consequences
    const err = doc.errors[0];
    throw new ConfigError([`${file}: line ${lineOf(text, err.pos[0])}: invalid YAML: ${err.message.split('\n')[0]}${text.includes('{') && text.includes('${') ? ' (a ${...} reference inside a {flow, mapping} must be quoted)' : ''}`]);
  }
  const top = doc.toJS() as unknown;
  if (!isRecord(top)) throw new ConfigError([`${file}: the top level must be a mapping with a 'stages' list`]);
  const lines = new Map<string, number>();
  collectLines(doc.contents, '', text, lines);
  const at = (p: string): string => {
    const l = lines.get(p);
    return `${file}: ${l !== undefined ? `line ${l}: ` : ''}`;
  };
  const problems: string[] = [];

  for (const k of Object.keys(top)) if (!TOP_KEYS.includes(k)) problems.push(`${at(k)}key '${k}': ${unknownKeyMessage(k, TOP_KEYS)} (a pipeline file has ${TOP_KEYS.join(', ')})`);

  // ------------------------------------------------------------------ vars and profiles
  const vars: Record<string, unknown> = {};
  if (top.vars !== undefined && !isRecord(top.vars)) problems.push(`${at('vars')}key 'vars': must be a mapping of names to values`);
  else Object.assign(vars, top.vars ?? {});
  if (o.profile !== undefined) {
    const profiles = isRecord(top.profiles) ? top.profiles : {};
    const p = profiles[o.profile];
    if (!isRecord(p)) problems.push(`${file}: --profile ${o.profile}: no such profile (the file has: ${Object.keys(profiles).join(', ') || 'none'})`);
    else
      for (const [k, v] of Object.entries(p)) {
        if (!(k in vars)) problems.push(`${at(`profiles.${o.profile}.${k}`)}profile '${o.profile}': '${k}' is not one of the vars`);
        vars[k] = v;
      }
  }
  for (const [k, v] of Object.entries(o.vars ?? {})) {
    if (!(k in vars)) problems.push(`--var ${k}: '${k}' is not one of the vars of ${file} (${Object.keys(vars).join(', ') || 'it has none'})`);
    vars[k] = typedVar(v);
  }

  // ------------------------------------------------------------------ output_dir, seed
  const outRaw = o.outputDir ?? top.output_dir;
  if (typeof outRaw !== 'string' || outRaw === '') problems.push(`${at('output_dir')}key 'output_dir': required: the folder the stages write into (or --output)`);
  const outputDir = path.resolve(typeof outRaw === 'string' ? outRaw : '.');
  const seed = top.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) problems.push(`${at('seed')}key 'seed': must be an integer >= 0, got ${describe(seed)}`);
  const dir = path.dirname(path.resolve(file));

  // ------------------------------------------------------------------ the stages
  if (!Array.isArray(top.stages) || top.stages.length === 0) {
    problems.push(`${at('stages')}key 'stages': required: a non-empty list of stages ({name, type, config})`);
    throw new ConfigError(problems);
  }
  interface Raw {
    index: number;
    name: string;
    type: AnyStageType | null;
    config: Record<string, unknown>;
  }
  const raws: Raw[] = [];
  const names = new Set<string>();
  top.stages.forEach((s: unknown, i: number) => {
    const p = `stages.${i}`;
    if (!isRecord(s)) {
      problems.push(`${at(p)}stage ${i + 1}: must be a mapping with name, type and config`);
      return;
    }
    for (const k of Object.keys(s)) if (!STAGE_KEYS.includes(k)) problems.push(`${at(`${p}.${k}`)}stage ${i + 1}: key '${k}': ${unknownKeyMessage(k, STAGE_KEYS)} (a stage has ${STAGE_KEYS.join(', ')})`);
    const name = s.name;
    if (typeof name !== 'string' || !NAME.test(name)) {
      problems.push(`${at(`${p}.name`)}stage ${i + 1}: key 'name': ${name === undefined ? 'required' : `must be a name (a letter, then letters, digits, _ or -), got ${describe(name)}`}`);
      return;
    }
    if (names.has(name)) problems.push(`${at(`${p}.name`)}stage '${name}': the name is used by an earlier stage`);
    names.add(name);
    const t = typeof s.type === 'string' ? stageType(s.type) : undefined;
    if (!t) problems.push(`${at(`${p}.type`)}stage '${name}': key 'type': ${s.type === undefined ? 'required' : `unknown stage type ${describe(s.type)}`}; known types: ${[...STAGE_REGISTRY.keys()].join(', ')}`);
    if (s.config !== undefined && s.config !== null && !isRecord(s.config)) problems.push(`${at(`${p}.config`)}stage '${name}': key 'config': must be a mapping`);
    raws.push({ index: i, name, type: t ?? null, config: isRecord(s.config) ? s.config : {} });
  });
  const byName = new Map(raws.map((r) => [r.name, r]));

  // ------------------------------------------------------------------ references
  const planned: PlannedStage[] = [];
  for (const r of raws) {
    const p = `stages.${r.index}.config`;
    const deps: string[] = [];
    const stageOut = path.join(outputDir, r.name);
    const config = mapStrings(r.config, (s, where) => {
      const here = `${at(`${p}.${where.join('.')}`) || at(p)}stage '${r.name}': key '${formatPath(where)}': `;
      const local: string[] = [];
      const v = substitute(s, (ref) => {
        const parts = ref.split('.');
        if (parts[0] === 'vars' && parts.length === 2) return parts[1] in vars ? { value: vars[parts[1]] } : { problem: `${here}\${${ref}}: no such variable (vars: ${Object.keys(vars).join(', ') || 'none'})` };
        if (parts[0] === 'pipeline' && parts.length === 2 && (parts[1] === 'dir' || parts[1] === 'output')) return { value: parts[1] === 'dir' ? dir : outputDir };
        if (parts[0] === 'stages' && parts.length === 3) {
          const target = byName.get(parts[1]);
          if (!target) return { problem: `${here}\${${ref}}: no stage named '${parts[1]}' (stages: ${raws.map((x) => x.name).join(', ')})` };
          if (target.name === r.name) return { problem: `${here}\${${ref}}: a stage cannot use its own output` };
          const keep = { value: `\${${ref}}` }; // resolved at run time, from the finished stage
          if (!target.type) return keep; // its unknown type is reported already
          const outs = target.type.outputs(path.join(outputDir, target.name));
          if (!(parts[2] in outs)) return { problem: `${here}\${${ref}}: stage '${target.name}' (${target.type.type}) has no output '${parts[2]}' (it has: ${Object.keys(outs).join(', ')})` };
          if (!deps.includes(target.name)) deps.push(target.name);
          return keep;
        }
        return { problem: `${here}\${${ref}}: unknown reference; use \${stages.NAME.output}, \${vars.NAME}, \${pipeline.dir} or \${pipeline.output}` };
      }, local);
      problems.push(...local);
      return v;
    }) as Record<string, unknown>;
    if (!r.type) continue;
    planned.push({ name: r.name, type: r.type, line: lines.get(`stages.${r.index}`) ?? 0, outputDir: stageOut, config, deps, declaredOutputs: r.type.outputs(stageOut) });
  }

  // ------------------------------------------------------------------ cycles and order
  const plannedBy = new Map(planned.map((s) => [s.name, s]));
  const state = new Map<string, 'visiting' | 'done'>();
  const cycles: string[] = [];
  const visit = (n: string, trail: string[]): void => {
    if (state.get(n) === 'done') return;
    if (state.get(n) === 'visiting') {
      const cyc = [...trail.slice(trail.indexOf(n)), n];
      cycles.push(cyc.join(' -> '));
      return;
    }
    state.set(n, 'visiting');
    for (const d of plannedBy.get(n)?.deps ?? []) visit(d, [...trail, n]);
    state.set(n, 'done');
  };
  for (const s of planned) visit(s.name, []);
  for (const c of cycles) problems.push(`${file}: the stages reference each other in a cycle: ${c} (each stage needs the output of the next)`);
  const order: PlannedStage[] = [];
  const placed = new Set<string>();
  while (order.length < planned.length) {
    const next = planned.find((s) => !placed.has(s.name) && s.deps.every((d) => placed.has(d)));
    if (!next) break; // unreachable: cycles were rejected
    order.push(next);
    placed.add(next.name);
  }

  // ------------------------------------------------------------------ each stage's config, with declared outputs standing in for references
  for (const s of planned) {
    const p = `stages.${raws.find((r) => r.name === s.name)?.index}`;
    const user = resolveStageRefs(s.config, (n, k) => plannedBy.get(n)?.declaredOutputs[k] ?? `\${stages.${n}.${k}}`); // a bad reference is reported already: keep its text
    for (const k of s.type.managedKeys ?? [])
      if (k in user) problems.push(`${at(`${p}.config.${k}`)}stage '${s.name}' (${s.type.type}): key '${k}': set by the pipeline (the stage folder ${s.outputDir}); remove it`);
    const merged = configForStage(s.type, user, s.outputDir, typeof seed === 'number' ? seed : 0);
    const v = validateStageConfig(s.type, merged, (key) => `${key !== null && lines.has(`${p}.config.${key}`) ? at(`${p}.config.${key}`) : at(p)}stage '${s.name}' (${s.type.type}): `);
    if (!v.ok) problems.push(...v.problems);
  }
  if (problems.length) throw new ConfigError(problems);
  return { file, dir, outputDir, seed: typeof seed === 'number' ? seed : 0, vars, stages: order };
}

/** The config with every ${stages.NAME.KEY} replaced by output(NAME, KEY). */
export function resolveStageRefs(config: Record<string, unknown>, output: (stage: string, key: string) => string): Record<string, unknown> {
  return mapStrings(config, (s) =>
    substitute(s, (ref) => {
      const parts = ref.split('.');
      return parts[0] === 'stages' && parts.length === 3 ? { value: output(parts[1], parts[2]) } : { value: `\${${ref}}` };
    }, []),
  ) as Record<string, unknown>;
}
