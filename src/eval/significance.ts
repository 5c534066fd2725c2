// Confidence intervals and paired significance tests for corpus metrics with sacreBLEU's semantics
// (sacrebleu 2.6.0, significance.py): `sacrebleu --confidence`, `--paired-bs` and `--paired-ar`.
//
// - Resampling draws come from NumPy's default_rng(seed) (seed 12345 unless given, like SACREBLEU_SEED), with
//   the same call shapes as sacreBLEU, so the resampled segment sets are identical to sacreBLEU's.
// - Bootstrap CI: 1000 resamples of segments; the score is recomputed from summed statistics; the reported
//   mean is the mean of the resampled scores and the CI half-width is half the spread between the
//   (n//40)-th smallest and largest resampled scores (a 95% interval).
// - Paired bootstrap (Koehn 2004; Moses' bootstrap-hypothesis-difference-significance.pl): the same
//   resampled segment sets for baseline and system; the p-value is (1 + #{|Δ_i| - mean|Δ| > |Δ|}) / (n + 1).
// - Approximate randomisation (Riezler & Maxwell 2005): 10000 trials; in each, every segment's statistics
//   are swapped between the two systems with probability 1/2; p = (1 + #{|Δ_i| > |Δ|}) / (n + 1).
// Scores are computed in float64. sacreBLEU sums bootstrap statistics in float32, which is exact for counts;
// under NumPy 2 its per-resample arithmetic then runs in float32 (differences near 1e-7 relative, below the
// printed precision).
import { sumStatistics, type CorpusMetric, type ReferenceStreams } from './corpus_metric.ts';
import { NumpyGenerator } from './numpy_random.ts';

export const SACREBLEU_DEFAULT_SEED = 12345;

export interface MeanAndCi {
  /** Mean of the resampled scores. */
  mean: number;
  /** Half-width of the 95% interval. */
  ci: number;
}

/** sacreBLEU's estimate_ci over resampled scores. */
export function estimateCi(scores: ArrayLike<number>): MeanAndCi {
  const sorted = Float64Array.from(scores as ArrayLike<number>).sort();
  const n = sorted.length;
  const lowerIdx = Math.floor(n / 40);
  const upperIdx = n - lowerIdx - 1;
  let mean = 0;
  for (const s of sorted) mean += s;
  mean /= n;
  return { mean, ci: 0.5 * (sorted[upperIdx] - sorted[lowerIdx]) };
}

/** Resampled segment indices: `default_rng(seed).choice(N, size=(nSamples, N))`, one row per resample. */
export function bootstrapIndices(numSegments: number, nSamples: number, seed = SACREBLEU_DEFAULT_SEED): Int32Array[] {
  const rng = new NumpyGenerator(seed);
  const rows: Int32Array[] = [];
  for (let i = 0; i < nSamples; i++) rows.push(rng.integers(numSegments, numSegments));
  return rows;
}

function resampledScores(metric: StatisticsScorer, stats: readonly (readonly number[])[], rows: readonly Int32Array[]): Float64Array {
  const out = new Float64Array(rows.length);
  rows.forEach((idx, i) => (out[i] = metric.scoreFromStatistics(sumStatistics(stats, idx))));
  return out;
}

export interface ConfidenceResult extends MeanAndCi {
  score: number;
  nBootstrap: number;
  seed: number;
}

/** `sacrebleu --confidence`: the corpus score with a bootstrap mean and 95% CI half-width. */
export function bootstrapConfidence(metric: CorpusMetric, hypotheses: readonly string[], references: ReferenceStreams, opts: { nBootstrap?: number; seed?: number } = {}): ConfidenceResult {
  const nBootstrap = opts.nBootstrap ?? 1000;
  const seed = opts.seed ?? SACREBLEU_DEFAULT_SEED;
  const stats = metric.segmentStatistics(hypotheses, references);
  if (stats.length === 0) throw new RangeError('bootstrap needs at least one segment');
  const score = metric.scoreFromStatistics(sumStatistics(stats));
  return { score, ...estimateCi(resampledScores(metric, stats, bootstrapIndices(stats.length, nBootstrap, seed))), nBootstrap, seed };
}

export interface PairedResult {
  test: 'bs' | 'ar';
  nSamples: number;
  seed: number;
  baseline: { score: number; mean?: number; ci?: number };
  system: { score: number; mean?: number; ci?: number };
  /** |system - baseline| on the full corpus. */
  delta: number;
  pValue: number;
}

/** Anything that turns summed per-segment statistics into a score (a CorpusMetric, or a mean of per-sample scores). */
export type StatisticsScorer = Pick<CorpusMetric, 'scoreFromStatistics'>;

/** Scores the mean of per-sample values through the statistics-based tests: statistics [value, 1]. */
export const MEAN_SCORER: StatisticsScorer = { scoreFromStatistics: (s) => (s[1] > 0 ? s[0] / s[1] : 0) };

export interface PairedTestOptions {
  nSamples?: number;
  seed?: number;
  /**
   * 'exclude' (sacreBLEU, after MultEval): a resampled difference counts against H0 only when strictly larger than
   * the observed one. 'include': also when equal (within 1e-12 relative), the usual permutation-test convention;
   * with discrete per-sample values (0/1 accuracy, win/tie/loss) many resamples tie with the observed difference,
   * and leaving them out would make p far too small.
   */
  ties?: 'exclude' | 'include';
}

