// `alignkit data clean`: composable cleaning steps, configured by flags or a YAML recipe, applied row by row.
//
// A step is a pure function (text) => text | null. 'field' steps rewrite each text slot of a row (fields.ts);
// 'row' steps are filters that see the row's text (its slots joined by newlines) and return null to drop the
// row. The pipeline counts, per step, how many rows it changed and how many it dropped (and why).
import fs from 'node:fs';
import YAML from 'yaml';
import { PrepConfigError, PrepError } from './errors.ts';
import { textSlots } from './fields.ts';
import { DEFAULT_PLACEHOLDERS, PII_KINDS, maskPii, maskUrls, type PiiKind } from './pii.ts';
import { GOPHER_THRESHOLDS, qualityFailure, type QualityThresholds } from './quality.ts';
import { SYSTEM_WORDLIST, SpellChecker } from './spell.ts';
import type { Row } from './stream.ts';
import { lowercase, normalizeUnicode, normalizeWhitespace, removeInvisible, stripHtml, type NormalForm } from './text.ts';

export interface CleanStep {
  readonly name: string;
  /** 'field': applied to every text slot; 'row': a filter on the row's joined text (null drops the row). */
  readonly scope: 'field' | 'row';
  readonly apply: (text: string) => string | null;
  /** For filters: a short reason key for a dropped text (e.g. "dup_line_frac"), for the report. */
  readonly reason?: (text: string) => string;
}

/** Counts a text's length in tokens (a loaded tokenizer) — injected so this module stays tokenizer-free. */
export type TokenCounter = (text: string) => number;

/** One step's settings as a recipe or the flags give them. */
export type StepConfig =
  | { step: 'normalize'; form: NormalForm }
  | { step: 'invisible'; stripBidi: boolean }
  | { step: 'html' }
  | { step: 'urls'; placeholder: string }
  | { step: 'pii'; kinds: PiiKind[] }
  | { step: 'whitespace' }
  | { step: 'lowercase' }
  | { step: 'spell'; wordlist: string; freq: string | null; maxDistance: 1 | 2 }
  | { step: 'length'; minChars: number | null; maxChars: number | null; minTokens: number | null; maxTokens: number | null }
  | { step: 'quality'; thresholds: QualityThresholds };

export const STEP_NAMES = ['normalize', 'invisible', 'html', 'urls', 'pii', 'whitespace', 'lowercase', 'spell', 'length', 'quality'] as const;

/** Code points, not UTF-16 units: an emoji is one character. */
export function charLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff || i + 1 >= s.length) n++;
    else {
      const d = s.charCodeAt(i + 1);
      n++;
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  return n;
}

export function buildStep(c: StepConfig, tokens: TokenCounter | null): CleanStep {
  switch (c.step) {
    case 'normalize':
      return { name: `normalize(${c.form})`, scope: 'field', apply: (t) => normalizeUnicode(t, c.form) };
    case 'invisible':
      return { name: c.stripBidi ? 'invisible(+bidi)' : 'invisible', scope: 'field', apply: (t) => removeInvisible(t, { stripBidi: c.stripBidi }) };
    case 'html':
      return { name: 'html', scope: 'field', apply: stripHtml };
    case 'urls':
      return { name: 'urls', scope: 'field', apply: (t) => maskUrls(t, c.placeholder) };
    case 'pii':
      return { name: `pii(${c.kinds.join(',')})`, scope: 'field', apply: (t) => maskPii(t, c.kinds, DEFAULT_PLACEHOLDERS) };
    case 'whitespace':
      return { name: 'whitespace', scope: 'field', apply: normalizeWhitespace };
    case 'lowercase':
      return { name: 'lowercase', scope: 'field', apply: lowercase };
    case 'spell': {
      const checker = SpellChecker.fromFiles(c.wordlist, c.freq ?? undefined, { maxDistance: c.maxDistance });
      return { name: 'spell', scope: 'field', apply: (t) => checker.correct(t) };
    }
    case 'length': {
      if ((c.minTokens !== null || c.maxTokens !== null) && tokens === null) throw new PrepConfigError('length: min/max tokens need a tokenizer (--tokenizer DIR)');
      const why = (t: string): string | null => {
        if (c.minChars !== null || c.maxChars !== null) {
          const n = charLength(t);
          if (c.minChars !== null && n < c.minChars) return 'too_few_chars';
          if (c.maxChars !== null && n > c.maxChars) return 'too_many_chars';
        }
        if (tokens && (c.minTokens !== null || c.maxTokens !== null)) {
          const n = tokens(t);
          if (c.minTokens !== null && n < c.minTokens) return 'too_few_tokens';
          if (c.maxTokens !== null && n > c.maxTokens) return 'too_many_tokens';
        }
        return null;
      };
      const parts = [c.minChars !== null ? `chars>=${c.minChars}` : '', c.maxChars !== null ? `chars<=${c.maxChars}` : '', c.minTokens !== null ? `tokens>=${c.minTokens}` : '', c.maxTokens !== null ? `tokens<=${c.maxTokens}` : ''].filter(Boolean);
      return { name: `length(${parts.join(',')})`, scope: 'row', apply: (t) => (why(t) === null ? t : null), reason: (t) => why(t) ?? 'kept' };
    }
    case 'quality':
      return {
        name: 'quality',
        scope: 'row',
        apply: (t) => (qualityFailure(t, c.thresholds) === null ? t : null),
        reason: (t) => (qualityFailure(t, c.thresholds) ?? 'kept').split(' ')[0],
      };
  }
}

