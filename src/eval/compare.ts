// Comparing two evaluation runs (`alignkit eval compare RUN1 RUN2`): the JSON reports alignkit eval commands write
// with --output (text metrics, pass@k, win rate, bench, ...). Every numeric result present in both runs gets a
// delta; where both runs carry per-sample data for it, also a paired significance test:
//   - corpus metrics (BLEU / chrF / TER): each run stores its per-segment sufficient statistics and the metric's
//     options (`segment_statistics`, `metric_config`); the tests are sacreBLEU's paired bootstrap and approximate
//     randomisation on those statistics (significance.ts), so the p-value equals `alignkit eval significance`'s;
//   - mean metrics (ROUGE F, METEOR, exact match / F1, accuracy, pass@k per problem, win rate, bench acc per
//     document): the same two tests on the mean of the per-sample values (`per_sample`, bench `samples`).
// Samples are paired by position, so both runs must have scored the same inputs in the same order; a different
// sample count is reported instead of a test.
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Bleu, type BleuSmoothMethod } from './bleu.ts';
import { Chrf } from './chrf.ts';
import { Ter } from './ter.ts';
import type { BleuTokenizerName } from './tokenizers.ts';
import type { CorpusMetric } from './corpus_metric.ts';
import { EvalInputError } from './io.ts';
import { MEAN_SCORER, meanStatistics, pairedApproximateRandomizationFromStatistics, pairedBootstrapFromStatistics, type StatisticsScorer } from './significance.ts';

/** The options that define a corpus metric, as `eval text` stores them in `metric_config`. */
export interface CorpusMetricConfig {
  metric: 'bleu' | 'chrf' | 'chrf++' | 'ter';
  tokenize?: BleuTokenizerName;
  lowercase?: boolean;
  smoothMethod?: BleuSmoothMethod;
  smoothValue?: number | null;
  maxNgramOrder?: number;
  effectiveOrder?: boolean;
  charOrder?: number;
  wordOrder?: number;
  beta?: number;
  whitespace?: boolean;
  epsSmoothing?: boolean;
  normalized?: boolean;
  /** false: TER --no-punct. */
  punct?: boolean;
  asianSupport?: boolean;
  caseSensitive?: boolean;
}

export function corpusMetricFromConfig(c: CorpusMetricConfig): CorpusMetric {
  switch (c.metric) {
    case 'bleu':
      return new Bleu({ tokenize: c.tokenize ?? '13a', lowercase: c.lowercase, smoothMethod: c.smoothMethod ?? 'exp', smoothValue: c.smoothValue ?? null, maxNgramOrder: c.maxNgramOrder ?? 4, effectiveOrder: c.effectiveOrder });
    case 'chrf':
    case 'chrf++':
      return new Chrf({ charOrder: c.charOrder ?? 6, wordOrder: c.wordOrder ?? (c.metric === 'chrf++' ? 2 : 0), beta: c.beta ?? 2, lowercase: c.lowercase, whitespace: c.whitespace, epsSmoothing: c.epsSmoothing });
    case 'ter':
      return new Ter({ normalized: c.normalized, noPunct: c.punct === false, asianSupport: c.asianSupport, caseSensitive: c.caseSensitive });
    default:
      throw new RangeError(`'${String((c as { metric: unknown }).metric)}' is not a corpus metric`);
  }
}

export interface RunFile {
  file: string;
  json: Record<string, unknown>;
}

/** Per-sample data of one result: statistics rows and the scorer that turns their sum into the score. */
export interface SampleSeries {
  scorer: StatisticsScorer;
  stats: number[][];
  kind: 'corpus' | 'mean';
  /** For corpus metrics: a description to check both runs used the same metric. */
  signature?: string;
}

export interface MetricComparison {
  file: string;
  metric: string;
  run1: number;
  run2: number;
  delta: number;
  /** Samples paired, when a test ran. */
  n?: number;
  test?: 'corpus' | 'mean';
  pBootstrap?: number;
  pRandomization?: number;
  /** Why no test ran although per-sample data exists. */
  note?: string;
}

export interface ComparisonReport {
  run1: string;
  run2: string;
  comparisons: MetricComparison[];
  /** Files present in only one run (directories). */
  unmatched: string[];
  nSamples: { bootstrap: number; randomization: number };
  seed: number;
}

