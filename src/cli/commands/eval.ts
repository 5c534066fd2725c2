// `alignkit eval ...`: text metrics (BLEU, chrF, chrF++, TER, ROUGE, METEOR, exact match, F1, accuracy),
// inter-rater agreement, win rates, paired significance tests and group fairness. Each prints a Markdown table,
// or one JSON object with --json; --output FILE also writes FILE.json + FILE.md atomically. Input problems are
// reported as one line, `alignkit eval <command>: <file>:<line>: <problem>`, with exit code 1.
import { registerEvalBench } from './eval_bench.ts';
import { registerEvalPassAtK } from './eval_passatk.ts';
import { Command, InvalidArgumentError, Option } from 'commander';
import { Bleu, BLEU_SMOOTH_METHODS, formatBleu, type BleuSmoothMethod } from '../../eval/bleu.ts';
import { Ter } from '../../eval/ter.ts';
import { BLEU_TOKENIZERS, type BleuTokenizerName } from '../../eval/tokenizers.ts';
import { RougeScorer, bootstrapAggregate, type RougeScores } from '../../eval/rouge.ts';
import { meteorScore } from '../../eval/meteor.ts';
import { findWordNet, loadWordNet } from '../../eval/wordnet.ts';
import { squadScores, type SquadVersion } from '../../eval/squad.ts';
import { classificationReport, confusionMatrixSvg } from '../../eval/classification.ts';
import { bootstrapConfidence, pairedApproximateRandomization, pairedBootstrap } from '../../eval/significance.ts';
import { cohenKappa, fleissKappa, fleissTable, krippendorffAlpha, winRate, type AlphaLevel, type KappaWeights, type TieHandling } from '../../eval/stats.ts';
import { fairnessReport, type FairnessRow } from '../../eval/fairness.ts';
import { checkNonEmpty, checkSameLength, EvalInputError, readJsonl, readRatings, readSegments, stringField, type Rating, type Segments } from '../../eval/io.ts';
import { fmt, markdownTable, writeReport, writeTextAtomically } from '../../eval/report.ts';
import type { CorpusMetric, ReferenceStreams } from '../../eval/corpus_metric.ts';
import { bertScore } from '../../eval/bertscore.ts';
import { readRescaleBaseline } from '../../eval/bertscore_rescale.ts';
import { BertEncoder } from '../../models/bert.ts';
import { loadTokenizer } from '../../tokenizer/index.ts';
import { comparisonHtml, comparisonRows, compareRuns, corpusMetricFromConfig, type CorpusMetricConfig } from '../../eval/compare.ts';

const TEXT_METRICS = ['bleu', 'chrf', 'chrf++', 'ter', 'rouge', 'meteor', 'exact_match', 'f1', 'accuracy', 'bertscore'] as const;
type TextMetric = (typeof TEXT_METRICS)[number];

function intArg(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}.`);
    return n;
  };
}

function numArg(name: string, min: number, max = Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max}].`);
    return n;
  };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Output of one command: the JSON object and the Markdown report. */
interface Result {
  json: Record<string, unknown>;
  markdown: string;
  /** Remarks for the user (stderr), e.g. a missing WordNet database. */
  notes?: string[];
  /**
   * Per-sample data for `alignkit eval compare` (per_sample, segment_statistics, metric_config), in the --json
   * output and the --output report alike.
   */
  perSample?: Record<string, unknown>;
}

/** Runs an action, printing problems as one line `alignkit eval <name>: <message>` with exit code 1. */
function action<T>(name: string, fn: (opts: T) => Result) {
  return (opts: T & { json?: boolean; output?: string }) => {
    try {
      const r = fn(opts);
      for (const n of r.notes ?? []) process.stderr.write(`alignkit eval ${name}: note: ${n}\n`);
      const withSamples = { ...r.json, ...(r.perSample ?? {}) };
      if (opts.output) writeReport(opts.output, withSamples, r.markdown);
      if (opts.json) process.stdout.write(JSON.stringify(withSamples) + '\n');
      else process.stdout.write(r.markdown);
    } catch (e) {
      const err = e as Error;
      process.stderr.write(`alignkit eval ${name}: ${err.message.replace(/[\r\n]+/g, ' ')}\n`);
      if (process.env.ALIGNKIT_DEBUG) process.stderr.write(`${err.stack}\n`);
      process.exitCode = 1;
    }
  };
}

// --- eval text ------------------------------------------------------------------------------------------------

