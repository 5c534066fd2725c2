// Rollouts for the online RL trainers (PPO, GRPO, RLOO), and the training task they share.
//
// A rollout: prompts from the dataset → responses sampled from the current policy (temperature, top-k/top-p, at
// most response_length tokens, stopping at EOS) → per-token log-probs of the policy ("old" log-probs) and of the
// reference, and the value head's values, in one no-grad forward each → scores from the reward sources (samples
// whose reward failed are dropped with a warning) → the method's advantages. The PPO epochs then run over that
// batch in minibatches through the shared training loop (src/train/loop.ts), so checkpoints, exact resume,
// NaN/Inf skip-and-count, gradient clipping, the learning-rate schedule and logging are those of every trainer:
// the loop's "micro-batches" are the rollout's minibatch pieces, and a new rollout is collected inside
// nextMicroBatch() when the previous one is used up.
//
// Token layout of a batch of rows ([rows, P + R], P = longest prompt, R = longest response): each prompt is
// LEFT-padded to P, its response RIGHT-padded to R (TRL's query + response layout). Positions come from the
// attention mask (positionIdsFromMask), so a padded row computes exactly what it would alone. Response slot j of
// row b is predicted by the hidden state at column P + j − 1. Per-token arrays of a rollout are row-major
// [rows, R] with responseMask 1 on the real response tokens (EOS included) and 0 on padding.
//
// Log-probs: one code path. Training and rollout scoring both call responseForward(), which gives the hidden
// states at the predicting positions to tokenLogprobs() (the fused LM-head kernel, logits / temperature), the same
// formula generate() uses for its returned log-probs (test/trainers/rl/rollout.test.ts checks all three agree).
//
// Determinism: the prompts of iteration i come from a BatchSampler (data_seed), row r of iteration i samples from
// its own Philox stream seeded by hash(seed, i, r), and the minibatch order of epoch e is a permutation keyed by
// (seed, i, e). Nothing else is random, so a resumed run (which restores the rollout buffer it was training on)
// continues bit for bit.

import fs from 'node:fs';
import path from 'node:path';
import { AlignkitError, exp, indexSelect, intTensor, linear, logSoftmax, linearLogprobEntropy, mul, neg, noGrad, reshape, sum, tidy, type Tensor } from '../../tensor/index.ts';
import { generate } from '../../generate/index.ts';
import { positionIdsFromMask, tokenLogprobs } from '../../generate/logprobs.ts';
import { applyChatTemplate, type ChatMessage, type ChatTemplate, type Tokenizer } from '../../tokenizer/index.ts';
import type { PretrainedLM } from '../../models/index.ts';
import { openRowSource } from '../../data/source.ts';
import { DataError, quote, typeName } from '../../data/errors.ts';
import { BatchSampler, Xoshiro128, permutation, splitTrainEval, type LoaderState } from '../../data/loader.ts';
import { writeAtomically } from '../../io/file.ts';
import { EventFileWriter } from '../../train/tensorboard.ts';
import { svgLinePlot } from '../../train/plot.ts';
import { trainDataPath, type OnPolicyConfig } from '../../train/config.ts';
import type { LoopResult, TrainTask } from '../../train/loop.ts';
import { loadPolicy, makeOptimizer, prepareOutputDir, runTrainer, type Policy } from '../../train/session.ts';
import { makeReference, type ReferencePolicy } from '../preference.ts';
import { AdaptiveKlController, FixedKlController, klControllerFromState, klPerToken, type KlController, type KlControllerState, type KlEstimator } from './kl.ts';
import { rewardsFromConfig, type CombinedReward, type RewardSample } from './rewards.ts';
import { loadCritic, withCritic, type Critic } from './critic.ts';

// ================================================================================================ prompts

export interface PromptSet {
  file: string;
  /** The prompt as the policy sees it (chat prompts rendered with the template and an assistant header). */
  texts: string[];
  ids: number[][];
  /** 1-based line (row) of each prompt in the file. */
  lines: number[];
  /** Rows skipped with skipInvalid. */
  skipped: number;
}

export interface LoadPromptsOptions {
  /** Row field holding the prompt (a string or a list of chat messages). Default 'prompt'. */
  field?: string;
  chatTemplate?: ChatTemplate | null;
  /** The model's context: prompt + responseLength must fit. */
  maxPositions: number;
  responseLength: number;
  /** Count and skip rows that are malformed (never prompts that are too long: those are a config problem). */
  skipInvalid?: boolean;
}

function isMessageList(v: unknown): v is ChatMessage[] {
  return Array.isArray(v) && v.length > 0 && v.every((m) => m !== null && typeof m === 'object' && typeof (m as { role?: unknown }).role === 'string');
}

/**
 * Reads and tokenises the prompts of a .jsonl / .json / .parquet file (a string or a message list in `field`, or
 * a `messages` list) or a .txt file (one prompt per non-empty line). A prompt that does not leave room for
 * responseLength new tokens within the model's context is an error naming the file, the line and the prompt.
 */
export async function loadPrompts(file: string, tok: Tokenizer, o: LoadPromptsOptions): Promise<PromptSet> {
  const field = o.field ?? 'prompt';
  const out: PromptSet = { file, texts: [], ids: [], lines: [], skipped: 0 };
  const add = (text: string, line: number, chat: boolean): void => {
    const ids = tok.encode(text, chat ? { addSpecialTokens: false } : {});
    if (ids.length === 0) throw new DataError(file, line, field, 'the prompt is empty after tokenization');
    if (ids.length + o.responseLength > o.maxPositions)
      throw new AlignkitError(
        `${file}:${line}: field '${field}': the prompt ${quote(text)} has ${ids.length} tokens; with response_length ${o.responseLength} it needs ${ids.length + o.responseLength} positions, but the model has ${o.maxPositions}. Shorten the prompt, drop it, or lower response_length.`,
      );
    out.texts.push(text);
    out.ids.push(ids);
    out.lines.push(line);
  };
  if (/\.(txt|text)$/i.test(file)) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new AlignkitError(`${file}: cannot read the prompts: ${e instanceof Error ? e.message : String(e)}`);
    }
    text.split('\n').forEach((l, i) => {
      const p = l.replace(/\r$/, '');
      if (p.trim()) add(p, i + 1, false);
    });
  } else {
    const src = await openRowSource(file);
    try {
      for (let i = 0; i < src.length; i++) {
        const line = src.lineOf(i);
        try {
          const row = await src.get(i);
          const v = row[field] ?? (field === 'prompt' ? row.messages : undefined);
          if (typeof v === 'string') {
            if (!v) throw new DataError(file, line, field, 'the prompt is an empty string');
            add(v, line, false);
          } else if (isMessageList(v)) {
            if (!o.chatTemplate) throw new DataError(file, line, field, 'a message list needs a chat template (the tokenizer has none: set chat_template_path)');
            add(applyChatTemplate(o.chatTemplate, v, { addGenerationPrompt: true, bosToken: tok.bosToken, eosToken: tok.eosToken }), line, true);
          } else throw new DataError(file, line, field, v === undefined ? 'missing: each row needs a prompt (a string or a list of chat messages)' : `expected a string or a list of chat messages, got ${typeName(v)}`);
        } catch (e) {
          if (o.skipInvalid && e instanceof DataError) out.skipped++;
          else throw e;
        }
      }
    } finally {
      await src.close();
    }
  }
  if (out.ids.length === 0) throw new AlignkitError(`${file}: no prompts${out.skipped ? ` (${out.skipped} invalid rows skipped)` : ''}`);
  return out;
}

