// 2-D maps of embeddings: PCA by power iteration and exact t-SNE (van der Maaten & Hinton 2008), in float64.
//
// PCA: the data is centred; each principal axis is the dominant eigenvector of the covariance X^T X / (n - 1),
// found by power iteration (v <- X^T (X v), normalised) from a seeded start, then deflated (X <- X - (X v) v^T)
// before the next. Axes are signed so that their largest-magnitude entry is positive (a convention: an
// eigenvector's sign is arbitrary). Power iteration converges at the rate lambda2 / lambda1, so nearly equal
// leading eigenvalues need more iterations (maxIterations) — and then any axis in their plane is a valid answer.
//
// t-SNE (exact, O(n^2) per iteration): input affinities p_{j|i} with a per-point Gaussian bandwidth found by
// bisection so that the perplexity 2^H(P_i) equals `perplexity` (natural-log entropy compared with ln(perplexity),
// tolerance 1e-5, 50 steps), symmetrised p_ij = (p_{j|i} + p_{i|j}) / 2n; output affinities from a Student-t kernel
// q_ij ∝ 1 / (1 + |y_i - y_j|^2); gradient 4 Σ_j (p_ij - q_ij)(y_i - y_j) / (1 + |y_i - y_j|^2). Optimiser as in the
// reference implementation and scikit-learn: early exaggeration (P × 12 for the first 250 iterations), momentum 0.5
// then 0.8, per-coordinate adaptive gains (+0.2 when the gradient changes sign against the step, × 0.8 otherwise,
// floor 0.01), learning rate max(n / exaggeration / 4, 50) (scikit-learn's 'auto'), initial positions N(0, 1e-4)
// from the seed.
import { pairwiseDistances, type DistanceMetric } from './model_embeddings.ts';

/**
 * A small seeded PRNG for the start vectors and initial positions: mulberry32 (32-bit state, period 2^32) for
 * uniforms, Box–Muller for normals. Deterministic for a seed on every platform.
 */
export class SeededRandom {
  private s: number;
  private spare: number | null = null;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  uniform(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Standard normal. */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const a = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(a);
    return r * Math.cos(a);
  }
}

function toRows(op: string, X: readonly ArrayLike<number>[]): Float64Array[] {
  if (X.length === 0) throw new RangeError(`${op}: no points`);
  const d = X[0].length;
  return X.map((r, i) => {
    if (r.length !== d) throw new RangeError(`${op}: point ${i} has ${r.length} dimensions, point 0 has ${d}`);
    const v = Float64Array.from(r as ArrayLike<number>);
    if (v.some((x) => !Number.isFinite(x))) throw new RangeError(`${op}: point ${i} has a non-finite coordinate`);
    return v;
  });
}

export interface PcaOptions {
  /** Number of axes (default 2). */
  components?: number;
  /** Power-iteration steps per axis at most (default 1000). */
  maxIterations?: number;
  /** Stop when no coordinate of the (unit) axis moves more than this between steps (default 1e-13). */
  tolerance?: number;
  seed?: number;
}

export interface PcaResult {
  mean: number[];
  /** components[c]: unit axis c (length d). */
  components: number[][];
  /** Variance of the data along each axis (eigenvalue of the covariance, divisor n - 1). */
  explainedVariance: number[];
  /** Share of the total variance along each axis. */
  explainedVarianceRatio: number[];
  /** projection[i][c]: coordinate of point i on axis c. */
  projection: number[][];
}