interface TextOpts {
  metric: TextMetric;
  predictions: string;
  references: string[];
  field?: string;
  predictionField?: string;
  referenceField?: string;
  allowEmptyReferences?: boolean;
  tokenize: BleuTokenizerName;
  lowercase?: boolean;
  smoothMethod?: BleuSmoothMethod;
  smoothValue?: number;
  maxNgramOrder: number;
  effectiveOrder?: boolean;
  charOrder: number;
  wordOrder?: number;
  beta: number;
  whitespace?: boolean;
  epsSmoothing?: boolean;
  normalized?: boolean;
  /** false with --no-punct (commander negatable option). */
  punct?: boolean;
  asianSupport?: boolean;
  caseSensitive?: boolean;
  rougeTypes: string;
  stemmer?: boolean;
  wordnet?: string;
  requireWordnet?: boolean;
  squadVersion: SquadVersion;
  confidence?: boolean;
  nBootstrap: number;
  seed: number;
  sentenceScores?: boolean;
  confusionSvg?: string;
  model?: string;
  tokenizer?: string;
  layer?: number;
  idf?: boolean;
  baseline?: string;
  batchSize: number;
}

/** Loads predictions and references, checks lengths, returns reference streams (null where a segment has fewer). */
function loadText(o: TextOpts): { hyps: string[]; refSegments: string[][]; streams: ReferenceStreams; numRefs: number } {
  if (o.references.length === 0) throw new EvalInputError('--references', null, 'at least one reference file is needed');
  const pred = readSegments(o.predictions, o.predictionField ?? o.field);
  if (pred.items.length === 0) throw new EvalInputError(pred.file, null, 'no segments (the file is empty)');
  pred.items.forEach((items, i) => {
    if (items.length !== 1) throw new EvalInputError(pred.file, pred.lines[i], `prediction field '${o.predictionField ?? o.field}' must be a single string`);
  });
  const refFiles: Segments[] = o.references.map((f) => readSegments(f, o.referenceField ?? o.field));
  for (const r of refFiles) {
    checkSameLength(pred, r);
    if (!o.allowEmptyReferences) checkNonEmpty(r, 'reference');
  }
  const hyps = pred.items.map((x) => x[0]);
  const refSegments = hyps.map((_, i) => refFiles.flatMap((r) => r.items[i]));
  const numRefs = Math.max(...refSegments.map((r) => r.length));
  const streams: (string | null)[][] = Array.from({ length: numRefs }, (_, k) => refSegments.map((r) => r[k] ?? null));
  return { hyps, refSegments, streams, numRefs };
}

/** The options that define the corpus metric (stored in reports so `eval compare` can rebuild it). */
function corpusMetricConfig(o: TextOpts): CorpusMetricConfig {
  if (o.metric !== 'bleu' && o.metric !== 'chrf' && o.metric !== 'chrf++' && o.metric !== 'ter') throw new EvalInputError('--metric', null, `'${o.metric}' is not a corpus metric`);
  const { tokenize, lowercase, smoothMethod, smoothValue, maxNgramOrder, effectiveOrder, charOrder, wordOrder, beta, whitespace, epsSmoothing, normalized, punct, asianSupport, caseSensitive } = o;
  return { metric: o.metric, tokenize, lowercase, smoothMethod, smoothValue, maxNgramOrder, effectiveOrder, charOrder, wordOrder, beta, whitespace, epsSmoothing, normalized, punct, asianSupport, caseSensitive };
}

function corpusMetricFor(o: TextOpts): CorpusMetric {
  return corpusMetricFromConfig(corpusMetricConfig(o));
}

function runSacreMetric(o: TextOpts): Result {
  const { hyps, streams, refSegments } = loadText(o);
  const metric = corpusMetricFor(o);
  const stats = metric.segmentStatistics(hyps, streams);
  const summed = stats.reduce((acc, row) => acc.map((v, k) => v + row[k]), new Array<number>(stats[0]?.length ?? 0).fill(0));
  const nrefsSet = new Set(refSegments.map((r) => r.length));
  const numRefs: number | 'var' = nrefsSet.size === 1 ? [...nrefsSet][0] : 'var';
  const score = hyps.length === 0 ? 0 : metric.scoreFromStatistics(summed);
  const json: Record<string, unknown> = { metric: o.metric, name: metric.name, score, signature: metric.signature(numRefs), segments: hyps.length };
  let line = `${metric.name} = ${score.toFixed(2)}`;
  if (metric instanceof Bleu && hyps.length > 0) {
    const d = metric.scoreDetails(summed);
    Object.assign(json, { counts: d.counts, totals: d.totals, precisions: d.precisions, bp: d.bp, sys_len: d.sysLen, ref_len: d.refLen, ratio: d.ratio });
    line = `BLEU = ${formatBleu(d)}`;
  }
  if (metric instanceof Ter) Object.assign(json, { num_edits: summed[0], ref_length: summed[1] });
  const rows: (string | number)[][] = [[metric.name, score.toFixed(2), String(json.signature)]];
  if (o.confidence) {
    const c = bootstrapConfidence(metric, hyps, streams, { nBootstrap: o.nBootstrap, seed: o.seed });
    json.confidence = { mean: c.mean, ci: c.ci, n_bootstrap: c.nBootstrap, seed: c.seed };
    json.signature = metric.signature(numRefs, { bs: c.nBootstrap, seed: c.seed });
    rows[0] = [metric.name, `${score.toFixed(2)} (μ = ${c.mean.toFixed(2)} ± ${c.ci.toFixed(2)})`, String(json.signature)];
  }
  if (o.sentenceScores) json.sentence_scores = stats.map((s) => metric.scoreFromStatistics(s));
  const md = `${markdownTable(['metric', 'score', 'signature'], rows)}\n${line}\n`;
  return { json, markdown: md, perSample: { segment_statistics: stats, metric_config: corpusMetricConfig(o) } };
}

