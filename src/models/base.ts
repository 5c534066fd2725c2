// What every Hugging Face-style model here shares: the parameter map by HF name, the optional value and score
// heads, the LM-head accessors, cache creation, and the forward preamble (ids / mask / positions / cache checks)
// and per-layer scoping. gpt2.ts and llama.ts only write their blocks.

import { AlignkitError, ShapeError, dropout, isGradEnabled, linear, tidy, type Generator, type Tensor } from '../tensor/index.ts';
import { LayeredKvCache } from '../nn/kv_cache.ts';
import { adapterTrainable } from '../nn/lora.ts';
import { initParams, type ParamSpec } from '../nn/params.ts';
import { prepareInputs, type PreparedInputs } from '../nn/positions.ts';
import type { HfModelConfig } from './config.ts';
import { SCORE_HEAD_WEIGHT, ScoreHead, VALUE_HEAD_BIAS, VALUE_HEAD_WEIGHT, ValueHead } from './heads.ts';
import type { CausalLM, ForwardOptions, KvCache } from './types.ts';

export type StoredDType = 'float32' | 'bfloat16' | 'float16';

/** Where the weights came from: what a save needs to write the checkpoint back the way it was. */
export interface CheckpointInfo {
  /** The folder loaded from (tokenizer files are copied from here on save), or null. */
  dir: string | null;
  /** The stored dtype of each tensor, by HF name (missing = float32). */
  dtypes: Map<string, StoredDType>;
  /** True when the checkpoint names lacked the base-model prefix (GPT-2's original 'h.0.attn...' layout). */
  unprefixed: boolean;
}

export interface PreparedForward extends PreparedInputs {
  cache: LayeredKvCache | null;
  /** Whether an autograd graph is being recorded (then intermediates must outlive the forward). */
  recording: boolean;
}

export abstract class PretrainedLM implements CausalLM {
  /** The HF name prefix of the base model ('model.' or 'transformer.'). */
  abstract readonly basePrefix: string;
  valueHead: ValueHead | null = null;
  scoreHead: ScoreHead | null = null;
  private disposed = false;
  /** Residual dropout while training (see setDropout); off by default. */
  private dropoutP = 0;
  private dropoutGenerator: Generator | null = null;

  constructor(
    readonly config: HfModelConfig,
    /** Body (+ LM head) parameters by HF name. */
    protected readonly params: Map<string, Tensor>,
    readonly checkpoint: CheckpointInfo,
  ) {
    for (const [name, t] of params) t.name ??= name;
  }

  /** ids [B, T] -> final hidden states [B, T, hidden]. */
  abstract forward(ids: Tensor, opts?: ForwardOptions): Tensor;
  /** The token embedding [vocab, hidden]. */
  abstract embedWeight(): Tensor;

  lmHeadWeight(): Tensor {
    if (this.config.tieWordEmbeddings) return this.embedWeight();
    const w = this.params.get('lm_head.weight');
    if (!w) throw new AlignkitError(`${this.config.modelType}: this checkpoint (${this.config.architectures.join(', ') || 'no architectures'}) has no LM head`);
    return w;
  }

  lmHeadBias(): Tensor | null {
    return null;
  }

  /** Logits hidden [.., C] -> [.., vocab] (materialised; prefer linearLogprob for log-probs). */
  logits(hidden: Tensor): Tensor {
    return linear(hidden, this.lmHeadWeight(), this.lmHeadBias());
  }

  /** values [B, T] from the value head (attach one first, or load a checkpoint that has v_head.*). */
  values(hidden: Tensor): Tensor {
    if (!this.valueHead) throw new AlignkitError(`${this.config.modelType}: no value head (attachValueHead() or load a checkpoint with ${VALUE_HEAD_WEIGHT})`);
    return this.valueHead.forward(hidden);
  }

  /** Reward / classification scores [B, num_labels] at each row's last real token. */
  scores(hidden: Tensor, attentionMask?: Tensor | null): Tensor {
    if (!this.scoreHead) throw new AlignkitError(`${this.config.modelType}: no score head (attachScoreHead() or load a *ForSequenceClassification checkpoint)`);
    return this.scoreHead.forward(hidden, attentionMask);
  }

  /** A fresh value head (nn.Linear's default init U(±1/sqrt(hidden)), as TRL's ValueHead). Replaces any present. */
  attachValueHead(seed = 0): ValueHead {
    const C = this.config.hiddenSize;
    const bound = 1 / Math.sqrt(C);
    const p = initParams(
      [
        { name: VALUE_HEAD_WEIGHT, shape: [1, C], init: { kind: 'uniform', bound } },
        { name: VALUE_HEAD_BIAS, shape: [1], init: { kind: 'uniform', bound } },
      ],
      seed,
    );
    this.valueHead?.dispose();
    this.valueHead = new ValueHead(p.get(VALUE_HEAD_WEIGHT) as Tensor, p.get(VALUE_HEAD_BIAS) as Tensor);
    return this.valueHead;
  }

