// BLEU as sacreBLEU computes it (sacrebleu 2.6.0, metrics/bleu.py), so that a score printed here equals the one
// `sacrebleu` prints for the same files and options.
//
// Semantics reproduced:
// - preprocessing: optional Python lower(), then the tokenizer on the right-stripped line; tokens are the
//   whitespace-split tokenized line;
// - per segment: n-gram counts of the hypothesis clipped by the maximum count over the references; the
//   reference length is the one closest to the hypothesis length (ties: the shorter);
// - corpus: statistics are summed over segments, then precisions, smoothing and the brevity penalty
//   BP = exp(1 - r/c) for c < r (0 when c = 0) are applied once;
// - smoothing (Chen & Cherry 2014): 'none'; 'floor' (zero matches count as `smoothValue`, default 0.1);
//   'add-k' (k added to matches and totals for n >= 2, default 1); 'exp' (the NIST/mteval geometric
//   back-off, default);
// - effective order: orders with no hypothesis n-grams are left out of the geometric mean (sentence BLEU's
//   default); log(0) is floored at -9999999999 as sacreBLEU's my_log does, so an unsmoothed zero gives 0;
// - a corpus without any unigram match scores 0 without smoothing (sacreBLEU issue #141).
import { formatSignature, segmentReferences, type CorpusMetric, type ReferenceStreams } from './corpus_metric.ts';
import { bleuTokenizer, type BleuTokenizerName } from './tokenizers.ts';
import { countInto, fixed, flooredLog, pyRstrip, pySplit, type Counts } from './text.ts';

export type BleuSmoothMethod = 'none' | 'floor' | 'add-k' | 'exp';
export const BLEU_SMOOTH_METHODS: readonly BleuSmoothMethod[] = ['none', 'floor', 'add-k', 'exp'];

/** The value each smoothing method uses when none is given (null: the method takes no value). */
export const BLEU_SMOOTH_DEFAULTS: Readonly<Record<BleuSmoothMethod, number | null>> = { none: null, floor: 0.1, 'add-k': 1, exp: null };

export interface BleuOptions {
  /** Lowercase hypotheses and references first (default false). */
  lowercase?: boolean;
  /** Tokenizer (default '13a'). */
  tokenize?: BleuTokenizerName;
  /** Smoothing (default 'exp'). */
  smoothMethod?: BleuSmoothMethod;
  /** Value for 'floor' / 'add-k'; null or omitted for the method's default. */
  smoothValue?: number | null;
  /** Highest n-gram order (default 4). */
  maxNgramOrder?: number;
  /** Leave orders without hypothesis n-grams out of the mean (default false; true for sentence BLEU). */
  effectiveOrder?: boolean;
}

export interface BleuScore {
  /** BLEU on the 0..100 scale. */
  score: number;
  /** Matched n-grams per order (after add-k smoothing, as sacreBLEU reports them). */
  counts: number[];
  /** Hypothesis n-grams per order (after add-k smoothing). */
  totals: number[];
  /** Percent precision per order, smoothed. */
  precisions: number[];
  /** Brevity penalty. */
  bp: number;
  sysLen: number;
  refLen: number;
  /** sysLen / refLen (0 when refLen is 0). */
  ratio: number;
}

/**
 * BLEU from sufficient statistics: sacreBLEU's BLEU.compute_bleu. `correct` / `total` are per order 1..maxOrder.
 * Inputs are not modified.
 */
export function computeBleu(
  correctIn: readonly number[],
  totalIn: readonly number[],
  sysLen: number,
  refLen: number,
  opts: { smoothMethod?: BleuSmoothMethod; smoothValue?: number | null; effectiveOrder?: boolean; maxNgramOrder?: number } = {},
): BleuScore {
  const method = opts.smoothMethod ?? 'none';
  const maxOrder = opts.maxNgramOrder ?? 4;
  const smoothValue = opts.smoothValue ?? BLEU_SMOOTH_DEFAULTS[method] ?? 0;
  const correct = [...correctIn];
  const total = [...totalIn];
  let bp = 1.0;
  if (sysLen < refLen) bp = sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0.0;
  const precisions = new Array<number>(maxOrder).fill(0);
  const ratio = refLen ? sysLen / refLen : 0;
  if (!correct.some((c) => c !== 0)) return { score: 0, counts: correct, totals: total, precisions, bp, sysLen, refLen, ratio };

  let smoothMteval = 1.0;
  let effOrder = maxOrder;
  for (let n = 1; n <= maxOrder; n++) {
    if (method === 'add-k' && n > 1) {
      correct[n - 1] += smoothValue;
      total[n - 1] += smoothValue;
    }
    if (total[n - 1] === 0) break;
    if (opts.effectiveOrder) effOrder = n;
    if (correct[n - 1] === 0) {
      if (method === 'exp') {
        smoothMteval *= 2;
        precisions[n - 1] = 100 / (smoothMteval * total[n - 1]);
      } else if (method === 'floor') {
        precisions[n - 1] = (100 * smoothValue) / total[n - 1];
      }
    } else {
      precisions[n - 1] = (100 * correct[n - 1]) / total[n - 1];
    }
  }
  let logSum = 0;
  for (let i = 0; i < effOrder; i++) logSum += flooredLog(precisions[i]);
  const score = bp * Math.exp(logSum / effOrder);
  return { score, counts: correct, totals: total, precisions, bp, sysLen, refLen, ratio };
}