function runRouge(o: TextOpts): Result {
  const { hyps, refSegments } = loadText(o);
  const types = o.rougeTypes.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const scorer = new RougeScorer(types, { useStemmer: o.stemmer });
  const per: RougeScores[] = hyps.map((h, i) => scorer.scoreMulti(refSegments[i], h));
  const mean: RougeScores = {};
  for (const t of types) {
    const avg = (k: 'precision' | 'recall' | 'fmeasure') => (per.length ? per.reduce((a, s) => a + s[t][k], 0) / per.length : 0);
    mean[t] = { precision: avg('precision'), recall: avg('recall'), fmeasure: avg('fmeasure') };
  }
  const json: Record<string, unknown> = { metric: 'rouge', rouge_types: types, use_stemmer: !!o.stemmer, segments: hyps.length, scores: mean };
  const header = ['type', 'precision', 'recall', 'fmeasure'];
  let rows: (string | number)[][] = types.map((t) => [t, mean[t].precision, mean[t].recall, mean[t].fmeasure]);
  if (o.confidence && per.length > 0) {
    const agg = bootstrapAggregate(per, { nSamples: o.nBootstrap, seed: o.seed });
    json.bootstrap = { ...agg, n_samples: o.nBootstrap, seed: o.seed, confidence_interval: 0.95 };
    header.push('F 95% CI');
    rows = rows.map((r, i) => [...r, `${fmt(agg[types[i]].low.fmeasure)}–${fmt(agg[types[i]].high.fmeasure)}`]);
  }
  if (o.sentenceScores) json.sentence_scores = per;
  const perSample: Record<string, number[]> = {};
  for (const t of types) for (const k of ['precision', 'recall', 'fmeasure'] as const) perSample[`scores.${t}.${k}`] = per.map((s) => s[t][k]);
  return { json, markdown: markdownTable(header, rows), perSample: { per_sample: perSample } };
}

function runMeteor(o: TextOpts): Result {
  const { hyps, refSegments } = loadText(o);
  const wordnet = loadWordNet(o.wordnet);
  if (o.wordnet && findWordNet(o.wordnet) === null) throw new EvalInputError(o.wordnet, null, 'not a WordNet database folder (no index.noun / data.noun)');
  const notes: string[] = [];
  if (wordnet === null) {
    const msg = 'no WordNet database found (install the Debian package wordnet-base, or pass --wordnet DIR / set ALIGNKIT_WORDNET): the synonym stage is UNAVAILABLE, scores use exact and stem matches only and are lower than NLTK METEOR';
    if (o.requireWordnet) throw new EvalInputError('--wordnet', null, msg);
    notes.push(msg);
  }
  const tok = (s: string) => s.split(/\s+/).filter((t) => t !== '');
  const scores = hyps.map((h, i) => meteorScore(refSegments[i].map(tok), tok(h), { wordnet }).score);
  const mean = scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : 0;
  const stage = wordnet ? 'wordnet' : 'unavailable';
  const json: Record<string, unknown> = { metric: 'meteor', score: mean, synonym_stage: stage, wordnet: wordnet ? { dir: wordnet.dir, version: wordnet.version } : null, segments: hyps.length, alpha: 0.9, beta: 3, gamma: 0.5 };
  if (o.sentenceScores) json.sentence_scores = scores;
  return { json, markdown: markdownTable(['metric', 'score', 'synonym stage'], [['METEOR', mean, stage]]), notes, perSample: { per_sample: { score: scores } } };
}

function runSquad(o: TextOpts): Result {
  const { hyps, refSegments } = loadText(o);
  const s = squadScores(hyps, refSegments, o.squadVersion);
  const json: Record<string, unknown> = { metric: o.metric, exact_match: s.exactMatch, f1: s.f1, squad_version: o.squadVersion, segments: hyps.length };
  if (o.sentenceScores) json.sentence_scores = s.perExample;
  const perSample = { exact_match: s.perExample.map((e) => 100 * e.exactMatch), f1: s.perExample.map((e) => 100 * e.f1) };
  return { json, markdown: markdownTable(['metric', 'value'], [['exact_match', s.exactMatch], ['f1', s.f1]]), perSample: { per_sample: perSample } };
}

