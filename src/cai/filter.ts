// The constitutional filter ("constitutional supervised learning"): a small classifier with a reward-model head,
// trained on constitution-labelled responses, that scores generations so the unconstitutional ones can be dropped
// (a threshold) or the candidates of a prompt reranked (keep the best k).
//
// Training reuses the reward-model trainer as it is (src/trainers/reward.ts: Bradley–Terry loss on a scalar head,
// saved as a *ForSequenceClassification folder). Its data are preference pairs — from `cai label` (AI feedback),
// from `cai revise` (pairs.jsonl: the revision over the first answer), or built here from single responses
// labelled good/bad ({prompt, response, label}): every good response of a prompt paired with every bad one.
//
// Scoring renders (prompt, response) exactly as the trainer did — through tokenizePreference, so a chat model's
// template, BOS and EOS match — and reads the head at the last token (RewardScorer).

import fs from 'node:fs';
import path from 'node:path';
import { DataError, typeName } from '../data/errors.ts';
import { tokenizePreference, type Turns } from '../data/preference.ts';
import { openRowSource } from '../data/source.ts';
import { AlignkitError } from '../tensor/errors.ts';
import { loadChatTemplate, loadTokenizer, type Tokenizer } from '../tokenizer/index.ts';
import { parseConfig, RewardConfigSchema } from '../train/config.ts';
import { RewardScorer, runReward } from '../trainers/reward.ts';
import { deriveSeed, LocalChatModel } from './chat.ts';
import { readRows, writeJson, writeJsonl } from './io.ts';
import { resolveSampling, type CaiSamplingOptions } from './revise.ts';

// ------------------------------------------------------------------------------------------------ training

/** Written next to the classifier: {format: 'chat' | 'plain', max_length}. */
export const FILTER_META = 'cai_filter.json';

export interface TrainFilterOptions {
  /** Base model folder (the classifier starts from it). */
  model: string;
  /** Preference JSONL ({prompt, chosen, rejected}) or labelled responses ({prompt, response, label}). */
  data: string;
  outputDir: string;
  maxSteps?: number;
  learningRate?: number;
  batchSize?: number;
  maxLength?: number;
  /** Fraction of pairs held out to report accuracy. Default 0 (none). */
  evalFraction?: number;
  seed?: number;
  console?: boolean;
}

export interface TrainFilterResult {
  outputDir: string;
  pairs: number;
  trainLoss: number;
  /** Held-out pairwise accuracy (null without evalFraction). */
  evalAccuracy: number | null;
}

/**
 * Labelled responses → preference pairs: within each prompt, every response labelled good (true / 1) is chosen
 * over every response labelled bad. Prompts with only one kind give no pairs.
 */
export function pairsFromLabels(rows: readonly { prompt: Turns; response: Turns; label: boolean }[]): { prompt: Turns; chosen: Turns; rejected: Turns }[] {
  const byPrompt = new Map<string, { prompt: Turns; good: Turns[]; bad: Turns[] }>();
  for (const r of rows) {
    const key = JSON.stringify(r.prompt);
    const g = byPrompt.get(key) ?? { prompt: r.prompt, good: [], bad: [] };
    (r.label ? g.good : g.bad).push(r.response);
    byPrompt.set(key, g);
  }
  const out: { prompt: Turns; chosen: Turns; rejected: Turns }[] = [];
  for (const g of byPrompt.values()) for (const c of g.good) for (const r of g.bad) if (JSON.stringify(c) !== JSON.stringify(r)) out.push({ prompt: g.prompt, chosen: c, rejected: r });
  return out;
}

/** The labelled rows of a file ({prompt, response, label}), or null for a preference file; and whether prompts are strings. */
async function labelledRows(file: string): Promise<{ rows: { prompt: Turns; response: Turns; label: boolean }[] | null; plain: boolean }> {
  const src = await openRowSource(file);
  try {
    if (src.length === 0) throw new AlignkitError(`${file}: no rows`);
    const first = await src.get(0);
    const plain = typeof first.prompt === 'string';
    if (!('label' in first)) return { rows: null, plain };
    const out: { prompt: Turns; response: Turns; label: boolean }[] = [];
    for (let i = 0; i < src.length; i++) {
      const row = await src.get(i);
      const line = src.lineOf(i);
      const label = row.label;
      if (label !== true && label !== false && label !== 0 && label !== 1) throw new DataError(file, line, 'label', `expected true/false or 1/0, got ${typeName(label)}`);
      for (const f of ['prompt', 'response'] as const) if (typeof row[f] !== 'string' && !Array.isArray(row[f])) throw new DataError(file, line, f, `expected a string or a list of messages, got ${typeName(row[f])}`);
      out.push({ prompt: row.prompt as Turns, response: row.response as Turns, label: label === true || label === 1 });
    }
    return { rows: out, plain };
  } finally {
    await src.close();
  }
}

