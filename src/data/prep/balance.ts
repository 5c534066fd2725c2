// Class balancing for `alignkit data balance`: statistics, seeded random over- / under-sampling to a target,
// SMOTE-style synthetic oversampling in a feature space, and class weights.
//
// Random resampling is streaming and exact: for a class with n rows and target T, every row is written
// floor(T / n) times and (T mod n) rows, chosen by sequential selection sampling (Knuth, TAOCP vol. 2, 3.4.2,
// Algorithm S), once more — so the class ends with exactly T rows, copies next to their original.
//
// SMOTE (N. V. Chawla et al., "SMOTE: Synthetic Minority Over-sampling Technique", JAIR 16, 2002): a synthetic
// sample is x_i + λ (x_nn - x_i) with x_i a sample of the class, x_nn one of its k nearest neighbours (Euclidean)
// in the same class chosen uniformly, and λ uniform in [0, 1). Base samples are taken in a seeded random order,
// cycling through the class, so every sample seeds floor or ceil(needed / n) synthetic ones. What is interpolated
// is the row's feature vector: its numeric `embedding` field when there is one, otherwise a hashed TF-IDF vector
// of its text (HashedTfidf below). SMOTE cannot produce text: the synthetic rows carry only the label, the vector
// and provenance, and are only useful to models trained on vectors (classifier heads, probes), not to LM training.
//
// Class weights:
//   inverse     w_c = N / (K * n_c)  (scikit-learn's "balanced": the weights average to 1 over the samples)
//   effective   w_c ∝ 1 / E_c with E_c = (1 - β^n_c) / (1 - β), the effective number of samples of Y. Cui et al.,
//               "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019; normalised so that
//               sum_c w_c = K as in the paper. β -> 0 gives equal weights, β -> 1 inverse frequency.
import { hash32 } from './hash.ts';
import { PrepConfigError } from './errors.ts';
import { Rng } from './rng.ts';

export type Counts = ReadonlyMap<string, number>;

export type Target = 'max' | 'min' | 'mean' | 'median' | number;

export function parseTarget(s: string): Target {
  if (s === 'max' || s === 'min' || s === 'mean' || s === 'median') return s;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new PrepConfigError(`--target must be max, min, mean, median or a positive integer, got '${s}'`);
  return n;
}

export function targetCount(counts: Counts, target: Target): number {
  const v = [...counts.values()].sort((a, b) => a - b);
  if (v.length === 0) return 0;
  if (typeof target === 'number') return target;
  if (target === 'max') return v[v.length - 1];
  if (target === 'min') return v[0];
  if (target === 'mean') return Math.round(v.reduce((a, b) => a + b, 0) / v.length);
  const h = v.length >> 1;
  return v.length % 2 ? v[h] : Math.round((v[h - 1] + v[h]) / 2);
}

export type Strategy = 'oversample' | 'undersample' | 'resample';

/** Final size of a class: oversampling never shrinks a class, undersampling never grows one. */
export function plannedSize(n: number, target: number, strategy: Strategy): number {
  if (strategy === 'oversample') return Math.max(n, target);
  if (strategy === 'undersample') return Math.min(n, target);
  return target;
}

/** Decides, row by row, how many copies to write so each class ends with exactly its planned size. */
export class ResamplePlan {
  private readonly state = new Map<string, { base: number; extraLeft: number; rowsLeft: number }>();
  private readonly rng: Rng;
  readonly sizes = new Map<string, number>();

  constructor(counts: Counts, target: number, strategy: Strategy, seed: number) {
    this.rng = new Rng(seed);
    for (const [label, n] of [...counts].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const size = plannedSize(n, target, strategy);
      this.sizes.set(label, size);
      this.state.set(label, { base: Math.floor(size / n), extraLeft: size % n, rowsLeft: n });
    }
  }

  /** Copies of the next row of this class (0, 1, 2, ...). */
  copies(label: string): number {
    const s = this.state.get(label);
    if (!s || s.rowsLeft === 0) throw new PrepConfigError(`class '${label}' has more rows than counted in the first pass (the input changed between passes?)`);
    // Algorithm S: take this row for an extra copy with probability extraLeft / rowsLeft.
    const extra = s.extraLeft > 0 && this.rng.below(s.rowsLeft) < s.extraLeft ? 1 : 0;
    s.extraLeft -= extra;
    s.rowsLeft--;
    return s.base + extra;
  }
}

export function inverseFrequencyWeights(counts: Counts): Record<string, number> {
  const N = [...counts.values()].reduce((a, b) => a + b, 0);
  const K = counts.size;
  const out: Record<string, number> = {};
  for (const [c, n] of counts) out[c] = N / (K * n);
  return out;
}

