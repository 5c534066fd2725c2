// Bias tools for `alignkit data bias`: counts of sensitive-attribute terms per label from a lexicon, group
// re-weighting, counterfactual augmentation by swapping term pairs, and a Markdown / JSON report.
//
// Lexicon (JSON): {description?, attributes: {NAME: {groups: {GROUP: [terms]}, swaps?: [[a, b], ...]}}}. Terms are
// single words of letters, matched case-insensitively on word boundaries: a word is a maximal run of letters and
// combining marks, so "he" does not match inside "the" or "Hermann" and "women" is not "men", while an apostrophe
// ends a word ("He's" holds "he", and becomes "She's"). The default lexicon
// (lexicons/default.json: gender, religion, nationality) is illustrative and incomplete — see its description.
//
// A row's group for an attribute: the one group whose terms it mentions; rows mentioning none are 'none', rows
// mentioning several are 'mixed' (both get weight 1 when re-weighting).
//
// Re-weighting (per attribute, over rows with exactly one group):
//   equalize         w_g = A / (G * n_g): every group's total weight becomes A / G (A = such rows, G = groups seen)
//   kamiran_calders  w(g, y) = P(g) P(y) / P(g, y) = n_g n_y / (A n_gy): makes group and label statistically
//                    independent in the weighted data ("reweighing": F. Kamiran & T. Calders, "Data preprocessing
//                    techniques for classification without discrimination", KAIS 33, 2012)
//
// Counterfactual augmentation (Lu et al., "Gender Bias in Neural Natural Language Processing", 2018; Zmigrod et
// al. 2019 discuss its limits): each swap pair [a, b] maps a -> b and b -> a; when a word is in several pairs
// the first pair listed wins ("her" -> "him", never "his" — the lexicon cannot know grammar, which is one reason
// the output needs review). Case is kept: "He" -> "She", "HE" -> "SHE", "he" -> "she"; other mixed case is left
// lower-case-mapped as written in the lexicon.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PrepError } from './errors.ts';

export const DEFAULT_LEXICON = fileURLToPath(new URL('./lexicons/default.json', import.meta.url));

export interface AttributeLexicon {
  groups: Record<string, string[]>;
  swaps: [string, string][];
}
export interface Lexicon {
  description: string;
  attributes: Record<string, AttributeLexicon>;
}

const WORD = /[\p{L}\p{M}]+/gu;

export function loadLexicon(file: string = DEFAULT_LEXICON): Lexicon {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const code = e instanceof Error && 'code' in e ? String(e.code) : '';
    throw new PrepError(file, {}, code === 'ENOENT' ? 'lexicon not found' : `invalid lexicon JSON: ${(e as Error).message}`);
  }
  return validateLexicon(raw, file);
}

export function validateLexicon(raw: unknown, file: string): Lexicon {
  const fail = (field: string, msg: string): never => {
    throw new PrepError(file, { field }, msg);
  };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return fail('attributes', 'a lexicon is an object with "attributes"');
  const r = raw as Record<string, unknown>;
  const attrs = r.attributes;
  if (attrs === null || typeof attrs !== 'object' || Array.isArray(attrs)) return fail('attributes', 'expected an object {attribute: {groups, swaps}}');
  const out: Lexicon = { description: typeof r.description === 'string' ? r.description : '', attributes: {} };
  for (const [name, a] of Object.entries(attrs as Record<string, unknown>)) {
    if (a === null || typeof a !== 'object' || Array.isArray(a)) fail(`attributes.${name}`, 'expected {groups, swaps}');
    const groups = (a as Record<string, unknown>).groups;
    if (groups === null || typeof groups !== 'object' || Array.isArray(groups) || Object.keys(groups as object).length === 0) fail(`attributes.${name}.groups`, 'expected a non-empty object {group: [terms]}');
    const g: Record<string, string[]> = {};
    for (const [gn, terms] of Object.entries(groups as Record<string, unknown>)) {
      if (!Array.isArray(terms) || !terms.every((t) => typeof t === 'string' && /^[\p{L}\p{M}]+$/u.test(t))) fail(`attributes.${name}.groups.${gn}`, 'expected a list of single words (letters only)');
      g[gn] = (terms as string[]).map((t) => t.toLowerCase());
    }
    const swapsRaw = (a as Record<string, unknown>).swaps ?? [];
    if (!Array.isArray(swapsRaw) || !swapsRaw.every((p) => Array.isArray(p) && p.length === 2 && p.every((t) => typeof t === 'string' && /^[\p{L}\p{M}]+$/u.test(t)))) fail(`attributes.${name}.swaps`, 'expected a list of [word, word] pairs (letters only)');
    out.attributes[name] = { groups: g, swaps: (swapsRaw as [string, string][]).map(([x, y]) => [x.toLowerCase(), y.toLowerCase()]) };
  }
  return out;
}

