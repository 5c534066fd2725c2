// ROUGE as Google's rouge-score package computes it (github.com/google-research/google-research/rouge,
// pip rouge-score 0.1.2), which reproduces the official ROUGE-1.5.5 Perl script for these variants.
//
// Semantics reproduced:
// - tokenizer: lowercase, every run of characters other than [a-z0-9] becomes a space, split on whitespace;
//   with the stemmer, tokens longer than 3 characters are Porter-stemmed (NLTK's PorterStemmer in its default
//   NLTK_EXTENSIONS mode); only tokens matching ^[a-z0-9]+$ are kept;
// - rougeN: clipped n-gram overlap; precision = overlap / max(#prediction n-grams, 1), recall likewise with
//   the target; F1 = 2PR/(P+R) (0 when P+R = 0);
// - rougeL: longest common subsequence over the whole texts (0 when either is empty);
// - rougeLsum: summary-level LCS: texts split on "\n" into sentences (empty ones dropped), each target
//   sentence's union-LCS with all prediction sentences, each token counted at most as often as it occurs on
//   both sides (Lin 2004, section 3.2);
// - score(target, prediction) takes the TARGET first, as rouge-score does;
// - scoreMulti: for each ROUGE type the reference giving the highest F1 (the first on ties);
// - bootstrapAggregate: like rouge-score's BootstrapAggregator (1000 resamples of the per-example scores,
//   percentile interval; low/mid/high at (1-c)/2, 0.5, 1-(1-c)/2), but seeded.
import { PorterStemmer } from './porter.ts';
import { NumpyGenerator } from './numpy_random.ts';
import { percentileSorted } from './stats.ts';

export type RougeType = `rouge${number}` | 'rougeL' | 'rougeLsum';

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

export type RougeScores = Record<string, RougeScore>;

const NON_ALNUM = /[^a-z0-9]+/g;
const SPACES = /\s+/;
const VALID_TOKEN = /^[a-z0-9]+$/;

let sharedStemmer: PorterStemmer | null = null;

/** rouge-score's default tokenizer. */
export function rougeTokenize(text: string, useStemmer = false): string[] {
  let tokens = text.toLowerCase().replace(NON_ALNUM, ' ').split(SPACES);
  if (useStemmer) {
    sharedStemmer ??= new PorterStemmer('NLTK_EXTENSIONS');
    const st = sharedStemmer;
    tokens = tokens.map((t) => (t.length > 3 ? st.stem(t) : t));
  }
  return tokens.filter((t) => VALID_TOKEN.test(t));
}

export function fmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const k = tokens.slice(i, i + n).join(' ');
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