/** Trains the filter classifier with the reward-model trainer. */
export async function trainFilter(o: TrainFilterOptions): Promise<TrainFilterResult> {
  let data = o.data;
  const { rows: labelled, plain } = await labelledRows(o.data);
  if (labelled) {
    const pairs = pairsFromLabels(labelled);
    if (pairs.length === 0) throw new AlignkitError(`${o.data}: no prompt has both a good (label true) and a bad (label false) response, so there are no pairs to learn from`);
    fs.mkdirSync(o.outputDir, { recursive: true });
    data = path.join(o.outputDir, 'filter_pairs.jsonl');
    writeJsonl(data, pairs);
  }
  const cfg = parseConfig(RewardConfigSchema, {
    overrides: {
      model_name_or_path: o.model, dataset_path: data, output_dir: o.outputDir, max_steps: o.maxSteps ?? 100, learning_rate: o.learningRate ?? 1e-3,
      per_device_train_batch_size: o.batchSize ?? 8, max_length: o.maxLength ?? 512, max_prompt_length: null, seed: o.seed ?? 0,
      eval_fraction: o.evalFraction ?? 0, eval_strategy: (o.evalFraction ?? 0) > 0 ? 'steps' : 'no', eval_steps: o.maxSteps ?? 100,
      save_strategy: 'no', report_to: ['none'], disable_tqdm: o.console === false, logging_steps: 10, overwrite_output_dir: true, truncation_mode: 'keep_end',
    },
  });
  const r = await runReward(cfg, { console: o.console ?? false });
  // How the classifier saw its texts, so that scoring renders them the same way.
  writeJson(path.join(r.outputDir, FILTER_META), { format: plain ? 'plain' : 'chat', max_length: o.maxLength ?? 512, data: o.data });
  return { outputDir: r.outputDir, pairs: r.pairs, trainLoss: r.trainLoss, evalAccuracy: r.lastEval?.eval_accuracy ?? null };
}

// ------------------------------------------------------------------------------------------------ scoring

/** A trained filter: scores (prompt, response) pairs rendered as the reward trainer renders them. */
export class ConstitutionalFilter {
  private readonly scorer: RewardScorer;
  private readonly tok: Tokenizer;
  private readonly chat: boolean;
  constructor(
    readonly dir: string,
    readonly maxLength = 512,
  ) {
    this.tok = loadTokenizer(dir, { requireConfig: false });
    // The training format when recorded (cai filter train), else chat whenever the tokenizer has a template.
    const metaFile = path.join(dir, FILTER_META);
    const meta = fs.existsSync(metaFile) ? (JSON.parse(fs.readFileSync(metaFile, 'utf8')) as { format?: string }) : {};
    this.chat = meta.format !== undefined ? meta.format === 'chat' : loadChatTemplate(dir) !== null;
    this.scorer = new RewardScorer(dir);
  }

  /** Token ids of prompt + response (+ EOS), as the reward trainer builds them. */
  encode(prompt: string, response: string): number[] {
    const ex = this.chat
      ? { prompt: [{ role: 'user' as const, content: prompt }], chosen: [{ role: 'assistant' as const, content: response }], rejected: [{ role: 'assistant' as const, content: response }], margin: null, scoreChosen: null, scoreRejected: null }
      : { prompt, chosen: response, rejected: response, margin: null, scoreChosen: null, scoreRejected: null };
    const t = tokenizePreference(this.tok, ex, { maxLength: this.maxLength, truncation: 'keep_end' });
    return [...t.promptIds, ...t.chosenIds];
  }

  score(items: readonly { prompt: string; response: string }[], batchSize = 16): number[] {
    const out: number[] = [];
    for (let i = 0; i < items.length; i += batchSize) out.push(...this.scorer.score(items.slice(i, i + batchSize).map((x) => this.encode(x.prompt, x.response)), this.tok.padId ?? 0));
    return out;
  }

  dispose(): void {
    this.scorer.dispose();
  }
}

export interface FilteredRow {
  prompt: string;
  /** The best kept candidate (SFT data: {prompt, completion}). */
  completion: string;
  score: number;
  candidates: { text: string; score: number; kept: boolean }[];
}