  /** A fresh score head [numLabels, hidden] ~ N(0, 0.02) (HF's init). Replaces any present. */
  attachScoreHead(numLabels = 1, seed = 0): ScoreHead {
    if (!Number.isSafeInteger(numLabels) || numLabels < 1) throw new RangeError(`attachScoreHead: numLabels must be a positive integer, got ${numLabels}`);
    const p = initParams([{ name: SCORE_HEAD_WEIGHT, shape: [numLabels, this.config.hiddenSize], init: { kind: 'normal', std: 0.02 } }], seed);
    this.scoreHead?.dispose();
    this.scoreHead = new ScoreHead(p.get(SCORE_HEAD_WEIGHT) as Tensor);
    return this.scoreHead;
  }

  createCache(batch: number, capacity: number): LayeredKvCache {
    const c = this.config;
    return new LayeredKvCache(this, batch, capacity, c.numLayers, c.numKvHeads, c.headDim);
  }

  /** Every parameter by HF name: body, LM head (when not tied), and the heads attached. */
  namedParameters(): Map<string, Tensor> {
    const out = new Map(this.params);
    if (this.valueHead) for (const [k, v] of this.valueHead.namedParameters()) out.set(k, v);
    if (this.scoreHead) for (const [k, v] of this.scoreHead.namedParameters()) out.set(k, v);
    return out;
  }

  /** Number of scalar parameters (tied weights counted once). */
  numParameters(): number {
    let n = 0;
    for (const t of this.namedParameters().values()) n += t.size;
    return n;
  }

  /**
   * Dropout on every residual branch output (attention and MLP, before the residual add — GPT-2's resid_pdrop
   * placement; also on GPT-2's embeddings) while an autograd graph is recorded; never at inference. Masks come from
   * `generator` (seeded by the trainer, checkpointed with it). p = 0 turns it off. Attention-probability
   * dropout is not applied (the attention kernel is fused); HF Llama-family configs default it to 0 anyway.
   */
  setDropout(p: number, generator: Generator): this {
    if (!(p >= 0 && p < 1)) throw new RangeError(`setDropout: p must be in [0, 1), got ${p}`);
    this.dropoutP = p;
    this.dropoutGenerator = generator;
    return this;
  }

  /** x, or dropout(x) when training with dropout on. */
  protected drop(x: Tensor, p: PreparedForward): Tensor {
    if (this.dropoutP === 0 || !p.recording || !this.dropoutGenerator) return x;
    return dropout(x, this.dropoutP, true, this.dropoutGenerator);
  }

  /** Marks every parameter trainable (requiresGrad) or frozen. */
  setTrainable(flag: boolean): this {
    for (const t of this.namedParameters().values()) t.requireGrad(flag);
    return this;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.params.values()) t.dispose();
    this.valueHead?.dispose();
    this.scoreHead?.dispose();
    this.valueHead = null;
    this.scoreHead = null;
  }

  // ------------------------------------------------------------------------------------------- forward helpers
  protected begin(op: string, ids: Tensor, opts: ForwardOptions): PreparedForward {
    if (this.disposed) throw new AlignkitError(`${op}: the model was disposed`);
    const cache = this.ownCache(op, opts.cache ?? null);
    const p = prepareInputs(op, ids, cache ? cache.length : 0, opts.attentionMask, opts.positionIds, opts.documentIds ?? null);
    cache?.check(p.batch, p.seq);
    const S = p.past + p.seq;
    this.config.slidingWindows.forEach((w, i) => {
      if (w !== null && S > w)
        throw new ShapeError(`${op}: ${S} positions exceed sliding_window ${w} of layer ${i}; sliding-window attention is not implemented (it only matters beyond the window)`);
    });
    let recording = false;
    // LoRA freezes the base weights; its trainable A / B (attached to them) still need the graph.
    if (isGradEnabled()) for (const t of this.params.values()) if (t.requiresGrad || adapterTrainable(t)) recording = true;
    return { ...p, cache, recording };
  }

  private ownCache(op: string, cache: KvCache | null): LayeredKvCache | null {
    if (!cache) return null;
    if (!(cache instanceof LayeredKvCache) || cache.owner !== this) throw new AlignkitError(`${op}: the cache was not created by this model's createCache()`);
    if (cache.isDisposed) throw new AlignkitError(`${op}: the cache was disposed`);
    return cache;
  }

  /**
   * x -> block(x, 0) -> block(.., 1) ... Without an autograd graph each block runs in its own scope, so only one
   * block's activations are alive at a time; with a graph they stay in the caller's scope for backward.
   */
  protected runBlocks(x: Tensor, p: PreparedForward, block: (x: Tensor, layer: number) => Tensor): Tensor {
    const n = this.config.numLayers;
    for (let i = 0; i < n; i++) {
      if (p.recording) x = block(x, i);
      else {
        const prev = x;
        x = tidy(() => block(prev, i));
        prev.dispose();
      }
    }
    return x;
  }
}

/** Canonical spec list + the heads, used by loading and init. */
export interface ModelDefinition {
  /** Body and LM-head tensors (no heads). */
  specs: ParamSpec[];
  basePrefix: string;
}
