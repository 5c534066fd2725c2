// What the preference trainers share: opening pairwise / unpaired data (with a seeded eval split), sampling
// micro-batches, the one concatenated policy pass over chosen + rejected rows, the reference log-probs
// (computed once in a no-grad pass and cached on disk, or per step), and a generic pairwise trainer that DPO,
// ORPO and SimPO instantiate with nothing but their loss. The reward model and KTO reuse the pieces.
//
// Loss normalisation under accumulation: a micro-batch returns per-pair losses ℓ_i; the step's loss is
// Σ_i ℓ_i / (pairs in the whole step), so accumulation does not change the gradient (as for SFT's tokens).

import fs from 'node:fs';
import path from 'node:path';
import { AlignkitError, mulScalar, narrow, noGrad, sum, tidy, type Tensor } from '../tensor/index.ts';
import type { PretrainedLM } from '../models/index.ts';
import { loadModel } from '../models/index.ts';
import { withAdaptersDisabled } from '../nn/lora.ts';
import { openRowSource } from '../data/source.ts';
import { BatchSampler, splitTrainEval, type LoaderState } from '../data/loader.ts';
import { PreferenceDataset, UnpairedDataset } from '../data/preference_dataset.ts';
import { collatePairs, type PairBatch } from '../data/pair_collate.ts';
import type { PreferenceTokenizeOptions, TokenizedPair } from '../data/preference.ts';
import { openSafetensors, saveSafetensors } from '../io/safetensors.ts';
import { tensor } from '../tensor/index.ts';
import { trainDataPath, type DpoConfig, type PreferenceConfig, type TrainingArguments } from '../train/config.ts';
import type { LoopResult, TrainTask } from '../train/loop.ts';
import { loadPolicy, makeOptimizer, prepareOutputDir, runTrainer, totalStepsOf, type LoadPolicyOptions, type Policy } from '../train/session.ts';
import { sequenceLogps } from './sequence_logps.ts';
import { sampledKl } from './sampled_kl.ts';

// ------------------------------------------------------------------------------------------------ data

export function preferenceTokenizeOptions(cfg: PreferenceConfig, policy: Policy): PreferenceTokenizeOptions {
  return { maxLength: cfg.max_length, maxPromptLength: cfg.max_prompt_length, truncation: cfg.truncation_mode, chatTemplate: policy.chatTemplate };
}

/** Train and eval datasets of a preference config: eval_file, or eval_fraction of the training rows (data_seed). */
export async function openSplit<D>(
  cfg: PreferenceConfig,
  open: (file: string, indices?: number[]) => Promise<D>,
): Promise<{ train: D; evalSet: D | null }> {
  const trainPath = trainDataPath(cfg);
  if (cfg.eval_file) return { train: await open(trainPath), evalSet: await open(cfg.eval_file) };
  if (cfg.eval_fraction > 0) {
    const src = await openRowSource(trainPath);
    const n = src.length;
    await src.close();
    const split = splitTrainEval(n, { evalFraction: cfg.eval_fraction, seed: cfg.data_seed ?? cfg.seed });
    return { train: await open(trainPath, split.train), evalSet: await open(trainPath, split.eval) };
  }
  return { train: await open(trainPath), evalSet: null };
}

export async function openPairs(cfg: PreferenceConfig, policy: Policy): Promise<{ train: PreferenceDataset; evalSet: PreferenceDataset | null }> {
  const o = { ...preferenceTokenizeOptions(cfg, policy), skipInvalid: cfg.skip_invalid };
  const r = await openSplit(cfg, (f, idx) => PreferenceDataset.open(f, policy.tok, o, idx));
  if (r.train.length === 0) throw new AlignkitError(`${trainDataPath(cfg)}: no usable preference pairs`);
  return r;
}

export async function openUnpaired(cfg: PreferenceConfig, policy: Policy): Promise<{ train: UnpairedDataset; evalSet: UnpairedDataset | null }> {
  const o = { ...preferenceTokenizeOptions(cfg, policy), skipInvalid: cfg.skip_invalid };
  const r = await openSplit(cfg, (f, idx) => UnpairedDataset.open(f, policy.tok, o, idx));
  if (r.train.length === 0) throw new AlignkitError(`${trainDataPath(cfg)}: no usable examples`);
  return r;
}