/** term -> group, per attribute. A term listed in two groups of one attribute is an error. */
function termIndex(lex: Lexicon): Map<string, Map<string, string>> {
  const idx = new Map<string, Map<string, string>>();
  for (const [attr, a] of Object.entries(lex.attributes)) {
    const m = new Map<string, string>();
    for (const [g, terms] of Object.entries(a.groups)) {
      for (const t of terms) {
        const prev = m.get(t);
        if (prev !== undefined && prev !== g) throw new PrepError('lexicon', { field: `attributes.${attr}` }, `term '${t}' is in groups '${prev}' and '${g}'`);
        m.set(t, g);
      }
    }
    idx.set(attr, m);
  }
  return idx;
}

export interface RowGroups {
  /** attribute -> group name, 'none' or 'mixed'. */
  group: Record<string, string>;
  /** attribute -> term -> occurrences. */
  terms: Record<string, Record<string, number>>;
}

export class TermMatcher {
  private readonly index: Map<string, Map<string, string>>;
  constructor(readonly lexicon: Lexicon) {
    this.index = termIndex(lexicon);
  }
  get attributes(): string[] {
    return [...this.index.keys()];
  }
  groupsOf(attr: string): string[] {
    return Object.keys(this.lexicon.attributes[attr].groups);
  }
  match(text: string): RowGroups {
    const group: Record<string, string> = {};
    const terms: Record<string, Record<string, number>> = {};
    const seen = new Map<string, Set<string>>();
    for (const attr of this.index.keys()) {
      terms[attr] = {};
      seen.set(attr, new Set());
    }
    for (const m of text.matchAll(WORD)) {
      const w = m[0].toLowerCase();
      for (const [attr, idx] of this.index) {
        const g = idx.get(w);
        if (g === undefined) continue;
        terms[attr][w] = (terms[attr][w] ?? 0) + 1;
        seen.get(attr)!.add(g);
      }
    }
    for (const [attr, s] of seen) group[attr] = s.size === 0 ? 'none' : s.size === 1 ? [...s][0] : 'mixed';
    return { group, terms };
  }
}

/** Per-attribute, per-group, per-label counts gathered over a data set. */
export class BiasCounter {
  rows = 0;
  readonly labels = new Map<string, number>();
  /** attr -> group (incl. none / mixed) -> label -> rows. */
  readonly groupLabel = new Map<string, Map<string, Map<string, number>>>();
  /** attr -> group -> rows mentioning it (a 'mixed' row counts for each group it mentions). */
  readonly mentions = new Map<string, Map<string, number>>();
  /** attr -> term -> occurrences. */
  readonly termCounts = new Map<string, Map<string, number>>();

  constructor(readonly matcher: TermMatcher) {
    for (const a of matcher.attributes) {
      this.groupLabel.set(a, new Map());
      this.mentions.set(a, new Map());
      this.termCounts.set(a, new Map());
    }
  }

  add(text: string, label: string): RowGroups {
    this.rows++;
    this.labels.set(label, (this.labels.get(label) ?? 0) + 1);
    const r = this.matcher.match(text);
    for (const a of this.matcher.attributes) {
      const g = r.group[a];
      const gl = this.groupLabel.get(a)!;
      if (!gl.has(g)) gl.set(g, new Map());
      const byLabel = gl.get(g)!;
      byLabel.set(label, (byLabel.get(label) ?? 0) + 1);
      const idx = new Set<string>();
      for (const [t, n] of Object.entries(r.terms[a])) {
        const tc = this.termCounts.get(a)!;
        tc.set(t, (tc.get(t) ?? 0) + n);
        for (const [gn, terms] of Object.entries(this.matcher.lexicon.attributes[a].groups)) if (terms.includes(t)) idx.add(gn);
      }
      const mc = this.mentions.get(a)!;
      for (const gn of idx) mc.set(gn, (mc.get(gn) ?? 0) + 1);
    }
    return r;
  }

  /** Weights per (group, label) for one attribute; rows of group none / mixed get 1. */
  weights(attr: string, method: 'equalize' | 'kamiran_calders'): Map<string, Map<string, number>> {
    const gl = this.groupLabel.get(attr);
    if (!gl) throw new PrepError('lexicon', { field: attr }, `no attribute '${attr}' (have: ${this.matcher.attributes.join(', ')})`);
    const assigned = [...gl].filter(([g]) => g !== 'none' && g !== 'mixed');
    const nG = new Map(assigned.map(([g, m]) => [g, [...m.values()].reduce((a, b) => a + b, 0)] as const));
    const A = [...nG.values()].reduce((a, b) => a + b, 0);
    const nY = new Map<string, number>();
    for (const [, m] of assigned) for (const [y, n] of m) nY.set(y, (nY.get(y) ?? 0) + n);
    const out = new Map<string, Map<string, number>>();
    for (const [g, m] of gl) {
      const w = new Map<string, number>();
      for (const [y, n] of m) {
        if (g === 'none' || g === 'mixed' || A === 0) w.set(y, 1);
        else if (method === 'equalize') w.set(y, A / (nG.size * nG.get(g)!));
        else w.set(y, (nG.get(g)! * nY.get(y)!) / (A * n));
      }
      out.set(g, w);
    }
    return out;
  }
}