export function pca(X: readonly ArrayLike<number>[], opts: PcaOptions = {}): PcaResult {
  const rows = toRows('pca', X);
  const n = rows.length;
  const d = rows[0].length;
  const k = opts.components ?? 2;
  if (!Number.isInteger(k) || k < 1 || k > d) throw new RangeError(`pca: components must be an integer in [1, ${d}], got ${k}`);
  if (n < 2) throw new RangeError('pca: needs at least 2 points');
  const mean = new Array<number>(d).fill(0);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j] += r[j] / n;
  const Xc = rows.map((r) => r.map((x, j) => x - mean[j]));
  let total = 0;
  for (const r of Xc) for (const x of r) total += (x * x) / (n - 1);
  const rnd = new SeededRandom(opts.seed ?? 0);
  const maxIt = opts.maxIterations ?? 1000;
  const tol = opts.tolerance ?? 1e-13;
  const components: number[][] = [];
  const explainedVariance: number[] = [];
  const work = Xc.map((r) => Float64Array.from(r));
  for (let c = 0; c < k; c++) {
    let v = Float64Array.from({ length: d }, () => rnd.normal());
    normalise(v);
    let lambda = 0;
    for (let it = 0; it < maxIt; it++) {
      const xv = work.map((r) => dot(r, v)); // X v   [n]
      const w = new Float64Array(d); // X^T X v   [d]
      work.forEach((r, i) => {
        for (let j = 0; j < d; j++) w[j] += r[j] * xv[i];
      });
      const len = normalise(w);
      lambda = len / (n - 1);
      if (dot(w, v) < 0) for (let j = 0; j < d; j++) w[j] = -w[j];
      let moved = 0;
      for (let j = 0; j < d; j++) moved = Math.max(moved, Math.abs(w[j] - v[j]));
      v = w;
      if (len === 0 || moved < tol) break;
    }
    let big = 0;
    for (let j = 0; j < d; j++) if (Math.abs(v[j]) > Math.abs(v[big])) big = j;
    if (v[big] < 0) for (let j = 0; j < d; j++) v[j] = -v[j];
    components.push(Array.from(v));
    explainedVariance.push(lambda);
    for (const r of work) {
      const p = dot(r, v);
      for (let j = 0; j < d; j++) r[j] -= p * v[j];
    }
  }
  const projection = Xc.map((r) => components.map((v) => r.reduce((s, x, j) => s + x * v[j], 0)));
  return { mean, components, explainedVariance, explainedVarianceRatio: explainedVariance.map((x) => (total > 0 ? x / total : 0)), projection };
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function normalise(v: Float64Array): number {
  const len = Math.sqrt(dot(v, v));
  if (len > 0) for (let i = 0; i < v.length; i++) v[i] /= len;
  return len;
}

export interface TsneOptions {
  /** Effective number of neighbours (default 30; must be < n). */
  perplexity?: number;
  iterations?: number;
  /** Default: max(n / earlyExaggeration / 4, 50), scikit-learn's 'auto'. */
  learningRate?: number;
  earlyExaggeration?: number;
  /** Iterations with exaggerated P and momentum 0.5 (default 250). */
  exaggerationIterations?: number;
  /** Input distances (default 'euclidean'; t-SNE squares them). */
  metric?: DistanceMetric;
  seed?: number;
}

export interface TsneResult {
  /** [n][2] positions. */
  embedding: number[][];
  /** KL(P || Q) at the end. */
  kl: number;
}

/** Conditional affinities P(j|i) whose perplexity is `perplexity`, by bisection on the Gaussian precision. */
function conditionalP(D2: readonly number[][], perplexity: number): number[][] {
  const n = D2.length;
  const target = Math.log(perplexity);
  return D2.map((row, i) => {
    let beta = 1;
    let lo = -Infinity;
    let hi = Infinity;
    let p = new Array<number>(n).fill(0);
    for (let step = 0; step < 50; step++) {
      let sum = 0;
      let weighted = 0;
      p = row.map((d, j) => (j === i ? 0 : Math.exp(-d * beta)));
      for (let j = 0; j < n; j++) {
        sum += p[j];
        weighted += row[j] * p[j];
      }
      if (sum === 0) {
        // every other point is far beyond the bandwidth: widen it
        hi = beta;
        beta = lo === -Infinity ? beta / 2 : (beta + lo) / 2;
        continue;
      }
      const H = Math.log(sum) + (beta * weighted) / sum;
      for (let j = 0; j < n; j++) p[j] /= sum;
      const diff = H - target;
      if (Math.abs(diff) < 1e-5) break;
      if (diff > 0) {
        lo = beta;
        beta = hi === Infinity ? beta * 2 : (beta + hi) / 2;
      } else {
        hi = beta;
        beta = lo === -Infinity ? beta / 2 : (beta + lo) / 2;
      }
    }
    return p;
  });
}