// ------------------------------------------------------------------------------------------------ log-probs

/** One concatenated pass: rows 0..B-1 are prompt+chosen, B..2B-1 prompt+rejected. Sums of completion log-probs. */
export interface PairLogps {
  chosen: Tensor;
  rejected: Tensor;
  chosenTokens: Float32Array;
  rejectedTokens: Float32Array;
  /** With fullSequence: the chosen rows' sums over every real token, prompt included (ORPO's NLL), and counts. */
  chosenFull?: Tensor;
  chosenFullTokens?: Float32Array;
}

export function pairLogps(model: PretrainedLM, b: PairBatch, o: { fullSequence?: boolean } = {}): PairLogps {
  const r = sequenceLogps(model, { rows: 2 * b.pairs, seq: b.seq, inputIds: b.inputIds, attentionMask: b.attentionMask, labels: b.labels }, { fullSequence: o.fullSequence });
  return {
    chosen: narrow(r.logps, 0, 0, b.pairs),
    rejected: narrow(r.logps, 0, b.pairs, b.pairs),
    chosenTokens: r.tokens.slice(0, b.pairs),
    rejectedTokens: r.tokens.slice(b.pairs),
    ...(o.fullSequence && r.fullLogps && r.fullTokens ? { chosenFull: narrow(r.fullLogps, 0, 0, b.pairs), chosenFullTokens: r.fullTokens.slice(0, b.pairs) } : {}),
  };
}

/** How reference log-probs are obtained: a separate frozen model, or the policy with LoRA adapters off. */
export interface ReferencePolicy {
  /** Runs fn with the reference model (no grad). */
  run<T>(fn: (model: PretrainedLM) => T): T;
  dispose(): void;
}

/** Reference log-probs of a pair batch (no grad). */
export function referencePairLogps(ref: ReferencePolicy, b: PairBatch): { chosen: Float32Array; rejected: Float32Array } {
  return ref.run((model) =>
    tidy(() => {
      const r = pairLogps(model, b);
      return { chosen: Float32Array.from(r.chosen.toArray()), rejected: Float32Array.from(r.rejected.toArray()) };
    }),
  );
}

/**
 * The reference for DPO-style losses. With ref_model: that folder, frozen. Without: the policy itself — with
 * LoRA its adapters switched off (the base model, no second copy); without LoRA, when the log-probs are
 * precomputed, the policy before its first update (so still no copy); otherwise a frozen copy of the initial
 * weights is loaded.
 */
export function makeReference(cfg: Pick<DpoConfig, 'ref_model' | 'precompute_ref_log_probs' | 'model_name_or_path'>, policy: Policy): ReferencePolicy {
  const frozen = (model: PretrainedLM, owned: boolean): ReferencePolicy => ({ run: (fn) => noGrad(() => fn(model)), dispose: () => owned && model.dispose() });
  if (cfg.ref_model) {
    const ref = loadModel(cfg.ref_model, { trainable: false });
    if (ref.config.vocabSize !== policy.model.config.vocabSize) throw new AlignkitError(`ref_model ${cfg.ref_model}: vocabulary ${ref.config.vocabSize} differs from the policy's ${policy.model.config.vocabSize}`);
    return frozen(ref, true);
  }
  if (policy.lora) return { run: (fn) => withAdaptersDisabled(() => noGrad(() => fn(policy.model))), dispose: () => {} };
  if (cfg.precompute_ref_log_probs) return frozen(policy.model, false);
  return frozen(loadModel(cfg.model_name_or_path, { trainable: false }), true);
}

export interface CachedReference {
  chosen: Float32Array;
  rejected: Float32Array;
}

/**
 * Reference log-probs of every pair of a dataset, in batches, no grad. Cached in `file` (safetensors, written
 * atomically) so a resumed run reuses the values computed from the initial policy instead of recomputing them
 * from trained weights.
 */
