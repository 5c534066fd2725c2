// `alignkit eval bench` end to end: pick the task, load its documents (and few-shot documents), build the
// harness's prompts, score every choice with a model, and aggregate — per task, and for MMLU per category group
// and overall (size-weighted mean over the leaf subtasks, pooled stderr, as lm_eval's Group.aggregate does).
import fs from 'node:fs';
import nodePath from 'node:path';
import type { PretrainedLM } from '../../models/index.ts';
import type { Tokenizer } from '../../tokenizer/index.ts';
import { PrepError } from '../../data/prep/errors.ts';
import { AlignkitError } from '../../tensor/errors.ts';
import {
  loadArc, loadBbq, loadHellaswag, loadMcJsonl, loadMmlu, loadTruthfulqa, type BbqDoc, type Loaded, type LoadOptions, type Located, type MmluDoc,
  type TruthfulqaDoc,
} from './data.ts';
import { encodeRequest, scoreRequest, type EncodeOptions, type ScoreOptions } from './loglikelihood.ts';
import { pooledSampleStderr, weightedMean } from './metrics.ts';
import { prepareTask, type FewshotOptions, type PreparedTask, type TaskOutcome } from './prompts.ts';
import {
  BbqDocError, MMLU_CATEGORY_ALIAS, MMLU_GROUP_VERSION, MMLU_SUBJECTS, arcTask, bbqTask, hellaswagTask, mcTask, mmluTask, prepareBbq, truthfulqaMc1Task,
  truthfulqaMc2Task, type BbqPrepared, type McStyle, type MetricValue, type MmluCategory,
} from './tasks.ts';

/** Task names `--task` accepts (plus mmlu_<subject> for each of the 57 subjects). */
export const BENCH_TASKS = ['mmlu', 'arc_easy', 'arc_challenge', 'hellaswag', 'truthfulqa_mc1', 'truthfulqa_mc2', 'bbq', 'bbq_ambig', 'bbq_disambig'] as const;

/** A bad benchmark request (unknown task, missing files, too few few-shot documents). */
export class BenchConfigError extends AlignkitError {}

export interface BenchmarkOptions extends LoadOptions {
  /** A task of BENCH_TASKS or mmlu_<subject>; with format 'mc-jsonl', any name for the table (default 'mc'). */
  task?: string;
  /** 'mc-jsonl' for a user's {question, choices, answer} file; otherwise the task decides. */
  format?: 'mc-jsonl';
  /** The evaluated documents: a file, or for MMLU a folder of CSVs (with test/ and dev/ subfolders, or not). */
  data: string;
  /** Where few-shot examples come from (default: MMLU's dev split when found, else the evaluated file itself). */
  fewshotData?: string | null;
  numFewshot?: number;
  limit?: number | null;
  /** Seed of the random few-shot sampler (default 1234, the harness's). */
  seed?: number;
  /** Generic format only. */
  mcStyle?: McStyle;
}

/** A group row of the table (MMLU's mmlu / mmlu_stem ...): aggregated over its leaf tasks. */
export interface GroupDef {
  name: string;
  alias: string;
  version: number;
  /** Direct children (groups or tasks) in display order. */
  children: string[];
  /** Leaf task names the metrics are aggregated over. */
  leaves: string[];
}

export interface Benchmark {
  tasks: PreparedTask[];
  groups: GroupDef[];
  /** Where each task's few-shot examples came from ('same split', a path, or null for zero-shot). */
  fewshotSource: Record<string, string | null>;
  skipped: number;
  skipSamples: string[];
}

// -------------------------------------------------------------------------------------------- MMLU files

function listCsv(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /\.csv$/i.test(f))
    .sort()
    .map((f) => nodePath.join(dir, f));
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

interface MmluSources {
  evalFiles: string[];
  /** Few-shot files (CSV per subject, or one JSONL) or null for the same split. */
  fewshotFiles: string[] | null;
}

function mmluSources(data: string, fewshotData: string | null | undefined): MmluSources {
  let evalFiles: string[];
  let fewshotFiles: string[] | null = null;
  if (isDir(data)) {
    const test = nodePath.join(data, 'test');
    const dev = nodePath.join(data, 'dev');
    if (isDir(test)) {
      evalFiles = listCsv(test);
      if (isDir(dev)) fewshotFiles = listCsv(dev);
    } else evalFiles = listCsv(data);
    if (evalFiles.length === 0) throw new BenchConfigError(`${data}: no .csv files (expected hendrycks MMLU CSVs, or test/ and dev/ folders of them)`);
  } else {
    evalFiles = [data];
    // hendrycks layout: .../test/<subject>_test.csv next to .../dev/<subject>_dev.csv
    const m = /^(.*)_test\.csv$/i.exec(nodePath.basename(data));
    if (m) {
      const dev = nodePath.join(nodePath.dirname(nodePath.dirname(data)), 'dev', `${m[1]}_dev.csv`);
      if (fs.existsSync(dev)) fewshotFiles = [dev];
    }
  }
  if (fewshotData) fewshotFiles = isDir(fewshotData) ? listCsv(fewshotData) : [fewshotData];
  return { evalFiles, fewshotFiles };
}

