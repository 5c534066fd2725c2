// `alignkit data ...`: from a messy JSONL / CSV / Parquet dump to a clean, balanced, documented training set.
// Every subcommand streams (constant memory; two passes where exact sizes need counts first), writes its output
// atomically, prints a summary table or one JSON object (--json), and reports bad input as one line
// `alignkit data <sub>: <file> line N, field 'x': <problem>` with exit code 1. See docs/data-prep.md.
import fs from 'node:fs';
import nodePath from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { AtomicFile } from '../../io/file.ts';
import { AlignkitError } from '../../tensor/errors.ts';
import { loadTokenizer } from '../../tokenizer/index.ts';
import { CleanPipeline, buildStep, parseRecipe, stepsFromFlags, type CleanFlags, type StepConfig, type TokenCounter } from '../../data/prep/clean.ts';
import { ConvertError, FORMATS, convertRow, type Format } from '../../data/prep/convert.ts';
import { Deduplicator, parseShingle, type DedupMode, type DedupVerdict } from '../../data/prep/dedup.ts';
import { PrepConfigError, PrepError } from '../../data/prep/errors.ts';
import { parseFieldList, rowText, textSlots } from '../../data/prep/fields.ts';
import { Inspector, renderInspect, svgHistogram } from '../../data/prep/inspect.ts';
import { PII_KINDS, type PiiKind } from '../../data/prep/pii.ts';
import { SplitAssigner, parseFractions, stratumKey } from '../../data/prep/split.ts';
import { HashedTfidf, ResamplePlan, effectiveNumberWeights, inverseFrequencyWeights, parseTarget, smote, targetCount, type Strategy } from '../../data/prep/balance.ts';
import { BiasCounter, DEFAULT_LEXICON, TermMatcher, buildReport, counterfactual, loadLexicon, renderBiasMarkdown, swapMap, type BiasReport } from '../../data/prep/bias.ts';
import { Rng } from '../../data/prep/rng.ts';
import { augmentOptions, runAugment } from '../../data/prep/augment_command.ts';
import { formatOf, readRows, withWriter, type DataFormat, type FieldExpectation, type ReadOptions, type ReadStats, type Row, type RowWriter } from '../../data/prep/stream.ts';

// ------------------------------------------------------------------------------------------- arg parsers