/** The prompts at `indices` (in that order), as their own set. */
export function subsetPrompts(p: PromptSet, indices: readonly number[]): PromptSet {
  return { file: p.file, texts: indices.map((i) => p.texts[i]), ids: indices.map((i) => p.ids[i]), lines: indices.map((i) => p.lines[i]), skipped: 0 };
}

// ================================================================================================ batch layout

/** Rows of prompt + response laid out for one forward pass (see the file comment). */
export interface RolloutBatch {
  rows: number;
  /** Prompt columns P (the longest prompt; shorter ones are left-padded). */
  promptColumns: number;
  /** Response columns R (the longest response; shorter ones are right-padded). */
  responseColumns: number;
  /** [rows, P + R] token ids (padding: padTokenId). */
  inputIds: Int32Array;
  /** [rows, P + R] 1 = real token. */
  attentionMask: Int32Array;
  /** [rows, R] 1 = a response token. */
  responseMask: Uint8Array;
  /** Response length of each row. */
  responseLengths: Int32Array;
}

/** Lays out prompts (each ≥ 1 token) and their responses (each ≥ 1 token). */
export function layoutBatch(prompts: readonly (readonly number[])[], responses: readonly (readonly number[])[], padTokenId: number): RolloutBatch {
  const rows = prompts.length;
  if (responses.length !== rows) throw new RangeError(`layoutBatch: ${rows} prompts but ${responses.length} responses`);
  let P = 0;
  let R = 0;
  prompts.forEach((p, b) => {
    if (p.length === 0) throw new RangeError(`layoutBatch: prompt ${b} is empty`);
    if (responses[b].length === 0) throw new RangeError(`layoutBatch: response ${b} is empty`);
    P = Math.max(P, p.length);
    R = Math.max(R, responses[b].length);
  });
  const T = P + R;
  const inputIds = new Int32Array(rows * T).fill(padTokenId);
  const attentionMask = new Int32Array(rows * T);
  const responseMask = new Uint8Array(rows * R);
  const responseLengths = new Int32Array(rows);
  prompts.forEach((p, b) => {
    const r = responses[b];
    inputIds.set(p, b * T + P - p.length);
    inputIds.set(r, b * T + P);
    attentionMask.fill(1, b * T + P - p.length, b * T + P + r.length);
    responseMask.fill(1, b * R, b * R + r.length);
    responseLengths[b] = r.length;
  });
  return { rows, promptColumns: P, responseColumns: R, inputIds, attentionMask, responseMask, responseLengths };
}

export interface ResponseForwardOptions {
  /** Logits are divided by this before the softmax (the sampling temperature). */
  temperature: number;
  /** Also the value head's values at the same positions. */
  values?: boolean;
  /**
   * A separate critic (value_model_path) whose value head gives the values, from its own forward over the same
   * tokens; null/absent = the value head on the policy's trunk.
   */
  critic?: PretrainedLM | null;
  /** 'metric': per-token entropies as numbers (no gradient); 'grad': a differentiable entropy tensor (the bonus). */
  entropy?: 'none' | 'metric' | 'grad';
}

/** The response tokens of a batch scored by a model: K = Σ responseLengths tokens, row-major. */
export interface ResponseForward {
  /** [K] log p(token | prefix) at the temperature; differentiable when gradients are recorded. */
  logps: Tensor;
  /** [K] values (with `values`). */
  values: Tensor | null;
  /** [K] differentiable entropies (entropy 'grad'). */
  entropy: Tensor | null;
  /** [K] entropies as numbers (entropy 'metric' or 'grad'). */
  entropyValues: Float32Array | null;
  /** Row of each token. */
  row: Int32Array;
  /** Response slot (0-based) of each token. */
  slot: Int32Array;
}

/**
 * One forward pass over the batch; the hidden states of the positions that predict response tokens go through the
 * LM head (fused log-probs) and, when asked, the value head. Call inside a tidy: with gradients the activations
 * stay alive for backward().
 */