/**
 * Reranks each prompt's candidates by score (ties keep input order) and keeps the best `keep` whose score is at
 * least `threshold`. Prompts left with nothing are dropped.
 */
export function rerank(prompt: string, texts: readonly string[], scores: readonly number[], keep: number, threshold: number | null): FilteredRow | null {
  const order = texts.map((_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  const kept = new Set(order.filter((i) => threshold === null || scores[i] >= threshold).slice(0, keep));
  if (kept.size === 0) return null;
  const best = order.find((i) => kept.has(i)) as number;
  return { prompt, completion: texts[best], score: scores[best], candidates: order.map((i) => ({ text: texts[i], score: scores[i], kept: kept.has(i) })) };
}

export interface ApplyFilterOptions extends CaiSamplingOptions {
  /** The trained classifier folder. */
  classifier: string;
  /** JSONL rows {prompt, responses: [...]} / {prompt, response}, or {prompt} with `model` and `n`. */
  input: string;
  output: string;
  /** Model folder that samples `n` candidates for rows without responses. */
  model?: string;
  /** Candidates sampled per prompt. Default 4. */
  n?: number;
  /** Candidates kept per prompt (best first). Default 1. */
  keep?: number;
  /** Drop candidates scoring below this. Default: none. */
  threshold?: number | null;
  seed?: number;
}

export interface ApplyFilterResult {
  path: string;
  /** Prompts written. */
  count: number;
  /** Prompts with no candidate at or above the threshold. */
  dropped: number;
  candidates: number;
  meanBestScore: number;
}

function candidatesOf(file: string, line: number, row: Record<string, unknown>): string[] | null {
  if (row.responses !== undefined) {
    const v = row.responses;
    if (!Array.isArray(v) || v.length === 0) throw new DataError(file, line, 'responses', `expected a non-empty list of strings, got ${typeName(v)}`);
    v.forEach((x, k) => {
      if (typeof x !== 'string') throw new DataError(file, line, `responses[${k}]`, `expected a string, got ${typeName(x)}`);
    });
    return v as string[];
  }
  if (row.response !== undefined) {
    if (typeof row.response !== 'string') throw new DataError(file, line, 'response', `expected a string, got ${typeName(row.response)}`);
    return [row.response];
  }
  return null;
}

/** `alignkit cai filter apply`: score every candidate, rerank, keep the best, write SFT-ready JSONL. */
export async function applyFilter(o: ApplyFilterOptions): Promise<ApplyFilterResult> {
  const keep = o.keep ?? 1;
  const n = o.n ?? 4;
  if (!Number.isInteger(keep) || keep < 1) throw new AlignkitError(`cai filter: keep must be an integer >= 1, got ${keep}`);
  if (!Number.isInteger(n) || n < 1) throw new AlignkitError(`cai filter: n must be an integer >= 1, got ${n}`);
  const rows = await readRows(o.input, 'input');
  const given = rows.map((r) => candidatesOf(o.input, r.line, r.row));
  const missing = given.findIndex((g) => g === null);
  if (missing >= 0 && o.model === undefined) throw new DataError(o.input, rows[missing].line, 'responses', 'missing, and there is no --model to sample candidates from');
  const filter = new ConstitutionalFilter(o.classifier);
  try {
    if (missing >= 0) {
      const policy = LocalChatModel.load(o.model as string);
      try {
        const need = rows.map((_, i) => i).filter((i) => given[i] === null);
        const texts = await policy.chat(need.flatMap((i) => Array.from({ length: n }, (_, k) => ({ messages: [{ role: 'user' as const, content: rows[i].prompt }], seed: deriveSeed(o.seed ?? 0, i, k) }))), resolveSampling(o));
        need.forEach((i, k) => (given[i] = texts.slice(k * n, (k + 1) * n)));
      } finally {
        policy.dispose();
      }
    }
    const out: (FilteredRow & { line: number })[] = [];
    let candidates = 0;
    rows.forEach((r, i) => {
      const texts = given[i] as string[];
      candidates += texts.length;
      const row = rerank(r.prompt, texts, filter.score(texts.map((t) => ({ prompt: r.prompt, response: t }))), keep, o.threshold ?? null);
      if (row) out.push({ ...row, line: r.line });
    });
    writeJsonl(o.output, out);
    return { path: path.resolve(o.output), count: out.length, dropped: rows.length - out.length, candidates, meanBestScore: out.length ? out.reduce((s, r) => s + r.score, 0) / out.length : Number.NaN };
  } finally {
    filter.dispose();
  }
}