function runAccuracy(o: TextOpts): Result {
  const { hyps, refSegments } = loadText(o);
  if (refSegments.some((r) => r.length !== 1)) throw new EvalInputError(o.references.join(','), null, 'accuracy takes exactly one reference label per example');
  const r = classificationReport(refSegments.map((x) => x[0].trim()), hyps.map((h) => h.trim()));
  const json: Record<string, unknown> = {
    metric: 'accuracy',
    accuracy: r.accuracy,
    n: r.n,
    micro: r.micro,
    macro: r.macro,
    weighted: r.weighted,
    per_class: r.perClass,
    labels: r.labels,
    confusion_matrix: r.confusion,
  };
  if (o.confusionSvg) writeTextAtomically(o.confusionSvg, confusionMatrixSvg(r.labels, r.confusion));
  const correct = hyps.map((h, i) => (h.trim() === refSegments[i][0].trim() ? 1 : 0));
  const md = [
    markdownTable(['metric', 'precision', 'recall', 'f1'], [['micro', r.micro.precision, r.micro.recall, r.micro.f1], ['macro', r.macro.precision, r.macro.recall, r.macro.f1], ['weighted', r.weighted.precision, r.weighted.recall, r.weighted.f1]]),
    `\naccuracy = ${fmt(r.accuracy)} (n = ${r.n})\n\n`,
    markdownTable(['label', 'precision', 'recall', 'f1', 'support'], r.perClass.map((c) => [String(c.label), c.precision, c.recall, c.f1, c.support])),
    '\nConfusion matrix (rows: true, columns: predicted)\n\n',
    markdownTable(['true \\ predicted', ...r.labels.map(String)], r.confusion.map((row, i) => [String(r.labels[i]), ...row])),
  ].join('');
  return { json, markdown: md, perSample: { per_sample: { accuracy: correct } } };
}

function runBertScore(o: TextOpts): Result {
  if (!o.model) throw new EvalInputError('--model', null, 'BERTScore needs --model DIR (a BERT / RoBERTa folder: config.json, model.safetensors, tokenizer.json)');
  const { hyps, refSegments } = loadText(o);
  const model = BertEncoder.load(o.model);
  try {
    const tok = loadTokenizer(o.tokenizer ?? o.model, { requireConfig: false });
    const layer = o.layer ?? model.config.numLayers;
    if (layer > model.config.numLayers) throw new EvalInputError('--layer', null, `the model has ${model.config.numLayers} layers`);
    const baseline = o.baseline ? readRescaleBaseline(o.baseline, layer) : null;
    const r = bertScore(model, tok, hyps, refSegments, { layer, idf: o.idf, baseline, batchSize: o.batchSize });
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const json: Record<string, unknown> = { metric: 'bertscore', precision: mean(r.P), recall: mean(r.R), f1: mean(r.F), model: o.model, model_type: model.config.modelType, layer, idf: r.idf, rescaled: r.rescaled, baseline_file: o.baseline ?? null, segments: hyps.length };
    if (o.sentenceScores) json.sentence_scores = r.P.map((p, i) => ({ precision: p, recall: r.R[i], f1: r.F[i] }));
    const label = `BERTScore (${model.config.modelType}, layer ${layer}${r.idf ? ', idf' : ''}${r.rescaled ? ', rescaled' : ''})`;
    return {
      json,
      markdown: markdownTable(['metric', 'precision', 'recall', 'f1'], [[label, mean(r.P), mean(r.R), mean(r.F)]]),
      perSample: { per_sample: { precision: r.P, recall: r.R, f1: r.F } },
    };
  } finally {
    model.dispose();
  }
}

function runText(o: TextOpts): Result {
  switch (o.metric) {
    case 'bleu':
    case 'chrf':
    case 'chrf++':
    case 'ter':
      return runSacreMetric(o);
    case 'rouge':
      return runRouge(o);
    case 'meteor':
      return runMeteor(o);
    case 'exact_match':
    case 'f1':
      return runSquad(o);
    case 'accuracy':
      return runAccuracy(o);
    case 'bertscore':
      return runBertScore(o);
  }
}

// --- agreement, winrate, significance, fairness -------------------------------------------------------------

interface AgreementOpts {
  ratings: string;
  method: 'cohen' | 'fleiss' | 'krippendorff';
  weights: KappaWeights;
  level: AlphaLevel;
  field: string;
}