export function responseForward(model: PretrainedLM, b: RolloutBatch, o: ResponseForwardOptions): ResponseForward {
  const T = b.promptColumns + b.responseColumns;
  const R = b.responseColumns;
  const K = b.responseLengths.reduce((s, n) => s + n, 0);
  const positions = new Int32Array(K);
  const targets = new Int32Array(K);
  const row = new Int32Array(K);
  const slot = new Int32Array(K);
  let k = 0;
  for (let r = 0; r < b.rows; r++)
    for (let j = 0; j < R; j++) {
      if (!b.responseMask[r * R + j]) continue;
      positions[k] = r * T + b.promptColumns + j - 1;
      targets[k] = b.inputIds[r * T + b.promptColumns + j];
      row[k] = r;
      slot[k] = j;
      k++;
    }
  const mask = intTensor(b.attentionMask, [b.rows, T]);
  const ids = intTensor(b.inputIds, [b.rows, T]);
  const positionIds = positionIdsFromMask(mask);
  const pickedPositions = intTensor(positions);
  // hidden states [rows, T, H] of a model over the batch, at the positions that predict response tokens: [K, H]
  const hiddenAt = (m: PretrainedLM): Tensor =>
    indexSelect(reshape(m.forward(ids, { attentionMask: mask, positionIds }), [b.rows * T, m.config.hiddenSize]), 0, pickedPositions);
  const picked = hiddenAt(model);
  const tgt = intTensor(targets);
  let logps: Tensor;
  let entropy: Tensor | null = null;
  let entropyValues: Float32Array | null = null;
  const mode = o.entropy ?? 'none';
  if (mode === 'metric') {
    const r = linearLogprobEntropy(picked, model.lmHeadWeight(), tgt, { bias: model.lmHeadBias(), temperature: o.temperature });
    logps = r.logprob;
    entropyValues = Float32Array.from(r.entropy.data as ArrayLike<number>);
  } else {
    logps = tokenLogprobs(model, picked, tgt, { temperature: o.temperature });
    if (mode === 'grad') {
      // The exact entropy needs the [K, V] logits: H = −Σ_v p_v log p_v with p = softmax(logits / T).
      const lsm = logSoftmax(mul(linear(picked, model.lmHeadWeight(), model.lmHeadBias()), 1 / o.temperature), -1);
      entropy = neg(sum(mul(exp(lsm), lsm), -1)); // [K]
      entropyValues = Float32Array.from(entropy.data as ArrayLike<number>);
    }
  }
  let values: Tensor | null = null;
  if (o.values) {
    const vm = o.critic ?? model;
    const h = o.critic ? hiddenAt(o.critic) : picked;
    values = reshape(vm.values(reshape(h, [1, K, vm.config.hiddenSize])), [K]);
  }
  return { logps, values, entropy, entropyValues, row, slot };
}

// ================================================================================================ sampling

export interface SamplingSettings {
  /** Most new tokens per response. */
  responseLength: number;
  temperature: number;
  topK: number;
  topP: number;
  /** Generation stops after one of these (EOS). */
  stopTokenIds: readonly number[];
  padTokenId: number;
  /** Rows per generate() call and per scoring forward. */
  forwardBatchSize: number;
}

const DOMAIN_ROLLOUT_SEED = 0x91f1;
const DOMAIN_MINIBATCH = 0x91f2;

const DOMAIN_EVAL_SEED = 0x91f3;

/**
 * The seed of held-out prompt r's sampling stream in every evaluation: the same at every evaluation (common random
 * numbers, so two evaluations differ by the policy, not by the luck of the draw) and apart from the rollouts'.
 */
export function evalRowSeed(seed: number, row: number): number {
  const g = Xoshiro128.fromSeed([DOMAIN_EVAL_SEED, seed, row]);
  return (g.next() >>> 11) * 4294967296 + g.next();
}

/** The seed of row r's sampling stream in iteration i: a 53-bit hash of (seed, i, r). */
export function rolloutRowSeed(seed: number, iteration: number, row: number): number {
  const g = Xoshiro128.fromSeed([DOMAIN_ROLLOUT_SEED, seed, iteration, row]);
  return (g.next() >>> 11) * 4294967296 + g.next();
}

export interface SampledResponses {
  ids: number[][];
  /** Whether each response ended with a stop token (else it was cut at responseLength: truncated). */
  endedWithEos: boolean[];
  /** generate()'s log-probs of each token at the temperature (what responseForward recomputes). */
  generationLogps: number[][];
}

/** Samples one response per prompt row (rows repeat a prompt for several samples), in batches. */
export function sampleResponses(model: PretrainedLM, prompts: readonly (readonly number[])[], seeds: readonly number[], s: SamplingSettings): SampledResponses {
  const out: SampledResponses = { ids: [], endedWithEos: [], generationLogps: [] };
  for (let i = 0; i < prompts.length; i += s.forwardBatchSize) {
    const part = prompts.slice(i, i + s.forwardBatchSize);
    const gen = generate(model, {
      inputIds: part,
      maxNewTokens: s.responseLength,
      temperature: s.temperature,
      topK: s.topK,
      topP: s.topP,
      seed: seeds.slice(i, i + part.length),
      stopTokenIds: s.stopTokenIds,
      padTokenId: s.padTokenId,
      returnLogprobs: true,
      logprobTemperature: s.temperature,
    });
    for (const g of gen) {
      out.ids.push(g.ids);
      out.endedWithEos.push(g.finishReason === 'eos');
      out.generationLogps.push(g.logprobs ?? []);
    }
  }
  return out;
}

/** Per-token log-probs (and values) of a batch's responses under a model, no grad, as [rows, R] arrays. */
export function scoreResponses(
  model: PretrainedLM,
  prompts: readonly (readonly number[])[],
  responses: readonly (readonly number[])[],
  o: { temperature: number; values: boolean; padTokenId: number; forwardBatchSize: number; R: number; critic?: PretrainedLM | null },
): { logps: Float32Array; values: Float32Array | null } {
  const rows = prompts.length;
  const logps = new Float32Array(rows * o.R);
  const values = o.values ? new Float32Array(rows * o.R) : null;
  for (let i = 0; i < rows; i += o.forwardBatchSize) {
    const n = Math.min(o.forwardBatchSize, rows - i);
    const b = layoutBatch(prompts.slice(i, i + n), responses.slice(i, i + n), o.padTokenId);
    noGrad(() =>
      tidy(() => {
        const f = responseForward(model, b, { temperature: o.temperature, values: o.values, critic: o.critic });
        const lp = f.logps.data as ArrayLike<number>;
        const v = f.values ? (f.values.data as ArrayLike<number>) : null;
        for (let k = 0; k < f.row.length; k++) {
          const at = (i + f.row[k]) * o.R + f.slot[k];
          logps[at] = lp[k];
          if (values && v) values[at] = v[k];
        }
      }),
    );
  }
  return { logps, values };
}

// ================================================================================================ rollout statistics

/** Fraction of repeated token n-grams in a response (1 − distinct / total; 0 when it has fewer than n tokens). */
export function repetitionRate(ids: readonly number[], n = 3): number {
  if (ids.length < n) return 0;
  const seen = new Set<string>();
  let repeated = 0;
  for (let i = 0; i + n <= ids.length; i++) {
    const key = ids.slice(i, i + n).join(',');
    if (seen.has(key)) repeated++;
    else seen.add(key);
  }
  return repeated / (ids.length - n + 1);
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return a.length ? s / a.length : 0;
}

/** Σ over each row's response tokens: [rows]. */
export function rowSums(values: Float32Array, mask: Uint8Array, rows: number, R: number): Float64Array {
  const out = new Float64Array(rows);
  for (let b = 0; b < rows; b++) for (let t = 0; t < R; t++) if (mask[b * R + t]) out[b] += values[b * R + t];
  return out;
}

