// Constitutions: a YAML file of named principles that drive Constitutional AI (Bai et al. 2022). Each principle
// has a critique request and a revision request — templates with {placeholders} filled per example — an optional
// weight (how often it is sampled, and its share of the constitutional reward), an optional category and an
// optional one-line description (what the judge and the reward model are asked about).
//
//   name: default                       # optional
//   judge_template: ...                 # optional; {prompt} {response_a} {response_b} {principle}
//   reward_template: ...                # optional; {prompt} {response} {principle}
//   principles:
//     - name: truthful
//       description: The response is truthful and does not make things up.
//       category: honesty
//       weight: 1
//       critique_request: "... {prompt} ... {response} ..."
//       revision_request: "... {prompt} ... {response} ... {critique} ..."
//
// Validation names the file, the line, the principle and the field of every problem, and reports all of them at
// once; a template that uses a placeholder it cannot be given (a typo like {respnse}) is refused up front rather
// than leaking braces into a model prompt.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument, isMap, isSeq, type Node } from 'yaml';
import { z } from 'zod';
import { AlignkitError } from '../tensor/errors.ts';
import { Xoshiro128 } from '../data/loader.ts';

/** data/cai/default_constitution.yaml: the six principles of the seed. */
export const DEFAULT_CONSTITUTION = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../data/cai/default_constitution.yaml');

export interface Principle {
  name: string;
  /** What the principle asks for, in one sentence (judge and reward prompts); defaults to the name. */
  description: string;
  /** Template with {prompt} and {response}. */
  critiqueRequest: string;
  /** Template with {prompt}, {response} and {critique}. */
  revisionRequest: string;
  /** Relative sampling weight (> 0). Default 1. */
  weight: number;
  category: string | null;
}

export interface Constitution {
  /** The file it was read from. */
  file: string;
  name: string;
  principles: Principle[];
  /** Pairwise judge prompt: {prompt} {response_a} {response_b} {principle}. */
  judgeTemplate: string;
  /** Reward (adherence) prompt: {prompt} {response} {principle}. */
  rewardTemplate: string;
}

export const DEFAULT_JUDGE_TEMPLATE =
  'Consider a conversation between a user and an AI assistant.\n\nUser: {prompt}\n\nResponse (A): {response_a}\n\nResponse (B): {response_b}\n\n' +
  'Principle: {principle}\nWhich response follows the principle better? Answer with a single letter, A or B.';

export const DEFAULT_REWARD_TEMPLATE =
  'Consider a conversation between a user and an AI assistant.\n\nUser: {prompt}\n\nAssistant: {response}\n\n' +
  'Principle: {principle}\nDoes the assistant response follow the principle? Answer Yes or No.';

/** The placeholders each template may use. */
export const TEMPLATE_PLACEHOLDERS = {
  critique_request: ['prompt', 'response'],
  revision_request: ['prompt', 'response', 'critique'],
  judge_template: ['prompt', 'response_a', 'response_b', 'principle'],
  reward_template: ['prompt', 'response', 'principle'],
} as const;

/** A constitution file that cannot be used; the message lists every problem with its location. */
export class ConstitutionError extends AlignkitError {}

const text = () => z.string({ error: (i) => (i.input === undefined ? 'required' : 'must be a string') }).min(1, 'must not be empty');

const PrincipleSchema = z.strictObject({
  name: z.string({ error: (i) => (i.input === undefined ? 'required' : 'must be a string') }).regex(/^[A-Za-z0-9_.-]+$/, 'must be a name of letters, digits, _ . - (no spaces)'),
  description: text().optional(),
  critique_request: text(),
  revision_request: text(),
  weight: z.number({ error: 'must be a number' }).gt(0, 'must be > 0').finite().optional(),
  category: text().optional(),
});

const ConstitutionSchema = z.strictObject({
  name: text().optional(),
  judge_template: text().optional(),
  reward_template: text().optional(),
  principles: z.array(z.unknown(), { error: (i) => (i.input === undefined ? 'required: a list of principles' : 'must be a list of principles') }).min(1, 'must list at least one principle'),
});

/** The {placeholder} names a template uses. */
export function placeholdersOf(template: string): string[] {
  return [...template.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]);
}

/** Fills every {name} of a template from `vars` (every placeholder must have a value). */
export function fillTemplate(template: string, vars: Readonly<Record<string, string>>): string {
  return template.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name: string) => {
    const v = vars[name];
    if (v === undefined) throw new AlignkitError(`template placeholder {${name}} has no value (known: ${Object.keys(vars).map((k) => `{${k}}`).join(' ')})`);
    return v;
  });
}

function checkPlaceholders(template: string, allowed: readonly string[], required: readonly string[]): string | null {
  const used = placeholdersOf(template);
  const unknown = used.filter((u) => !allowed.includes(u));
  if (unknown.length) return `unknown placeholder ${unknown.map((u) => `{${u}}`).join(', ')} (allowed: ${allowed.map((a) => `{${a}}`).join(' ')})`;
  const missing = required.filter((r) => !used.includes(r));
  if (missing.length) return `must contain ${missing.map((m) => `{${m}}`).join(' and ')}`;
  return null;
}

