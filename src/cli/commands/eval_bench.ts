// `alignkit eval bench`: lm-evaluation-harness-style multiple-choice benchmarks (MMLU, ARC, HellaSwag, TruthfulQA,
// BBQ, your own MC JSONL) scored by log-likelihood, with the harness's prompts and results table; and two
// model-based intrinsic tools: `eval perplexity` (sliding-window perplexity of texts) and `eval embed`
// (hidden-state embeddings: similarity, neighbours, silhouette, PCA / t-SNE SVG maps).
// Errors print one line `alignkit <command>: <message>` and exit with code 1. See docs/eval-harness.md.
//
// Two ways to wire it: registerEvalBench(evalCommand) adds bench / perplexity / embed to an existing `eval`
// command group; registerEvalBenchStandalone(program) adds top-level eval-bench / eval-perplexity / eval-embed.
import fs from 'node:fs';
import nodePath from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { readRows } from '../../data/prep/stream.ts';
import { PrepError } from '../../data/prep/errors.ts';
import { BENCH_TASKS, loadBenchmark, renderResults, resultsJson, runBenchmark, type McStyle } from '../../eval/harness/index.ts';
import { perplexity } from '../../eval/model_perplexity.ts';
import { embedTexts, nearestNeighbours, silhouetteScore, type Pooling } from '../../eval/model_embeddings.ts';
import { pca, tsne } from '../../eval/model_projection.ts';
import { scatterSvg, writeTextAtomic } from '../../eval/model_plot.ts';
import { AtomicFile } from '../../io/file.ts';
import { loadModel, type PretrainedLM } from '../../models/index.ts';
import { AlignkitError } from '../../tensor/errors.ts';
import { loadTokenizer, type Tokenizer } from '../../tokenizer/index.ts';

// ------------------------------------------------------------------------------------------- arg parsers

function intArg(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}.`);
    return n;
  };
}

function limitArg(v: string): number {
  const n = Number(v);
  if (!(n > 0) || (n >= 1 && !Number.isSafeInteger(n))) throw new InvalidArgumentError('--limit must be a positive integer (documents) or a fraction in (0, 1).');
  return n;
}

function positiveArg(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a positive number.`);
    return n;
  };
}

function choiceArg<T extends string>(name: string, options: readonly T[]) {
  return (v: string): T => {
    if (!(options as readonly string[]).includes(v)) throw new InvalidArgumentError(`${name} must be one of ${options.join(', ')}.`);
    return v as T;
  };
}

// ------------------------------------------------------------------------------------------- plumbing

/** Runs a command body; errors become one line `alignkit <label>: message` and exit code 1. */
function action<A extends unknown[]>(label: string, fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      const err = e as Error;
      const known = e instanceof AlignkitError || e instanceof RangeError;
      console.error(`alignkit ${label}: ${known ? err.message : `${err.name}: ${err.message}`}`.replace(/[\r\n]+/g, ' '));
      if (process.env.ALIGNKIT_DEBUG) console.error(err.stack);
      process.exitCode = 1;
    }
  };
}