export interface StepStats {
  step: string;
  /** Rows in which this step changed at least one text slot. */
  changed: number;
  /** Rows this step dropped. */
  dropped: number;
  /** For filters: dropped rows by reason. */
  reasons: Record<string, number>;
}

export interface CleanSummary {
  rowsIn: number;
  rowsOut: number;
  /** Rows with no text slot (passed through unchanged). */
  rowsWithoutText: number;
  steps: StepStats[];
}

export class CleanPipeline {
  readonly stats: StepStats[];
  rowsIn = 0;
  rowsOut = 0;
  rowsWithoutText = 0;

  constructor(
    readonly steps: readonly CleanStep[],
    /** Top-level fields to clean, or null for auto (see fields.ts). */
    readonly fields: readonly string[] | null,
  ) {
    this.stats = steps.map((s) => ({ step: s.name, changed: 0, dropped: 0, reasons: {} }));
  }

  /** Cleans one row in place; returns it, or null when a step dropped it. */
  process(row: Row): Row | null {
    this.rowsIn++;
    const slots = textSlots(row, this.fields);
    if (slots.length === 0) this.rowsWithoutText++;
    for (let i = 0; i < this.steps.length; i++) {
      const step = this.steps[i];
      const st = this.stats[i];
      if (step.scope === 'field') {
        let changed = false;
        for (const slot of slots) {
          const before = slot.get();
          const after = step.apply(before);
          if (after === null) {
            st.dropped++;
            st.reasons.empty = (st.reasons.empty ?? 0) + 1;
            return null;
          }
          if (after !== before) {
            slot.set(after);
            changed = true;
          }
        }
        if (changed) st.changed++;
      } else {
        if (slots.length === 0) continue;
        const text = slots.map((s) => s.get()).join('\n');
        if (step.apply(text) === null) {
          st.dropped++;
          const why = step.reason?.(text) ?? 'filtered';
          st.reasons[why] = (st.reasons[why] ?? 0) + 1;
          return null;
        }
      }
    }
    this.rowsOut++;
    return row;
  }

  summary(): CleanSummary {
    return { rowsIn: this.rowsIn, rowsOut: this.rowsOut, rowsWithoutText: this.rowsWithoutText, steps: this.stats };
  }
}

// ------------------------------------------------------------------------------------------------- recipes

export interface CleanRecipe {
  fields: string[] | null;
  steps: StepConfig[];
}