function runAgreement(o: AgreementOpts): Result {
  const t = readRatings(o.ratings, o.field);
  let value: number;
  const json: Record<string, unknown> = { method: o.method, raters: t.raters.length, items: t.items.length };
  if (o.method === 'cohen') {
    if (t.raters.length !== 2) throw new EvalInputError(o.ratings, null, `Cohen's kappa needs exactly 2 raters, the file has ${t.raters.length}`);
    const pairs = t.items.filter((r) => r[0] !== null && r[1] !== null) as (string | number)[][];
    value = cohenKappa(pairs.map((p) => p[0]), pairs.map((p) => p[1]), { weights: o.weights });
    Object.assign(json, { weights: o.weights, kappa: value, items_used: pairs.length });
  } else if (o.method === 'fleiss') {
    t.items.forEach((r, i) => {
      if (r.some((x) => x === null)) throw new EvalInputError(o.ratings, null, `item ${i + 1} has a missing rating; Fleiss' kappa needs every rater on every item (use --method krippendorff)`);
    });
    const { table, categories } = fleissTable(t.items as (string | number)[][]);
    const r = fleissKappa(table);
    value = r.kappa;
    Object.assign(json, { kappa: value, p_bar: r.pBar, p_e: r.pe, categories, category_proportions: r.categoryProportions });
  } else {
    const coders: Rating[][] = t.raters.map((_, k) => t.items.map((row) => row[k]));
    value = krippendorffAlpha(coders, o.level);
    Object.assign(json, { level: o.level, alpha: value });
  }
  const label = o.method === 'krippendorff' ? `Krippendorff's alpha (${o.level})` : o.method === 'cohen' ? `Cohen's kappa (${o.weights})` : "Fleiss' kappa";
  return { json, markdown: markdownTable(['coefficient', 'value', 'raters', 'items'], [[label, value, t.raters.length, t.items.length]]) };
}

interface WinrateOpts {
  file: string;
  winnerField: string;
  ties: TieHandling;
  confidenceLevel: number;
}

function runWinrate(o: WinrateOpts): Result {
  const rows = readJsonl(o.file);
  const outcomes = rows.map(({ line, value }) => {
    const w = stringField(o.file, line, value, o.winnerField).trim().toLowerCase();
    if (w !== 'a' && w !== 'b' && w !== 'tie') throw new EvalInputError(o.file, line, `field '${o.winnerField}' must be 'a', 'b' or 'tie', got '${w}'`);
    return w;
  });
  if (outcomes.length === 0) throw new EvalInputError(o.file, null, 'no rows');
  const r = winRate(outcomes, { ties: o.ties, confidence: o.confidenceLevel });
  const json = { win_rate: r.winRate, wins: r.wins, losses: r.losses, ties: r.ties, tie_handling: r.tieHandling, ci_low: r.ci.low, ci_high: r.ci.high, confidence: o.confidenceLevel, sign_test_p: r.signTestP };
  // Per comparison: 1 win, 0 loss, 1/2 tie (--ties half; --ties exclude leaves ties out); the mean is the win rate.
  const perComparison = outcomes.filter((w) => o.ties === 'half' || w !== 'tie').map((w) => (w === 'a' ? 1 : w === 'b' ? 0 : 0.5));
  return {
    perSample: { per_sample: { win_rate: perComparison } },
    json,
    markdown: markdownTable(['win rate (A)', `${Math.round(o.confidenceLevel * 100)}% Wilson CI`, 'wins', 'losses', 'ties', 'sign test p'], [[r.winRate, `${fmt(r.ci.low)}–${fmt(r.ci.high)}`, r.wins, r.losses, r.ties, r.signTestP]]),
  };
}

interface SignificanceOpts extends TextOpts {
  baseline: string;
  system: string;
  pairedBs?: boolean;
  pairedAr?: boolean;
  nSamples?: number;
}

function runSignificance(o: SignificanceOpts): Result {
  if (o.pairedBs && o.pairedAr) throw new EvalInputError('--paired-bs/--paired-ar', null, 'choose one test');
  const test = o.pairedAr ? 'ar' : 'bs';
  const base = loadText({ ...o, predictions: o.baseline });
  const sys = loadText({ ...o, predictions: o.system });
  const metric = corpusMetricFor(o);
  const fn = test === 'bs' ? pairedBootstrap : pairedApproximateRandomization;
  const r = fn(metric, base.hyps, sys.hyps, base.streams, { nSamples: o.nSamples, seed: o.seed });
  const nrefsSet = new Set(base.refSegments.map((x) => x.length));
  const signature = metric.signature(nrefsSet.size === 1 ? [...nrefsSet][0] : 'var', { [test]: r.nSamples, seed: r.seed });
  const json = { metric: o.metric, name: metric.name, test: test === 'bs' ? 'paired bootstrap resampling' : 'approximate randomization', n_samples: r.nSamples, seed: r.seed, signature, baseline: r.baseline, system: r.system, delta: r.delta, p_value: r.pValue };
  const cell = (s: { score: number; mean?: number; ci?: number }) => (s.mean === undefined ? s.score.toFixed(2) : `${s.score.toFixed(2)} (${s.mean.toFixed(2)} ± ${s.ci!.toFixed(2)})`);
  const md = markdownTable(['system', metric.name + (test === 'bs' ? ' (μ ± 95% CI)' : ''), 'p-value'], [[`Baseline: ${o.baseline}`, cell(r.baseline), '-'], [o.system, cell(r.system), `${r.pValue.toFixed(4)}${r.pValue <= 0.05 ? '*' : ''}`]]);
  return { json, markdown: `${md}\n${signature}\n` };
}

