// Statistics for evaluation results: confidence intervals, significance tests, agreement coefficients and the
// unbiased pass@k estimator. Every function is pure and every random choice takes a seed (NumPy's PCG64
// stream, see numpy_random.ts), so a result can be reproduced exactly.
import { NumpyGenerator } from './numpy_random.ts';

// --- distributions ------------------------------------------------------------------------------------------

/**
 * Inverse of the standard normal CDF (Wichura 1988, algorithm AS 241 "PPND16", relative error about 1e-16).
 * normalQuantile(0.975) = 1.959963984540054.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return -Infinity;
    if (p === 1) return Infinity;
    throw new RangeError(`normalQuantile: p must be in [0, 1], got ${p}`);
  }
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    return (
      (q *
        (((((((2509.0809287301226727 * r + 33430.575583588128105) * r + 67265.770927008700853) * r + 45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r + 133.14166789178437745) * r +
          3.387132872796366608)) /
      (((((((5226.495278852545925 * r + 28729.085735721942674) * r + 39307.89580009271061) * r + 21213.794301586595867) * r + 5394.1960214247511077) * r + 687.1870074920579083) * r + 42.313330701600911252) * r + 1)
    );
  }
  let r = q < 0 ? p : 1 - p;
  r = Math.sqrt(-Math.log(r));
  let x: number;
  if (r <= 5) {
    r -= 1.6;
    x =
      (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r + 0.24178072517745061177) * r + 1.27045825245236838258) * r + 3.64784832476320460504) * r + 5.7694972214606914055) * r + 4.6303378461565452959) * r +
        1.42343711074968357734) /
      (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r + 0.0151986665636164571966) * r + 0.14810397642748007459) * r + 0.68976733498510000455) * r + 1.6763848301838038494) * r + 2.05319162663775882187) * r + 1);
  } else {
    r -= 5;
    x =
      (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 0.0012426609473880784386) * r + 0.026532189526576123093) * r + 0.29656057182850489123) * r + 1.7848265399172913358) * r + 5.4637849111641143699) * r +
        6.6579046435011037772) /
      (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r + 7.868691311456132591e-4) * r + 0.0148753612908506148525) * r + 0.13692988092273580531) * r + 0.59983220655588793769) * r + 1);
  }
  return q < 0 ? -x : x;
}

/** log(n!): a direct sum of logs up to 170, the log-gamma function beyond. */
export function logFactorial(n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`logFactorial: n must be a non-negative integer, got ${n}`);
  if (n < 2) return 0;
  if (n <= 170) {
    let s = 0;
    for (let i = 2; i <= n; i++) s += Math.log(i);
    return s;
  }
  return logGamma(n + 1);
}

const LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];

/** log Γ(x) for x > 0 (Lanczos approximation, g = 7, about 15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  x -= 1;
  let a = LANCZOS[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** P(X = k) for X ~ Binomial(n, p). */
export function binomialPmf(k: number, n: number, p: number): number {
  if (k < 0 || k > n) return 0;
  if (p === 0) return k === 0 ? 1 : 0;
  if (p === 1) return k === n ? 1 : 0;
  return Math.exp(logFactorial(n) - logFactorial(k) - logFactorial(n - k) + k * Math.log(p) + (n - k) * Math.log1p(-p));
}

// --- proportions ----------------------------------------------------------------------------------------------

export interface Interval {
  low: number;
  high: number;
}

/**
 * Wilson score interval for a binomial proportion (Wilson 1927; without continuity correction, as in Newcombe
 * 1998's method 3): centre (p + z²/2n) / (1 + z²/n), half-width z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
 */