/** Keys that describe a run rather than measure it; they are not compared. */
const NOT_METRICS = new Set([
  'seed', 'n_bootstrap', 'n_samples', 'segments', 'seconds', 'documents', 'documents_per_second', 'limits', 'isolation', 'interpreters', 'config',
  'samples', 'per_sample', 'segment_statistics', 'metric_config', 'sentence_scores', 'per_problem', 'confusion_matrix', 'labels', 'per_class',
  'status_counts', 'counts', 'totals', 'sys_len', 'ref_len', 'alpha', 'beta', 'gamma', 'version', 'num_fewshot', 'n', 'n_problems', 'confidence',
  'pass_at_k', 'skipped_k', 'wordnet', 'bootstrap', 'groups_meta', 'stderr', 'rouge_types', 'support', 'ci_low', 'ci_high', 'layer', 'baseline',
]);

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Numeric results of a report, by dotted name. Bench reports give `<task> <metric>`. */
export function scalarMetrics(json: Record<string, unknown>): Map<string, number> {
  const out = new Map<string, number>();
  if (isRecord(json.results)) {
    for (const section of ['results', 'groups'] as const) {
      const tasks = json[section];
      if (!isRecord(tasks)) continue;
      for (const [task, t] of Object.entries(tasks)) {
        if (!isRecord(t) || !isRecord(t.metrics)) continue;
        for (const [m, v] of Object.entries(t.metrics)) if (isRecord(v) && typeof v.value === 'number') out.set(`${task} ${m}`, v.value);
      }
    }
    return out;
  }
  const walk = (obj: Record<string, unknown>, prefix: string, depth: number) => {
    for (const [k, v] of Object.entries(obj)) {
      if (NOT_METRICS.has(k)) continue;
      const name = prefix ? `${prefix}.${k}` : k;
      if (typeof v === 'number' && Number.isFinite(v)) out.set(name, v);
      else if (isRecord(v) && depth < 3) walk(v, name, depth + 1);
    }
  };
  walk(json, '', 0);
  return out;
}

function numberArray(v: unknown): number[] | null {
  if (!Array.isArray(v)) return null;
  const out: number[] = [];
  for (const x of v) {
    if (typeof x === 'number' && Number.isFinite(x)) out.push(x);
    else if (typeof x === 'boolean') out.push(x ? 1 : 0);
    else return null;
  }
  return out;
}

/** Per-sample series of a report, by the same names scalarMetrics uses. */
export function sampleSeries(run: RunFile): Map<string, SampleSeries> {
  const out = new Map<string, SampleSeries>();
  const j = run.json;
  if (Array.isArray(j.segment_statistics) && isRecord(j.metric_config)) {
    const stats = j.segment_statistics.map((row, i) => {
      const r = numberArray(row);
      if (r === null) throw new EvalInputError(run.file, null, `segment_statistics[${i}] must be an array of numbers`);
      return r;
    });
    let metric: CorpusMetric;
    try {
      metric = corpusMetricFromConfig(j.metric_config as unknown as CorpusMetricConfig);
    } catch (e) {
      throw new EvalInputError(run.file, null, `metric_config: ${(e as Error).message}`);
    }
    out.set('score', { scorer: metric, stats, kind: 'corpus', signature: typeof j.signature === 'string' ? j.signature : undefined });
  }
  if (isRecord(j.per_sample)) {
    for (const [k, v] of Object.entries(j.per_sample)) {
      const values = numberArray(v);
      if (values === null) throw new EvalInputError(run.file, null, `per_sample.${k} must be an array of numbers`);
      out.set(k, { scorer: MEAN_SCORER, stats: meanStatistics(values), kind: 'mean' });
    }
  }
  if (isRecord(j.results)) {
    for (const [task, t] of Object.entries(j.results)) {
      if (!isRecord(t) || !Array.isArray(t.samples)) continue;
      const byMetric = new Map<string, number[]>();
      t.samples.forEach((s) => {
        const result = isRecord(s) ? s.result : undefined;
        if (!isRecord(result)) return;
        for (const [m, v] of Object.entries(result)) {
          if (typeof v !== 'number' && typeof v !== 'boolean') continue;
          if (!byMetric.has(m)) byMetric.set(m, []);
          byMetric.get(m)!.push(typeof v === 'boolean' ? (v ? 1 : 0) : v);
        }
      });
      for (const [m, values] of byMetric) if (values.length === t.samples.length) out.set(`${task} ${m}`, { scorer: MEAN_SCORER, stats: meanStatistics(values), kind: 'mean' });
    }
  }
  return out;
}

export function readRunFile(file: string): RunFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new EvalInputError(file, null, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new EvalInputError(file, null, `invalid JSON (${(e as Error).message})`);
  }
  if (!isRecord(json)) throw new EvalInputError(file, null, 'expected a JSON object (a report written by alignkit eval ... --output)');
  return { file, json };
}

/** A run: one JSON report, or a directory of them (paired by file name). */
export function readRun(path: string): Map<string, RunFile> {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new EvalInputError(path, null, 'not found');
  }
  const runs = new Map<string, RunFile>();
  if (!isDir) {
    runs.set(basename(path), readRunFile(path));
    return runs;
  }
  for (const name of readdirSync(path).filter((n) => n.endsWith('.json')).sort()) runs.set(name, readRunFile(join(path, name)));
  if (runs.size === 0) throw new EvalInputError(path, null, 'no .json reports in this directory');
  return runs;
}

export interface CompareOptions {
  nBootstrap?: number;
  nRandomization?: number;
  seed?: number;
}