function intArg(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}.`);
    return n;
  };
}
function numArg(name: string, lo: number, hi: number, inclusiveHi = true) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < lo || (inclusiveHi ? n > hi : n >= hi)) throw new InvalidArgumentError(`${name} must be a number in [${lo}, ${hi}${inclusiveHi ? ']' : ')'}.`);
    return n;
  };
}
function choice<T extends string>(name: string, options: readonly T[]) {
  return (v: string): T => {
    if (!(options as readonly string[]).includes(v)) throw new InvalidArgumentError(`${name} must be one of ${options.join(', ')}.`);
    return v as T;
  };
}

// ----------------------------------------------------------------------------------------- shared plumbing

interface CommonOpts {
  format?: string;
  skipInvalid?: boolean;
  loneSurrogates: 'error' | 'replace';
  json?: boolean;
}

function withCommon(cmd: Command): Command {
  return cmd
    .option('--format <fmt>', 'input format when the extension does not say (jsonl, json, csv, tsv, parquet)')
    .option('--skip-invalid', 'count and skip bad rows (invalid UTF-8 or JSON, ragged CSV rows, missing fields) instead of stopping')
    .option('--lone-surrogates <mode>', 'JSON strings with an unpaired \\uD800-\\uDFFF escape: error or replace (with U+FFFD)', choice('--lone-surrogates', ['error', 'replace'] as const), 'error')
    .option('--json', 'print one JSON object instead of the summary table');
}

function readOpts(o: CommonOpts, expect?: FieldExpectation[]): ReadOptions {
  return { format: o.format ? formatOf('', o.format) : undefined, skipInvalid: o.skipInvalid, loneSurrogates: o.loneSurrogates, expect };
}

/** Runs a subcommand body; errors become one line `alignkit data <sub>: message` and exit code 1. */
function action<A extends unknown[]>(sub: string, fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      const known = e instanceof AlignkitError;
      console.error(`alignkit data ${sub}: ${known ? e.message : `${(e as Error).name}: ${(e as Error).message}`}`);
      if (process.env.ALIGNKIT_DEBUG) console.error((e as Error).stack);
      process.exitCode = 1;
    }
  };
}

function invalidSummary(stats: ReadStats): { skipped: number; samples: string[] } {
  return { skipped: stats.skipped, samples: stats.samples };
}

function printInvalid(stats: ReadStats): void {
  if (stats.skipped === 0) return;
  console.log(`skipped ${stats.skipped} invalid row(s)${stats.samples.length ? `, e.g.:` : ''}`);
  for (const s of stats.samples.slice(0, 5)) console.log(`  ${s}`);
}

function tokenCounter(dir: string | undefined): TokenCounter | null {
  if (!dir) return null;
  const tok = loadTokenizer(dir, { requireConfig: false });
  return (t) => tok.encode(t, { addSpecialTokens: false }).length;
}

/** Writes a small text file (report, SVG) atomically. */
export function writeTextFile(path: string, text: string): void {
  const f = new AtomicFile('text', path);
  try {
    f.write(Buffer.from(text, 'utf8'));
    f.publish();
  } catch (e) {
    f.abort();
    throw e;
  }
}

function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const w = head.map((_h, i) => Math.max(...cells.map((r) => r[i].length)));
  // Numbers right-aligned, text left-aligned.
  const numeric = head.map((_h, i) => rows.every((r) => typeof r[i] === 'number' || /^-?[\d.]+%?$/.test(String(r[i]))));
  const line = (r: string[]): string => r.map((c, i) => (numeric[i] && i > 0 ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ').trimEnd();
  return [line(cells[0]), w.map((n) => '-'.repeat(n)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

function fieldExpectations(fields: string[] | null): FieldExpectation[] | undefined {
  return fields ? fields.map((field) => ({ field, type: 'text' as const })) : undefined;
}

// ------------------------------------------------------------------------------------------------- clean

interface CleanOpts extends CommonOpts {
  out: string;
  recipe?: string;
  fields?: string;
  html?: boolean;
  invisible: boolean;
  stripBidi?: boolean;
  normalize: string;
  maskUrls?: boolean;
  maskPii?: string | boolean;
  spell?: boolean;
  wordlist?: string;
  freq?: string;
  spellDistance: number;
  lowercase?: boolean;
  whitespace: boolean;
  minChars?: number;
  maxChars?: number;
  minTokens?: number;
  maxTokens?: number;
  quality?: boolean;
  tokenizer?: string;
}

function parsePiiKinds(v: string | boolean | undefined): PiiKind[] | null {
  if (v === undefined || v === false) return null;
  if (v === true) return [...PII_KINDS];
  const kinds = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const k of kinds) if (!(PII_KINDS as readonly string[]).includes(k)) throw new PrepConfigError(`--mask-pii: unknown kind '${k}' (known: ${PII_KINDS.join(', ')})`);
  return kinds as PiiKind[];
}

async function runClean(input: string, o: CleanOpts): Promise<void> {
  let configs: StepConfig[];
  let fields = parseFieldList(o.fields);
  const stepFlags = o.html || o.stripBidi || o.maskUrls || o.maskPii || o.spell || o.lowercase || o.quality || o.minChars !== undefined || o.maxChars !== undefined || o.minTokens !== undefined || o.maxTokens !== undefined || o.normalize !== 'NFC' || !o.invisible || !o.whitespace;
  if (o.recipe) {
    if (stepFlags) throw new PrepConfigError('give the steps either in --recipe or as flags, not both');
    const r = parseRecipe(o.recipe);
    configs = r.steps;
    fields ??= r.fields;
  } else {
    if (!['NFC', 'NFKC', 'none'].includes(o.normalize)) throw new PrepConfigError(`--normalize must be NFC, NFKC or none, got '${o.normalize}'`);
    const flags: CleanFlags = {
      html: o.html, invisible: o.invisible, stripBidi: o.stripBidi, normalize: o.normalize as CleanFlags['normalize'], maskUrls: o.maskUrls,
      maskPii: parsePiiKinds(o.maskPii), spell: o.spell, wordlist: o.wordlist, freq: o.freq, spellDistance: o.spellDistance === 2 ? 2 : 1,
      lowercase: o.lowercase, whitespace: o.whitespace, minChars: o.minChars, maxChars: o.maxChars, minTokens: o.minTokens, maxTokens: o.maxTokens, quality: o.quality,
    };
    configs = stepsFromFlags(flags);
  }
  const tokens = tokenCounter(o.tokenizer);
  const steps = configs.map((c) => buildStep(c, tokens));
  const pipeline = new CleanPipeline(steps, fields);
  const reader = readRows(input, readOpts(o, fieldExpectations(fields)));
  await withWriter(o.out, {}, async (w) => {
    for await (const { row } of reader) {
      const r = pipeline.process(row);
      if (r) await w.write(r);
    }
  });
  const s = pipeline.summary();
  if (o.json) {
    console.log(JSON.stringify({ input, output: o.out, fields: fields ?? 'auto', ...s, invalid: invalidSummary(reader.stats) }));
    return;
  }
  console.log(table(['step', 'changed', 'dropped', 'reasons'], s.steps.map((st) => [st.step, st.changed, st.dropped, Object.entries(st.reasons).map(([k, v]) => `${k} ${v}`).join(', ')])));
  console.log(`\n${s.rowsIn} rows in, ${s.rowsOut} rows out (${s.rowsIn - s.rowsOut} dropped) -> ${o.out}${s.rowsWithoutText ? `; ${s.rowsWithoutText} rows had no text field` : ''}`);
  printInvalid(reader.stats);
}

// ------------------------------------------------------------------------------------------------- dedup

interface DedupOpts extends CommonOpts {
  out: string;
  mode: DedupMode;
  threshold: number;
  numPerm: number;
  bands?: number;
  rows?: number;
  shingle: string;
  seed: number;
  against?: string;
  fields?: string;
  report?: string;
}

async function runDedup(input: string, o: DedupOpts): Promise<void> {
  if ((o.bands === undefined) !== (o.rows === undefined)) throw new PrepConfigError('--bands and --rows go together');
  const fields = parseFieldList(o.fields);
  const d = new Deduplicator({ mode: o.mode, threshold: o.threshold, numPerm: o.numPerm, bands: o.bands, rows: o.rows, shingle: parseShingle(o.shingle), seed: o.seed });
  let evalRows = 0;
  let evalStats: ReadStats | null = null;
  if (o.against) {
    const er = readRows(o.against, readOpts(o, fieldExpectations(fields)));
    for await (const { row, line } of er) {
      d.addEval(rowText(row, fields), line);
      evalRows++;
    }
    evalStats = er.stats;
  } else if (o.mode === 'none') throw new PrepConfigError('--mode none only makes sense with --against EVAL (a contamination check)');
  const reader = readRows(input, readOpts(o, fieldExpectations(fields)));
  const examples: (DedupVerdict & { line: number })[] = [];
  await withWriter(o.out, {}, async (w) => {
    for await (const { row, line } of reader) {
      const v = d.check(rowText(row, fields), line);
      if (v.keep) await w.write(row);
      else if (examples.length < 1000) examples.push({ line, ...v });
    }
  });
  const result = {
    input, output: o.out, against: o.against ?? null, evalRows,
    params: { mode: o.mode, threshold: o.threshold, numPerm: o.numPerm, bands: d.bands, rows: d.rows, shingle: o.shingle, seed: o.seed },
    rowsIn: d.counts.seen, kept: d.counts.kept,
    dropped: { exact: d.counts.exact, near: d.counts.near, contaminatedExact: d.counts.contaminated_exact, contaminatedNear: d.counts.contaminated_near },
    indexBytes: d.approxBytes(),
    examples,
    invalid: invalidSummary(reader.stats),
    evalInvalid: evalStats ? invalidSummary(evalStats) : null,
  };
  if (o.report) writeTextFile(o.report, JSON.stringify(result, null, 2) + '\n');
  if (o.json) {
    console.log(JSON.stringify(result));
    return;
  }
  console.log(table(['', 'rows'], [['in', d.counts.seen], ['kept', d.counts.kept], ['exact duplicates', d.counts.exact], ['near duplicates', d.counts.near], ...(o.against ? [['contaminated (exact)', d.counts.contaminated_exact], ['contaminated (near)', d.counts.contaminated_near]] : [])] as (string | number)[][]));
  console.log(`\nMinHash: ${o.numPerm} permutations, ${d.bands} bands x ${d.rows} rows, Jaccard >= ${o.threshold}, shingles ${o.shingle}, seed ${o.seed} -> ${o.out}`);
  for (const e of examples.slice(0, 5)) console.log(`  line ${e.line}: ${e.kind} of ${e.kind?.startsWith('contaminated') ? `${o.against} line` : 'line'} ${e.of}${e.jaccard !== undefined ? ` (Jaccard ~ ${e.jaccard.toFixed(2)})` : ''}`);
  printInvalid(reader.stats);
}

// ----------------------------------------------------------------------------------------------- balance

interface BalanceOpts extends CommonOpts {
  out?: string;
  labelField: string;
  strategy: Strategy | 'smote' | 'weights' | 'stats';
  target: string;
  weights: 'inverse' | 'effective';
  beta: number;
  weightField: string;
  k: number;
  embeddingField: string;
  featureDim: number;
  fields?: string;
  seed: number;
}

async function countLabels(input: string, o: BalanceOpts, extra?: (row: Row) => void): Promise<{ counts: Map<string, number>; stats: ReadStats }> {
  const counts = new Map<string, number>();
  const reader = readRows(input, readOpts(o, [{ field: o.labelField, type: 'any' }]));
  for await (const { row } of reader) {
    const k = stratumKey(row[o.labelField]);
    counts.set(k, (counts.get(k) ?? 0) + 1);
    extra?.(row);
  }
  return { counts: new Map([...counts].sort((a, b) => (a[0] < b[0] ? -1 : 1))), stats: reader.stats };
}

function round6(v: ArrayLike<number>): number[] {
  return Array.from(v, (x) => Math.round(x * 1e6) / 1e6);
}

async function runBalance(input: string, o: BalanceOpts): Promise<void> {
  const fields = parseFieldList(o.fields);
  // Feature source for SMOTE: the embedding field if the first row has a numeric array there, else TF-IDF of the text.
  let useEmbedding: boolean | null = null;
  const tfidf = new HashedTfidf(o.featureDim);
  const first = await countLabels(input, o, (row) => {
    if (o.strategy !== 'smote') return;
    if (useEmbedding === null) useEmbedding = Array.isArray(row[o.embeddingField]);
    if (!useEmbedding) tfidf.addDocument(rowText(row, fields));
  });
  const counts = first.counts;
  const before = Object.fromEntries(counts);
  const weightsOf = (): Record<string, number> => (o.weights === 'inverse' ? inverseFrequencyWeights(counts) : effectiveNumberWeights(counts, o.beta));
  const needsOut = o.strategy !== 'stats' && o.strategy !== 'weights';
  if (needsOut && !o.out) throw new PrepConfigError(`--strategy ${o.strategy} writes rows: give -o OUT`);
  let after: Record<string, number> = before;
  let classWeights: Record<string, number> | null = null;
  let synthetic = 0;
  let featureSource: string | null = null;
  const rowsOpts = readOpts(o, [{ field: o.labelField, type: 'any' }]);

  if (o.strategy === 'weights') {
    classWeights = weightsOf();
    if (o.out) {
      const cw = classWeights;
      await withWriter(o.out, {}, async (w) => {
        for await (const { row } of readRows(input, rowsOpts)) await w.write({ ...row, [o.weightField]: cw[stratumKey(row[o.labelField])] });
      });
    }
  } else if (o.strategy === 'oversample' || o.strategy === 'undersample' || o.strategy === 'resample') {
    const target = targetCount(counts, parseTarget(o.target));
    const plan = new ResamplePlan(counts, target, o.strategy, o.seed);
    after = Object.fromEntries(plan.sizes);
    await withWriter(o.out!, {}, async (w) => {
      for await (const { row } of readRows(input, rowsOpts)) {
        const n = plan.copies(stratumKey(row[o.labelField]));
        for (let i = 0; i < n; i++) await w.write(row);
      }
    });
  } else if (o.strategy === 'smote') {
    const target = targetCount(counts, parseTarget(o.target));
    const needy = new Map([...counts].filter(([, n]) => n < target));
    const vectors = new Map<string, { v: ArrayLike<number>; line: number }[]>([...needy.keys()].map((k) => [k, []]));
    featureSource = useEmbedding ? `field '${o.embeddingField}'` : `hashed TF-IDF of the text (${o.featureDim} dimensions)`;
    const rng = new Rng(o.seed);
    let dim = -1;
    await withWriter(o.out!, {}, async (w) => {
      for await (const { row, line } of readRows(input, rowsOpts)) {
        const label = stratumKey(row[o.labelField]);
        let v: ArrayLike<number>;
        if (useEmbedding) {
          const e = row[o.embeddingField];
          if (!Array.isArray(e) || !e.every((x) => typeof x === 'number' && Number.isFinite(x))) throw new PrepError(input, { line, field: o.embeddingField }, 'expected an array of finite numbers (SMOTE interpolates it)');
          if (dim === -1) dim = e.length;
          else if (e.length !== dim) throw new PrepError(input, { line, field: o.embeddingField }, `embedding has ${e.length} dimensions, earlier rows have ${dim}`);
          v = e as number[];
          await w.write(row);
        } else {
          v = tfidf.vector(rowText(row, fields));
          await w.write({ ...row, features: round6(v) });
        }
        vectors.get(label)?.push({ v, line });
      }
      for (const [label, xs] of vectors) {
        const samples = smote(xs.map((x) => x.v), target - xs.length, o.k, rng);
        for (const s of samples) {
          const vec = round6(s.vector);
          await w.write({ [o.labelField]: label, [useEmbedding ? o.embeddingField : 'features']: vec, synthetic: true, smote: { base_line: xs[s.base].line, neighbour_line: xs[s.neighbour].line, lambda: Math.round(s.lambda * 1e6) / 1e6 } });
          synthetic++;
        }
      }
    });
    after = Object.fromEntries([...counts].map(([k, n]) => [k, Math.max(n, target)]));
  }
  const result = { input, output: o.out ?? null, labelField: o.labelField, strategy: o.strategy, before, after, class_weights: classWeights, synthetic, featureSource, invalid: invalidSummary(first.stats) };
  if (o.json) {
    console.log(JSON.stringify(result));
    return;
  }
  const total = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
  console.log(table(['class', 'rows', 'share', ...(o.strategy === 'stats' || o.strategy === 'weights' ? [] : ['after']), ...(classWeights ? ['weight'] : [])], Object.keys(before).map((k) => [k, before[k], `${((100 * before[k]) / total(before)).toFixed(1)}%`, ...(o.strategy === 'stats' || o.strategy === 'weights' ? [] : [after[k]]), ...(classWeights ? [classWeights[k].toFixed(4)] : [])])));
  if (classWeights) console.log(`\n${JSON.stringify({ class_weights: classWeights })}`);
  if (o.strategy === 'smote') console.log(`\n${synthetic} synthetic rows from ${featureSource}: they hold the label and an interpolated vector, no text`);
  if (o.out) console.log(`-> ${o.out}`);
  printInvalid(first.stats);
}

// -------------------------------------------------------------------------------------------------- bias

interface BiasOpts extends CommonOpts {
  out?: string;
  lexicon: string;
  labelField?: string;
  fields?: string;
  reweight?: string;
  method: 'equalize' | 'kamiran_calders';
  weightField: string;
  augment?: string;
  reportMd?: string;
  reportJson?: string;
}

async function runBias(input: string, o: BiasOpts): Promise<void> {
  if (o.reweight && o.augment) throw new PrepConfigError('--reweight and --augment in one run would weight rows by groups the augmentation changes: run --augment first, then --reweight on its output');
  if ((o.reweight || o.augment) && !o.out) throw new PrepConfigError('--reweight / --augment write rows: give -o OUT');
  const fields = parseFieldList(o.fields);
  const lex = loadLexicon(o.lexicon);
  for (const a of [o.reweight, o.augment]) if (a && !(a in lex.attributes)) throw new PrepConfigError(`no attribute '${a}' in ${o.lexicon} (have: ${Object.keys(lex.attributes).join(', ')})`);
  if (o.augment && lex.attributes[o.augment].swaps.length === 0) throw new PrepConfigError(`attribute '${o.augment}' has no swap pairs in ${o.lexicon}`);
  const counter = new BiasCounter(new TermMatcher(lex));
  const labelOf = (row: Row): string => (o.labelField ? stratumKey(row[o.labelField]) : '(all)');
  const expect: FieldExpectation[] = [...(fieldExpectations(fields) ?? []), ...(o.labelField ? [{ field: o.labelField, type: 'any' as const }] : [])];
  const reader = readRows(input, readOpts(o, expect.length ? expect : undefined));
  for await (const { row } of reader) counter.add(rowText(row, fields), labelOf(row));
  let reweighting: BiasReport['reweighting'] = null;
  let cf: BiasReport['counterfactual'] = null;
  if (o.reweight) {
    const attr = o.reweight;
    const w = counter.weights(attr, o.method);
    reweighting = { attribute: attr, method: o.method, weights: Object.fromEntries([...w].map(([g, m]) => [g, Object.fromEntries(m)])) };
    const matcher = counter.matcher;
    await withWriter(o.out!, {}, async (out) => {
      for await (const { row } of readRows(input, readOpts(o, expect.length ? expect : undefined))) {
        const g = matcher.match(rowText(row, fields)).group[attr];
        const wt = w.get(g)?.get(labelOf(row)) ?? 1;
        const prev = row[o.weightField];
        await out.write({ ...row, [o.weightField]: typeof prev === 'number' ? prev * wt : wt });
      }
    });
  }
  if (o.augment) {
    const swaps = swapMap(lex.attributes[o.augment].swaps);
    let rowsAugmented = 0, swapCount = 0;
    await withWriter(o.out!, {}, async (out) => {
      for await (const { row } of readRows(input, readOpts(o, expect.length ? expect : undefined))) {
        await out.write(row);
        const copy = structuredClone(row);
        let n = 0;
        for (const slot of textSlots(copy, fields)) {
          const r = counterfactual(slot.get(), swaps);
          if (r.swaps) {
            slot.set(r.text);
            n += r.swaps;
          }
        }
        if (n > 0) {
          rowsAugmented++;
          swapCount += n;
          await out.write({ ...copy, counterfactual: true });
        }
      }
    });
    cf = { attribute: o.augment, rowsAugmented, swaps: swapCount };
  }
  const report = buildReport(counter, o.lexicon, { reweighting, counterfactual: cf });
  const md = renderBiasMarkdown(report);
  if (o.reportMd) writeTextFile(o.reportMd, md);
  if (o.reportJson) writeTextFile(o.reportJson, JSON.stringify(report, null, 2) + '\n');
  if (o.json) console.log(JSON.stringify({ ...report, output: o.out ?? null, invalid: invalidSummary(reader.stats) }));
  else {
    console.log(md);
    if (o.out) console.log(`-> ${o.out}`);
    printInvalid(reader.stats);
  }
}

// ----------------------------------------------------------------------------------------------- inspect

interface InspectOpts extends CommonOpts {
  samples: number;
  seed: number;
  svgDir?: string;
  tokenizer?: string;
  fields?: string;
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 80) || 'field';
}

async function runInspect(input: string, o: InspectOpts): Promise<void> {
  const fields = parseFieldList(o.fields);
  const tokens = tokenCounter(o.tokenizer);
  const insp = new Inspector(o.seed, o.samples, tokens ? (row) => tokens(rowText(row, fields)) : null);
  const reader = readRows(input, readOpts(o));
  for await (const { row, line } of reader) insp.add(row, line);
  const r = insp.report();
  const svgs: string[] = [];
  if (o.svgDir) {
    fs.mkdirSync(o.svgDir, { recursive: true });
    const put = (name: string, title: string, h: { bin: string; count: number }[], x: string): void => {
      const p = nodePath.join(o.svgDir!, name);
      writeTextFile(p, svgHistogram(title, h, x));
      svgs.push(p);
    };
    for (const f of r.fields) {
      if (f.type === 'string' && f.lengths) put(`${safeName(f.field)}.chars.svg`, `${input}: length of '${f.field}'`, f.lengths.histogram, 'characters (log2 bins)');
      if (f.roles && f.lengths) put(`${safeName(f.field)}.messages.svg`, `${input}: messages per conversation in '${f.field}'`, f.lengths.histogram, 'messages (log2 bins)');
      if (f.contentLengths) put(`${safeName(f.field)}.content_chars.svg`, `${input}: message length in '${f.field}'`, f.contentLengths.histogram, 'characters (log2 bins)');
    }
    if (r.tokens) put('tokens.svg', `${input}: tokens per row`, r.tokens.histogram, 'tokens (log2 bins)');
  }
  if (o.json) console.log(JSON.stringify({ input, ...r, svgs, invalid: invalidSummary(reader.stats) }));
  else {
    console.log(renderInspect(r, input));
    if (svgs.length) console.log(`\nhistograms: ${svgs.join(', ')}`);
    printInvalid(reader.stats);
  }
}

// ------------------------------------------------------------------------------------------------- split

interface SplitOpts extends CommonOpts {
  outDir: string;
  fractions: string;
  names: string;
  stratify?: string;
  seed: number;
  outFormat?: string;
}

async function runSplit(input: string, o: SplitOpts): Promise<void> {
  const fractions = parseFractions(o.fractions);
  const names = o.names.split(',').map((s) => s.trim());
  if (names.length !== fractions.length || names.some((n) => !/^[A-Za-z0-9_.-]+$/.test(n)) || new Set(names).size !== names.length) throw new PrepConfigError(`--names must be ${fractions.length} distinct file-name-safe names (one per fraction), got '${o.names}'`);
  const inFormat = formatOf(input, o.format);
  const outFormat: DataFormat = o.outFormat ? formatOf('', o.outFormat) : inFormat === 'json' ? 'jsonl' : inFormat;
  if (!fs.existsSync(o.outDir)) fs.mkdirSync(o.outDir, { recursive: true });
  const expect = o.stratify ? [{ field: o.stratify, type: 'any' as const }] : undefined;
  const counts = new Map<string, number>();
  const first = readRows(input, readOpts(o, expect));
  for await (const { row } of first) {
    const k = o.stratify ? stratumKey(row[o.stratify]) : '(all)';
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const assigner = new SplitAssigner(counts, fractions, o.seed);
  const plan = assigner.plan();
  const paths = names.map((n) => nodePath.join(o.outDir, `${n}.${outFormat}`));
  const writers: RowWriter[] = [];
  const sizes = names.map(() => 0);
  // Nested withWriter calls: every output is published only when all rows are written; any error removes them all.
  const open = async (i: number): Promise<void> => {
    if (i < paths.length) {
      await withWriter(paths[i], { format: outFormat }, async (w) => {
        writers.push(w);
        await open(i + 1);
      });
      return;
    }
    for await (const { row } of readRows(input, readOpts(o, expect))) {
      const k = assigner.assign(o.stratify ? stratumKey(row[o.stratify]) : '(all)');
      await writers[k].write(row);
      sizes[k]++;
    }
  };
  await open(0);
  const result = { input, outputs: Object.fromEntries(names.map((n, i) => [n, { path: paths[i], rows: sizes[i] }])), stratify: o.stratify ?? null, seed: o.seed, perStratum: Object.fromEntries([...plan].map(([k, v]) => [k, Object.fromEntries(names.map((n, i) => [n, v[i]]))])), invalid: invalidSummary(first.stats) };
  if (o.json) {
    console.log(JSON.stringify(result));
    return;
  }
  if (o.stratify) console.log(table(['stratum', ...names], [...plan].map(([k, v]) => [k, ...v])) + '\n');
  console.log(table(['split', 'rows', 'file'], names.map((n, i) => [n, sizes[i], paths[i]])));
  printInvalid(first.stats);
}

// ----------------------------------------------------------------------------------------------- convert

interface ConvertOpts extends CommonOpts {
  out: string;
  to: Format;
  from?: Format;
}

async function runConvert(input: string, o: ConvertOpts): Promise<void> {
  const reader = readRows(input, readOpts(o));
  let rowsOut = 0, dropped = 0, failed = 0;
  const samples: string[] = [];
  await withWriter(o.out, {}, async (w) => {
    for await (const { row, line } of reader) {
      let out: Row[];
      try {
        out = convertRow(row, o.to, o.from);
      } catch (e) {
        if (!(e instanceof ConvertError)) throw e;
        const err = new PrepError(input, { line, ...(e.field ? { field: e.field } : {}) }, e.message);
        if (!o.skipInvalid) throw err;
        failed++;
        if (samples.length < 10) samples.push(err.message);
        continue;
      }
      if (out.length === 0) dropped++;
      for (const r of out) await w.write(r);
      rowsOut += out.length;
    }
  });
  const result = { input, output: o.out, to: o.to, rowsIn: reader.stats.rows, rowsOut, droppedUndesirable: dropped, failed, failedSamples: samples, invalid: invalidSummary(reader.stats) };
  if (o.json) {
    console.log(JSON.stringify(result));
    return;
  }
  console.log(`${reader.stats.rows} rows in, ${rowsOut} rows out as ${o.to} -> ${o.out}`);
  if (dropped) console.log(`${dropped} KTO rows labelled false were dropped (an SFT layout keeps desirable completions only)`);
  if (failed) {
    console.log(`${failed} rows could not be converted, e.g.:`);
    for (const s of samples.slice(0, 5)) console.log(`  ${s}`);
  }
  printInvalid(reader.stats);
}

// ---------------------------------------------------------------------------------------------- register

export function registerDataCommands(program: Command): void {
  const data = program.command('data').description('prepare training data: clean, dedup, balance, bias, inspect, split, convert, augment (JSONL / CSV / Parquet, streaming)');

  withCommon(
    data
      .command('clean')
      .description('clean text fields with composable steps (flags or --recipe YAML) and report what each step changed or dropped')
      .argument('<input>', 'input file (.jsonl, .jsonl.gz, .json, .csv, .tsv, .parquet)')
      .requiredOption('-o, --out <file>', 'output file (format from its extension)')
      .option('--recipe <file>', 'YAML recipe: {fields: [...], steps: [...]} (instead of the step flags)')
      .option('--fields <list>', 'comma-separated top-level fields to clean (default: every string field and message content, except id/label-like fields)')
      .option('--html', 'strip HTML tags and decode entities')
      .option('--no-invisible', 'keep control and zero-width characters')
      .option('--strip-bidi', 'also remove bidi marks (LRM/RLM/ALM) and embedding/override/isolate controls')
      .option('--normalize <form>', 'Unicode normalisation: NFC, NFKC or none', 'NFC')
      .option('--mask-urls', 'replace URLs with <URL>')
      .option('--mask-pii [kinds]', `replace PII with placeholders; kinds: ${PII_KINDS.join(',')} (default all)`)
      .option('--spell', 'correct spelling against a word list (default /usr/share/dict/words)')
      .option('--wordlist <file>', 'word list for --spell, one word per line')
      .option('--freq <file>', 'word frequencies for --spell ("word count" per line) to rank candidates')
      .option('--spell-distance <n>', 'largest edit distance for --spell: 1 or 2', intArg('--spell-distance', 1), 1)
      .option('--lowercase', 'lower-case the text')
      .option('--no-whitespace', 'keep whitespace as it is')
      .option('--min-chars <n>', 'drop rows whose text has fewer characters (code points)', intArg('--min-chars', 0))
      .option('--max-chars <n>', 'drop rows whose text has more characters', intArg('--max-chars', 0))
      .option('--min-tokens <n>', 'drop rows with fewer tokens (needs --tokenizer)', intArg('--min-tokens', 0))
      .option('--max-tokens <n>', 'drop rows with more tokens (needs --tokenizer)', intArg('--max-tokens', 0))
      .option('--tokenizer <dir>', 'model folder with tokenizer.json, for token-length filters')
      .option('--quality', "drop low-quality text by Gopher's rules (symbol ratio, duplicate lines / paragraphs / n-grams)"),
  ).action(action('clean', runClean));

  withCommon(
    data
      .command('dedup')
      .description('drop exact and near-duplicate rows (MinHash + LSH, keep-first); with --against, drop rows that leak an evaluation set')
      .argument('<input>', 'input file')
      .requiredOption('-o, --out <file>', 'output file')
      .option('--mode <mode>', 'exact, near, both, or none (only the --against check)', choice('--mode', ['exact', 'near', 'both', 'none'] as const), 'both')
      .option('--threshold <j>', 'Jaccard similarity at or above which rows are near-duplicates', numArg('--threshold', 0.01, 0.99), 0.8)
      .option('--num-perm <n>', 'MinHash permutations', intArg('--num-perm', 1), 128)
      .option('--bands <b>', 'LSH bands (default: chosen from --threshold)', intArg('--bands', 1))
      .option('--rows <r>', 'LSH rows per band (with --bands)', intArg('--rows', 1))
      .option('--shingle <spec>', 'shingles: char:K (character K-grams) or word:N', 'char:5')
      .option('--seed <n>', 'seed of the MinHash hash family', intArg('--seed', 0), 0)
      .option('--against <file>', 'evaluation set: drop and report training rows that are exact or near copies of its rows')
      .option('--fields <list>', 'fields whose text is compared (default: all text fields)')
      .option('--report <file>', 'write the JSON report (counts, parameters, the first 1000 dropped rows with what they duplicate)'),
  ).action(action('dedup', runDedup));

  withCommon(
    data
      .command('balance')
      .description('class statistics, seeded over/under-sampling, SMOTE in a feature space, or class weights')
      .argument('<input>', 'input file')
      .option('-o, --out <file>', 'output file (needed by every strategy except stats and weights)')
      .option('--label-field <name>', 'the class label field', 'label')
      .option('--strategy <s>', 'stats, oversample, undersample, resample, smote or weights', choice('--strategy', ['stats', 'oversample', 'undersample', 'resample', 'smote', 'weights'] as const), 'stats')
      .option('--target <t>', 'rows per class: max, min, mean, median or a number', 'max')
      .option('--weights <kind>', 'class weights: inverse (N / (K n_c)) or effective (Cui et al. 2019)', choice('--weights', ['inverse', 'effective'] as const), 'inverse')
      .option('--beta <b>', 'beta of the effective number of samples, in [0, 1)', numArg('--beta', 0, 1, false), 0.999)
      .option('--weight-field <name>', 'column written by --strategy weights -o OUT', 'weight')
      .option('--k <n>', 'SMOTE neighbours', intArg('--k', 1), 5)
      .option('--embedding-field <name>', 'numeric vector field SMOTE interpolates (else TF-IDF of the text)', 'embedding')
      .option('--feature-dim <n>', 'hashed TF-IDF dimension for text rows', intArg('--feature-dim', 2), 256)
      .option('--fields <list>', 'text fields for TF-IDF features (default: all text fields)')
      .option('--seed <n>', 'sampling seed', intArg('--seed', 0), 0),
  ).action(action('balance', runBalance));

  withCommon(
    data
      .command('bias')
      .description('count sensitive-attribute terms per label, re-weight groups, or add counterfactual (term-swapped) rows; Markdown + JSON report')
      .argument('<input>', 'input file')
      .option('-o, --out <file>', 'output rows (with --reweight or --augment)')
      .option('--lexicon <file>', 'lexicon JSON (default: the small illustrative one shipped with alignkit)', DEFAULT_LEXICON)
      .option('--label-field <name>', 'label field to break counts down by')
      .option('--fields <list>', 'text fields to scan (default: all text fields)')
      .option('--reweight <attribute>', 'write a weight column that balances the groups of this attribute')
      .option('--method <m>', 'equalize (equal total weight per group) or kamiran_calders (group independent of label)', choice('--method', ['equalize', 'kamiran_calders'] as const), 'equalize')
      .option('--weight-field <name>', 'weight column (an existing numeric value is multiplied)', 'weight')
      .option('--augment <attribute>', "add a counterfactual copy of every row mentioning this attribute's swap terms")
      .option('--report-md <file>', 'write the Markdown report')
      .option('--report-json <file>', 'write the JSON report'),
  ).action(action('bias', runBias));

  withCommon(
    data
      .command('inspect')
      .description('schema (types, null rates), field statistics, length histograms, chat roles, detected layout, sample rows')
      .argument('<input>', 'input file')
      .option('--samples <n>', 'sample rows to show (seeded reservoir sample)', intArg('--samples', 0), 3)
      .option('--seed <n>', 'sampling seed', intArg('--seed', 0), 0)
      .option('--svg-dir <dir>', 'write SVG histograms here')
      .option('--tokenizer <dir>', 'also count tokens per row with this model folder tokenizer')
      .option('--fields <list>', 'text fields for the token count (default: all text fields)'),
  ).action(action('inspect', runInspect));

  withCommon(
    data
      .command('split')
      .description('split into train/eval/test files of exact sizes, optionally stratified by a field (seeded)')
      .argument('<input>', 'input file')
      .requiredOption('--out-dir <dir>', 'folder for the split files')
      .option('--fractions <list>', 'fractions, summing to 1', '0.8,0.1,0.1')
      .option('--names <list>', 'file names (without extension), one per fraction', 'train,eval,test')
      .option('--stratify <field>', 'keep the distribution of this field the same in every split')
      .option('--seed <n>', 'seed', intArg('--seed', 0), 0)
      .option('--out-format <fmt>', 'output format (default: the input format; JSON arrays become JSONL)'),
  ).action(action('split', runSplit));

  withCommon(
    data
      .command('convert')
      .description(`convert between layouts: ${FORMATS.join(', ')} (the input layout is detected per row)`)
      .argument('<input>', 'input file')
      .requiredOption('-o, --out <file>', 'output file')
      .requiredOption('--to <layout>', FORMATS.join(' | '), choice('--to', FORMATS))
      .option('--from <layout>', 'force the input layout instead of detecting it', choice('--from', FORMATS)),
  ).action(action('convert', runConvert));

  withCommon(
    augmentOptions(
      data
        .command('augment')
        .description('add augmented rows: EDA (synonyms from a thesaurus or WordNet, random insertion / swap / deletion), paraphrase or back-translation with a model or an OpenAI-compatible endpoint, contextual word replacement with a causal LM; seeded, each row points back at its source'),
    ),
  ).action(action('augment', runAugment));
}
