// NLTK's BLEU and chrF (nltk 3.10, nltk/translate/bleu_score.py and chrf_score.py), kept apart from the
// sacreBLEU ports because their semantics differ: NLTK works on token lists the caller made, uses arbitrary
// n-gram weights, the seven smoothing methods of Chen & Cherry (2014) numbered as NLTK numbers them, and
// brevity penalty against the closest reference length (ties: the shorter).
//
// NLTK quirks kept on purpose: in corpus_bleu the smoothing functions see only the LAST sentence pair
// (methods 5 and 6 use it to compute extra precisions); method 0 replaces a zero precision with the
// smallest positive double, so an unsmoothed zero gives a tiny positive score rather than 0; a corpus
// without any unigram match scores exactly 0.

export type Tokens = readonly string[];

/** A precision kept as numerator / denominator as NLTK's unnormalised Fraction keeps it. */
interface Precision {
  num: number;
  den: number;
}

function ngramCounts(tokens: Tokens, n: number): Map<string, number> {
  const m = new Map<string, number>();
  if (tokens.length < n) return m;
  for (let i = 0; i + n <= tokens.length; i++) {
    // Tokens may contain any character, so keys are JSON arrays (unambiguous).
    const k = n === 1 ? JSON.stringify([tokens[i]]) : JSON.stringify(tokens.slice(i, i + n));
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

/** NLTK's modified_precision: clipped n-gram matches over max(1, hypothesis n-grams). */
export function modifiedPrecision(references: readonly Tokens[], hypothesis: Tokens, n: number): Precision {
  const counts = ngramCounts(hypothesis, n);
  const maxCounts = new Map<string, number>();
  for (const r of references) {
    const rc = ngramCounts(r, n);
    for (const g of counts.keys()) maxCounts.set(g, Math.max(maxCounts.get(g) ?? 0, rc.get(g) ?? 0));
  }
  let num = 0, total = 0;
  for (const [g, c] of counts) {
    num += Math.min(c, maxCounts.get(g) ?? 0);
    total += c;
  }
  return { num, den: Math.max(1, total) };
}

export function closestRefLengthNltk(references: readonly Tokens[], hypLen: number): number {
  let best = references[0].length;
  for (const r of references) {
    const d = Math.abs(r.length - hypLen), bd = Math.abs(best - hypLen);
    if (d < bd || (d === bd && r.length < best)) best = r.length;
  }
  return best;
}

export function brevityPenaltyNltk(closestRefLen: number, hypLen: number): number {
  if (hypLen > closestRefLen) return 1;
  if (hypLen === 0) return 0;
  return Math.exp(1 - closestRefLen / hypLen);
}

export type NltkSmoothing = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7;

export interface NltkSmoothingParams {
  epsilon?: number;
  alpha?: number;
  k?: number;
}

/** A smoothed precision: either still a fraction or already a real number. */
type P = Precision | number;
const value = (p: P): number => (typeof p === 'number' ? p : p.num / p.den);
const numerator = (p: P): number => (typeof p === 'number' ? p : p.num);
const denominator = (p: P): number => (typeof p === 'number' ? 1 : p.den);

/** NLTK's SmoothingFunction().method<k> applied to the corpus precisions. */
function smooth(method: NltkSmoothing, pn: P[], references: readonly Tokens[], hypothesis: Tokens, hypLen: number, params: NltkSmoothingParams): P[] {
  const epsilon = params.epsilon ?? 0.1, alpha = params.alpha ?? 5, k = params.k ?? 5;
  switch (method) {
    case 0:
      // The smallest positive normal double, as sys.float_info.min.
      return pn.map((p) => (numerator(p) !== 0 ? p : 2.2250738585072014e-308));
    case 1:
      return pn.map((p) => (numerator(p) === 0 ? (numerator(p) + epsilon) / denominator(p) : p));
    case 2:
      return pn.map((p, i) => (i === 0 ? p : { num: numerator(p) + 1, den: denominator(p) + 1 }));
    case 3: {
      let inc = 1;
      return pn.map((p) => {
        if (numerator(p) !== 0) return p;
        const v = 1 / (2 ** inc * denominator(p));
        inc++;
        return v;
      });
    }
    case 4: {
      let inc = 1;
      const len = hypLen ? hypLen : hypothesis.length;
      return pn.map((p) => {
        if (numerator(p) === 0 && len > 1) {
          const num = 1 / ((2 ** inc * k) / Math.log(len));
          inc++;
          return num / denominator(p);
        }
        return p;
      });
    }
    case 5: {
      const out = [...pn];
      const plus1 = [...pn, modifiedPrecision(references, hypothesis, 5)];
      let prev = value(pn[0]) + 1;
      for (let i = 0; i < out.length; i++) {
        const v = (prev + value(pn[i]) + value(plus1[i + 1])) / 3;
        out[i] = v;
        prev = v;
      }
      return out;
    }
    case 6: {
      if (!(pn.length > 2 && value(pn[2]) !== 0)) throw new RangeError('NLTK smoothing method 6 requires a non-zero trigram precision');
      const out = [...pn];
      for (let i = 2; i < out.length; i++) {
        const pi0 = value(out[i - 2]) === 0 ? 0 : value(out[i - 1]) ** 2 / value(out[i - 2]);
        const m = numerator(pn[i]);
        const l = Math.max(0, hypothesis.length - i);
        out[i] = (m + alpha * pi0) / (l + alpha);
      }
      return out;
    }
    case 7:
      return smooth(5, smooth(4, pn, references, hypothesis, hypLen, params), references, hypothesis, hypLen, params);
  }
}

export interface NltkBleuOptions {
  /** One weight vector, or several (a score per vector is returned). Default (0.25, 0.25, 0.25, 0.25). */
  weights?: readonly number[] | readonly (readonly number[])[];
  smoothing?: NltkSmoothing;
  smoothingParams?: NltkSmoothingParams;
  /** Uniform weights over the hypothesis length when it is under 4 and the weights are the default. */
  autoReweigh?: boolean;
}

function isNested(w: readonly number[] | readonly (readonly number[])[]): w is readonly (readonly number[])[] {
  return w.length > 0 && Array.isArray(w[0]);
}

/** nltk.translate.bleu_score.corpus_bleu. Returns one score, or one per weight vector when several are given. */
export function nltkCorpusBleu(listOfReferences: readonly (readonly Tokens[])[], hypotheses: readonly Tokens[], opts: NltkBleuOptions = {}): number | number[] {
  if (listOfReferences.length !== hypotheses.length) throw new RangeError(`NLTK BLEU: ${hypotheses.length} hypotheses but ${listOfReferences.length} reference lists`);
  if (hypotheses.length === 0) throw new RangeError('NLTK BLEU: no hypotheses');
  const raw = opts.weights ?? [0.25, 0.25, 0.25, 0.25];
  const weights: (readonly number[])[] = isNested(raw) ? [...raw] : [raw as readonly number[]];
  const maxLen = Math.max(...weights.map((w) => w.length));
  const nums = new Array<number>(maxLen + 1).fill(0), dens = new Array<number>(maxLen + 1).fill(0);
  let hypLengths = 0, refLengths = 0;
  listOfReferences.forEach((refs, s) => {
    if (refs.length === 0) throw new RangeError(`NLTK BLEU: hypothesis ${s + 1} has no references`);
    const hyp = hypotheses[s];
    for (let i = 1; i <= maxLen; i++) {
      const p = modifiedPrecision(refs, hyp, i);
      nums[i] += p.num;
      dens[i] += p.den;
    }
    hypLengths += hyp.length;
    refLengths += closestRefLengthNltk(refs, hyp.length);
  });
  const bp = brevityPenaltyNltk(refLengths, hypLengths);
  if (nums[1] === 0) return weights.length === 1 ? 0 : weights.map(() => 0);
  let pn: P[] = [];
  for (let i = 1; i <= maxLen; i++) pn.push({ num: nums[i], den: dens[i] });
  const lastRefs = listOfReferences[listOfReferences.length - 1];
  const lastHyp = hypotheses[hypotheses.length - 1];
  pn = smooth(opts.smoothing ?? 0, pn, lastRefs, lastHyp, hypLengths, opts.smoothingParams ?? {});
  const scores = weights.map((w0) => {
    let w = w0;
    if (opts.autoReweigh && hypLengths < 4 && w.length === 4 && w.every((x) => x === 0.25)) w = new Array<number>(hypLengths).fill(1 / hypLengths);
    let s = 0;
    for (let i = 0; i < Math.min(w.length, pn.length); i++) {
      const v = value(pn[i]);
      if (v > 0) s += w[i] * Math.log(v);
    }
    return bp * Math.exp(s);
  });
  return weights.length === 1 ? scores[0] : scores;
}

/** nltk.translate.bleu_score.sentence_bleu (= corpus_bleu of one pair). */
export function nltkSentenceBleu(references: readonly Tokens[], hypothesis: Tokens, opts: NltkBleuOptions = {}): number | number[] {
  return nltkCorpusBleu([references], [hypothesis], opts);
}

// --- NLTK chrF ------------------------------------------------------------------------------------------------

function nltkChrfPreprocess(sent: string | Tokens, ignoreWhitespace: boolean): string[] {
  const s = typeof sent === 'string' ? sent : sent.join(' ');
  // re.sub(r'\s+', '', s) with Python's Unicode whitespace
  const t = ignoreWhitespace ? s.replace(/[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/g, '') : s;
  return Array.from(t);
}

function chrfPRF(ref: string[], hyp: string[], n: number, beta: number): number {
  const epsilon = 1e-16;
  const count = (chars: string[]) => {
    const m = new Map<string, number>();
    for (let i = 0; i + n <= chars.length; i++) {
      const k = chars.slice(i, i + n).join('');
      m.set(k, (m.get(k) ?? 0) + 1);
    }
    return m;
  };
  const r = count(ref), h = count(hyp);
  let tp = 0, tpfp = 0, tpfn = 0;
  for (const [g, c] of h) {
    tpfp += c;
    tp += Math.min(c, r.get(g) ?? 0);
  }
  for (const c of r.values()) tpfn += c;
  if (tpfp === 0 || tpfn === 0) return epsilon;
  const prec = tp / tpfp, rec = tp / tpfn;
  const factor = beta ** 2;
  const denom = factor * prec + rec;
  // Python raises ZeroDivisionError (caught: epsilon) when the denominator is 0.
  if (denom === 0) return epsilon;
  return ((1 + factor) * (prec * rec)) / denom;
}

export interface NltkChrfOptions {
  minLen?: number;
  maxLen?: number;
  beta?: number;
  ignoreWhitespace?: boolean;
}

/** nltk.translate.chrf_score.corpus_chrf: the mean over sentences and orders of per-order F-beta. */
export function nltkCorpusChrf(references: readonly (string | Tokens)[], hypotheses: readonly (string | Tokens)[], opts: NltkChrfOptions = {}): number {
  const minLen = opts.minLen ?? 1, maxLen = opts.maxLen ?? 6, beta = opts.beta ?? 3, ignore = opts.ignoreWhitespace ?? true;
  if (references.length !== hypotheses.length) throw new RangeError(`NLTK chrF: ${hypotheses.length} hypotheses but ${references.length} references`);
  if (hypotheses.length === 0) throw new RangeError('NLTK chrF: no hypotheses');
  let total = 0;
  references.forEach((ref, i) => {
    const r = nltkChrfPreprocess(ref, ignore), h = nltkChrfPreprocess(hypotheses[i], ignore);
    for (let n = minLen; n <= maxLen; n++) total += chrfPRF(r, h, n, beta);
  });
  const orders = maxLen - minLen + 1;
  return total / orders / hypotheses.length;
}

export function nltkSentenceChrf(reference: string | Tokens, hypothesis: string | Tokens, opts: NltkChrfOptions = {}): number {
  return nltkCorpusChrf([reference], [hypothesis], opts);
}

// --- NLTK GLEU (Google BLEU, Wu et al. 2016) ----------------------------------------------------------------

/** nltk.translate.gleu_score.corpus_gleu: Σ matches / Σ max(hyp n-grams, ref n-grams) over all orders
 *  minLen..maxLen, each sentence using the reference with the best ratio (the first on ties). */
export function nltkCorpusGleu(listOfReferences: readonly (readonly Tokens[])[], hypotheses: readonly Tokens[], minLen = 1, maxLen = 4): number {
  if (listOfReferences.length !== hypotheses.length) throw new RangeError(`NLTK GLEU: ${hypotheses.length} hypotheses but ${listOfReferences.length} reference lists`);
  const everygrams = (t: Tokens) => {
    const m = new Map<string, number>();
    for (let n = minLen; n <= maxLen; n++) for (const [k, c] of ngramCounts(t, n)) m.set(k, (m.get(k) ?? 0) + c);
    return m;
  };
  let corpusMatch = 0, corpusAll = 0;
  hypotheses.forEach((hyp, s) => {
    const h = everygrams(hyp);
    let tpfp = 0;
    for (const c of h.values()) tpfp += c;
    let best: [number, number] | null = null;
    for (const ref of listOfReferences[s]) {
      const r = everygrams(ref);
      let tpfn = 0, tp = 0;
      for (const [g, c] of r) {
        tpfn += c;
        tp += Math.min(c, h.get(g) ?? 0);
      }
      const nAll = Math.max(tpfp, tpfn);
      if (nAll > 0 && (best === null || tp / nAll > best[0] / best[1])) best = [tp, nAll];
    }
    if (best !== null) {
      corpusMatch += best[0];
      corpusAll += best[1];
    }
  });
  return corpusAll === 0 ? 0 : corpusMatch / corpusAll;
}

export function nltkSentenceGleu(references: readonly Tokens[], hypothesis: Tokens, minLen = 1, maxLen = 4): number {
  return nltkCorpusGleu([references], [hypothesis], minLen, maxLen);
}