export function effectiveNumberWeights(counts: Counts, beta: number): Record<string, number> {
  if (!(beta >= 0 && beta < 1)) throw new PrepConfigError(`--beta must be in [0, 1), got ${beta}`);
  const raw = new Map<string, number>();
  for (const [c, n] of counts) {
    // E_n = (1 - β^n) / (1 - β); for β = 0 it is 1.
    const eff = beta === 0 ? 1 : -Math.expm1(n * Math.log(beta)) / (1 - beta);
    raw.set(c, 1 / eff);
  }
  const sum = [...raw.values()].reduce((a, b) => a + b, 0);
  const out: Record<string, number> = {};
  for (const [c, w] of raw) out[c] = (w * counts.size) / sum;
  return out;
}

// ----------------------------------------------------------------------------------------- feature vectors

/** Lower-cased words (letters / digits runs) of a text. */
export function tokenizeWords(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{M}\p{N}]+/gu) ?? [];
}

/**
 * TF-IDF over the hashing trick (Weinberger et al., "Feature Hashing for Large Scale Multitask Learning", ICML
 * 2009): word w goes to bucket hash32(w) mod dim with sign ±1 from another hash bit, so collisions cancel in
 * expectation. Document frequencies are counted per bucket in a first pass; idf = ln((1 + N) / (1 + df)) + 1
 * (scikit-learn's smoothed idf); a vector is sum over words of sign * count * idf(bucket), then L2-normalised.
 */
export class HashedTfidf {
  private readonly df: Float64Array;
  private docs = 0;
  constructor(readonly dim = 256) {
    if (!Number.isInteger(dim) || dim < 2 || dim > 1 << 20) throw new PrepConfigError(`feature dimension must be an integer in [2, 2^20], got ${dim}`);
    this.df = new Float64Array(dim);
  }
  private bucket(w: string): { index: number; sign: number } {
    const h = hash32(w, 0x7f4a7c15);
    return { index: h % this.dim, sign: (hash32(w, 0x1b873593) & 1) === 0 ? 1 : -1 };
  }
  /** First pass: count the document. */
  addDocument(text: string): void {
    this.docs++;
    const seen = new Set<number>();
    for (const w of tokenizeWords(text)) seen.add(this.bucket(w).index);
    for (const i of seen) this.df[i]++;
  }
  vector(text: string): Float64Array {
    const v = new Float64Array(this.dim);
    for (const w of tokenizeWords(text)) {
      const { index, sign } = this.bucket(w);
      v[index] += sign * (Math.log((1 + this.docs) / (1 + this.df[index])) + 1);
    }
    let norm = 0;
    for (let i = 0; i < v.length; i++) norm += v[i] * v[i];
    norm = Math.sqrt(norm);
    if (norm > 0) for (let i = 0; i < v.length; i++) v[i] /= norm;
    return v;
  }
}

function dist2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

/** The k nearest neighbours (by Euclidean distance, ties by index) of every vector, within the set. */
export function nearestNeighbours(xs: readonly ArrayLike<number>[], k: number): number[][] {
  return xs.map((x, i) => {
    const d: { j: number; d: number }[] = [];
    for (let j = 0; j < xs.length; j++) if (j !== i) d.push({ j, d: dist2(x, xs[j]) });
    d.sort((a, b) => a.d - b.d || a.j - b.j);
    return d.slice(0, k).map((e) => e.j);
  });
}

export interface SyntheticSample {
  vector: Float64Array;
  /** Index (in the class) of the base sample and of the neighbour; λ. */
  base: number;
  neighbour: number;
  lambda: number;
}

/**
 * `needed` SMOTE samples from one class's vectors. With one sample there is no neighbour: it is copied (λ = 0,
 * neighbour = base). O(n^2 d) neighbour search: meant for minority classes up to some tens of thousands of rows.
 */
export function smote(xs: readonly ArrayLike<number>[], needed: number, k: number, rng: Rng): SyntheticSample[] {
  if (xs.length === 0 || needed <= 0) return [];
  const dim = xs[0].length;
  for (const x of xs) if (x.length !== dim) throw new PrepConfigError(`SMOTE: vectors of one class have different lengths (${dim} and ${x.length})`);
  const nn = nearestNeighbours(xs, Math.min(k, xs.length - 1));
  const order = rng.shuffle(xs.map((_x, i) => i));
  const out: SyntheticSample[] = [];
  for (let t = 0; t < needed; t++) {
    const i = order[t % order.length];
    const cand = nn[i];
    const j = cand.length ? cand[rng.below(cand.length)] : i;
    const lambda = cand.length ? rng.next() : 0;
    const v = new Float64Array(dim);
    const a = xs[i], b = xs[j];
    for (let d = 0; d < dim; d++) v[d] = a[d] + lambda * (b[d] - a[d]);
    out.push({ vector: v, base: i, neighbour: j, lambda });
  }
  return out;
}