export function wilsonInterval(successes: number, n: number, confidence = 0.95): Interval & { estimate: number } {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`wilsonInterval: n must be a non-negative integer, got ${n}`);
  if (!(successes >= 0 && successes <= n)) throw new RangeError(`wilsonInterval: successes must be in [0, n], got ${successes} of ${n}`);
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`wilsonInterval: confidence must be in (0, 1), got ${confidence}`);
  if (n === 0) return { estimate: NaN, low: 0, high: 1 };
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return { estimate: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/**
 * Exact two-sided sign test: under H0 wins ~ Binomial(wins + losses, 1/2); the p-value is the probability of
 * an outcome at least as unlikely as the one observed, i.e. min(1, 2·P(X <= min(wins, losses))). Ties carry
 * no sign and are left out, as the classical sign test does.
 */
export function signTest(wins: number, losses: number): { pValue: number; n: number } {
  if (!Number.isInteger(wins) || !Number.isInteger(losses) || wins < 0 || losses < 0) throw new RangeError(`signTest: counts must be non-negative integers, got ${wins} and ${losses}`);
  const n = wins + losses;
  if (n === 0) return { pValue: 1, n };
  const k = Math.min(wins, losses);
  let tail = 0;
  if (n <= 1000) {
    // C(n, i) / 2^n by the recurrence pmf(i+1) = pmf(i)·(n-i)/(i+1): exact for small n, no underflow below 1000.
    let pmf = 2 ** -n;
    for (let i = 0; i <= k; i++) {
      tail += pmf;
      pmf = (pmf * (n - i)) / (i + 1);
    }
  } else for (let i = 0; i <= k; i++) tail += binomialPmf(i, n, 0.5);
  return { pValue: Math.min(1, 2 * tail), n };
}

export type TieHandling = 'half' | 'exclude';

export interface WinRate {
  /** Wins of system A over B. */
  wins: number;
  losses: number;
  ties: number;
  /** 'half': (wins + ties/2) / (wins + losses + ties); 'exclude': wins / (wins + losses). */
  winRate: number;
  /** Wilson interval of the win rate (with 'half', ties count as half a success out of the full count). */
  ci: Interval;
  /** Exact two-sided sign test of wins against losses (ties excluded whatever `ties` says). */
  signTestP: number;
  tieHandling: TieHandling;
}

/** Win rate of A against B from per-item outcomes. */
export function winRate(outcomes: readonly ('a' | 'b' | 'tie')[], opts: { ties?: TieHandling; confidence?: number } = {}): WinRate {
  const tieHandling = opts.ties ?? 'half';
  let wins = 0, losses = 0, ties = 0;
  for (const o of outcomes) {
    if (o === 'a') wins++;
    else if (o === 'b') losses++;
    else if (o === 'tie') ties++;
    else throw new RangeError(`winRate: outcome must be 'a', 'b' or 'tie', got ${JSON.stringify(o)}`);
  }
  const successes = tieHandling === 'half' ? wins + ties / 2 : wins;
  const n = tieHandling === 'half' ? wins + losses + ties : wins + losses;
  const ci = wilsonInterval(successes, n, opts.confidence ?? 0.95);
  return { wins, losses, ties, winRate: n === 0 ? NaN : successes / n, ci: { low: ci.low, high: ci.high }, signTestP: signTest(wins, losses).pValue, tieHandling };
}

// --- bootstrap ------------------------------------------------------------------------------------------------

/** NumPy's percentile with the default 'linear' method (numpy.percentile, q in 0..100) of a sorted array. */
export function percentileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = (q / 100) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  const t = pos - lo;
  const a = sorted[lo], b = sorted[hi];
  // NumPy's _lerp: a + (b - a)·t, computed from the upper end when t >= 0.5 for monotonicity.
  const diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

export function percentile(values: readonly number[], q: number): number {
  return percentileSorted(Float64Array.from(values).sort(), q);
}

export interface BootstrapOptions {
  /** Number of resamples (default 1000). */
  nResamples?: number;
  /** Two-sided confidence level (default 0.95). */
  confidence?: number;
  /** Seed of NumPy's default_rng stream (default 12345, sacreBLEU's). */
  seed?: number;
}

export interface BootstrapResult extends Interval {
  /** The statistic on the original sample. */
  estimate: number;
  /** Mean of the resampled statistics. */
  mean: number;
  /** Median of the resampled statistics. */
  median: number;
  nResamples: number;
  confidence: number;
  seed: number;
}

/**
 * Percentile bootstrap confidence interval for any statistic of n items: `statistic(indices)` receives the
 * resampled item indices (with repetition). Resample i draws n indices with `default_rng(seed).choice(n, n)`,
 * all resamples from one stream, so the same seed gives the same interval.
 */
export function bootstrapCI(n: number, statistic: (indices: Int32Array) => number, opts: BootstrapOptions = {}): BootstrapResult {
  const nResamples = opts.nResamples ?? 1000;
  const confidence = opts.confidence ?? 0.95;
  const seed = opts.seed ?? 12345;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`bootstrapCI: need at least one item, got ${n}`);
  if (!Number.isInteger(nResamples) || nResamples < 1) throw new RangeError(`bootstrapCI: nResamples must be a positive integer, got ${nResamples}`);
  if (!(confidence >= 0 && confidence < 1)) throw new RangeError(`bootstrapCI: confidence must be in [0, 1), got ${confidence}`);
  const all = new Int32Array(n);
  for (let i = 0; i < n; i++) all[i] = i;
  const estimate = statistic(all);
  const rng = new NumpyGenerator(seed);
  const stats = new Float64Array(nResamples);
  for (let r = 0; r < nResamples; r++) stats[r] = statistic(rng.integers(n, n));
  let mean = 0;
  for (const s of stats) mean += s;
  mean /= nResamples;
  stats.sort();
  const delta = (1 - confidence) / 2;
  return { estimate, mean, median: percentileSorted(stats, 50), low: percentileSorted(stats, 100 * delta), high: percentileSorted(stats, 100 * (1 - delta)), nResamples, confidence, seed };
}

