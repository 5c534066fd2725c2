// chrF and chrF++ as sacreBLEU computes them (sacrebleu 2.6.0, metrics/chrf.py; Popović 2015/2017).
//
// Semantics reproduced:
// - character n-grams of orders 1..charOrder (default 6) over code points, with whitespace removed unless
//   `whitespace` is set; word n-grams of orders 1..wordOrder (0 = chrF, 2 = chrF++) over words whose single
//   leading or trailing ASCII punctuation mark is split off (one per word, the trailing one first);
// - per segment, statistics [hyp, ref, match] per order against each reference; the reference with the best
//   sentence-level F wins (the first on ties); a hypothesis n-gram count is reported as 0 when the reference
//   has no n-grams of that order;
// - corpus: statistics summed, then either sacreBLEU's default "effective order" averaging (precision and
//   recall averaged over orders where both sides have n-grams, then one F-beta) or, with `epsSmoothing`, the
//   mean of per-order F-beta with 1e-16 for undefined values (as chrF++.py, NLTK and Moses do);
// - beta default 2; lowercase optional.
import { formatSignature, segmentReferences, type CorpusMetric, type ReferenceStreams } from './corpus_metric.ts';
import { charNgrams, codePoints, pyRemoveSpaces, pySplit, totalOf, wordNgrams, type Counts } from './text.ts';

export interface ChrfOptions {
  charOrder?: number;
  /** 0 for chrF, 2 for chrF++. */
  wordOrder?: number;
  beta?: number;
  lowercase?: boolean;
  /** Keep whitespace inside character n-grams (default false: whitespace is removed first). */
  whitespace?: boolean;
  /** Per-order epsilon smoothing instead of effective-order averaging (default false). */
  epsSmoothing?: boolean;
}

const PUNCTS = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
const EPS = 1e-16;

/** sacreBLEU's _remove_punctuation: words with one leading or trailing punctuation mark split off. */
export function chrfWords(sentence: string): string[] {
  const out: string[] = [];
  for (const w of pySplit(sentence)) {
    const cps = codePoints(w);
    if (cps.length === 1) out.push(w);
    else if (PUNCTS.has(cps[cps.length - 1])) out.push(cps.slice(0, -1).join(''), cps[cps.length - 1]);
    else if (PUNCTS.has(cps[0])) out.push(cps[0], cps.slice(1).join(''));
    else out.push(w);
  }
  return out;
}

export class Chrf implements CorpusMetric {
  readonly name: string;
  readonly higherIsBetter = true;
  readonly charOrder: number;
  readonly wordOrder: number;
  readonly beta: number;
  readonly lowercase: boolean;
  readonly whitespace: boolean;
  readonly epsSmoothing: boolean;

  constructor(opts: ChrfOptions = {}) {
    this.charOrder = opts.charOrder ?? 6;
    this.wordOrder = opts.wordOrder ?? 0;
    this.beta = opts.beta ?? 2;
    this.lowercase = opts.lowercase ?? false;
    this.whitespace = opts.whitespace ?? false;
    this.epsSmoothing = opts.epsSmoothing ?? false;
    if (!Number.isInteger(this.charOrder) || this.charOrder < 0) throw new RangeError(`chrF char order must be an integer >= 0, got ${this.charOrder}`);
    if (!Number.isInteger(this.wordOrder) || this.wordOrder < 0) throw new RangeError(`chrF word order must be an integer >= 0, got ${this.wordOrder}`);
    if (this.charOrder + this.wordOrder === 0) throw new RangeError('chrF needs at least one character or word n-gram order');
    if (!(this.beta > 0)) throw new RangeError(`chrF beta must be positive, got ${this.beta}`);
    this.name = `chrF${this.beta}${'+'.repeat(this.wordOrder)}`;
  }

  private ngrams(sentence: string): Counts[] {
    const s = this.lowercase ? sentence.toLowerCase() : sentence;
    const chars = codePoints(this.whitespace ? s : pyRemoveSpaces(s));
    const out: Counts[] = [];
    for (let n = 1; n <= this.charOrder; n++) out.push(charNgrams(chars, n));
    if (this.wordOrder > 0) {
      const words = chrfWords(s);
      for (let n = 1; n <= this.wordOrder; n++) out.push(wordNgrams(words, n));
    }
    return out;
  }