interface FairnessOpts {
  file: string;
  groupField: string;
  labelField: string;
  predictionField: string;
  positive: string;
}

function runFairness(o: FairnessOpts): Result {
  const rows: FairnessRow[] = readJsonl(o.file).map(({ line, value }) => {
    const get = (f: string) => {
      if (!(f in value)) throw new EvalInputError(o.file, line, `field '${f}' is missing`);
      const v = value[f];
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new EvalInputError(o.file, line, `field '${f}' must be a string, number or boolean`);
      return v;
    };
    return { group: get(o.groupField), label: get(o.labelField), prediction: get(o.predictionField) };
  });
  if (rows.length === 0) throw new EvalInputError(o.file, null, 'no rows');
  const r = fairnessReport(rows, o.positive);
  const md = [
    markdownTable(['metric', 'value'], [
      ['demographic parity difference', r.demographicParityDifference],
      ['demographic parity ratio', r.demographicParityRatio],
      ['equal opportunity difference', r.equalOpportunityDifference],
      ['equalized odds difference', r.equalizedOddsDifference],
      ['predictive parity difference', r.predictiveParityDifference],
    ]),
    '\n',
    markdownTable(['group', 'n', 'TP', 'FP', 'TN', 'FN', 'selection rate', 'TPR', 'FPR', 'PPV', 'accuracy'], r.groups.map((g) => [g.group, g.n, g.tp, g.fp, g.tn, g.fn, g.selectionRate, g.truePositiveRate, g.falsePositiveRate, g.positivePredictiveValue, g.accuracy])),
    r.undefinedRates.length ? `\nUndefined rates: ${r.undefinedRates.join('; ')}\n` : '',
  ].join('');
  return { json: r as unknown as Record<string, unknown>, markdown: md };
}

// --- compare -------------------------------------------------------------------------------------------------

interface CompareCliOpts {
  nBootstrap: number;
  nRandomization: number;
  seed: number;
  html?: string;
  format: 'markdown' | 'html';
}

function runCompare(run1: string, run2: string, o: CompareCliOpts): Result {
  const r = compareRuns(run1, run2, { nBootstrap: o.nBootstrap, nRandomization: o.nRandomization, seed: o.seed });
  const { headers, rows } = comparisonRows(r);
  const json: Record<string, unknown> = {
    run1: r.run1,
    run2: r.run2,
    n_bootstrap: r.nSamples.bootstrap,
    n_randomization: r.nSamples.randomization,
    seed: r.seed,
    comparisons: r.comparisons.map((c) => ({ file: c.file, metric: c.metric, run1: c.run1, run2: c.run2, delta: c.delta, n: c.n ?? null, test: c.test ?? null, p_paired_bootstrap: c.pBootstrap ?? null, p_approximate_randomization: c.pRandomization ?? null, note: c.note ?? null })),
    unmatched: r.unmatched,
  };
  const html = comparisonHtml(r);
  if (o.html) writeTextAtomically(o.html, html);
  const md = [
    `run 1: ${run1}\nrun 2: ${run2}\n\n`,
    markdownTable(headers, rows),
    `\n* p ≤ 0.05. Paired tests on per-sample data present in both runs (${r.nSamples.bootstrap} bootstrap resamples, ${r.nSamples.randomization} randomization trials, seed ${r.seed}).\n`,
    r.unmatched.length ? `Not compared: ${r.unmatched.join('; ')}\n` : '',
  ].join('');
  return { json, markdown: o.format === 'html' ? html : md };
}

// --- registration ---------------------------------------------------------------------------------------------

function addOutputOptions(c: Command): Command {
  return c.option('--json', 'print one JSON object instead of a Markdown table').option('--output <file>', 'also write <file>.json and <file>.md (atomically)');
}