/** Rows by prompt group (a group loses the samples whose reward failed), in order. */
export function groupsOf(group: Int32Array): number[][] {
  const out = new Map<number, number[]>();
  group.forEach((g, r) => {
    const list = out.get(g);
    if (list) list.push(r);
    else out.set(g, [r]);
  });
  return [...out.values()];
}

/**
 * A per-row baseline computed group by group: fn gets the scores of a group of ≥ 2 surviving samples and returns
 * their advantages; a group left with one sample (its others dropped) has no baseline and gets advantage 0.
 */
export function groupwise(scores: Float32Array, group: Int32Array, fn: (groupScores: Float32Array) => Float32Array): Float32Array {
  const out = new Float32Array(scores.length);
  for (const rows of groupsOf(group)) {
    if (rows.length < 2) continue;
    const a = fn(Float32Array.from(rows, (r) => scores[r]));
    rows.forEach((r, i) => (out[r] = a[i]));
  }
  return out;
}

/** A row value copied onto the row's response tokens: [rows, R]. */
export function broadcastRows(perRow: Float32Array, mask: Uint8Array, R: number): Float32Array {
  const out = new Float32Array(mask.length);
  for (let i = 0; i < mask.length; i++) if (mask[i]) out[i] = perRow[Math.floor(i / R)];
  return out;
}

// ================================================================================================ the shared trainer

/** A scored rollout (failed samples already dropped), as a method receives it. */
export interface ScoredRollout {
  iteration: number;
  rows: number;
  /** Response columns R of the per-token arrays. */
  R: number;
  promptIds: number[][];
  responseIds: number[][];
  /** [rows, R] 1 = response token. */
  mask: Uint8Array;
  /** Prompt group of each row (rows of one group are samples of one prompt), ascending. */
  group: Int32Array;
  /** [rows] the reward sum (missing_eos_penalty applied). */
  scores: Float32Array;
  /** [rows, R] old policy log-probs. */
  logps: Float32Array;
  /** [rows, R] reference log-probs, when the method uses a reference. */
  refLogps: Float32Array | null;
  /** [rows, R] values, when the method has a critic. */
  values: Float32Array | null;
  /** The KL coefficient this rollout is shaped with. */
  klCoef: number;
}

/** What a method derives from a rollout for its updates, plus the rollout's metrics (TRL names). */
export interface PreparedRollout {
  /** [rows, R] advantages (per token; critic-free methods repeat a row's value on its tokens). */
  advantages: Float32Array;
  /** [rows, R] returns (PPO). */
  returns: Float32Array | null;
  metrics: Record<string, number>;
}

/** A minibatch piece's data gathered for its K response tokens (row-major over its rows). */
export interface TokenData {
  oldLogps: Float32Array;
  refLogps: Float32Array | null;
  oldValues: Float32Array | null;
  advantages: Float32Array;
  returns: Float32Array | null;
  /** Piece-local row of each token, and the number of rows. */
  row: Int32Array;
  rows: number;
  klCoef: number;
}

export interface OnPolicyMethod {
  name: 'ppo' | 'grpo' | 'rloo';
  /** Responses sampled per prompt (1 for PPO). */
  samplesPerPrompt: number;
  responseLength: number;
  /** Passes over each rollout, and optimizer steps per pass. */
  epochs: number;
  miniBatches: number;
  needsValues: boolean;
  /** With needsValues: a separate critic's folder (PPO value_model_path); null/absent = a head on the policy. */
  valueModelPath?: string | null;
  needsReference: boolean;
  /** Differentiable entropy for a bonus. */
  entropyBonus: boolean;
  /** The KL controller (PPO/RLOO: kl_coef or adaptive; GRPO: beta). */
  makeKlController(): KlController;
  /** The estimator of objective/kl and of the KL guard. */
  klEstimator: KlEstimator;
  prepare(r: ScoredRollout): PreparedRollout;
  /** Loss units of a piece (tokens or rows): the loop divides the step's summed losses by their total. */
  lossUnits(tokens: number, rows: number): number;
  /**
   * The contribution of a piece: its summed per-unit losses / normalizer, differentiable, and metric values weighted
   * the same way (so the step sums to the unit-weighted mean).
   */
  loss(f: ResponseForward, d: TokenData, normalizer: number): { loss: Tensor; metrics: Record<string, number> };
}

export interface Piece {
  /** Rows of the rollout buffer. */
  rows: number[];
  /** The first piece of its optimizer step: carries the rollout metrics. */
  first: boolean;
}

/** The rollout being trained on: everything needed to continue from a checkpoint. */
interface RolloutBuffer {
  iteration: number;
  rows: number;
  R: number;
  promptIds: number[][];
  responseIds: number[][];
  oldLogps: Float32Array;
  refLogps: Float32Array | null;
  values: Float32Array | null;
  advantages: Float32Array;
  returns: Float32Array | null;
  klCoef: number;
  metrics: Record<string, number>;
  queue: Piece[];
  cursor: number;
}