function exceedsTest(delta: number, ties: 'exclude' | 'include' = 'exclude'): (x: number) => boolean {
  if (ties === 'exclude') return (x) => x > delta;
  const slack = 1e-12 * Math.max(1, Math.abs(delta));
  return (x) => x >= delta - slack;
}

/** Per-sample values as statistics rows for MEAN_SCORER. */
export function meanStatistics(values: readonly number[]): number[][] {
  return values.map((v) => [v, 1]);
}

/** `sacrebleu --paired-bs`: paired bootstrap resampling (default 1000 resamples). */
export function pairedBootstrap(
  metric: CorpusMetric,
  baseline: readonly string[],
  system: readonly string[],
  references: ReferenceStreams,
  opts: { nSamples?: number; seed?: number } = {},
): PairedResult {
  if (baseline.length !== system.length) throw new RangeError(`baseline has ${baseline.length} segments, system ${system.length}`);
  return pairedBootstrapFromStatistics(metric, metric.segmentStatistics(baseline, references), metric.segmentStatistics(system, references), opts);
}

/** Paired bootstrap on precomputed per-segment statistics (what pairedBootstrap does after computing them). */
export function pairedBootstrapFromStatistics(
  metric: StatisticsScorer,
  blStats: readonly (readonly number[])[],
  sysStats: readonly (readonly number[])[],
  opts: PairedTestOptions = {},
): PairedResult {
  const nSamples = opts.nSamples ?? 1000;
  const seed = opts.seed ?? SACREBLEU_DEFAULT_SEED;
  if (blStats.length !== sysStats.length) throw new RangeError(`baseline has ${blStats.length} segments, system ${sysStats.length}`);
  if (blStats.length === 0) throw new RangeError('paired bootstrap needs at least one segment');
  const blScore = metric.scoreFromStatistics(sumStatistics(blStats));
  const sysScore = metric.scoreFromStatistics(sumStatistics(sysStats));
  // sacreBLEU draws the baseline's CI resamples and the paired resamples from two fresh generators with the
  // same seed, so both use these same rows.
  const rows = bootstrapIndices(blStats.length, nSamples, seed);
  const blScores = resampledScores(metric, blStats, rows);
  const sysScores = resampledScores(metric, sysStats, rows);
  const delta = Math.abs(blScore - sysScore);
  const diffs = new Float64Array(nSamples);
  let meanDiff = 0;
  for (let i = 0; i < nSamples; i++) {
    diffs[i] = Math.abs(sysScores[i] - blScores[i]);
    meanDiff += diffs[i];
  }
  meanDiff /= nSamples;
  let c = 0;
  const exceeds = exceedsTest(delta, opts.ties);
  for (let i = 0; i < nSamples; i++) if (exceeds(diffs[i] - meanDiff)) c++;
  return {
    test: 'bs',
    nSamples,
    seed,
    baseline: { score: blScore, ...estimateCi(blScores) },
    system: { score: sysScore, ...estimateCi(sysScores) },
    delta,
    pValue: (c + 1) / (nSamples + 1),
  };
}

/** `sacrebleu --paired-ar`: approximate randomisation (default 10000 trials). */
export function pairedApproximateRandomization(
  metric: CorpusMetric,
  baseline: readonly string[],
  system: readonly string[],
  references: ReferenceStreams,
  opts: { nSamples?: number; seed?: number } = {},
): PairedResult {
  if (baseline.length !== system.length) throw new RangeError(`baseline has ${baseline.length} segments, system ${system.length}`);
  return pairedApproximateRandomizationFromStatistics(metric, metric.segmentStatistics(baseline, references), metric.segmentStatistics(system, references), opts);
}

/** Approximate randomisation on precomputed per-segment statistics. */
export function pairedApproximateRandomizationFromStatistics(
  metric: StatisticsScorer,
  blStats: readonly (readonly number[])[],
  sysStats: readonly (readonly number[])[],
  opts: PairedTestOptions = {},
): PairedResult {
  const nSamples = opts.nSamples ?? 10000;
  const seed = opts.seed ?? SACREBLEU_DEFAULT_SEED;
  if (blStats.length !== sysStats.length) throw new RangeError(`baseline has ${blStats.length} segments, system ${sysStats.length}`);
  const N = blStats.length;
  if (N === 0) throw new RangeError('approximate randomisation needs at least one segment');
  const width = blStats[0].length;
  const blScore = metric.scoreFromStatistics(sumStatistics(blStats));
  const sysScore = metric.scoreFromStatistics(sumStatistics(sysStats));
  const delta = Math.abs(blScore - sysScore);
  const exceeds = exceedsTest(delta, opts.ties);
  const rng = new NumpyGenerator(seed);
  const sel = rng.booleans(nSamples * N); // row-major (nSamples, N): true keeps the baseline's segment in A
  let c = 0;
  const a = new Array<number>(width), b = new Array<number>(width);
  for (let t = 0; t < nSamples; t++) {
    a.fill(0);
    b.fill(0);
    for (let i = 0; i < N; i++) {
      const [x, y] = sel[t * N + i] ? [blStats[i], sysStats[i]] : [sysStats[i], blStats[i]];
      for (let k = 0; k < width; k++) {
        a[k] += x[k];
        b[k] += y[k];
      }
    }
    if (exceeds(Math.abs(metric.scoreFromStatistics(a) - metric.scoreFromStatistics(b)))) c++;
  }
  return { test: 'ar', nSamples, seed, baseline: { score: blScore }, system: { score: sysScore }, delta, pValue: (c + 1) / (nSamples + 1) };
}