function addTextInputOptions(c: Command, predictions = true): Command {
  if (predictions) c.requiredOption('--predictions <file>', 'system outputs: one segment per line, or JSONL with --field / --prediction-field');
  return c
    .requiredOption('--references <file>', 'references, one per line (or JSONL); repeat for several references per segment', collect)
    .option('--field <name>', 'JSONL field holding the text (predictions and references)')
    .option('--prediction-field <name>', 'JSONL field of the predictions (overrides --field)')
    .option('--reference-field <name>', 'JSONL field of the references, a string or an array of strings (overrides --field)')
    .option('--allow-empty-references', 'score empty reference lines instead of rejecting them');
}

function addSacreOptions(c: Command): Command {
  return c
    .addOption(new Option('--tokenize <name>', 'BLEU tokenizer').choices([...BLEU_TOKENIZERS]).default('13a'))
    .option('--lowercase', 'BLEU/chrF: lowercase first')
    .addOption(new Option('--smooth-method <m>', 'BLEU smoothing').choices([...BLEU_SMOOTH_METHODS]))
    .option('--smooth-value <v>', 'BLEU: floor / add-k value (default 0.1 / 1)', numArg('--smooth-value', 0))
    .option('--max-ngram-order <n>', 'BLEU: highest n-gram order', intArg('--max-ngram-order', 1), 4)
    .option('--effective-order', 'BLEU: leave out orders without n-grams (sentence-level style)')
    .option('--char-order <n>', 'chrF: character n-gram order', intArg('--char-order', 0), 6)
    .option('--word-order <n>', 'chrF: word n-gram order (default 0 for chrf, 2 for chrf++)', intArg('--word-order', 0))
    .option('--beta <b>', 'chrF: recall weight beta', numArg('--beta', 0), 2)
    .option('--whitespace', 'chrF: keep whitespace in character n-grams')
    .option('--eps-smoothing', 'chrF: epsilon smoothing (chrF++.py / NLTK / Moses style)')
    .option('--normalized', 'TER: Tercom normalisation')
    .option('--no-punct', 'TER: remove punctuation')
    .option('--asian-support', 'TER: CJK character handling')
    .option('--case-sensitive', 'TER: do not lowercase')
    .option('--seed <n>', 'seed of the resampling stream (NumPy default_rng; sacreBLEU uses 12345)', intArg('--seed', 0), 12345);
}