/** The swap map of an attribute: a -> b and b -> a for every pair, the first pair listed winning. */
export function swapMap(pairs: readonly [string, string][]): Map<string, string> {
  const m = new Map<string, string>();
  for (const [a, b] of pairs) {
    if (!m.has(a)) m.set(a, b);
    if (!m.has(b)) m.set(b, a);
  }
  return m;
}

function applyCase(template: string, word: string): string {
  if (template.length > 1 && template === template.toUpperCase() && template !== template.toLowerCase()) return word.toUpperCase();
  if (template[0] !== template[0].toLowerCase()) return word[0].toUpperCase() + word.slice(1);
  return word;
}

/** Swaps every listed word (whole words only, case kept). Returns the new text and the number of swaps. */
export function counterfactual(text: string, swaps: ReadonlyMap<string, string>): { text: string; swaps: number } {
  let n = 0;
  const out = text.replace(WORD, (w) => {
    const to = swaps.get(w.toLowerCase());
    if (to === undefined) return w;
    n++;
    return applyCase(w, to);
  });
  return { text: out, swaps: n };
}

export interface BiasReport {
  rows: number;
  lexicon: string;
  lexiconDescription: string;
  labels: Record<string, number>;
  attributes: Record<
    string,
    {
      /** group -> label -> rows whose group for this attribute is that (incl. none / mixed). */
      groupByLabel: Record<string, Record<string, number>>;
      /** group -> rows mentioning at least one of its terms. */
      mentions: Record<string, number>;
      topTerms: { term: string; count: number }[];
    }
  >;
  reweighting: { attribute: string; method: string; weights: Record<string, Record<string, number>> } | null;
  counterfactual: { attribute: string; rowsAugmented: number; swaps: number } | null;
}

export function buildReport(c: BiasCounter, lexiconFile: string, extra: Pick<BiasReport, 'reweighting' | 'counterfactual'>): BiasReport {
  const attributes: BiasReport['attributes'] = {};
  for (const a of c.matcher.attributes) {
    const gbl: Record<string, Record<string, number>> = {};
    for (const [g, m] of c.groupLabel.get(a)!) gbl[g] = Object.fromEntries([...m].sort());
    attributes[a] = {
      groupByLabel: gbl,
      mentions: Object.fromEntries(c.matcher.groupsOf(a).map((g) => [g, c.mentions.get(a)!.get(g) ?? 0])),
      topTerms: [...c.termCounts.get(a)!].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1)).slice(0, 15).map(([term, count]) => ({ term, count })),
    };
  }
  return { rows: c.rows, lexicon: lexiconFile, lexiconDescription: c.matcher.lexicon.description, labels: Object.fromEntries([...c.labels].sort()), attributes, ...extra };
}

export function renderBiasMarkdown(r: BiasReport): string {
  const out: string[] = [];
  out.push('# Bias report', '');
  out.push(`${r.rows} rows. Lexicon: \`${r.lexicon}\`.`, '');
  if (r.lexiconDescription) out.push(`> ${r.lexiconDescription}`, '');
  const labels = Object.keys(r.labels);
  out.push(`Labels: ${labels.map((l) => `\`${l}\` (${r.labels[l]})`).join(', ')}`, '');
  for (const [a, s] of Object.entries(r.attributes)) {
    out.push(`## ${a}`, '');
    out.push('Rows by group (the one group a row mentions; `none`: no term, `mixed`: terms of several groups) and label:', '');
    out.push(`| group | ${labels.join(' | ')} | total | rows mentioning |`);
    out.push(`|---|${labels.map(() => '---:').join('|')}|---:|---:|`);
    const groups = [...Object.keys(s.mentions), 'mixed', 'none'].filter((g) => g in s.groupByLabel || g in s.mentions);
    for (const g of groups) {
      const row = s.groupByLabel[g] ?? {};
      const total = Object.values(row).reduce((x, y) => x + y, 0);
      out.push(`| ${g} | ${labels.map((l) => String(row[l] ?? 0)).join(' | ')} | ${total} | ${g in s.mentions ? s.mentions[g] : '-'} |`);
    }
    out.push('');
    if (s.topTerms.length) out.push(`Most frequent terms: ${s.topTerms.map((t) => `${t.term} (${t.count})`).join(', ')}`, '');
  }
  if (r.reweighting) {
    out.push(`## Re-weighting (${r.reweighting.attribute}, ${r.reweighting.method})`, '');
    out.push('| group | label | weight |', '|---|---|---:|');
    for (const [g, m] of Object.entries(r.reweighting.weights)) for (const [y, w] of Object.entries(m)) out.push(`| ${g} | ${y} | ${w.toFixed(4)} |`);
    out.push('');
  }
  if (r.counterfactual) out.push(`## Counterfactual augmentation (${r.counterfactual.attribute})`, '', `${r.counterfactual.rowsAugmented} rows augmented with ${r.counterfactual.swaps} swapped words.`, '');
  return out.join('\n');
}