async function loadMmluFiles(files: readonly string[], opts: LoadOptions): Promise<Loaded<MmluDoc>> {
  const out: Loaded<MmluDoc> = { docs: [], skipped: 0, samples: [] };
  for (const f of files) {
    const l = await loadMmlu(f, opts);
    out.docs.push(...l.docs);
    out.skipped += l.skipped;
    out.samples.push(...l.samples);
  }
  return out;
}

function bySubject(docs: readonly Located<MmluDoc>[]): Map<string, Located<MmluDoc>[]> {
  const m = new Map<string, Located<MmluDoc>[]>();
  for (const d of docs) {
    const list = m.get(d.doc.subject) ?? [];
    list.push(d);
    m.set(d.doc.subject, list);
  }
  return m;
}

async function mmluBenchmark(o: BenchmarkOptions, only: string | null): Promise<Benchmark> {
  const src = mmluSources(o.data, o.fewshotData);
  const loadOpts = { skipInvalid: o.skipInvalid };
  const evalDocs = await loadMmluFiles(src.evalFiles, loadOpts);
  const fewDocs = src.fewshotFiles && (o.numFewshot ?? 0) > 0 ? await loadMmluFiles(src.fewshotFiles, loadOpts) : null;
  const evalBy = bySubject(evalDocs.docs);
  const fewBy = fewDocs ? bySubject(fewDocs.docs) : null;
  const subjects = [...evalBy.keys()].filter((s) => only === null || s === only).sort();
  if (subjects.length === 0)
    throw new BenchConfigError(only ? `${o.data}: no MMLU documents of subject '${only}'` : `${o.data}: no MMLU documents`);
  const tasks: PreparedTask[] = [];
  const fewshotSource: Record<string, string | null> = {};
  for (const s of subjects) {
    if (!(s in MMLU_SUBJECTS)) throw new BenchConfigError(`${o.data}: unknown MMLU subject '${s}' (the harness has 57: ${Object.keys(MMLU_SUBJECTS).slice(0, 4).join(', ')}, ...)`);
    const pool = fewBy ? fewBy.get(s) : undefined;
    if (fewBy && !pool && (o.numFewshot ?? 0) > 0) throw new BenchConfigError(`${src.fewshotFiles?.join(', ')}: no few-shot documents of subject '${s}'`);
    tasks.push(prepareTask(mmluTask(s), evalBy.get(s) as Located<MmluDoc>[], fewOptions(o, pool ?? null)));
    fewshotSource[`mmlu_${s}`] = (o.numFewshot ?? 0) === 0 ? null : pool ? (pool[0]?.file ?? null) : 'same split';
  }
  const groups: GroupDef[] = [];
  if (only === null) {
    const cats = (['humanities', 'other', 'social_sciences', 'stem'] as MmluCategory[]).filter((c) => subjects.some((s) => MMLU_SUBJECTS[s] === c));
    for (const c of cats) {
      const leaves = subjects.filter((s) => MMLU_SUBJECTS[s] === c).map((s) => `mmlu_${s}`);
      groups.push({ name: `mmlu_${c}`, alias: MMLU_CATEGORY_ALIAS[c], version: MMLU_GROUP_VERSION, children: leaves, leaves });
    }
    groups.unshift({ name: 'mmlu', alias: 'mmlu', version: MMLU_GROUP_VERSION, children: cats.map((c) => `mmlu_${c}`), leaves: tasks.map((t) => t.name) });
  }
  return { tasks, groups, fewshotSource, skipped: evalDocs.skipped + (fewDocs?.skipped ?? 0), skipSamples: [...evalDocs.samples, ...(fewDocs?.samples ?? [])] };
}

function fewOptions(o: BenchmarkOptions, pool: readonly Located<unknown>[] | null): FewshotOptions {
  return { numFewshot: o.numFewshot ?? 0, fewshotDocs: pool, seed: o.seed, limit: o.limit };
}

// ------------------------------------------------------------------------------------------- other tasks