function loadModelAndTokenizer(modelDir: string, tokenizerDir: string | undefined): { model: PretrainedLM; tok: Tokenizer } {
  const model = loadModel(modelDir, { trainable: false });
  try {
    return { model, tok: loadTokenizer(tokenizerDir ?? modelDir, { requireConfig: false }) };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

function writeJsonAtomic(path: string, value: unknown): void {
  const f = new AtomicFile('json', path);
  try {
    f.write(Buffer.from(`${JSON.stringify(value)}\n`, 'utf8'));
    f.publish();
  } catch (e) {
    f.abort();
    throw e;
  }
}

/** A progress line on stderr at most every 2 s (and at the end), only when stderr is a terminal or forced. */
function progress(label: string, enabled: boolean): (done: number, total: number) => void {
  let last = 0;
  const t0 = performance.now();
  return (done, total) => {
    if (!enabled) return;
    const now = performance.now();
    if (done < total && now - last < 2000) return;
    last = now;
    const rate = done / ((now - t0) / 1000);
    process.stderr.write(`${label}: ${done}/${total} documents, ${rate.toFixed(2)}/s${done === total ? '\n' : '\r'}`);
  };
}

/** Texts (and optional labels) of a .txt file (one text) or a JSONL / JSON / CSV / Parquet file. */
async function readTexts(file: string, field: string, labelField: string | undefined, skipInvalid: boolean, limit?: number): Promise<{ texts: string[]; labels: string[] | null; skipped: number }> {
  if (/\.txt$/i.test(file)) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new PrepError(file, {}, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message);
    }
    if (labelField) throw new PrepError(file, {}, '--label-field needs a JSONL / CSV / Parquet file (a .txt file is one text)');
    return { texts: [text], labels: null, skipped: 0 };
  }
  const reader = readRows(file, { skipInvalid, expect: [{ field, type: 'string' }, ...(labelField ? [{ field: labelField, type: 'any' as const }] : [])] });
  const texts: string[] = [];
  const labels: string[] = [];
  for await (const { row } of reader) {
    texts.push(row[field] as string);
    if (labelField) labels.push(String(row[labelField]));
    if (limit !== undefined && texts.length >= limit) break;
  }
  if (texts.length === 0) throw new PrepError(file, {}, 'no texts');
  return { texts, labels: labelField ? labels : null, skipped: reader.stats.skipped };
}

// ----------------------------------------------------------------------------------------------- bench

interface BenchOpts {
  task?: string;
  format?: 'mc-jsonl';
  model: string;
  tokenizer?: string;
  data: string;
  fewshotData?: string;
  numFewshot: number;
  limit?: number;
  seed: number;
  mcStyle: McStyle;
  maxLength?: number;
  prefixCache: boolean;
  specialTokens: 'auto' | 'on' | 'off';
  skipInvalid?: boolean;
  output?: string;
  progress?: boolean;
  json?: boolean;
}