/** Bootstrap CI of the mean of per-item values. */
export function bootstrapMeanCI(values: readonly number[], opts: BootstrapOptions = {}): BootstrapResult {
  return bootstrapCI(values.length, (idx) => {
    let s = 0;
    for (let i = 0; i < idx.length; i++) s += values[idx[i]];
    return s / idx.length;
  }, opts);
}

// --- agreement ------------------------------------------------------------------------------------------------

export type KappaWeights = 'none' | 'linear' | 'quadratic';

/**
 * Cohen's kappa between two raters (Cohen 1960; weighted: Cohen 1968), as sklearn's cohen_kappa_score: the
 * categories are the sorted union of both raters' labels (or `labels`), weights |i-j| or (i-j)² on category
 * indices, κ = 1 - Σ w·O / Σ w·E with E the outer product of the marginals scaled to the total.
 */
export function cohenKappa<T extends string | number>(rater1: readonly T[], rater2: readonly T[], opts: { weights?: KappaWeights; labels?: readonly T[] } = {}): number {
  if (rater1.length !== rater2.length) throw new RangeError(`cohenKappa: raters have ${rater1.length} and ${rater2.length} ratings`);
  if (rater1.length === 0) throw new RangeError('cohenKappa: no ratings');
  const labels = opts.labels ? [...opts.labels] : sortedUnique([...rater1, ...rater2]);
  const index = new Map<T, number>(labels.map((l, i) => [l, i]));
  const k = labels.length;
  const observed = Array.from({ length: k }, () => new Float64Array(k));
  let used = 0;
  for (let i = 0; i < rater1.length; i++) {
    const a = index.get(rater1[i]), b = index.get(rater2[i]);
    if (a === undefined || b === undefined) continue; // sklearn ignores pairs outside `labels`
    observed[a][b]++;
    used++;
  }
  if (used === 0) throw new RangeError('cohenKappa: no rating falls in the given labels');
  const row = observed.map((r) => r.reduce((x, y) => x + y, 0));
  const col = labels.map((_, j) => observed.reduce((x, r) => x + r[j], 0));
  const weight = (i: number, j: number): number => {
    const w = opts.weights ?? 'none';
    if (w === 'none') return i === j ? 0 : 1;
    if (w === 'linear') return Math.abs(i - j);
    return (i - j) ** 2;
  };
  let num = 0, den = 0;
  for (let i = 0; i < k; i++)
    for (let j = 0; j < k; j++) {
      const w = weight(i, j);
      num += w * observed[i][j];
      den += (w * row[i] * col[j]) / used;
    }
  return 1 - num / den;
}