async function single<D>(o: BenchmarkOptions, load: (f: string, lo: LoadOptions) => Promise<Loaded<D>>, build: (docs: Loaded<D>, pool: Loaded<D> | null) => PreparedTask): Promise<Benchmark> {
  const lo = { skipInvalid: o.skipInvalid };
  const docs = await load(o.data, lo);
  if (docs.docs.length === 0) throw new BenchConfigError(`${o.data}: no documents`);
  const pool = o.fewshotData && (o.numFewshot ?? 0) > 0 ? await load(o.fewshotData, lo) : null;
  const task = build(docs, pool);
  return {
    tasks: [task],
    groups: [],
    fewshotSource: { [task.name]: (o.numFewshot ?? 0) === 0 ? null : pool ? (o.fewshotData as string) : 'same split' },
    skipped: docs.skipped + (pool?.skipped ?? 0),
    skipSamples: [...docs.samples, ...(pool?.samples ?? [])],
  };
}

/** BBQ documents through the harness's process_docs; records it could not process are data errors. */
function bbqPrepared(l: Loaded<BbqDoc>, variant: 'all' | 'ambig' | 'disambig', skipInvalid: boolean): Located<BbqPrepared>[] {
  const out: Located<BbqPrepared>[] = [];
  for (const d of l.docs) {
    if (variant !== 'all' && d.doc.contextCondition !== variant) continue;
    try {
      out.push({ ...d, doc: prepareBbq(d.doc) });
    } catch (e) {
      if (!(e instanceof BbqDocError)) throw e;
      const err = new PrepError(d.file, { line: d.line, field: e.field }, e.message);
      if (!skipInvalid) throw err;
      l.skipped++;
      if (l.samples.length < 10) l.samples.push(err.message);
    }
  }
  return out;
}

/** mc1 is scored with the first choice as the answer (doc_to_target: 0): its label must say so. */
function checkMc1(l: Loaded<TruthfulqaDoc>): void {
  for (const d of l.docs)
    if (d.doc.mc1.labels[0] !== 1) throw new PrepError(d.file, { line: d.line, field: 'mc1_targets' }, 'the first mc1 choice must be the true one (the harness scores mc1 with target 0)');
}

/** Loads the documents of a task and builds all its prompts. */
export async function loadBenchmark(o: BenchmarkOptions): Promise<Benchmark> {
  const skip = o.skipInvalid ?? false;
  if (o.format === 'mc-jsonl') {
    const name = o.task ?? 'mc';
    return single(o, loadMcJsonl, (d, p) => prepareTask(mcTask(name, o.mcStyle ?? 'cloze'), d.docs, fewOptions(o, p?.docs ?? null)));
  }
  const task = o.task;
  if (!task) throw new BenchConfigError('no task: pass --task (one of ' + BENCH_TASKS.join(', ') + ', mmlu_<subject>) or --format mc-jsonl');
  if (task === 'mmlu') return mmluBenchmark(o, null);
  if (task.startsWith('mmlu_')) {
    const subject = task.slice('mmlu_'.length);
    if (!(subject in MMLU_SUBJECTS)) throw new BenchConfigError(`unknown task '${task}' (MMLU subjects: ${Object.keys(MMLU_SUBJECTS).join(', ')})`);
    const b = await mmluBenchmark(o, subject);
    return b;
  }
  switch (task) {
    case 'arc_easy':
    case 'arc_challenge':
      return single(o, loadArc, (d, p) => prepareTask(arcTask(task === 'arc_easy' ? 'easy' : 'challenge'), d.docs, fewOptions(o, p?.docs ?? null)));
    case 'hellaswag':
      return single(o, loadHellaswag, (d, p) => prepareTask(hellaswagTask(), d.docs, fewOptions(o, p?.docs ?? null)));
    case 'truthfulqa_mc1':
      return single(o, loadTruthfulqa, (d, p) => {
        checkMc1(d);
        if (p) checkMc1(p);
        return prepareTask(truthfulqaMc1Task(), d.docs, fewOptions(o, p?.docs ?? null));
      });
    case 'truthfulqa_mc2':
      return single(o, loadTruthfulqa, (d, p) => prepareTask(truthfulqaMc2Task(), d.docs, fewOptions(o, p?.docs ?? null)));
    case 'bbq':
    case 'bbq_ambig':
    case 'bbq_disambig': {
      const variant = task === 'bbq' ? 'all' : task === 'bbq_ambig' ? 'ambig' : 'disambig';
      return single(o, loadBbq, (d, p) => {
        const docs = bbqPrepared(d, variant, skip);
        if (docs.length === 0) throw new BenchConfigError(`${o.data}: no BBQ documents${variant === 'all' ? '' : ` with context_condition '${variant}'`}`);
        return prepareTask(bbqTask(variant), docs, fewOptions(o, p ? bbqPrepared(p, variant, skip) : null));
      });
    }
    default:
      throw new BenchConfigError(`unknown task '${task}' (known: ${BENCH_TASKS.join(', ')}, mmlu_<subject>; or --format mc-jsonl for your own file)`);
  }
}

