// Randomly initialised models of any supported family, with a config.json exactly as transformers would write
// it, so the result can be saved as a Hugging Face folder and loaded by alignkit or by transformers.

import { initParams } from '../nn/params.ts';
import type { PretrainedLM } from './base.ts';
import { parseModelConfig, type SupportedModelType } from './config.ts';
import { createModel, modelSpecs, saveModel } from './load.ts';

export interface InitModelOptions {
  arch: SupportedModelType;
  hidden: number;
  layers: number;
  heads: number;
  /** Key/value heads (default: heads). GPT-2 has no GQA: must equal heads. */
  kvHeads?: number;
  /** MLP width (default: 4 * hidden for GPT-2, about 8/3 * hidden rounded up to 8 for the Llama family). */
  intermediate?: number;
  vocab: number;
  seed?: number;
  /** Per-head width (Llama family; default hidden / heads). */
  headDim?: number;
  /** Default 2048 (GPT-2: 1024). */
  maxPositions?: number;
  /** Default: true for GPT-2, false otherwise. */
  tieWordEmbeddings?: boolean;
  /** Default 10000. */
  ropeTheta?: number;
  /** Normal init std of the weight matrices (HF's initializer_range, default 0.02). */
  initializerRange?: number;
  bosTokenId?: number | null;
  eosTokenId?: number | null;
  padTokenId?: number | null;
  /** When given, the model is also saved there as a Hugging Face folder. */
  dir?: string;
}

function check(name: string, v: number | undefined, min = 1): void {
  if (v !== undefined && (!Number.isSafeInteger(v) || v < min)) throw new RangeError(`initModel: ${name} must be an integer >= ${min}, got ${v}`);
}

/** The config.json transformers writes for such a model. */
export function initConfigJson(o: InitModelOptions): Record<string, unknown> {
  for (const k of ['hidden', 'layers', 'heads', 'vocab'] as const) check(k, o[k]);
  check('kvHeads', o.kvHeads);
  check('intermediate', o.intermediate);
  check('headDim', o.headDim);
  check('maxPositions', o.maxPositions);
  const tokens = { bos_token_id: o.bosTokenId ?? null, eos_token_id: o.eosTokenId ?? null, pad_token_id: o.padTokenId ?? null };
  const range = o.initializerRange ?? 0.02;
  if (o.arch === 'gpt2') {
    if (o.kvHeads !== undefined && o.kvHeads !== o.heads) throw new RangeError(`initModel: gpt2 has no grouped-query attention (kvHeads ${o.kvHeads} != heads ${o.heads})`);
    if (o.headDim !== undefined && o.headDim * o.heads !== o.hidden) throw new RangeError(`initModel: gpt2 head size is hidden / heads`);
    return {
      architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', activation_function: 'gelu_new',
      n_embd: o.hidden, n_layer: o.layers, n_head: o.heads, n_inner: o.intermediate ?? null, n_positions: o.maxPositions ?? 1024,
      vocab_size: o.vocab, layer_norm_epsilon: 1e-5, initializer_range: range, tie_word_embeddings: o.tieWordEmbeddings ?? true,
      scale_attn_weights: true, scale_attn_by_inverse_layer_idx: false, reorder_and_upcast_attn: false, add_cross_attention: false,
      attn_pdrop: 0.0, embd_pdrop: 0.0, resid_pdrop: 0.0, use_cache: true, dtype: 'float32', ...tokens,
    };
  }
  const cls = { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' }[o.arch];
  const headDim = o.headDim ?? o.hidden / o.heads;
  if (!Number.isInteger(headDim)) throw new RangeError(`initModel: heads ${o.heads} must divide hidden ${o.hidden} (or give headDim)`);
  const raw: Record<string, unknown> = {
    architectures: [cls], model_type: o.arch, hidden_act: 'silu', hidden_size: o.hidden, num_hidden_layers: o.layers,
    num_attention_heads: o.heads, num_key_value_heads: o.kvHeads ?? o.heads, head_dim: headDim,
    intermediate_size: o.intermediate ?? Math.ceil((8 * o.hidden) / 3 / 8) * 8, max_position_embeddings: o.maxPositions ?? 2048,
    vocab_size: o.vocab, rms_norm_eps: 1e-6, initializer_range: range, tie_word_embeddings: o.tieWordEmbeddings ?? false,
    rope_parameters: { rope_type: 'default', rope_theta: o.ropeTheta ?? 10000 }, attention_dropout: 0.0, use_cache: true, dtype: 'float32',
    ...tokens,
  };
  if (o.arch === 'llama') Object.assign(raw, { attention_bias: false, mlp_bias: false, pretraining_tp: 1 });
  if (o.arch === 'qwen3') raw.attention_bias = false;
  if (o.arch === 'mistral') raw.sliding_window = null;
  if (o.arch === 'qwen2' || o.arch === 'qwen3') Object.assign(raw, { use_sliding_window: false, sliding_window: null, max_window_layers: o.layers });
  return raw;
}

/**
 * A randomly initialised model (weights N(0, initializerRange), residual projections of GPT-2 scaled by
 * 1/sqrt(2 * layers), biases 0, norm weights 1), deterministic for a seed. Saved to `dir` when given.
 */
export function initModel(o: InitModelOptions): PretrainedLM {
  const raw = initConfigJson(o);
  const config = parseModelConfig(raw, `initModel(${o.arch})`);
  const { specs } = modelSpecs(config, o.initializerRange ?? 0.02);
  const model = createModel(config, initParams(specs, o.seed ?? 0), { dir: null, dtypes: new Map(), unprefixed: false });
  if (o.dir !== undefined) {
    try {
      saveModel(model, o.dir);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  return model;
}