function sortedUnique<T extends string | number>(xs: readonly T[]): T[] {
  const u = [...new Set(xs)];
  return u.sort((a, b) => (typeof a === 'number' && typeof b === 'number' ? a - b : String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
}

/**
 * Fleiss' kappa (Fleiss 1971) from a subjects × categories table of how many raters put each subject in each
 * category; every subject must have the same number of ratings.
 */
export function fleissKappa(table: readonly (readonly number[])[]): { kappa: number; pBar: number; pe: number; categoryProportions: number[] } {
  const N = table.length;
  if (N === 0) throw new RangeError('fleissKappa: no subjects');
  const k = table[0].length;
  const n = table[0].reduce((a, b) => a + b, 0);
  if (n < 2) throw new RangeError('fleissKappa: each subject needs at least two ratings');
  const pj = new Array<number>(k).fill(0);
  let pBar = 0;
  table.forEach((row, i) => {
    if (row.length !== k) throw new RangeError(`fleissKappa: subject ${i + 1} has ${row.length} categories, expected ${k}`);
    const ni = row.reduce((a, b) => a + b, 0);
    if (ni !== n) throw new RangeError(`fleissKappa: subject ${i + 1} has ${ni} ratings, expected ${n} like subject 1`);
    let s = 0;
    row.forEach((c, j) => {
      if (!Number.isInteger(c) || c < 0) throw new RangeError(`fleissKappa: subject ${i + 1} category ${j + 1} count must be a non-negative integer, got ${c}`);
      pj[j] += c;
      s += c * (c - 1);
    });
    pBar += s / (n * (n - 1));
  });
  pBar /= N;
  for (let j = 0; j < k; j++) pj[j] /= N * n;
  const pe = pj.reduce((a, p) => a + p * p, 0);
  return { kappa: (pBar - pe) / (1 - pe), pBar, pe, categoryProportions: pj };
}

/** Fleiss table from per-subject rating lists (category labels, any number of raters but the same for all). */
export function fleissTable<T extends string | number>(ratings: readonly (readonly T[])[], categories?: readonly T[]): { table: number[][]; categories: T[] } {
  const cats = categories ? [...categories] : sortedUnique(ratings.flat());
  const index = new Map<T, number>(cats.map((c, i) => [c, i]));
  const table = ratings.map((r, i) => {
    const row = new Array<number>(cats.length).fill(0);
    for (const v of r) {
      const j = index.get(v);
      if (j === undefined) throw new RangeError(`fleissTable: subject ${i + 1} has rating ${JSON.stringify(v)} outside the categories`);
      row[j]++;
    }
    return row;
  });
  return { table, categories: cats };
}

export type AlphaLevel = 'nominal' | 'ordinal' | 'interval' | 'ratio';

/**
 * Krippendorff's alpha (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability") from reliability data:
 * one row per coder, one column per unit, null for a missing value. Units with fewer than two values are not
 * pairable and are dropped. α = 1 - (n - 1)·Σ o_ck δ²_ck / Σ n_c n_k δ²_ck over the coincidence matrix o.
 * Ordinal distances use the ranks of the distinct values in sorted order; interval uses (c - k)²;
 * ratio ((c - k)/(c + k))².
 */
export function krippendorffAlpha(data: readonly (readonly (number | string | null)[])[], level: AlphaLevel = 'nominal'): number {
  if (data.length === 0) throw new RangeError('krippendorffAlpha: no coders');
  const nUnits = data[0].length;
  data.forEach((row, i) => {
    if (row.length !== nUnits) throw new RangeError(`krippendorffAlpha: coder ${i + 1} has ${row.length} units, coder 1 has ${nUnits}`);
  });
  if (level !== 'nominal') {
    for (const row of data) for (const v of row) if (v !== null && typeof v !== 'number') throw new RangeError(`krippendorffAlpha: ${level} data must be numbers, got ${JSON.stringify(v)}`);
  }
  const values = sortedUnique(data.flat().filter((v): v is number | string => v !== null));
  const index = new Map(values.map((v, i) => [v, i]));
  const V = values.length;
  const o = Array.from({ length: V }, () => new Float64Array(V));
  for (let u = 0; u < nUnits; u++) {
    const unit: number[] = [];
    for (const row of data) if (row[u] !== null) unit.push(index.get(row[u]!)!);
    const m = unit.length;
    if (m < 2) continue;
    for (let a = 0; a < m; a++) for (let b = 0; b < m; b++) if (a !== b) o[unit[a]][unit[b]] += 1 / (m - 1);
  }
  const nc = o.map((r) => r.reduce((x, y) => x + y, 0));
  const n = nc.reduce((x, y) => x + y, 0);
  if (n === 0) throw new RangeError('krippendorffAlpha: no unit has two or more values');
  const delta2 = (c: number, k: number): number => {
    if (level === 'nominal') return c === k ? 0 : 1;
    const vc = values[c] as number, vk = values[k] as number;
    if (level === 'interval') return (vc - vk) ** 2;
    if (level === 'ratio') return vc + vk === 0 ? 0 : ((vc - vk) / (vc + vk)) ** 2;
    // ordinal: (Σ_{g between c and k} n_g - (n_c + n_k)/2)²
    const lo = Math.min(c, k), hi = Math.max(c, k);
    let s = 0;
    for (let g = lo; g <= hi; g++) s += nc[g];
    return (s - (nc[c] + nc[k]) / 2) ** 2;
  };
  let Do = 0, De = 0;
  for (let c = 0; c < V; c++)
    for (let k = 0; k < V; k++) {
      const d = delta2(c, k);
      Do += o[c][k] * d;
      De += nc[c] * nc[k] * d;
    }
  if (De === 0) return Do === 0 ? 1 : NaN;
  return 1 - ((n - 1) * Do) / De;
}

// --- pass@k ---------------------------------------------------------------------------------------------------

/**
 * Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"): with n samples of
 * which c pass, 1 - C(n-c, k)/C(n, k), computed as 1 - Π_{i=n-c+1}^{n} (1 - k/i) so no binomial overflows.
 */
export function passAtK(n: number, c: number, k: number): number {
  if (![n, c, k].every((x) => Number.isInteger(x) && x >= 0)) throw new RangeError(`passAtK: n, c, k must be non-negative integers, got ${n}, ${c}, ${k}`);
  if (c > n) throw new RangeError(`passAtK: c (${c}) exceeds n (${n})`);
  if (k < 1 || k > n) throw new RangeError(`passAtK: k must be in 1..n (${n}), got ${k}`);
  if (n - c < k) return 1;
  let prod = 1;
  for (let i = n - c + 1; i <= n; i++) prod *= 1 - k / i;
  return 1 - prod;
}

/** Mean pass@k over problems, each with its own (n, c). */
export function meanPassAtK(problems: readonly { n: number; c: number }[], k: number): number {
  if (problems.length === 0) throw new RangeError('meanPassAtK: no problems');
  return problems.reduce((s, p) => s + passAtK(p.n, p.c, k), 0) / problems.length;
}