function addBench(cmd: Command, label: string): Command {
  return cmd
    .description(
      `multiple-choice benchmarks as EleutherAI's lm-evaluation-harness scores them: the harness's prompts (few-shot, delimiters, descriptions), the log-likelihood of each choice given the context, acc / acc_norm / mc2 / BBQ bias scores with stderr, and its results table. Tasks: ${BENCH_TASKS.join(', ')}, mmlu_<subject>; or --format mc-jsonl for your own {question, choices, answer} file`,
    )
    .option('--task <name>', `task: ${BENCH_TASKS.join(', ')} or mmlu_<subject> (with --format mc-jsonl: the name shown, default mc)`)
    .option('--format <fmt>', 'mc-jsonl: your own multiple-choice file ({question, choices, answer: index or choice text})', choiceArg('--format', ['mc-jsonl'] as const))
    .requiredOption('--model <dir>', 'Hugging Face model folder (config.json + safetensors)')
    .option('--tokenizer <dir>', 'folder with tokenizer.json (default: the model folder)')
    .requiredOption('--data <path>', 'the benchmark file in its native format (MMLU: a CSV, a folder of CSVs, or hendrycks test/ + dev/ folders; cais JSONL; ARC AI2 JSONL; HellaSwag JSONL or llama.cpp .txt; TruthfulQA JSONL / mc_task.json / CSV; BBQ JSONL); JSONL / JSON / CSV / Parquet of the Hugging Face layouts also work')
    .option('--fewshot-data <path>', 'few-shot examples from this file or folder (default: MMLU dev/ next to test/, else the evaluated file itself, without the evaluated document)')
    .option('--num-fewshot <k>', 'examples per prompt', intArg('--num-fewshot', 0), 0)
    .option('--limit <n>', 'evaluate only the first n documents per task (or a fraction in (0, 1))', limitArg)
    .option('--seed <n>', "seed of the random few-shot sampler (the harness's default is 1234)", intArg('--seed', 0), 1234)
    .option('--mc-style <style>', 'with --format mc-jsonl: cloze (score each choice text after "Answer:") or letters (list the choices, score A/B/C...)', choiceArg('--mc-style', ['cloze', 'letters'] as const), 'cloze')
    .option('--max-length <n>', "longest input in tokens; longer requests lose their oldest tokens (default: the model's max_position_embeddings)", intArg('--max-length', 2))
    .option('--no-prefix-cache', 'score each (context + choice) as its own row instead of running the shared context once')
    .option('--special-tokens <mode>', "auto: the tokenizer's default (BOS...) unless the text starts with BOS, as lm_eval 0.4.13; on; off", choiceArg('--special-tokens', ['auto', 'on', 'off'] as const), 'auto')
    .option('--skip-invalid', 'count and skip bad records instead of stopping at the first')
    .option('--output <file>', 'also write the results with every document (prompt, choices, log-likelihoods) as JSON (atomically)')
    .option('--progress', 'print progress to stderr even when it is not a terminal')
    .option('--json', 'print one JSON object instead of the table')
    .action(
      action(label, async (o: BenchOpts) => {
        if (o.format !== 'mc-jsonl' && !o.task) throw new AlignkitError(`--task is required (${BENCH_TASKS.join(', ')}, mmlu_<subject>), or --format mc-jsonl`);
        const bench = await loadBenchmark({
          task: o.task, format: o.format, data: o.data, fewshotData: o.fewshotData ?? null, numFewshot: o.numFewshot, limit: o.limit ?? null,
          seed: o.seed, mcStyle: o.mcStyle, skipInvalid: o.skipInvalid,
        });
        const { model, tok } = loadModelAndTokenizer(o.model, o.tokenizer);
        try {
          const results = runBenchmark(bench, model, tok, {
            maxLength: o.maxLength, prefixCache: o.prefixCache,
            addSpecialTokens: o.specialTokens === 'auto' ? 'auto' : o.specialTokens === 'on',
            onProgress: progress(label, !o.json && (o.progress === true || process.stderr.isTTY === true)),
          });
          const config = {
            model: o.model, data: o.data, fewshot: bench.fewshotSource, num_fewshot: o.numFewshot, limit: o.limit ?? null, seed: o.seed,
            max_length: o.maxLength ?? model.config.maxPositions, prefix_cache: o.prefixCache, special_tokens: o.specialTokens,
          };
          const skipped = { skipped: bench.skipped, skip_samples: bench.skipSamples.slice(0, 10) };
          if (o.output) writeJsonAtomic(o.output, { ...resultsJson(results, true), config, ...skipped });
          if (o.json) console.log(JSON.stringify({ ...resultsJson(results, false), config, ...skipped }));
          else {
            process.stdout.write(renderResults(results));
            if (bench.skipped) console.log(`skipped ${bench.skipped} invalid record(s), e.g.: ${bench.skipSamples[0]}`);
            console.log(`${results.documents} documents in ${results.seconds.toFixed(1)} s (${(results.documents / Math.max(results.seconds, 1e-9)).toFixed(2)}/s)${o.output ? `; details in ${o.output}` : ''}`);
          }
        } finally {
          model.dispose();
        }
      }),
    );
}

// ------------------------------------------------------------------------------------------ perplexity

interface PerplexityOpts {
  model: string;
  tokenizer?: string;
  data: string;
  field: string;
  maxLength?: number;
  stride?: number;
  limit?: number;
  skipInvalid?: boolean;
  json?: boolean;
}

function addPerplexity(cmd: Command, label: string): Command {
  return cmd
    .description("perplexity of a model on texts, by HF's sliding-window method: windows of --max-length tokens every --stride tokens, each token scored once with the context its window gives")
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .option('--tokenizer <dir>', 'folder with tokenizer.json (default: the model folder)')
    .requiredOption('--data <file>', 'a .txt file (one text) or JSONL / JSON / CSV / Parquet rows with a text field')
    .option('--field <name>', 'the text field of each row', 'text')
    .option('--max-length <n>', "window length in tokens (default: the model's max_position_embeddings)", intArg('--max-length', 2))
    .option('--stride <n>', 'tokens between window starts (default: --max-length, disjoint windows)', intArg('--stride', 1))
    .option('--limit <n>', 'only the first n rows', intArg('--limit', 1))
    .option('--skip-invalid', 'count and skip bad rows instead of stopping at the first')
    .option('--json', 'print one JSON object')
    .action(
      action(label, async (o: PerplexityOpts) => {
        const { texts, skipped } = await readTexts(o.data, o.field, undefined, o.skipInvalid ?? false, o.limit);
        const { model, tok } = loadModelAndTokenizer(o.model, o.tokenizer);
        try {
          const maxLength = o.maxLength ?? model.config.maxPositions;
          const stride = o.stride ?? maxLength;
          if (stride > maxLength) throw new AlignkitError(`--stride ${stride} must not exceed --max-length ${maxLength}.`);
          const t0 = performance.now();
          const r = perplexity(model, texts, { maxLength, stride, tokenizer: tok });
          const seconds = (performance.now() - t0) / 1000;
          const out = { perplexity: r.perplexity, mean_nll: r.meanNll, scored_tokens: r.scored, windows: r.windows, texts: texts.length, skipped, max_length: maxLength, stride, seconds };
          if (o.json) console.log(JSON.stringify(out));
          else {
            console.log(`perplexity ${r.perplexity.toFixed(4)} (mean NLL ${r.meanNll.toFixed(4)} nats) over ${r.scored} tokens of ${texts.length} text(s)`);
            console.log(`${r.windows} windows of <= ${maxLength} tokens, stride ${stride}; ${seconds.toFixed(1)} s${skipped ? `; skipped ${skipped} invalid row(s)` : ''}`);
          }
        } finally {
          model.dispose();
        }
      }),
    );
}