function num(v: unknown, what: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new Error(`${what} must be a number >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}
function optNum(o: Record<string, unknown>, key: string, min = 0): number | null {
  return o[key] === undefined || o[key] === null ? null : num(o[key], key, min);
}
function checkKeys(o: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new Error(`unknown option '${k}' (allowed: ${allowed.join(', ') || 'none'})`);
}

/** Parses one recipe step: `name` or `{name: options}`. Throws plain Errors; parseRecipe adds the location. */
export function parseStep(item: unknown, defaultWordlist: string = SYSTEM_WORDLIST): StepConfig {
  let name: string;
  let arg: unknown = undefined;
  if (typeof item === 'string') name = item;
  else if (item !== null && typeof item === 'object' && !Array.isArray(item) && Object.keys(item).length === 1) {
    name = Object.keys(item)[0];
    arg = (item as Record<string, unknown>)[name];
  } else throw new Error('a step is a name or a one-key map {name: options}');
  const opts = (allowed: readonly string[]): Record<string, unknown> => {
    if (arg === undefined || arg === null) return {};
    if (typeof arg !== 'object' || Array.isArray(arg)) throw new Error(`options of '${name}' must be a map`);
    checkKeys(arg as Record<string, unknown>, allowed);
    return arg as Record<string, unknown>;
  };
  switch (name) {
    case 'normalize': {
      const form = typeof arg === 'string' ? arg : (opts(['form']).form ?? 'NFC');
      if (form !== 'NFC' && form !== 'NFKC') throw new Error(`normalize: form must be NFC or NFKC, got ${JSON.stringify(form)}`);
      return { step: 'normalize', form };
    }
    case 'invisible': {
      const o = opts(['strip_bidi']);
      return { step: 'invisible', stripBidi: o.strip_bidi === true };
    }
    case 'html':
    case 'whitespace':
    case 'lowercase':
      opts([]);
      return { step: name };
    case 'urls': {
      const o = opts(['placeholder']);
      return { step: 'urls', placeholder: typeof o.placeholder === 'string' ? o.placeholder : DEFAULT_PLACEHOLDERS.url };
    }
    case 'pii': {
      const kinds = Array.isArray(arg) ? arg : arg === undefined || arg === null ? [...PII_KINDS] : opts(['kinds']).kinds ?? [...PII_KINDS];
      if (!Array.isArray(kinds)) throw new Error('pii: kinds must be a list');
      for (const k of kinds) if (!(PII_KINDS as readonly unknown[]).includes(k)) throw new Error(`pii: unknown kind ${JSON.stringify(k)} (known: ${PII_KINDS.join(', ')})`);
      return { step: 'pii', kinds: kinds as PiiKind[] };
    }
    case 'spell': {
      const o = opts(['wordlist', 'freq', 'max_distance']);
      const d = o.max_distance ?? 1;
      if (d !== 1 && d !== 2) throw new Error('spell: max_distance must be 1 or 2');
      return { step: 'spell', wordlist: typeof o.wordlist === 'string' ? o.wordlist : defaultWordlist, freq: typeof o.freq === 'string' ? o.freq : null, maxDistance: d };
    }
    case 'length': {
      const o = opts(['min_chars', 'max_chars', 'min_tokens', 'max_tokens']);
      const c = { step: 'length' as const, minChars: optNum(o, 'min_chars'), maxChars: optNum(o, 'max_chars'), minTokens: optNum(o, 'min_tokens'), maxTokens: optNum(o, 'max_tokens') };
      if (c.minChars === null && c.maxChars === null && c.minTokens === null && c.maxTokens === null) throw new Error('length: give at least one of min_chars, max_chars, min_tokens, max_tokens');
      return c;
    }
    case 'quality': {
      const keys = ['max_symbol_ratio', 'max_dup_line_frac', 'max_dup_line_char_frac', 'max_dup_para_frac', 'max_dup_para_char_frac', 'max_top_ngram_char_frac', 'max_dup_ngram_char_frac', 'min_words'];
      const o = opts(keys);
      const t: QualityThresholds = structuredClone(GOPHER_THRESHOLDS);
      t.maxSymbolRatio = optNum(o, 'max_symbol_ratio') ?? t.maxSymbolRatio;
      t.maxDupLineFrac = optNum(o, 'max_dup_line_frac') ?? t.maxDupLineFrac;
      t.maxDupLineCharFrac = optNum(o, 'max_dup_line_char_frac') ?? t.maxDupLineCharFrac;
      t.maxDupParaFrac = optNum(o, 'max_dup_para_frac') ?? t.maxDupParaFrac;
      t.maxDupParaCharFrac = optNum(o, 'max_dup_para_char_frac') ?? t.maxDupParaCharFrac;
      t.minWordsToJudge = optNum(o, 'min_words') ?? t.minWordsToJudge;
      const perN = (v: unknown, ns: readonly number[], into: Record<number, number>, what: string): void => {
        if (v === undefined) return;
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${what} must be a map {n: fraction}`);
        for (const [k, x] of Object.entries(v)) {
          if (!ns.includes(Number(k))) throw new Error(`${what}: n must be one of ${ns.join(', ')}, got ${k}`);
          into[Number(k)] = num(x, `${what}.${k}`);
        }
      };
      perN(o.max_top_ngram_char_frac, [2, 3, 4], t.maxTopNgramCharFrac, 'max_top_ngram_char_frac');
      perN(o.max_dup_ngram_char_frac, [5, 6, 7, 8, 9, 10], t.maxDupNgramCharFrac, 'max_dup_ngram_char_frac');
      return { step: 'quality', thresholds: t };
    }
    default:
      throw new Error(`unknown step '${name}' (known: ${STEP_NAMES.join(', ')})`);
  }
}