// --------------------------------------------------------------------------------------------- running

export interface RunOptions extends ScoreOptions, EncodeOptions {
  /** Called after every document with (documents done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface TaskResult {
  name: string;
  alias: string;
  version: number;
  numFewshot: number;
  n: number;
  metrics: MetricValue[];
  /** Per document: log-likelihood of each choice and the task's per-document result. */
  samples: DocSample[];
}

export interface DocSample {
  docIndex: number;
  file: string;
  line: number;
  context: string;
  continuations: string[];
  target: number;
  loglikelihoods: number[];
  result: unknown;
}

export interface GroupResult {
  name: string;
  alias: string;
  version: number;
  n: number;
  metrics: MetricValue[];
}

export interface BenchmarkResults {
  tasks: TaskResult[];
  groups: GroupResult[];
  groupDefs: GroupDef[];
  documents: number;
  seconds: number;
}

/** Scores every request of every task with the model and aggregates. */
export function runBenchmark(b: Benchmark, model: PretrainedLM, tok: Tokenizer, opts: RunOptions = {}): BenchmarkResults {
  const total = b.tasks.reduce((s, t) => s + t.requests.length, 0);
  let done = 0;
  const t0 = performance.now();
  const tasks: TaskResult[] = [];
  for (const t of b.tasks) {
    const lls: number[][] = [];
    for (const r of t.requests) {
      lls.push(scoreRequest(model, encodeRequest(tok, r.context, r.continuations, opts), opts));
      opts.onProgress?.(++done, total);
    }
    const outcome: TaskOutcome = t.evaluate(lls);
    tasks.push({
      name: t.name,
      alias: t.alias,
      version: t.version,
      numFewshot: t.numFewshot,
      n: outcome.n,
      metrics: outcome.metrics,
      samples: t.requests.map((r, i) => ({ ...r, loglikelihoods: lls[i], result: outcome.perDoc[i] })),
    });
  }
  return { tasks, groups: aggregateGroups(b.groups, tasks), groupDefs: b.groups, documents: total, seconds: (performance.now() - t0) / 1000 };
}

/** Group metrics over leaf tasks: size-weighted mean, pooled stderr (N/A if any leaf has none). */
export function aggregateGroups(groups: readonly GroupDef[], tasks: readonly TaskResult[]): GroupResult[] {
  const byName = new Map(tasks.map((t) => [t.name, t]));
  return groups.map((g) => {
    const leaves = g.leaves.map((n) => byName.get(n)).filter((t): t is TaskResult => t !== undefined);
    const names = [...new Set(leaves.flatMap((t) => t.metrics.map((m) => m.metric)))];
    const metrics: MetricValue[] = names.map((metric) => {
      const have = leaves.map((t) => ({ m: t.metrics.find((x) => x.metric === metric), n: t.n })).filter((x) => x.m !== undefined) as { m: MetricValue; n: number }[];
      const sizes = have.map((x) => x.n);
      const stderrs = have.map((x) => x.m.stderr);
      return {
        metric,
        value: weightedMean(have.map((x) => x.m.value), sizes),
        stderr: stderrs.every((s): s is number => s !== null) ? pooledSampleStderr(stderrs, sizes) : null,
        higherIsBetter: have[0].m.higherIsBetter,
      };
    });
    return { name: g.name, alias: g.alias, version: g.version, n: leaves.reduce((s, t) => s + t.n, 0), metrics };
  });
}

/** The results as plain JSON (NaN -> null), the shape `--json` prints and `--output` writes. */
export function resultsJson(r: BenchmarkResults, withSamples: boolean): Record<string, unknown> {
  const num = (x: number | null): number | null => (x === null || !Number.isFinite(x) ? null : x);
  const metrics = (ms: readonly MetricValue[]): Record<string, { value: number | null; stderr: number | null }> =>
    Object.fromEntries(ms.map((m) => [m.metric, { value: num(m.value), stderr: num(m.stderr) }]));
  return {
    results: Object.fromEntries(
      r.tasks.map((t) => [t.name, { alias: t.alias, version: t.version, num_fewshot: t.numFewshot, n: t.n, metrics: metrics(t.metrics), ...(withSamples ? { samples: t.samples } : {}) }]),
    ),
    groups: Object.fromEntries(r.groups.map((g) => [g.name, { alias: g.alias, version: g.version, n: g.n, metrics: metrics(g.metrics) }])),
    documents: r.documents,
    seconds: r.seconds,
    documents_per_second: r.seconds > 0 ? r.documents / r.seconds : null,
  };
}

