// From documents to the harness's loglikelihood requests: the few-shot context (description, k examples, the
// question) and one continuation per choice — exactly what lm_eval's ConfigurableTask.fewshot_context and
// construct_requests build:
//   context = description + [doc_to_text(ex) + target_delimiter + choice(ex)[target(ex)] + fewshot_delimiter]*k
//             + doc_to_text(doc)
//   continuation_i = target_delimiter + choice_i
// Few-shot examples: the 'first_n' sampler takes the first k few-shot documents; the 'default' sampler draws
// random.Random(seed).sample(fewshot_docs, k) with ONE generator per task, advanced document after document in
// order (so --limit does not change the prompts of the documents kept). When the few-shot documents are the
// evaluated split itself, the harness draws k + 1 and drops any example equal to the evaluated document.
import type { Located } from './data.ts';
import { PythonRandom } from './python_random.ts';
import type { MetricValue, TaskSpec } from './tasks.ts';

/** The harness's default few-shot seed (simple_evaluate's fewshot_random_seed). */
export const DEFAULT_FEWSHOT_SEED = 1234;

export interface FewshotOptions {
  /** Examples per prompt (default 0). */
  numFewshot?: number;
  /** Where examples come from; omitted = the evaluated documents themselves (the "same split" rule applies). */
  fewshotDocs?: readonly Located<unknown>[] | null;
  /** Seed of the 'default' sampler (default 1234). */
  seed?: number;
  /** Evaluate only the first N documents (an integer), or a fraction in (0, 1) of them (rounded up), as --limit. */
  limit?: number | null;
}

/** One document's requests: a shared context and one continuation per choice. */
export interface DocRequests {
  /** Index of the document in the evaluated list. */
  docIndex: number;
  file: string;
  line: number;
  context: string;
  /** target_delimiter + choice, in choice order. */
  continuations: string[];
  /** The answer index (the harness's doc_to_target). */
  target: number;
}

/** A task bound to its documents: the requests to score, and how to turn their log-likelihoods into metrics. */
export interface PreparedTask {
  readonly name: string;
  readonly alias: string;
  readonly version: number;
  readonly numFewshot: number;
  readonly requests: readonly DocRequests[];
  /** lls[d][i]: log-likelihood of continuation i of requests[d]. */
  evaluate(lls: readonly (readonly number[])[]): TaskOutcome;
}

export interface TaskOutcome {
  metrics: MetricValue[];
  /** Per-document result (task-specific fields: pred / gold / acc ... ). */
  perDoc: unknown[];
  n: number;
}

/** Number of documents --limit keeps: an integer count, or ceil(fraction * n) for a fraction in (0, 1). */
export function limitCount(n: number, limit: number | null | undefined): number {
  if (limit === null || limit === undefined) return n;
  if (!(limit > 0)) throw new RangeError(`limit must be > 0, got ${limit}`);
  if (limit < 1) return Math.ceil(limit * n);
  if (!Number.isInteger(limit)) throw new RangeError(`limit must be an integer or a fraction in (0, 1), got ${limit}`);
  return Math.min(n, limit);
}

/** Binds a task to documents and builds every prompt. Few-shot documents must be of the task's doc type. */
export function prepareTask<D, S>(spec: TaskSpec<D, S>, docs: readonly Located<D>[], opts: FewshotOptions = {}): PreparedTask {
  const k = opts.numFewshot ?? 0;
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`numFewshot must be an integer >= 0, got ${k}`);
  const sameSplit = opts.fewshotDocs === undefined || opts.fewshotDocs === null;
  const pool = (sameSplit ? docs : opts.fewshotDocs) as readonly Located<D>[];
  const n = limitCount(docs.length, opts.limit);
  const rnd = new PythonRandom(opts.seed ?? DEFAULT_FEWSHOT_SEED);
  const requests: DocRequests[] = [];
  for (let i = 0; i < n; i++) {
    const d = docs[i];
    let context = spec.description(d.doc);
    if (k > 0) context += fewshotBlock(spec, d, k, pool, sameSplit, rnd);
    context += spec.docToText(d.doc);
    requests.push({
      docIndex: i,
      file: d.file,
      line: d.line,
      context,
      continuations: spec.docToChoice(d.doc).map((c) => spec.targetDelimiter + c),
      target: spec.docToTarget(d.doc),
    });
  }
  const kept = docs.slice(0, n).map((d) => d.doc);
  return {
    name: spec.name,
    alias: spec.alias,
    version: spec.version,
    numFewshot: k,
    requests,
    evaluate(lls) {
      if (lls.length !== requests.length) throw new RangeError(`${spec.name}: ${requests.length} documents but ${lls.length} log-likelihood lists`);
      const scores = kept.map((doc, i) => spec.score(doc, lls[i]));
      return { metrics: spec.aggregate(kept, scores), perDoc: scores, n: kept.length };
    },
  };
}

/** The k labelled examples (each followed by the few-shot delimiter) for one evaluated document. */
function fewshotBlock<D, S>(spec: TaskSpec<D, S>, doc: Located<D>, k: number, pool: readonly Located<D>[], sameSplit: boolean, rnd: PythonRandom): string {
  const draw = sameSplit ? k + 1 : k;
  if (draw > pool.length)
    throw new RangeError(`${spec.name}: ${k}-shot needs ${draw} few-shot document${draw === 1 ? '' : 's'}${sameSplit ? ` (k + 1: the evaluated document is drawn from the same ${pool.length})` : ''}, only ${pool.length} available`);
  const drawn = spec.fewshotSampler === 'first_n' ? pool.slice(0, draw) : rnd.sample(pool, draw);
  const examples = drawn.filter((x) => x.key !== doc.key).slice(0, k);
  let out = '';
  for (const ex of examples) {
    const target = spec.docToTarget(ex.doc);
    const choices = spec.docToChoice(ex.doc);
    if (!(target >= 0 && target < choices.length)) throw new RangeError(`${spec.name}: few-shot example at ${ex.file} line ${ex.line} has target ${target} outside its ${choices.length} choices`);
    out += spec.docToText(ex.doc) + spec.targetDelimiter + choices[target] + spec.fewshotDelimiter;
  }
  return out;
}