export async function precomputeReference(ds: PreferenceDataset, ref: ReferencePolicy, padTokenId: number, batchSize: number, file: string | null): Promise<CachedReference> {
  if (file && fs.existsSync(file)) {
    const r = openSafetensors(file);
    try {
      const chosen = Float32Array.from(noGrad(() => tidy(() => r.load('chosen').toArray())));
      const rejected = Float32Array.from(noGrad(() => tidy(() => r.load('rejected').toArray())));
      if (chosen.length !== ds.length || rejected.length !== ds.length)
        throw new AlignkitError(`${file}: cached reference log-probs are for ${chosen.length} pairs, the dataset has ${ds.length} (delete the file or use another output_dir)`);
      return { chosen, rejected };
    } finally {
      r.close();
    }
  }
  const chosen = new Float32Array(ds.length);
  const rejected = new Float32Array(ds.length);
  for (let i = 0; i < ds.length; i += batchSize) {
    const rows: TokenizedPair[] = [];
    for (let j = i; j < Math.min(ds.length, i + batchSize); j++) rows.push(await ds.get(j));
    const r = referencePairLogps(ref, collatePairs(rows, { padTokenId }));
    chosen.set(r.chosen, i);
    rejected.set(r.rejected, i);
  }
  if (file) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    noGrad(() => tidy(() => saveSafetensors(file, { chosen: tensor(chosen), rejected: tensor(rejected) }, { metadata: { format: 'alignkit-reference-logps' } })));
  }
  return { chosen, rejected };
}

// ------------------------------------------------------------------------------------------------ the generic pairwise trainer

export interface PairMicroBatch {
  batch: PairBatch;
  /** Dataset indices of the pairs (for cached reference log-probs). */
  indices: number[];
}

/** What a pairwise method computes for a micro-batch: per-pair losses and per-pair metric values. */
export interface PairLossResult {
  /** [pairs] losses, or a scalar mean over the micro-batch's pairs. */
  losses: Tensor;
  /** Per-pair values (averaged over pairs for logging), by TRL's metric names. */
  metrics: Record<string, ArrayLike<number>>;
}

export interface PairMethod<C extends PreferenceConfig> {
  name: string;
  /** Whether the loss needs reference log-probs. */
  needsReference(cfg: C): boolean;
  loss(ctx: { cfg: C; policy: Policy; batch: PairBatch; ref: CachedReference | null }): PairLossResult;
  /** Attach heads / choose always-trained tensors. */
  policyOptions?: LoadPolicyOptions;
  /** Written instead of the usual final folder (the reward model's config). */
  afterSave?: (cfg: C, policy: Policy, outputDir: string) => void;
  /** At each evaluation, estimate KL(π‖π_ref) on this many sampled eval completions (see sampled_kl.ts). */
  sampledKl?: (cfg: C) => { prompts: number; maxNewTokens: number } | null;
}

/** The pair losses as a contribution Σℓ/normalizer (per-pair) or mean·pairs/normalizer (scalar means). */
function contribution(losses: Tensor, pairs: number, normalizer: number): Tensor {
  return losses.rank === 0 ? mulScalar(losses, pairs / normalizer) : mulScalar(sum(losses), 1 / normalizer);
}

function meanOf(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return a.length ? s / a.length : Number.NaN;
}

export interface PairSession<C extends PreferenceConfig> {
  policy: Policy;
  train: PreferenceDataset;
  evalSet: PreferenceDataset | null;
  task: Omit<TrainTask<PairMicroBatch>, 'saveModel' | 'loadModel'>;
  /** Metrics of the method over a dataset (no update): the eval metrics, and `--eval_only`. */
  measure(ds: PreferenceDataset, ref: CachedReference | null): Promise<Record<string, number>>;
  /** The method's sampled-KL metrics on a dataset's prompts (empty when the method has none). */
  klMetrics(ds: PreferenceDataset): Promise<Record<string, number>>;
  evalReference: CachedReference | null;
  totalSteps: number;
  stepsPerEpoch: number;
  cfg: C;
  dispose(): Promise<void>;
}

async function gather(ds: PreferenceDataset, indices: readonly number[]): Promise<TokenizedPair[]> {
  return Promise.all(indices.map((i) => ds.get(i)));
}

function subset(ref: CachedReference | null, indices: readonly number[]): CachedReference | null {
  if (!ref) return null;
  return { chosen: Float32Array.from(indices, (i) => ref.chosen[i]), rejected: Float32Array.from(indices, (i) => ref.rejected[i]) };
}