/** Parses constitution YAML; `file` names it in messages. Throws a ConstitutionError listing every problem. */
export function parseConstitution(source: string, file: string): Constitution {
  const lc = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0];
    throw new ConstitutionError(`${file}:${lc.linePos(e.pos[0]).line}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const lineOf = (node: unknown): string => {
    const r = (node as Node | null | undefined)?.range;
    return r ? `:${lc.linePos(r[0]).line}` : '';
  };
  const raw = doc.toJS() as unknown;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConstitutionError(`${file}: expected a mapping with a 'principles' list, got ${raw === null ? 'nothing' : Array.isArray(raw) ? 'a list' : typeof raw}`);
  const problems: string[] = [];
  const top = ConstitutionSchema.safeParse(raw);
  const root = doc.contents;
  const topNode = (key: string): unknown => (isMap(root) ? root.get(key, true) : undefined);
  if (!top.success) {
    for (const issue of top.error.issues) {
      if (issue.code === 'unrecognized_keys') for (const k of issue.keys) problems.push(`${file}${lineOf(topNode(k))}: unknown key '${k}' (expected name, judge_template, reward_template, principles)`);
      else problems.push(`${file}${lineOf(topNode(String(issue.path[0] ?? '')))}: '${String(issue.path[0] ?? '')}' ${issue.message}`);
    }
  }
  const list = Array.isArray((raw as { principles?: unknown }).principles) ? ((raw as { principles: unknown[] }).principles) : [];
  const seqNode = topNode('principles');
  const principles: Principle[] = [];
  const seen = new Map<string, number>();
  list.forEach((p, i) => {
    const node = isSeq(seqNode) ? seqNode.get(i, true) : undefined;
    const name = p !== null && typeof p === 'object' && typeof (p as { name?: unknown }).name === 'string' ? (p as { name: string }).name : null;
    const who = `principle ${name !== null ? `'${name}'` : `#${i + 1}`} (principles[${i}])`;
    const fieldNode = (key: string): unknown => (isMap(node) ? (node.get(key, true) ?? node) : node);
    if (p === null || typeof p !== 'object' || Array.isArray(p)) {
      problems.push(`${file}${lineOf(node)}: ${who}: expected a mapping with name, critique_request and revision_request`);
      return;
    }
    const r = PrincipleSchema.safeParse(p);
    if (name !== null) {
      if (seen.has(name)) problems.push(`${file}${lineOf(fieldNode('name'))}: ${who}: the name '${name}' is already used by principles[${seen.get(name)}]`);
      else seen.set(name, i);
    }
    if (!r.success) {
      for (const issue of r.error.issues) {
        if (issue.code === 'unrecognized_keys') for (const k of issue.keys) problems.push(`${file}${lineOf(fieldNode(k))}: ${who}: unknown field '${k}' (expected name, description, critique_request, revision_request, weight, category)`);
        else {
          const key = String(issue.path[0] ?? '');
          problems.push(`${file}${lineOf(fieldNode(key))}: ${who}: field '${key}' ${issue.message}`);
        }
      }
      return;
    }
    const v = r.data;
    for (const [key, tpl, required] of [
      ['critique_request', v.critique_request, ['response']],
      ['revision_request', v.revision_request, ['critique']],
    ] as const) {
      const bad = checkPlaceholders(tpl, TEMPLATE_PLACEHOLDERS[key], required);
      if (bad) problems.push(`${file}${lineOf(fieldNode(key))}: ${who}: field '${key}' ${bad}`);
    }
    principles.push({
      name: v.name,
      description: v.description ?? v.name,
      critiqueRequest: v.critique_request,
      revisionRequest: v.revision_request,
      weight: v.weight ?? 1,
      category: v.category ?? null,
    });
  });
  const judgeTemplate = top.success ? (top.data.judge_template ?? DEFAULT_JUDGE_TEMPLATE) : DEFAULT_JUDGE_TEMPLATE;
  const rewardTemplate = top.success ? (top.data.reward_template ?? DEFAULT_REWARD_TEMPLATE) : DEFAULT_REWARD_TEMPLATE;
  for (const [key, tpl, required] of [
    ['judge_template', judgeTemplate, ['response_a', 'response_b']],
    ['reward_template', rewardTemplate, ['response']],
  ] as const) {
    const bad = checkPlaceholders(tpl, TEMPLATE_PLACEHOLDERS[key], required);
    if (bad) problems.push(`${file}${lineOf(topNode(key))}: '${key}' ${bad}`);
  }
  if (problems.length) throw new ConstitutionError(problems.length === 1 ? problems[0] : `${file}: ${problems.length} problems:\n  ${problems.join('\n  ')}`);
  return { file, name: top.success ? (top.data.name ?? path.basename(file).replace(/\.ya?ml$/i, '')) : file, principles, judgeTemplate, rewardTemplate };
}

/** Reads and validates a constitution file (default: the shipped one). */
export function loadConstitution(file: string = DEFAULT_CONSTITUTION): Constitution {
  let source: string;
  try {
    source = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConstitutionError(`${file}: cannot read the constitution: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseConstitution(source, file);
}

/**
 * Draws principles with probability weight / Σ weights from a seeded xoshiro128** stream: the same seed gives
 * the same sequence. One draw per call, by inverse CDF over the principles in file order.
 */
export class PrincipleSampler {
  private readonly rng: Xoshiro128;
  private readonly cumulative: number[];
  constructor(
    readonly constitution: Constitution,
    seed: number,
  ) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new AlignkitError(`principle sampler: seed must be a non-negative integer, got ${seed}`);
    this.rng = Xoshiro128.fromSeed([seed, 0x0c41]);
    let acc = 0;
    this.cumulative = constitution.principles.map((p) => (acc += p.weight));
  }

  /** The next principle. */
  next(): Principle {
    const total = this.cumulative[this.cumulative.length - 1];
    // 53 random bits -> a uniform in [0, 1)
    const u = ((this.rng.next() >>> 5) * 67108864 + (this.rng.next() >>> 6)) / 9007199254740992;
    const x = u * total;
    const i = this.cumulative.findIndex((c) => x < c);
    return this.constitution.principles[i === -1 ? this.cumulative.length - 1 : i];
  }
}