/** Deltas and paired tests between two runs (RUN2 - RUN1). */
export function compareRuns(path1: string, path2: string, o: CompareOptions = {}): ComparisonReport {
  const a = readRun(path1), b = readRun(path2);
  const nBootstrap = o.nBootstrap ?? 1000;
  const nRandomization = o.nRandomization ?? 10000;
  const seed = o.seed ?? 12345;
  const pairs: [string, RunFile, RunFile][] = [];
  const unmatched: string[] = [];
  if (a.size === 1 && b.size === 1) pairs.push([[...a.keys()][0], [...a.values()][0], [...b.values()][0]]);
  else {
    for (const [name, r] of a) (b.has(name) ? pairs.push([name, r, b.get(name)!]) : unmatched.push(`${name} (only in ${path1})`));
    for (const name of b.keys()) if (!a.has(name)) unmatched.push(`${name} (only in ${path2})`);
  }
  const comparisons: MetricComparison[] = [];
  for (const [name, r1, r2] of pairs) {
    const s1 = scalarMetrics(r1.json), s2 = scalarMetrics(r2.json);
    const series1 = sampleSeries(r1), series2 = sampleSeries(r2);
    for (const [metric, v1] of s1) {
      const v2 = s2.get(metric);
      if (v2 === undefined) continue;
      const c: MetricComparison = { file: name, metric, run1: v1, run2: v2, delta: v2 - v1 };
      const x = series1.get(metric), y = series2.get(metric);
      if (x && y) {
        if (x.stats.length !== y.stats.length) c.note = `different sample counts (${x.stats.length} vs ${y.stats.length}): not paired`;
        else if (x.kind !== y.kind) c.note = 'different kinds of per-sample data';
        else if (x.signature !== undefined && y.signature !== undefined && x.signature !== y.signature) c.note = `different metric settings (${x.signature} vs ${y.signature})`;
        else if (x.stats.every((row, i) => row.every((v, k) => v === y.stats[i][k]))) {
          // sacreBLEU's tests count resampled differences strictly above the observed one and add one, which gives
          // identical runs the smallest p-value; identical data is no evidence of a difference.
          Object.assign(c, { n: x.stats.length, test: x.kind, pBootstrap: 1, pRandomization: 1, note: 'identical per-sample data' });
        } else if (x.stats.length > 0) {
          c.n = x.stats.length;
          c.test = x.kind;
          // Corpus metrics: sacreBLEU's tests exactly. Means of per-sample values: resamples equal to the observed
          // difference count too (discrete scores tie often; see PairedTestOptions.ties).
          const ties = x.kind === 'corpus' ? 'exclude' : 'include';
          c.pBootstrap = pairedBootstrapFromStatistics(x.scorer, x.stats, y.stats, { nSamples: nBootstrap, seed, ties }).pValue;
          c.pRandomization = pairedApproximateRandomizationFromStatistics(x.scorer, x.stats, y.stats, { nSamples: nRandomization, seed, ties }).pValue;
        }
      }
      comparisons.push(c);
    }
  }
  if (comparisons.length === 0 && pairs.length > 0) throw new EvalInputError(`${path1}, ${path2}`, null, 'no numeric result appears in both runs');
  return { run1: path1, run2: path2, comparisons, unmatched, nSamples: { bootstrap: nBootstrap, randomization: nRandomization }, seed };
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Table rows shared by the Markdown and HTML renderings. */
export function comparisonRows(r: ComparisonReport): { headers: string[]; rows: string[][] } {
  const multiFile = new Set(r.comparisons.map((c) => c.file)).size > 1;
  const f = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(4));
  const p = (x: number | undefined) => (x === undefined ? '-' : `${x.toFixed(4)}${x <= 0.05 ? '*' : ''}`);
  const headers = [...(multiFile ? ['file'] : []), 'metric', 'run 1', 'run 2', 'Δ (2 − 1)', 'n', 'p (paired bootstrap)', 'p (approx. randomization)'];
  const rows = r.comparisons.map((c) => [...(multiFile ? [c.file] : []), c.metric, f(c.run1), f(c.run2), `${c.delta > 0 ? '+' : ''}${f(c.delta)}`, c.n === undefined ? (c.note ?? '-') : String(c.n), p(c.pBootstrap), p(c.pRandomization)]);
  return { headers, rows };
}

export function comparisonHtml(r: ComparisonReport): string {
  const { headers, rows } = comparisonRows(r);
  const th = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows.map((row) => `<tr>${row.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>alignkit eval compare</title>\n<style>table{border-collapse:collapse;font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}</style></head>\n<body>\n<p>run 1: ${escapeHtml(r.run1)}<br>run 2: ${escapeHtml(r.run2)}<br>* p ≤ 0.05; paired bootstrap ${r.nSamples.bootstrap} resamples, approximate randomization ${r.nSamples.randomization} trials, seed ${r.seed}</p>\n<table>\n<tr>${th}</tr>\n${body}\n</table>\n</body></html>\n`;
}