export async function preparePairSession<C extends PreferenceConfig>(cfg: C, method: PairMethod<C>, opts: { evalOnly?: boolean } = {}): Promise<PairSession<C>> {
  const policy = loadPolicy(cfg, method.policyOptions);
  const { train, evalSet } = await openPairs(cfg, policy);
  const B = cfg.per_device_train_batch_size;
  const sampler = new BatchSampler(train.length, { batchSize: B, seed: cfg.data_seed ?? cfg.seed, dropLast: cfg.dataloader_drop_last });
  const { totalSteps, stepsPerEpoch } = totalStepsOf(cfg, sampler.batchesPerEpoch);
  let trainRef: CachedReference | null = null;
  let evalRef: CachedReference | null = null;
  let liveRef: ReferencePolicy | null = null;
  if (method.needsReference(cfg)) {
    const c = cfg as unknown as DpoConfig;
    const ref = makeReference(c, policy);
    const outDir = path.resolve(cfg.output_dir);
    if (c.precompute_ref_log_probs || opts.evalOnly) {
      // computed before any update: the initial policy (or ref_model / the LoRA base) — cached for resume
      const cache = (name: string) => (opts.evalOnly ? null : path.join(outDir, `ref_logps_${name}.safetensors`));
      if (!opts.evalOnly) trainRef = await precomputeReference(train, ref, policy.padTokenId, cfg.per_device_eval_batch_size, cache('train'));
      if (evalSet) evalRef = await precomputeReference(evalSet, ref, policy.padTokenId, cfg.per_device_eval_batch_size, cache('eval'));
      ref.dispose();
    } else liveRef = ref;
  }
  const refFor = (mb: PairMicroBatch): CachedReference | null => {
    if (!method.needsReference(cfg)) return null;
    if (trainRef) return subset(trainRef, mb.indices);
    return referencePairLogps(liveRef as ReferencePolicy, mb.batch);
  };
  let microBatches = 0;
  const task: Omit<TrainTask<PairMicroBatch>, 'saveModel' | 'loadModel'> = {
    async nextMicroBatch() {
      const { indices } = sampler.next();
      microBatches++;
      return { batch: collatePairs(await gather(train, indices), { padTokenId: policy.padTokenId }), indices };
    },
    lossUnits: (mb) => mb.batch.pairs,
    tokens: (mb) => 2 * mb.batch.pairs * mb.batch.seq,
    forwardBackward(mb, normalizer) {
      const ref = refFor(mb);
      return tidy(() => {
        const r = method.loss({ cfg, policy, batch: mb.batch, ref });
        const loss = contribution(r.losses, mb.batch.pairs, normalizer);
        const value = loss.item();
        loss.backward();
        const metrics: Record<string, number> = {};
        for (const [k, v] of Object.entries(r.metrics)) metrics[k] = (meanOf(v) * mb.batch.pairs) / normalizer;
        return { loss: value, metrics };
      });
    },
    evaluate: evalSet ? async () => ({ ...(await measure(evalSet, evalRef)), ...(await klMetrics(evalSet)) }) : undefined,
    epoch: () => (microBatches * B) / Math.max(train.length, 1),
    state: () => ({ data: { sampler: sampler.state(), microBatches }, rng: {} }),
    restore(s) {
      const d = s.data as { sampler: LoaderState; microBatches: number };
      sampler.restore(d.sampler);
      microBatches = d.microBatches;
    },
  };

  async function measure(ds: PreferenceDataset, ref: CachedReference | null): Promise<Record<string, number>> {
    const sums: Record<string, number> = {};
    let lossSum = 0;
    let n = 0;
    const bs = cfg.per_device_eval_batch_size;
    for (let i = 0; i < ds.length; i += bs) {
      const indices = Array.from({ length: Math.min(bs, ds.length - i) }, (_, k) => i + k);
      const batch = collatePairs(await gather(ds, indices), { padTokenId: policy.padTokenId });
      const r = noGrad(() =>
        tidy(() => {
          const out = method.loss({ cfg, policy, batch, ref: method.needsReference(cfg) ? (ref ? subset(ref, indices) : referencePairLogps(liveRef as ReferencePolicy, batch)) : null });
          const losses = out.losses.rank === 0 ? out.losses.item() * batch.pairs : sum(out.losses).item();
          return { losses, metrics: Object.fromEntries(Object.entries(out.metrics).map(([k, v]) => [k, meanOf(v) * batch.pairs])) };
        }),
      );
      lossSum += r.losses;
      for (const [k, v] of Object.entries(r.metrics)) sums[k] = (sums[k] ?? 0) + v;
      n += batch.pairs;
    }
    const out: Record<string, number> = { loss: lossSum / Math.max(n, 1) };
    for (const [k, v] of Object.entries(sums)) out[k] = v / Math.max(n, 1);
    return out;
  }

  /** objective/kl & co. on the first `prompts` eval prompts, sampled from the current policy. */
  async function klMetrics(ds: PreferenceDataset): Promise<Record<string, number>> {
    const want = method.sampledKl?.(cfg);
    if (!want || want.prompts === 0 || ds.length === 0) return {};
    const pairs = await gather(ds, Array.from({ length: Math.min(want.prompts, ds.length) }, (_, i) => i));
    // the precomputed-log-prob path disposed its reference: load one (free with LoRA: adapters off) just for this
    const ref = liveRef ?? makeReference({ ...(cfg as unknown as DpoConfig), precompute_ref_log_probs: false }, policy);
    try {
      const r = noGrad(() =>
        sampledKl(policy.model, (fn) => ref.run(fn), pairs.map((p) => Array.from(p.promptIds)), { maxNewTokens: want.maxNewTokens, seed: cfg.seed, batchSize: cfg.per_device_eval_batch_size, padTokenId: policy.padTokenId }),
      );
      return { 'objective/kl': r.kl, 'objective/kl_k3': r.klK3, 'objective/kl_per_token': r.klPerToken, 'objective/sampled_length': r.responseLength };
    } finally {
      if (ref !== liveRef) ref.dispose();
    }
  }

  return {
    policy, train, evalSet, task, measure, klMetrics, evalReference: evalRef, totalSteps, stepsPerEpoch, cfg,
    async dispose() {
      liveRef?.dispose();
      await train.close();
      await evalSet?.close();
      policy.dispose();
    },
  };
}