/** Float32Array ⇄ base64 for checkpoints (exact). */
function f32ToB64(a: Float32Array | null): string | null {
  return a ? Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64') : null;
}
function b64ToF32(s: string | null): Float32Array | null {
  if (s === null) return null;
  const b = Buffer.from(s, 'base64');
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

type SerializedBuffer = Omit<RolloutBuffer, 'oldLogps' | 'refLogps' | 'values' | 'advantages' | 'returns'> & Record<'oldLogps' | 'refLogps' | 'values' | 'advantages' | 'returns', string | null>;

function serializeBuffer(b: RolloutBuffer): SerializedBuffer {
  return { ...b, oldLogps: f32ToB64(b.oldLogps), refLogps: f32ToB64(b.refLogps), values: f32ToB64(b.values), advantages: f32ToB64(b.advantages), returns: f32ToB64(b.returns) };
}
function deserializeBuffer(s: SerializedBuffer): RolloutBuffer {
  return {
    ...s,
    oldLogps: b64ToF32(s.oldLogps) as Float32Array, refLogps: b64ToF32(s.refLogps), values: b64ToF32(s.values),
    advantages: b64ToF32(s.advantages) as Float32Array, returns: b64ToF32(s.returns),
  };
}

/** The per-token arrays a rollout's [rows, R] layout holds, as the data of one piece's K response tokens. */
export function gatherTokenData(
  b: Pick<RolloutBuffer, 'R' | 'oldLogps' | 'refLogps' | 'values' | 'advantages' | 'returns' | 'klCoef'>,
  rows: readonly number[],
  f: Pick<ResponseForward, 'row' | 'slot'>,
): TokenData {
  const K = f.row.length;
  const pick = (a: Float32Array | null): Float32Array | null => {
    if (!a) return null;
    const out = new Float32Array(K);
    for (let k = 0; k < K; k++) out[k] = a[rows[f.row[k]] * b.R + f.slot[k]];
    return out;
  };
  return {
    oldLogps: pick(b.oldLogps) as Float32Array, refLogps: pick(b.refLogps), oldValues: pick(b.values),
    advantages: pick(b.advantages) as Float32Array, returns: pick(b.returns), row: f.row, rows: rows.length, klCoef: b.klCoef,
  };
}

/** Splits rows into epochs × minibatches × accumulation pieces, each epoch a fresh seeded permutation. */
export function minibatchPieces(rows: number, epochs: number, miniBatches: number, accumulation: number, seed: number, iteration: number): Piece[] {
  const out: Piece[] = [];
  for (let e = 0; e < epochs; e++) {
    const perm = permutation(rows, Xoshiro128.fromSeed([DOMAIN_MINIBATCH, seed, iteration, e]));
    for (let m = 0; m < miniBatches; m++) {
      const mb = Array.from(perm.subarray(Math.floor((m * rows) / miniBatches), Math.floor(((m + 1) * rows) / miniBatches)));
      for (let a = 0; a < accumulation; a++)
        out.push({ rows: mb.slice(Math.floor((a * mb.length) / accumulation), Math.floor(((a + 1) * mb.length) / accumulation)), first: a === 0 });
    }
  }
  return out;
}

/** One per-iteration record (the plot, train_results.json). */
export interface IterationRecord {
  iteration: number;
  step: number;
  score: number;
  kl: number;
  klCoef: number;
}

interface SampleRecord {
  step: number;
  iteration: number;
  prompt: string;
  response: string;
  score: number;
}

export interface OnPolicyRunOptions {
  /** Progress on the console (default !disable_tqdm). */
  console?: boolean;
  /** Where warnings go (dropped samples, the KL guard). Default: stderr. */
  warn?: (message: string) => void;
}

export interface OnPolicyResult extends LoopResult {
  outputDir: string;
  iterations: IterationRecord[];
  droppedSamples: number;
  prompts: number;
}

/** Two stacked plots (score and KL per iteration) in one SVG. */
export function rewardKlSvg(name: string, h: readonly IterationRecord[]): string {
  const top = svgLinePlot({
    title: `${name}: mean score per iteration`, xLabel: 'iteration', yLabel: 'objective/scores', logX: false,
    series: [{ name: 'objective/scores', color: '#1f77b4', points: h.map((r) => [r.iteration, r.score]) }],
  });
  const bottom = svgLinePlot({
    title: `${name}: KL to the reference per iteration`, xLabel: 'iteration', yLabel: 'objective/kl (nats)', logX: false,
    series: [{ name: 'objective/kl', color: '#d62728', points: h.map((r) => [r.iteration, r.kl]) }],
  });
  const inner = (svg: string, y: number): string => svg.replace(/^<svg /, `<svg x="0" y="${y}" `);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="640" height="800" viewBox="0 0 640 800">\n${inner(top, 0)}${inner(bottom, 400)}</svg>\n`;
}

export const PLOT_FILE = 'reward_kl.svg';
export const SAMPLES_FILE = 'samples.jsonl';

/**
 * Runs an online RL method: loads the policy (+ value head), the reference, the prompts and the reward sources,
 * then trains through runTrainer with a task whose micro-batches are the pieces of each rollout's minibatches.
 */
export async function runOnPolicy(cfg: OnPolicyConfig, method: OnPolicyMethod, o: OnPolicyRunOptions = {}): Promise<OnPolicyResult> {
  const warn = o.warn ?? ((m: string) => process.stderr.write(`alignkit ${method.name}: warning: ${m}\n`));
  prepareOutputDir(method.name, cfg); // refuse early, before loading anything
  const separateCritic = method.needsValues && method.valueModelPath ? method.valueModelPath : null;
  let policy: Policy = loadPolicy(
    cfg,
    method.needsValues && !separateCritic
      ? {
          prepare: (m) => {
            if (!m.valueHead) m.attachValueHead(cfg.seed);
          },
          alwaysTrain: (m) => (m.valueHead ? m.valueHead.namedParameters() : new Map()),
        }
      : {},
  );
  let critic: Critic | null = null;
  if (separateCritic) {
    try {
      critic = loadCritic(separateCritic, policy.model.config.vocabSize, cfg.seed);
    } catch (e) {
      policy.dispose();
      throw e;
    }
    policy = withCritic(policy, critic);
  }
  let ref: ReferencePolicy | null = null;
  let rewards: CombinedReward | null = null;
  let tb: EventFileWriter | null = null;
  try {
    const file = trainDataPath(cfg);
    const promptOptions: LoadPromptsOptions = {
      field: cfg.prompt_field, chatTemplate: policy.chatTemplate, maxPositions: policy.model.config.maxPositions,
      responseLength: method.responseLength, skipInvalid: cfg.skip_invalid,
    };
    let prompts = await loadPrompts(file, policy.tok, promptOptions);
    // held-out prompts for evaluation during training: eval_file, or eval_fraction of the prompts (data_seed)
    let evalPrompts: PromptSet | null = null;
    if (cfg.eval_file !== null) evalPrompts = await loadPrompts(cfg.eval_file, policy.tok, promptOptions);
    else if (cfg.eval_fraction > 0) {
      const split = splitTrainEval(prompts.ids.length, { evalFraction: cfg.eval_fraction, seed: cfg.data_seed ?? cfg.seed });
      if (split.eval.length === 0 || split.train.length === 0)
        throw new AlignkitError(`${file}: eval_fraction ${cfg.eval_fraction} of ${prompts.ids.length} prompts leaves ${split.eval.length} for evaluation and ${split.train.length} for training; both need at least one`);
      evalPrompts = subsetPrompts(prompts, split.eval);
      prompts = subsetPrompts(prompts, split.train);
    }
    if (cfg.eval_strategy === 'no') evalPrompts = null;
    if (method.needsReference) ref = makeReference({ ref_model: cfg.ref_model, precompute_ref_log_probs: false, model_name_or_path: cfg.model_name_or_path }, policy);
    rewards = await rewardsFromConfig(cfg);
    const task = makeTask(cfg, method, policy, critic?.model ?? null, ref, rewards, prompts, evalPrompts, warn);
    const outputDir = path.resolve(cfg.output_dir);
    if (cfg.report_to.includes('tensorboard')) tb = new EventFileWriter(cfg.logging_dir ?? path.join(outputDir, 'runs'), { filenameSuffix: '.samples' });
    task.hooks.onSamples = (samples) => {
      writeSamples(outputDir, samples);
      if (tb && samples.length) {
        const last = samples[samples.length - 1].iteration;
        const rows = samples.filter((s) => s.iteration === last);
        tb.addText('samples', rows.map((s) => `**prompt** ${JSON.stringify(s.prompt)}\n\n**response** ${JSON.stringify(s.response)}\n\n**score** ${s.score}`).join('\n\n---\n\n'), rows[0].step);
        tb.flush();
      }
    };
    task.hooks.onIteration = (h) => writeAtomically('plot', path.join(outputDir, PLOT_FILE), (f) => f.write(new TextEncoder().encode(rewardKlSvg(method.name, h))));
    const optimizer = makeOptimizer(cfg, policy.trainable);
    try {
      const r = await runTrainer(cfg, {
        name: method.name, policy, task: task.task, optimizer, totalSteps: task.totalSteps, stepsPerEpoch: task.stepsPerEpoch,
        hasEval: evalPrompts !== null, console: o.console,
        summary: () => ({
          prompts: prompts.ids.length, iterations: task.history().length, dropped_samples: task.dropped(),
          final_score: task.history().at(-1)?.score ?? null, final_kl: task.history().at(-1)?.kl ?? null,
          ...(critic ? { critic_init: critic.init } : {}),
        }),
      });
      task.hooks.onIteration(task.history());
      return { ...r, iterations: task.history(), droppedSamples: task.dropped(), prompts: prompts.ids.length };
    } finally {
      optimizer.dispose();
    }
  } finally {
    tb?.close();
    rewards?.dispose();
    ref?.dispose();
    policy.dispose();
  }
}

function writeSamples(outputDir: string, samples: readonly SampleRecord[]): void {
  fs.mkdirSync(outputDir, { recursive: true });
  writeAtomically('samples', path.join(outputDir, SAMPLES_FILE), (f) => f.write(new TextEncoder().encode(samples.map((s) => `${JSON.stringify(s)}\n`).join(''))));
}

interface TaskParts {
  task: Omit<TrainTask<Piece & { iteration: number }>, 'saveModel' | 'loadModel'>;
  totalSteps: number;
  stepsPerIteration: number;
  /** Optimizer steps per pass over the prompts (save_strategy 'epoch'). */
  stepsPerEpoch: number;
  history(): IterationRecord[];
  dropped(): number;
  /** Called with every sample written so far / the per-iteration history, after each rollout and on restore. */
  hooks: { onSamples: (s: readonly SampleRecord[]) => void; onIteration: (h: readonly IterationRecord[]) => void };
}

function makeTask(cfg: OnPolicyConfig, method: OnPolicyMethod, policy: Policy, critic: PretrainedLM | null, ref: ReferencePolicy | null, rewards: CombinedReward, prompts: PromptSet, evalPrompts: PromptSet | null, warn: (m: string) => void): TaskParts {
  const g = cfg.gradient_accumulation_steps;
  const rowsPerIteration = cfg.per_device_train_batch_size * g * method.miniBatches;
  const promptsPerIteration = rowsPerIteration / method.samplesPerPrompt;
  const nPrompts = prompts.ids.length;
  const sampler = new BatchSampler(nPrompts, { batchSize: promptsPerIteration, seed: cfg.data_seed ?? cfg.seed, dropLast: nPrompts >= promptsPerIteration });
  const totalEpisodes = cfg.total_episodes ?? Math.max(1, Math.round(cfg.num_train_epochs * nPrompts * method.samplesPerPrompt));
  const iterations = Math.max(1, Math.ceil(totalEpisodes / rowsPerIteration));
  const stepsPerIteration = method.epochs * method.miniBatches;
  const totalSteps = cfg.max_steps > 0 ? cfg.max_steps : iterations * stepsPerIteration;
  const sampleEvery = cfg.num_sample_generations > 0 ? Math.max(1, Math.floor(Math.ceil(totalSteps / stepsPerIteration) / cfg.num_sample_generations)) : 0;
  const model = policy.model;
  const stopTokenIds = policy.tok.stopIds.length ? [...policy.tok.stopIds] : model.config.eosTokenIds;
  const eosSet = new Set(stopTokenIds);
  const sampling: SamplingSettings = {
    responseLength: method.responseLength, temperature: cfg.temperature, topK: cfg.top_k, topP: cfg.top_p,
    stopTokenIds, padTokenId: policy.padTokenId, forwardBatchSize: cfg.local_rollout_forward_batch_size,
  };
  let controller = method.makeKlController();
  let buffer: RolloutBuffer | null = null;
  let iterationsDone = 0;
  let episodes = 0;
  let dropped = 0;
  let steps = 0; // optimizer steps begun (pieces handed out / g)
  let history: IterationRecord[] = [];
  let samples: SampleRecord[] = [];
  const hooks: TaskParts['hooks'] = { onSamples: () => {}, onIteration: () => {} };

  const setTraining = (on: boolean): void => {
    policy.lora?.train(on);
  };

  async function collect(): Promise<RolloutBuffer> {
    const iteration = iterationsDone;
    const { indices } = sampler.next();
    const rowPrompt: number[] = [];
    const group: number[] = [];
    indices.forEach((p, gi) => {
      for (let s = 0; s < method.samplesPerPrompt; s++) {
        rowPrompt.push(p);
        group.push(gi);
      }
    });
    const promptIds = rowPrompt.map((p) => prompts.ids[p]);
    const seeds = rowPrompt.map((_, r) => rolloutRowSeed(cfg.seed, iteration, r));
    setTraining(false);
    let sampled: SampledResponses;
    try {
      sampled = sampleResponses(model, promptIds, seeds, sampling);
    } finally {
      setTraining(true);
    }
    // A response that is empty cannot be scored or trained on; generation always emits ≥ 1 token (response_length ≥ 1).
    const texts = sampled.ids.map((ids) => policy.tok.decode(ids, { skipSpecialTokens: true }));
    const reward = await rewards.score(rowPrompt.map((p, r): RewardSample => ({ prompt: prompts.texts[p], response: texts[r] })));
    const keep: number[] = [];
    reward.total.forEach((t, r) => {
      if (t.ok) keep.push(r);
      else {
        dropped++;
        const p = rowPrompt[r];
        warn(`iteration ${iteration + 1}: dropped sample ${r} (prompt ${prompts.file}:${prompts.lines[p]} ${quote(prompts.texts[p])}, response ${quote(texts[r])}) from the batch: ${t.reason}`);
      }
    });
    if (keep.length === 0) throw new AlignkitError(`${method.name}: iteration ${iteration + 1}: the reward failed for every sample of the rollout (see the warnings above); fix the reward source`);
    const rows = keep.length;
    const kPrompt = keep.map((r) => promptIds[r]);
    const kResp = keep.map((r) => sampled.ids[r]);
    const R = kResp.reduce((m, x) => Math.max(m, x.length), 0);
    const mask = new Uint8Array(rows * R);
    kResp.forEach((x, b) => mask.fill(1, b * R, b * R + x.length));
    const scores = new Float32Array(rows);
    keep.forEach((r, b) => {
      const t = reward.total[r];
      scores[b] = (t.ok ? t.value : 0) - (!sampled.endedWithEos[r] && cfg.missing_eos_penalty !== null ? cfg.missing_eos_penalty : 0);
    });
    setTraining(false);
    let scored: { logps: Float32Array; values: Float32Array | null };
    let refLogps: Float32Array | null = null;
    try {
      const so = { temperature: cfg.temperature, padTokenId: policy.padTokenId, forwardBatchSize: cfg.local_rollout_forward_batch_size, R };
      scored = scoreResponses(model, kPrompt, kResp, { ...so, values: method.needsValues, critic });
      if (ref) refLogps = ref.run((m) => scoreResponses(m, kPrompt, kResp, { ...so, values: false }).logps);
    } finally {
      setTraining(true);
    }
    // ---------------------------------------------------------------- the KL guard, before the KL shapes the rewards
    let klMean = Number.NaN;
    if (refLogps) {
      const kl = klPerToken(scored.logps, refLogps, method.klEstimator);
      klMean = mean(rowSums(kl, mask, rows, R));
      if (cfg.kl_blowup_threshold !== null && klMean > cfg.kl_blowup_threshold) {
        if (cfg.kl_blowup_action === 'abort')
          throw new AlignkitError(
            `${method.name}: iteration ${iteration + 1}: objective/kl = ${klMean.toFixed(3)} nats exceeds kl_blowup_threshold ${cfg.kl_blowup_threshold}: the policy has drifted far from the reference. Lower learning_rate, raise the KL coefficient, or set kl_blowup_action: raise_kl_coef.`,
          );
        const raised = Math.max(controller.value * 2, 1e-3);
        warn(`iteration ${iteration + 1}: objective/kl = ${klMean.toFixed(3)} nats exceeds kl_blowup_threshold ${cfg.kl_blowup_threshold}; raising the KL coefficient ${controller.value.toPrecision(4)} -> ${raised.toPrecision(4)}`);
        const s = controller.state();
        controller = klControllerFromState({ ...s, value: raised } as KlControllerState);
      }
    }
    const scoredRollout: ScoredRollout = {
      iteration, rows, R, promptIds: kPrompt, responseIds: kResp, mask, group: Int32Array.from(keep, (r) => group[r]), scores,
      logps: scored.logps, refLogps, values: scored.values, klCoef: controller.value,
    };
    const prep = method.prepare(scoredRollout);
    if (refLogps) controller.update(klMean, rows);
    // ---------------------------------------------------------------- metrics shared by every method
    const lengths = kResp.map((x) => x.length);
    const m: Record<string, number> = {
      'objective/scores': mean(scores),
      ...(refLogps ? { 'objective/kl': klMean } : {}),
      'objective/entropy': mean(rowSums(scored.logps.map((v) => -v), mask, rows, R)),
      'objective/kl_coef': scoredRollout.klCoef,
      'val/num_eos_tokens': kResp.reduce((n, x) => n + x.filter((t) => eosSet.has(t)).length, 0),
      'completions/mean_length': mean(lengths),
      'completions/min_length': Math.min(...lengths),
      'completions/max_length': Math.max(...lengths),
      'completions/clipped_ratio': keep.filter((r) => !sampled.endedWithEos[r]).length / rows,
      'completions/repetition_rate': mean(kResp.map((x) => repetitionRate(x))),
      'rollout/dropped_samples': sampled.ids.length - rows,
      ...prep.metrics,
    };
    for (const [name, outcomes] of reward.bySource) {
      const vals = keep.map((r) => outcomes[r]).filter((x) => x.ok).map((x) => (x.ok ? x.value : 0));
      if (reward.bySource.size > 1) m[`rewards/${name}/mean`] = mean(vals);
    }
    iterationsDone++;
    episodes += sampled.ids.length;
    m.episode = episodes;
    m.iteration = iterationsDone;
    const step = steps + 1;
    history = [...history, { iteration: iterationsDone, step, score: m['objective/scores'], kl: refLogps ? klMean : Number.NaN, klCoef: scoredRollout.klCoef }];
    if (sampleEvery && (iterationsDone - 1) % sampleEvery === 0) {
      const shown = Math.min(rows, 4);
      samples = [...samples, ...Array.from({ length: shown }, (_, b) => ({ step, iteration: iterationsDone, prompt: prompts.texts[rowPrompt[keep[b]]], response: texts[keep[b]], score: scores[b] }))];
      hooks.onSamples(samples);
    }
    hooks.onIteration(history);
    return {
      iteration, rows, R, promptIds: kPrompt, responseIds: kResp, oldLogps: scored.logps, refLogps, values: scored.values,
      advantages: prep.advantages, returns: prep.returns, klCoef: scoredRollout.klCoef, metrics: m,
      queue: minibatchPieces(rows, method.epochs, method.miniBatches, g, cfg.seed, iteration), cursor: 0,
    };
  }

  /**
   * One response per held-out prompt, sampled as the rollouts are (temperature, top-k/p, response length) but from
   * fixed per-prompt seeds: the mean reward, its spread, the mean summed KL to the reference and the response
   * lengths. Samples whose reward fails are dropped and counted, as in a rollout. Changes no training state.
   */
  async function evaluate(ev: PromptSet): Promise<Record<string, number>> {
    const seeds = ev.ids.map((_, r) => evalRowSeed(cfg.seed, r));
    setTraining(false);
    let sampled: SampledResponses;
    try {
      sampled = sampleResponses(model, ev.ids, seeds, { ...sampling, forwardBatchSize: cfg.per_device_eval_batch_size });
    } finally {
      setTraining(true);
    }
    const texts = sampled.ids.map((ids) => policy.tok.decode(ids, { skipSpecialTokens: true }));
    const reward = await rewards.score(ev.ids.map((_, r): RewardSample => ({ prompt: ev.texts[r], response: texts[r] })));
    const keep: number[] = [];
    reward.total.forEach((t, r) => {
      if (t.ok) keep.push(r);
      else warn(`evaluation: dropped held-out sample ${r} (prompt ${ev.file}:${ev.lines[r]} ${quote(ev.texts[r])}): ${t.reason}`);
    });
    if (keep.length === 0) throw new AlignkitError(`${method.name}: evaluation: the reward failed for every held-out sample (see the warnings above); fix the reward source`);
    const scores = keep.map((r) => {
      const t = reward.total[r];
      return (t.ok ? t.value : 0) - (!sampled.endedWithEos[r] && cfg.missing_eos_penalty !== null ? cfg.missing_eos_penalty : 0);
    });
    const m = mean(scores);
    const out: Record<string, number> = {
      reward: m,
      reward_std: scores.length > 1 ? Math.sqrt(scores.reduce((s, v) => s + (v - m) ** 2, 0) / (scores.length - 1)) : 0,
      'completions/mean_length': mean(keep.map((r) => sampled.ids[r].length)),
      dropped_samples: ev.ids.length - keep.length,
    };
    if (ref) {
      const kPrompt = keep.map((r) => ev.ids[r]);
      const kResp = keep.map((r) => sampled.ids[r]);
      const R = kResp.reduce((x, y) => Math.max(x, y.length), 0);
      const so = { temperature: cfg.temperature, padTokenId: policy.padTokenId, forwardBatchSize: cfg.per_device_eval_batch_size, R, values: false };
      setTraining(false);
      try {
        const lp = scoreResponses(model, kPrompt, kResp, so).logps;
        const refLp = ref.run((m2) => scoreResponses(m2, kPrompt, kResp, so).logps);
        const mask = new Uint8Array(keep.length * R);
        kResp.forEach((x, b) => mask.fill(1, b * R, b * R + x.length));
        out.kl = mean(rowSums(klPerToken(lp, refLp, method.klEstimator), mask, keep.length, R));
      } finally {
        setTraining(true);
      }
    }
    return out;
  }

  const task: TaskParts['task'] = {
    ...(evalPrompts ? { evaluate: () => evaluate(evalPrompts) } : {}),
    async nextMicroBatch() {
      if (!buffer || buffer.cursor >= buffer.queue.length) buffer = await collect();
      const piece = buffer.queue[buffer.cursor++];
      if (piece.first) steps++;
      return { ...piece, iteration: buffer.iteration };
    },
    lossUnits(mb) {
      const b = buffer as RolloutBuffer;
      const tokens = mb.rows.reduce((s, r) => s + b.responseIds[r].length, 0);
      return method.lossUnits(tokens, mb.rows.length);
    },
    tokens(mb) {
      const b = buffer as RolloutBuffer;
      return mb.rows.reduce((s, r) => s + b.promptIds[r].length + b.responseIds[r].length, 0);
    },
    forwardBackward(mb, normalizer) {
      const b = buffer as RolloutBuffer;
      const rolloutMetrics = mb.first ? b.metrics : {};
      if (mb.rows.length === 0) return { loss: 0, metrics: { ...rolloutMetrics } };
      return tidy(() => {
        const batch = layoutBatch(mb.rows.map((r) => b.promptIds[r]), mb.rows.map((r) => b.responseIds[r]), policy.padTokenId);
        const f = responseForward(model, batch, { temperature: cfg.temperature, values: method.needsValues, critic, entropy: method.entropyBonus ? 'grad' : 'metric' });
        const r = method.loss(f, gatherTokenData(b, mb.rows, f), normalizer);
        const value = r.loss.item();
        r.loss.backward();
        const metrics: Record<string, number> = { ...rolloutMetrics, ...r.metrics };
        // the piece's mean entropy, weighted by its loss units like every other metric
        if (f.entropyValues && f.entropyValues.length)
          metrics['policy/entropy_avg'] = (mean(f.entropyValues) * method.lossUnits(f.entropyValues.length, mb.rows.length)) / normalizer;
        return { loss: value, metrics };
      });
    },
    epoch: () => episodes / (nPrompts * method.samplesPerPrompt),
    state: () => ({
      data: { sampler: sampler.state(), iterationsDone, episodes, steps },
      rng: {},
      extra: { buffer: buffer ? serializeBuffer(buffer) : null, controller: controller.state(), dropped, history, samples },
    }),
    restore(s) {
      const d = s.data as { sampler: LoaderState; iterationsDone: number; episodes: number; steps: number };
      sampler.restore(d.sampler);
      iterationsDone = d.iterationsDone;
      episodes = d.episodes;
      steps = d.steps;
      const x = s.extra as { buffer: SerializedBuffer | null; controller: KlControllerState; dropped: number; history: IterationRecord[]; samples: SampleRecord[] };
      buffer = x.buffer ? deserializeBuffer(x.buffer) : null;
      controller = klControllerFromState(x.controller);
      dropped = x.dropped;
      history = x.history.map((h) => ({ ...h, kl: h.kl ?? Number.NaN }));
      samples = x.samples;
      hooks.onSamples(samples);
      hooks.onIteration(history);
    },
  };
  return {
    task, totalSteps, stepsPerIteration, stepsPerEpoch: Math.max(1, sampler.batchesPerEpoch) * stepsPerIteration,
    history: () => history, dropped: () => dropped, hooks,
  };
}

/** A fixed or adaptive KL controller from PPO-style fields. */
export function klController(klCoef: number, targetKl: number | null, horizon: number): KlController {
  return targetKl !== null ? new AdaptiveKlController(klCoef, targetKl, horizon) : new FixedKlController(klCoef);
}