/**
 * A recipe file (YAML or JSON):
 *   fields: [text, messages]        # optional; default auto
 *   steps:
 *     - html
 *     - normalize: NFKC
 *     - pii: [email, phone]
 *     - length: {min_chars: 20}
 * Errors name the file, the line and the step.
 */
export function parseRecipe(file: string, text = readRecipe(file)): CleanRecipe {
  const lc = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lc });
  if (doc.errors.length) {
    const e = doc.errors[0];
    throw new PrepError(file, { line: e.linePos?.[0].line }, `invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const root: unknown = doc.toJS();
  if (root === null || typeof root !== 'object' || Array.isArray(root)) throw new PrepError(file, {}, 'a recipe is a map with "steps" (and optionally "fields")');
  const r = root as Record<string, unknown>;
  for (const k of Object.keys(r)) if (k !== 'steps' && k !== 'fields') throw new PrepError(file, {}, `unknown key '${k}' (a recipe has "steps" and optionally "fields")`);
  let fields: string[] | null = null;
  if (r.fields !== undefined && r.fields !== null) {
    if (!Array.isArray(r.fields) || !r.fields.every((f) => typeof f === 'string')) throw new PrepError(file, { field: 'fields' }, 'fields must be a list of field names');
    fields = r.fields as string[];
  }
  if (!Array.isArray(r.steps) || r.steps.length === 0) throw new PrepError(file, { field: 'steps' }, 'steps must be a non-empty list');
  const seq = doc.get('steps') as YAML.YAMLSeq | undefined;
  const steps = r.steps.map((item, i) => {
    try {
      return parseStep(item);
    } catch (e) {
      const node = seq?.items?.[i] as YAML.Node | undefined;
      const line = node?.range ? lc.linePos(node.range[0]).line : undefined;
      throw new PrepError(file, { line, field: `steps[${i}]` }, (e as Error).message);
    }
  });
  return { fields, steps };
}

function readRecipe(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = e instanceof Error && 'code' in e ? String(e.code) : '';
    throw new PrepError(file, {}, code === 'ENOENT' ? 'recipe file not found' : (e as Error).message);
  }
}

/** Step settings from command-line flags, in the fixed order documented in docs/data-prep.md. */
export interface CleanFlags {
  html?: boolean;
  invisible?: boolean;
  stripBidi?: boolean;
  normalize?: NormalForm | 'none';
  maskUrls?: boolean;
  maskPii?: PiiKind[] | null;
  spell?: boolean;
  wordlist?: string;
  freq?: string;
  spellDistance?: 1 | 2;
  lowercase?: boolean;
  whitespace?: boolean;
  minChars?: number;
  maxChars?: number;
  minTokens?: number;
  maxTokens?: number;
  quality?: boolean;
}

export function stepsFromFlags(f: CleanFlags): StepConfig[] {
  const s: StepConfig[] = [];
  if (f.html) s.push({ step: 'html' });
  if (f.invisible !== false) s.push({ step: 'invisible', stripBidi: f.stripBidi === true });
  if ((f.normalize ?? 'NFC') !== 'none') s.push({ step: 'normalize', form: (f.normalize ?? 'NFC') as NormalForm });
  if (f.maskUrls) s.push({ step: 'urls', placeholder: DEFAULT_PLACEHOLDERS.url });
  if (f.maskPii) s.push({ step: 'pii', kinds: f.maskPii });
  if (f.spell) s.push({ step: 'spell', wordlist: f.wordlist ?? SYSTEM_WORDLIST, freq: f.freq ?? null, maxDistance: f.spellDistance ?? 1 });
  if (f.lowercase) s.push({ step: 'lowercase' });
  if (f.whitespace !== false) s.push({ step: 'whitespace' });
  const len = { minChars: f.minChars ?? null, maxChars: f.maxChars ?? null, minTokens: f.minTokens ?? null, maxTokens: f.maxTokens ?? null };
  if (Object.values(len).some((v) => v !== null)) s.push({ step: 'length', ...len });
  if (f.quality) s.push({ step: 'quality', thresholds: structuredClone(GOPHER_THRESHOLDS) });
  return s;
}