export function registerEval(program: Command): void {
  const ev = program.command('eval').description('evaluation metrics (sacreBLEU / rouge-score / NLTK-exact), agreement, win rates, significance tests, fairness, benchmark harness (MMLU / ARC / HellaSwag / TruthfulQA / BBQ), perplexity, embeddings');
  registerEvalBench(ev);
  registerEvalPassAtK(ev);

  addOutputOptions(
    addSacreOptions(
      addTextInputOptions(
        ev
          .command('text')
          .description('score predictions against references: bleu, chrf, chrf++, ter (= sacreBLEU 2.6.0), rouge (= rouge-score), meteor (= NLTK), exact_match / f1 (SQuAD), accuracy (with P/R/F1 and confusion matrix), bertscore (= bert_score, with a local BERT / RoBERTa encoder)')
          .addOption(new Option('--metric <name>', 'metric').choices([...TEXT_METRICS]).makeOptionMandatory()),
      ),
    )
      .option('--rouge-types <list>', 'ROUGE: comma-separated types (rouge1..rouge9, rougeL, rougeLsum; Lsum splits summaries on newlines)', 'rouge1,rouge2,rougeL,rougeLsum')
      .option('--stemmer', 'ROUGE: Porter-stem tokens longer than 3 characters')
      .option('--wordnet <dir>', 'METEOR: WordNet 3.0 dict folder (default: $ALIGNKIT_WORDNET or /usr/share/wordnet)')
      .option('--require-wordnet', 'METEOR: fail instead of scoring without the synonym stage')
      .addOption(new Option('--squad-version <v>', 'exact_match / f1: SQuAD script version (2.0 scores empty vs empty as 1)').choices(['1.1', '2.0']).default('1.1'))
      .option('--confidence', 'BLEU/chrF/TER: bootstrap mean ± 95% CI (sacreBLEU --confidence); ROUGE: bootstrap 95% interval')
      .option('--n-bootstrap <n>', 'bootstrap resamples', intArg('--n-bootstrap', 1), 1000)
      .option('--sentence-scores', 'include per-segment scores in the JSON')
      .option('--confusion-svg <file>', 'accuracy: also write the confusion matrix as SVG')
      .option('--model <dir>', 'bertscore: BERT-family encoder folder (config.json, model.safetensors, tokenizer.json)')
      .option('--tokenizer <dir>', 'bertscore: tokenizer folder (default: the model folder)')
      .option('--layer <n>', 'bertscore: hidden-state layer (0 = embeddings; default: the last)', intArg('--layer', 0))
      .option('--idf', 'bertscore: idf weighting from the references')
      .option('--baseline <file>', "bertscore: rescale with a bert_score baseline file (LAYER,P,R,F rows; the --layer row is used)")
      .option('--batch-size <n>', 'bertscore: sentences per forward pass', intArg('--batch-size', 1), 16),
  ).action(action<TextOpts>('text', runText));

  addOutputOptions(
    ev
      .command('agreement')
      .description("inter-rater agreement: Cohen's kappa (2 raters), Fleiss' kappa, Krippendorff's alpha")
      .requiredOption('--ratings <file>', 'CSV/TSV with a header of rater names and one row per item (empty cell = missing), or JSONL with an array field per item')
      .addOption(new Option('--method <m>', 'coefficient').choices(['cohen', 'fleiss', 'krippendorff']).makeOptionMandatory())
      .addOption(new Option('--weights <w>', "Cohen's kappa weights").choices(['none', 'linear', 'quadratic']).default('none'))
      .addOption(new Option('--level <l>', "Krippendorff's alpha level of measurement").choices(['nominal', 'ordinal', 'interval', 'ratio']).default('nominal'))
      .option('--field <name>', 'JSONL: the field holding the ratings array', 'ratings'),
  ).action(action<AgreementOpts>('agreement', runAgreement));

  addOutputOptions(
    ev
      .command('winrate')
      .description('win rate of system A over B from JSONL rows with winner a|b|tie, with a Wilson interval and an exact sign test')
      .requiredOption('--file <file>', 'JSONL, one comparison per line')
      .option('--winner-field <name>', 'field holding a, b or tie', 'winner')
      .addOption(new Option('--ties <mode>', 'ties count half a win, or are excluded').choices(['half', 'exclude']).default('half'))
      .option('--confidence-level <c>', 'confidence level of the Wilson interval', numArg('--confidence-level', 0.5, 0.999999), 0.95),
  ).action(action<WinrateOpts>('winrate', runWinrate));

  addOutputOptions(
    addSacreOptions(
      addTextInputOptions(
        ev
          .command('significance')
          .description('paired significance test of a system against a baseline (sacreBLEU --paired-bs / --paired-ar semantics, same resamples)')
          .addOption(new Option('--metric <name>', 'metric').choices(['bleu', 'chrf', 'chrf++', 'ter']).default('bleu'))
          .requiredOption('--baseline <file>', 'baseline outputs')
          .requiredOption('--system <file>', 'system outputs'),
        false,
      ),
    )
      .option('--paired-bs', 'paired bootstrap resampling (default; 1000 resamples)')
      .option('--paired-ar', 'approximate randomization (10000 trials)')
      .option('--n-samples <n>', 'resamples / trials (default 1000 for bs, 10000 for ar)', intArg('--n-samples', 1)),
  ).action(action<SignificanceOpts>('significance', runSignificance));

  addOutputOptions(
    ev
      .command('compare')
      .description('compare two runs (JSON reports written by alignkit eval ... --output, or directories of them paired by file name): delta of every metric in both, with paired bootstrap and approximate randomization p-values where both carry per-sample data (corpus BLEU/chrF/TER statistics, ROUGE/METEOR/EM/F1/accuracy/win-rate/pass@k samples, bench documents)')
      .argument('<run1>', 'baseline report (.json) or directory')
      .argument('<run2>', 'system report (.json) or directory')
      .option('--n-bootstrap <n>', 'paired bootstrap resamples', intArg('--n-bootstrap', 1), 1000)
      .option('--n-randomization <n>', 'approximate randomization trials', intArg('--n-randomization', 1), 10000)
      .option('--seed <n>', 'seed of the resampling stream', intArg('--seed', 0), 12345)
      .addOption(new Option('--format <f>', 'table printed without --json').choices(['markdown', 'html']).default('markdown'))
      .option('--html <file>', 'also write the table as an HTML page (atomically)'),
  ).action((run1: string, run2: string, opts: CompareCliOpts & { json?: boolean; output?: string }) => action<CompareCliOpts>('compare', (o) => runCompare(run1, run2, o))(opts));

  addOutputOptions(
    ev
      .command('fairness')
      .description('group fairness of binary predictions: demographic parity, equal opportunity, equalized odds, predictive parity, per-group confusion tables')
      .requiredOption('--file <file>', 'JSONL, one prediction per line')
      .requiredOption('--group-field <name>', 'field naming the group')
      .requiredOption('--label-field <name>', 'field with the true label')
      .requiredOption('--prediction-field <name>', 'field with the prediction')
      .option('--positive <value>', 'label value of the positive class (compared as text)', '1'),
  ).action(action<FairnessOpts>('fairness', runFairness));
}