/** Exact t-SNE to 2 dimensions; deterministic for a seed. */
export function tsne(X: readonly ArrayLike<number>[], opts: TsneOptions = {}): TsneResult {
  const rows = toRows('tsne', X);
  const n = rows.length;
  const perp = opts.perplexity ?? 30;
  if (n < 3) throw new RangeError('tsne: needs at least 3 points');
  if (!(perp > 0 && perp < n)) throw new RangeError(`tsne: perplexity must be in (0, n = ${n}), got ${perp}`);
  const iterations = opts.iterations ?? 1000;
  const exaggeration = opts.earlyExaggeration ?? 12;
  const lr = opts.learningRate ?? Math.max(n / exaggeration / 4, 50);
  const exIters = opts.exaggerationIterations ?? 250;
  const dist = pairwiseDistances(rows, opts.metric ?? 'euclidean');
  const D2 = dist.map((r) => r.map((x) => x * x));
  const cond = conditionalP(D2, perp);
  const P = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => Math.max((cond[i][j] + cond[j][i]) / (2 * n), 1e-12)));
  for (let i = 0; i < n; i++) P[i][i] = 0;
  const rnd = new SeededRandom(opts.seed ?? 0);
  const Y = Array.from({ length: n }, () => [rnd.normal() * 1e-4, rnd.normal() * 1e-4]);
  const update = Array.from({ length: n }, () => [0, 0]);
  const gains = Array.from({ length: n }, () => [1, 1]);
  const num = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  let kl = 0;
  for (let it = 0; it < iterations; it++) {
    const ex = it < exIters ? exaggeration : 1;
    const momentum = it < exIters ? 0.5 : 0.8;
    let sumNum = 0;
    for (let i = 0; i < n; i++)
      for (let j = i + 1; j < n; j++) {
        const dx = Y[i][0] - Y[j][0];
        const dy = Y[i][1] - Y[j][1];
        const v = 1 / (1 + dx * dx + dy * dy);
        num[i][j] = num[j][i] = v;
        sumNum += 2 * v;
      }
    kl = 0;
    for (let i = 0; i < n; i++) {
      let gx = 0;
      let gy = 0;
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        const q = Math.max(num[i][j] / sumNum, 1e-12);
        const m = (ex * P[i][j] - q) * num[i][j];
        gx += 4 * m * (Y[i][0] - Y[j][0]);
        gy += 4 * m * (Y[i][1] - Y[j][1]);
        if (P[i][j] > 1e-12) kl += P[i][j] * Math.log(P[i][j] / q);
      }
      const g = [gx, gy];
      for (let c = 0; c < 2; c++) {
        gains[i][c] = g[c] > 0 !== update[i][c] > 0 ? gains[i][c] + 0.2 : gains[i][c] * 0.8;
        if (gains[i][c] < 0.01) gains[i][c] = 0.01;
        update[i][c] = momentum * update[i][c] - lr * gains[i][c] * g[c];
      }
    }
    let mx = 0;
    let my = 0;
    for (let i = 0; i < n; i++) {
      Y[i][0] += update[i][0];
      Y[i][1] += update[i][1];
      mx += Y[i][0] / n;
      my += Y[i][1] / n;
    }
    for (const y of Y) {
      y[0] -= mx;
      y[1] -= my;
    }
  }
  return { embedding: Y, kl };
}