const ORDER_BASE = 0xe000;

/** All n-grams of orders 1..maxOrder of a tokenized line, and its token count (extract_all_word_ngrams). */
export function allWordNgrams(line: string, maxOrder: number): { ngrams: Counts; length: number } {
  const tokens = pySplit(line);
  const ngrams: Counts = new Map();
  for (let n = 1; n <= maxOrder; n++) {
    for (let i = 0; i + n <= tokens.length; i++) {
      // Key: one private-use character naming the order, then the tokens joined by spaces (tokens never
      // contain whitespace, so the key is unambiguous).
      let key = String.fromCharCode(ORDER_BASE + n) + tokens[i];
      for (let j = 1; j < n; j++) key += ` ${tokens[i + j]}`;
      countInto(ngrams, key);
    }
  }
  return { ngrams, length: tokens.length };
}

/** The reference length closest to the hypothesis length; the shorter one on ties. */
export function closestRefLength(hypLen: number, refLens: readonly number[]): number {
  let closestDiff = -1;
  let closestLen = -1;
  for (const r of refLens) {
    const diff = Math.abs(hypLen - r);
    if (closestDiff === -1 || diff < closestDiff) {
      closestDiff = diff;
      closestLen = r;
    } else if (diff === closestDiff && r < closestLen) closestLen = r;
  }
  return closestLen;
}

/** sacreBLEU's BLEU metric object: fixed options, corpus or sentence scoring, signatures. */
export class Bleu implements CorpusMetric {
  readonly name = 'BLEU';
  readonly higherIsBetter = true;
  readonly lowercase: boolean;
  readonly tokenizerName: BleuTokenizerName;
  readonly smoothMethod: BleuSmoothMethod;
  readonly smoothValue: number | null;
  readonly maxNgramOrder: number;
  readonly effectiveOrder: boolean;
  private readonly tokenizer: (line: string) => string;

  constructor(opts: BleuOptions = {}) {
    this.lowercase = opts.lowercase ?? false;
    this.tokenizerName = opts.tokenize ?? '13a';
    this.smoothMethod = opts.smoothMethod ?? 'exp';
    this.smoothValue = opts.smoothValue ?? null;
    this.maxNgramOrder = opts.maxNgramOrder ?? 4;
    this.effectiveOrder = opts.effectiveOrder ?? false;
    if (!BLEU_SMOOTH_METHODS.includes(this.smoothMethod)) throw new RangeError(`unknown BLEU smoothing method '${this.smoothMethod}'`);
    if (!Number.isInteger(this.maxNgramOrder) || this.maxNgramOrder < 1 || this.maxNgramOrder > 255) throw new RangeError(`BLEU max n-gram order must be an integer in 1..255, got ${this.maxNgramOrder}`);
    this.tokenizer = bleuTokenizer(this.tokenizerName);
  }

  /** Lowercasing and tokenization as applied to every hypothesis and reference. */
  preprocess(sentence: string): string {
    const s = this.lowercase ? sentence.toLowerCase() : sentence;
    return this.tokenizer(pyRstrip(s));
  }

  private referenceInfo(refs: readonly string[]): { ngrams: Counts; lengths: number[] } {
    let merged: Counts | null = null;
    const lengths: number[] = [];
    for (const ref of refs) {
      const { ngrams, length } = allWordNgrams(this.preprocess(ref), this.maxNgramOrder);
      lengths.push(length);
      if (merged === null) merged = ngrams;
      else for (const [k, v] of ngrams) if (v > (merged.get(k) ?? 0)) merged.set(k, v);
    }
    return { ngrams: merged ?? new Map(), lengths };
  }