  /** F score (0..100) from [hyp, ref, match] triples per order: sacreBLEU's _compute_f_score. */
  fScore(stats: readonly number[]): number {
    const order = this.charOrder + this.wordOrder;
    const factor = this.beta ** 2;
    let score = 0;
    let effective = 0;
    let avgPrec = 0;
    let avgRec = 0;
    for (let i = 0; i < order; i++) {
      const nHyp = stats[3 * i], nRef = stats[3 * i + 1], nMatch = stats[3 * i + 2];
      const prec = nHyp > 0 ? nMatch / nHyp : EPS;
      const rec = nRef > 0 ? nMatch / nRef : EPS;
      const denom = factor * prec + rec;
      score += denom > 0 ? ((1 + factor) * prec * rec) / denom : EPS;
      if (nHyp > 0 && nRef > 0) {
        avgPrec += prec;
        avgRec += rec;
        effective++;
      }
    }
    if (this.epsSmoothing) return (100 * score) / order;
    if (effective === 0) avgPrec = avgRec = 0;
    else {
      avgPrec /= effective;
      avgRec /= effective;
    }
    if (avgPrec + avgRec) return (100 * ((1 + factor) * avgPrec * avgRec)) / (factor * avgPrec + avgRec);
    return 0;
  }

  /** Best [hyp, ref, match]* statistics of one hypothesis over its references. */
  sentenceStatistics(hypothesis: string, references: readonly string[]): number[] {
    const hyp = this.ngrams(hypothesis);
    let best: number[] = [];
    let bestF = -1;
    for (const reference of references) {
      const ref = this.ngrams(reference);
      const stats: number[] = [];
      for (let k = 0; k < hyp.length; k++) {
        let match = 0, hypCount = 0;
        for (const [g, c] of hyp[k]) {
          hypCount += c;
          const r = ref[k].get(g);
          if (r !== undefined) match += c < r ? c : r;
        }
        stats.push(ref[k].size > 0 ? hypCount : 0, totalOf(ref[k]), match);
      }
      const f = this.fScore(stats);
      if (f > bestF) {
        bestF = f;
        best = stats;
      }
    }
    return best;
  }

  segmentStatistics(hypotheses: readonly string[], references: ReferenceStreams): number[][] {
    const { perSegment } = segmentReferences(hypotheses.length, references);
    return hypotheses.map((h, i) => this.sentenceStatistics(h, perSegment[i]));
  }

  scoreFromStatistics(summed: readonly number[]): number {
    return this.fScore(summed);
  }

  corpusScore(hypotheses: readonly string[], references: ReferenceStreams): { score: number; name: string; signature: string } {
    const { numRefs } = segmentReferences(hypotheses.length, references);
    const stats = this.segmentStatistics(hypotheses, references);
    const summed = new Array<number>(3 * (this.charOrder + this.wordOrder)).fill(0);
    for (const row of stats) for (let k = 0; k < row.length; k++) summed[k] += row[k];
    return { score: this.fScore(summed), name: this.name, signature: this.signature(numRefs) };
  }

  sentenceScore(hypothesis: string, references: readonly string[]): { score: number; name: string; signature: string } {
    return { score: this.fScore(this.sentenceStatistics(hypothesis, references)), name: this.name, signature: this.signature(references.length) };
  }

  signature(numRefs: number | 'var', extra: Record<string, string | number> = {}): string {
    return formatSignature(
      numRefs,
      [
        ['case', this.lowercase ? 'lc' : 'mixed'],
        ['eff', this.epsSmoothing ? 'no' : 'yes'],
        ['nc', this.charOrder],
        ['nw', this.wordOrder],
        ['space', this.whitespace ? 'yes' : 'no'],
      ],
      extra,
    );
  }
}

export function corpusChrf(hypotheses: readonly string[], references: ReferenceStreams, opts: ChrfOptions = {}) {
  return new Chrf(opts).corpusScore(hypotheses, references);
}

export function sentenceChrf(hypothesis: string, references: readonly string[], opts: ChrfOptions = {}) {
  return new Chrf(opts).sentenceScore(hypothesis, references);
}