// ---------------------------------------------------------------------------------------------- embed

interface EmbedOpts {
  model: string;
  tokenizer?: string;
  data: string;
  field: string;
  labelField?: string;
  pooling: Pooling;
  maxLength?: number;
  limit?: number;
  neighbours: number;
  pcaSvg?: string;
  tsneSvg?: string;
  tsnePerplexity?: number;
  seed: number;
  output?: string;
  skipInvalid?: boolean;
  json?: boolean;
}

function addEmbed(cmd: Command, label: string): Command {
  return cmd
    .description('embed texts with a model (mean or last-token pooled final hidden states): nearest neighbours by cosine similarity, silhouette of the labels, PCA and t-SNE maps as SVG')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .option('--tokenizer <dir>', 'folder with tokenizer.json (default: the model folder)')
    .requiredOption('--data <file>', 'JSONL / JSON / CSV / Parquet rows with a text field (and optionally a label field)')
    .option('--field <name>', 'the text field', 'text')
    .option('--label-field <name>', 'a label per row: silhouette score and plot colours')
    .option('--pooling <how>', 'mean (average over tokens) or last (the last token)', choiceArg('--pooling', ['mean', 'last'] as const), 'mean')
    .option('--max-length <n>', 'cut texts to this many tokens', intArg('--max-length', 1))
    .option('--limit <n>', 'only the first n rows', intArg('--limit', 2))
    .option('--neighbours <k>', 'nearest neighbours to list per text', intArg('--neighbours', 0), 3)
    .option('--pca-svg <file>', 'write a PCA scatter plot (SVG)')
    .option('--tsne-svg <file>', 'write a t-SNE scatter plot (SVG; exact t-SNE, O(n^2): up to a few thousand texts)')
    .option('--tsne-perplexity <p>', 't-SNE perplexity (default min(30, (n - 1) / 3))', positiveArg('--tsne-perplexity'))
    .option('--seed <n>', 'seed of PCA start vectors and t-SNE initial positions', intArg('--seed', 0), 0)
    .option('--output <file>', 'write vectors, 2-D coordinates, neighbours and silhouette as JSON (atomically)')
    .option('--skip-invalid', 'count and skip bad rows instead of stopping at the first')
    .option('--json', 'print one JSON object')
    .action(
      action(label, async (o: EmbedOpts) => {
        const { texts, labels, skipped } = await readTexts(o.data, o.field, o.labelField, o.skipInvalid ?? false, o.limit);
        if (texts.length < 2) throw new AlignkitError('embed needs at least 2 texts');
        const { model, tok } = loadModelAndTokenizer(o.model, o.tokenizer);
        let vectors: Float64Array[];
        try {
          vectors = embedTexts(model, tok, texts, { pooling: o.pooling, maxLength: o.maxLength });
        } finally {
          model.dispose();
        }
        const neighbours = o.neighbours > 0 ? nearestNeighbours(vectors, Math.min(o.neighbours, texts.length - 1)) : [];
        const nClusters = labels ? new Set(labels).size : 0;
        const silhouette = labels && nClusters >= 2 && nClusters <= texts.length - 1 ? silhouetteScore(vectors, labels, 'cosine') : null;
        const captions = texts.map((t) => t.replace(/\s+/g, ' ').trim());
        const wantPca = o.pcaSvg !== undefined || o.output !== undefined;
        const p = wantPca ? pca(vectors, { seed: o.seed }) : null;
        let t: ReturnType<typeof tsne> | null = null;
        if (o.tsneSvg) {
          if (texts.length < 4) throw new AlignkitError('t-SNE needs at least 4 texts');
          t = tsne(vectors, { perplexity: o.tsnePerplexity ?? Math.min(30, (texts.length - 1) / 3), seed: o.seed });
        }
        const plotOpts = { labels: labels ?? undefined, captions: texts.length <= 60 ? captions : undefined };
        if (o.pcaSvg && p) writeTextAtomic(o.pcaSvg, scatterSvg(p.projection, { ...plotOpts, title: `PCA of ${texts.length} ${o.pooling}-pooled embeddings (${(100 * (p.explainedVarianceRatio[0] + p.explainedVarianceRatio[1])).toFixed(1)}% of variance)` }));
        if (o.tsneSvg && t) writeTextAtomic(o.tsneSvg, scatterSvg(t.embedding, { ...plotOpts, title: `t-SNE of ${texts.length} ${o.pooling}-pooled embeddings` }));
        const summary = {
          texts: texts.length, skipped, dimensions: vectors[0].length, pooling: o.pooling,
          silhouette: silhouette ? silhouette.score : null, pca_explained_variance_ratio: p ? p.explainedVarianceRatio : null,
          neighbours: neighbours.map((ns) => ns.map((n) => ({ index: n.index, similarity: n.similarity }))),
          files: [o.pcaSvg, o.tsneSvg, o.output].filter((f): f is string => f !== undefined).map((f) => nodePath.resolve(f)),
        };
        if (o.output)
          writeJsonAtomic(o.output, { ...summary, labels, vectors: vectors.map((v) => Array.from(v)), pca: p?.projection ?? null, tsne: t?.embedding ?? null, silhouette_samples: silhouette?.samples ?? null });
        if (o.json) console.log(JSON.stringify(summary));
        else {
          console.log(`${texts.length} texts -> ${vectors[0].length}-dimensional ${o.pooling}-pooled embeddings${skipped ? ` (skipped ${skipped} invalid rows)` : ''}`);
          if (silhouette) console.log(`silhouette (cosine) of the ${nClusters} labels: ${silhouette.score.toFixed(4)}`);
          const short = (s: string): string => (s.length > 60 ? `${s.slice(0, 59)}…` : s);
          neighbours.slice(0, 20).forEach((ns, i) => console.log(`${i}: ${short(captions[i])}\n    ${ns.map((n) => `${n.index} (${n.similarity.toFixed(3)})`).join(', ')}`));
          if (neighbours.length > 20) console.log(`... ${neighbours.length - 20} more (see --output)`);
          for (const f of summary.files) console.log(`wrote ${f}`);
        }
      }),
    );
}

// ------------------------------------------------------------------------------------------ registering

/**
 * Adds `bench`, `perplexity` and `embed` to an `eval` command group (`alignkit eval bench ...`). They are siblings,
 * not `bench perplexity`: commander lets a parent's options (bench's --model, --data) swallow a subcommand's
 * unless the whole program enables positional options.
 */
export function registerEvalBench(evalCommand: Command): Command {
  const label = evalCommand.name();
  const bench = addBench(evalCommand.command('bench'), `${label} bench`);
  addPerplexity(evalCommand.command('perplexity'), `${label} perplexity`);
  addEmbed(evalCommand.command('embed'), `${label} embed`);
  return bench;
}

/** Adds top-level `eval-bench`, `eval-perplexity` and `eval-embed` commands with the same options. */
export function registerEvalBenchStandalone(program: Command): Command {
  const bench = addBench(program.command('eval-bench'), 'eval-bench');
  addPerplexity(program.command('eval-perplexity'), 'eval-perplexity');
  addEmbed(program.command('eval-embed'), 'eval-embed');
  return bench;
}