  /** [hypLen, refLen, correct_1..N, total_1..N] for one hypothesis against its references. */
  sentenceStatistics(hypothesis: string, references: readonly string[]): number[] {
    const ref = this.referenceInfo(references);
    const { ngrams, length } = allWordNgrams(this.preprocess(hypothesis), this.maxNgramOrder);
    const refLen = closestRefLength(length, ref.lengths);
    const N = this.maxNgramOrder;
    const correct = new Array<number>(N).fill(0);
    const total = new Array<number>(N).fill(0);
    for (const [key, count] of ngrams) {
      const order = key.charCodeAt(0) - ORDER_BASE;
      total[order - 1] += count;
      const r = ref.ngrams.get(key);
      if (r !== undefined) correct[order - 1] += count < r ? count : r;
    }
    return [length, refLen, ...correct, ...total];
  }

  segmentStatistics(hypotheses: readonly string[], references: ReferenceStreams): number[][] {
    const { perSegment } = segmentReferences(hypotheses.length, references);
    return hypotheses.map((h, i) => this.sentenceStatistics(h, perSegment[i]));
  }

  /** The full score from summed statistics. */
  scoreDetails(summed: readonly number[]): BleuScore {
    const N = this.maxNgramOrder;
    return computeBleu(summed.slice(2, 2 + N), summed.slice(2 + N, 2 + 2 * N), summed[0], summed[1], {
      smoothMethod: this.smoothMethod,
      smoothValue: this.smoothValue,
      effectiveOrder: this.effectiveOrder,
      maxNgramOrder: N,
    });
  }

  scoreFromStatistics(summed: readonly number[]): number {
    return this.scoreDetails(summed).score;
  }

  /** Corpus BLEU over hypotheses and reference streams. */
  corpusScore(hypotheses: readonly string[], references: ReferenceStreams): BleuScore & { signature: string } {
    const { numRefs } = segmentReferences(hypotheses.length, references);
    const stats = this.segmentStatistics(hypotheses, references);
    const summed = new Array<number>(2 + 2 * this.maxNgramOrder).fill(0);
    for (const row of stats) for (let k = 0; k < row.length; k++) summed[k] += row[k];
    return { ...this.scoreDetails(summed), signature: this.signature(numRefs) };
  }

  /** BLEU of one hypothesis against its references. */
  sentenceScore(hypothesis: string, references: readonly string[]): BleuScore & { signature: string } {
    return { ...this.scoreDetails(this.sentenceStatistics(hypothesis, references)), signature: this.signature(references.length) };
  }

  signature(numRefs: number | 'var', extra: Record<string, string | number> = {}): string {
    let smooth: string = this.smoothMethod;
    const def = BLEU_SMOOTH_DEFAULTS[this.smoothMethod];
    if (def !== null) smooth += `[${fixed(this.smoothValue ?? def, 2)}]`;
    return formatSignature(
      numRefs,
      [
        ['case', this.lowercase ? 'lc' : 'mixed'],
        ['eff', this.effectiveOrder ? 'yes' : 'no'],
        ['tok', this.tokenizerName],
        ['smooth', smooth],
      ],
      extra,
    );
  }
}

/** sacrebleu.corpus_bleu: corpus BLEU with sacreBLEU's defaults (13a, exp smoothing, no effective order). */
export function corpusBleu(hypotheses: readonly string[], references: ReferenceStreams, opts: BleuOptions = {}): BleuScore & { signature: string } {
  return new Bleu(opts).corpusScore(hypotheses, references);
}

/** sacrebleu.sentence_bleu: like corpus BLEU on one segment, with effective order on by default. */
export function sentenceBleu(hypothesis: string, references: readonly string[], opts: BleuOptions = {}): BleuScore & { signature: string } {
  return new Bleu({ effectiveOrder: true, ...opts }).sentenceScore(hypothesis, references);
}

/** sacreBLEU's one-line rendering: `BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)`. */
export function formatBleu(s: BleuScore, width = 2): string {
  const prec = s.precisions.map((p) => fixed(p, 1)).join('/');
  return `${fixed(s.score, width)} ${prec} (BP = ${fixed(s.bp, 3)} ratio = ${fixed(s.ratio, 3)} hyp_len = ${s.sysLen} ref_len = ${s.refLen})`;
}