export interface PairRunResult extends LoopResult {
  outputDir: string;
  pairs: number;
  evalPairs: number;
}

/** Trains a pairwise method end to end (the `alignkit dpo|orpo|simpo|reward` commands). */
export async function runPairTrainer<C extends PreferenceConfig>(cfg: C, method: PairMethod<C>, o: { console?: boolean } = {}): Promise<PairRunResult> {
  prepareOutputDir(method.name, cfg as TrainingArguments);
  const s = await preparePairSession(cfg, method);
  try {
    const optimizer = makeOptimizer(cfg, s.policy.trainable);
    try {
      const r = await runTrainer(cfg, {
        name: method.name, policy: s.policy, task: s.task, optimizer, totalSteps: s.totalSteps, stepsPerEpoch: s.stepsPerEpoch,
        hasEval: s.evalSet !== null, console: o.console,
        summary: () => ({ pairs: s.train.length, eval_pairs: s.evalSet?.length ?? 0, skipped_invalid_rows: s.train.stats.skipped + (s.evalSet?.stats.skipped ?? 0), truncated_pairs: s.train.stats.truncated }),
      });
      method.afterSave?.(cfg, s.policy, r.outputDir);
      return { ...r, pairs: s.train.length, evalPairs: s.evalSet?.length ?? 0 };
    } finally {
      optimizer.dispose();
    }
  } finally {
    await s.dispose();
  }
}

/** `--eval_only`: the method's loss and metrics on the eval set (or the training file) without any update. */
export async function evaluatePairs<C extends PreferenceConfig>(cfg: C, method: PairMethod<C>): Promise<Record<string, number>> {
  const s = await preparePairSession({ ...cfg, eval_file: cfg.eval_file ?? trainDataPath(cfg), eval_fraction: 0 }, method, { evalOnly: true });
  try {
    const ds = s.evalSet as PreferenceDataset;
    return { ...(await s.measure(ds, s.evalReference)), ...(await s.klMetrics(ds)), pairs: ds.length };
  } finally {
    await s.dispose();
  }
}

/** Logs for ints ids (tests and tools): the policy's pair log-probs of a batch, no grad, as numbers. */
export function pairLogpsNumbers(model: PretrainedLM, b: PairBatch): { chosen: number[]; rejected: number[] } {
  return noGrad(() =>
    tidy(() => {
      const r = pairLogps(model, b);
      return { chosen: r.chosen.toArray(), rejected: r.rejected.toArray() };
    }),
  );
}