/** ROUGE-N from token lists. */
export function rougeN(targetTokens: readonly string[], predictionTokens: readonly string[], n: number): RougeScore {
  const t = ngramCounts(targetTokens, n);
  const p = ngramCounts(predictionTokens, n);
  let inter = 0;
  for (const [k, c] of t) inter += Math.min(c, p.get(k) ?? 0);
  let tc = 0, pc = 0;
  for (const c of t.values()) tc += c;
  for (const c of p.values()) pc += c;
  const precision = inter / Math.max(pc, 1);
  const recall = inter / Math.max(tc, 1);
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** The LCS dynamic-programming table, (|ref|+1) x (|can|+1), row-major. */
export function lcsTable<T>(ref: readonly T[], can: readonly T[]): Int32Array[] {
  const rows = ref.length, cols = can.length;
  const t = Array.from({ length: rows + 1 }, () => new Int32Array(cols + 1));
  for (let i = 1; i <= rows; i++)
    for (let j = 1; j <= cols; j++) t[i][j] = ref[i - 1] === can[j - 1] ? t[i - 1][j - 1] + 1 : Math.max(t[i - 1][j], t[i][j - 1]);
  return t;
}

/** Indices into `ref` of one LCS, recovered from the end the way rouge-score's _backtrack_norec does. */
export function lcsIndices<T>(ref: readonly T[], can: readonly T[]): number[] {
  const t = lcsTable(ref, can);
  let i = ref.length, j = can.length;
  const out: number[] = [];
  while (i > 0 && j > 0) {
    if (ref[i - 1] === can[j - 1]) {
      out.push(i - 1);
      i--;
      j--;
    } else if (t[i][j - 1] > t[i - 1][j]) j--;
    else i--;
  }
  return out.reverse();
}

/** rouge-score's _union_lcs: the tokens of `ref` in the union of its LCS with each candidate sentence. */
export function unionLcs<T>(ref: readonly T[], candidates: readonly (readonly T[])[]): T[] {
  const union = new Set<number>();
  for (const c of candidates) for (const i of lcsIndices(ref, c)) union.add(i);
  return [...union].sort((a, b) => a - b).map((i) => ref[i]);
}

export function rougeL(targetTokens: readonly string[], predictionTokens: readonly string[]): RougeScore {
  if (targetTokens.length === 0 || predictionTokens.length === 0) return { precision: 0, recall: 0, fmeasure: 0 };
  const t = lcsTable(targetTokens, predictionTokens);
  const lcs = t[targetTokens.length][predictionTokens.length];
  const precision = lcs / predictionTokens.length;
  const recall = lcs / targetTokens.length;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** Summary-level LCS over sentence token lists. */
export function summaryLevelLcs(refSents: readonly (readonly string[])[], canSents: readonly (readonly string[])[]): RougeScore {
  const zero = { precision: 0, recall: 0, fmeasure: 0 };
  if (refSents.length === 0 || canSents.length === 0) return zero;
  const m = refSents.reduce((a, s) => a + s.length, 0);
  const n = canSents.reduce((a, s) => a + s.length, 0);
  if (!n || !m) return zero;
  const cntR = new Map<string, number>(), cntC = new Map<string, number>();
  for (const s of refSents) for (const t of s) cntR.set(t, (cntR.get(t) ?? 0) + 1);
  for (const s of canSents) for (const t of s) cntC.set(t, (cntC.get(t) ?? 0) + 1);
  let hits = 0;
  for (const r of refSents) {
    for (const t of unionLcs(r, canSents)) {
      const c = cntC.get(t) ?? 0, rr = cntR.get(t) ?? 0;
      if (c > 0 && rr > 0) {
        hits++;
        cntC.set(t, c - 1);
        cntR.set(t, rr - 1);
      }
    }
  }
  const recall = hits / m, precision = hits / n;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

export interface RougeOptions {
  useStemmer?: boolean;
}

function validateTypes(types: readonly string[]): void {
  if (types.length === 0) throw new RangeError('ROUGE: no ROUGE types given');
  for (const t of types) {
    if (t === 'rougeL' || t === 'rougeLsum') continue;
    const m = /^rouge([0-9])$/.exec(t);
    if (!m || Number(m[1]) <= 0) throw new RangeError(`ROUGE: invalid rouge type '${t}' (use rouge1..rouge9, rougeL, rougeLsum)`);
  }
}

/** rouge-score's RougeScorer. */
export class RougeScorer {
  constructor(
    readonly rougeTypes: readonly string[],
    readonly opts: RougeOptions = {},
  ) {
    validateTypes(rougeTypes);
  }

  private tokens(text: string): string[] {
    return rougeTokenize(text, this.opts.useStemmer ?? false);
  }

  /** Scores of `prediction` against `target` (target first, as rouge-score). */
  score(target: string, prediction: string): RougeScores {
    const needsTokens = this.rougeTypes.some((t) => t !== 'rougeLsum');
    const tt = needsTokens ? this.tokens(target) : [];
    const pt = needsTokens ? this.tokens(prediction) : [];
    const out: RougeScores = {};
    for (const type of this.rougeTypes) {
      if (type === 'rougeL') out[type] = rougeL(tt, pt);
      else if (type === 'rougeLsum') {
        const sents = (text: string) => text.split('\n').filter((s) => s.length > 0).map((s) => this.tokens(s));
        out[type] = summaryLevelLcs(sents(target), sents(prediction));
      } else out[type] = rougeN(tt, pt, Number(type.slice(5)));
    }
    return out;
  }

  /** Per type, the score against the reference with the highest F1 (the first on ties). */
  scoreMulti(targets: readonly string[], prediction: string): RougeScores {
    if (targets.length === 0) throw new RangeError('ROUGE: scoreMulti needs at least one target');
    const all = targets.map((t) => this.score(t, prediction));
    const out: RougeScores = {};
    for (const type of this.rougeTypes) {
      let best = 0;
      for (let i = 1; i < all.length; i++) if (all[i][type].fmeasure > all[best][type].fmeasure) best = i;
      out[type] = all[best][type];
    }
    return out;
  }
}

export interface AggregateScore {
  low: RougeScore;
  mid: RougeScore;
  high: RougeScore;
}

/**
 * rouge-score's BootstrapAggregator: for each type, nSamples resamples (with replacement) of the per-example
 * [precision, recall, fmeasure] rows, the mean of each resample, and NumPy-style linear percentiles of those
 * means. rouge-score draws from NumPy's unseeded global generator; here the draws come from
 * default_rng(seed).choice, so results are reproducible.
 */
export function bootstrapAggregate(scores: readonly RougeScores[], opts: { confidenceInterval?: number; nSamples?: number; seed?: number } = {}): Record<string, AggregateScore> {
  const ci = opts.confidenceInterval ?? 0.95;
  const nSamples = opts.nSamples ?? 1000;
  if (!(ci >= 0 && ci <= 1)) throw new RangeError(`bootstrap: confidence interval must be in [0, 1], got ${ci}`);
  if (!Number.isInteger(nSamples) || nSamples < 1) throw new RangeError(`bootstrap: nSamples must be a positive integer, got ${nSamples}`);
  if (scores.length === 0) throw new RangeError('bootstrap: no scores to aggregate');
  const rng = new NumpyGenerator(opts.seed ?? 12345);
  const n = scores.length;
  const out: Record<string, AggregateScore> = {};
  for (const type of Object.keys(scores[0])) {
    const rows = scores.map((s, i) => {
      const v = s[type];
      if (v === undefined) throw new RangeError(`bootstrap: score ${i + 1} has no '${type}'`);
      return [v.precision, v.recall, v.fmeasure];
    });
    const means = [new Float64Array(nSamples), new Float64Array(nSamples), new Float64Array(nSamples)];
    for (let r = 0; r < nSamples; r++) {
      const idx = rng.integers(n, n);
      for (let k = 0; k < 3; k++) {
        let s = 0;
        for (let i = 0; i < n; i++) s += rows[idx[i]][k];
        means[k][r] = s / n;
      }
    }
    const delta = (1 - ci) / 2;
    const q = [100 * delta, 50, 100 * (1 - delta)];
    const pct = means.map((m) => {
      const sorted = m.sort();
      return q.map((x) => percentileSorted(sorted, x));
    });
    const at = (j: number): RougeScore => ({ precision: pct[0][j], recall: pct[1][j], fmeasure: pct[2][j] });
    out[type] = { low: at(0), mid: at(1), high: at(2) };
  }
  return out;
}
