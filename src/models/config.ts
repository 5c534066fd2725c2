// config.json -> ModelConfig (+ the family-specific fields the implementations need).
//
// Hugging Face configs name the same thing differently per family (GPT-2's n_embd / n_layer / n_head /
// n_positions vs Llama's hidden_size / num_hidden_layers / ...), and transformers 5 moved rope settings from
// `rope_theta` + `rope_scaling` into one `rope_parameters` object. Both spellings are read. Anything this
// implementation cannot reproduce exactly (an unknown model_type, rope_type 'yarn', cross-attention, ...) is an
// error naming the file and the field, never a silently different model.

import fs from 'node:fs';
import path from 'node:path';
import { CheckpointError } from '../io/index.ts';
import type { ModelConfig } from './types.ts';

/** The model_type values implemented, and the implementation each one uses. */
export const SUPPORTED_MODEL_TYPES = ['gpt2', 'llama', 'mistral', 'qwen2', 'qwen3'] as const;
export type SupportedModelType = (typeof SUPPORTED_MODEL_TYPES)[number];
export type ModelFamily = 'gpt2' | 'llama';

export type Activation = 'silu' | 'gelu_tanh' | 'gelu_erf' | 'relu';

/** Rotary embedding settings (Llama family). HF's rope types 'default', 'linear' and 'llama3' are supported. */
export interface RopeConfig {
  type: 'default' | 'linear' | 'llama3';
  theta: number;
  /** linear / llama3: frequencies divided by this. */
  factor: number;
  /** llama3 only. */
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

/** What the checkpoint is: a causal LM (lm_head) or a sequence classifier / reward model (score head). */
export type Architecture = 'causal-lm' | 'sequence-classification';

export interface HfModelConfig extends ModelConfig {
  modelType: SupportedModelType;
  family: ModelFamily;
  architecture: Architecture;
  /** `architectures` from config.json (e.g. ['LlamaForCausalLM']); [] when absent. */
  architectures: string[];
  /** Score-head rows for sequence classification; null = take it from the checkpoint's score.weight. */
  numLabels: number | null;
  activation: Activation;
  /** rms_norm_eps (Llama family) or layer_norm_epsilon (GPT-2). */
  normEps: number;
  /** null for GPT-2 (learned absolute positions). */
  rope: RopeConfig | null;
  /** Bias on q/k/v projections (qwen2 always; llama/qwen3 with attention_bias). */
  qkvBias: boolean;
  /** Bias on the attention output projection (llama/qwen3 with attention_bias). */
  outBias: boolean;
  /** Bias on gate/up/down (llama mlp_bias). */
  mlpBias: boolean;
  /** Qwen3: RMSNorm over head_dim on queries and keys before rope. */
  qkNorm: boolean;
  /** Per layer: the sliding attention window, or null for full attention. */
  slidingWindows: (number | null)[];
  /** GPT-2: attention scale 1/sqrt(headDim) (scale_attn_weights) and / (layer + 1) (scale_attn_by_inverse_layer_idx). */
  scaleAttnWeights: boolean;
  scaleAttnByInverseLayerIdx: boolean;
  /** The stored dtype the config declares ('dtype' or 'torch_dtype'), or null. */
  declaredDtype: string | null;
  /** config.json as read (unknown fields kept, so a save writes them back). */
  raw: Record<string, unknown>;
  /** generation_config.json as read, or null. */
  generationConfig: Record<string, unknown> | null;
}

/** Reads fields of one JSON object; every error names the file and the field. */
class Fields {
  constructor(
    readonly file: string,
    readonly obj: Record<string, unknown>,
    readonly prefix = '',
  ) {}

  fail(field: string, problem: string): CheckpointError {
    return new CheckpointError('config', this.file, `field '${this.prefix}${field}' ${problem}`);
  }

  has(field: string): boolean {
    return this.obj[field] !== undefined && this.obj[field] !== null;
  }

  private show(v: unknown): string {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 60)}...` : s;
  }

  int(field: string, dflt?: number, min = 1): number {
    const v = this.obj[field];
    if (v === undefined || v === null) {
      if (dflt === undefined) throw this.fail(field, 'is missing');
      return dflt;
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw this.fail(field, `must be an integer >= ${min}, got ${this.show(v)}`);
    return v;
  }

  optInt(field: string, min = 1): number | null {
    return this.has(field) ? this.int(field, undefined, min) : null;
  }

  num(field: string, dflt?: number, positive = true): number {
    const v = this.obj[field];
    if (v === undefined || v === null) {
      if (dflt === undefined) throw this.fail(field, 'is missing');
      return dflt;
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || (positive && !(v > 0))) throw this.fail(field, `must be a ${positive ? 'positive ' : ''}number, got ${this.show(v)}`);
    return v;
  }

  bool(field: string, dflt: boolean): boolean {
    const v = this.obj[field];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') throw this.fail(field, `must be true or false, got ${this.show(v)}`);
    return v;
  }

  str(field: string, dflt?: string): string {
    const v = this.obj[field];
    if (v === undefined || v === null) {
      if (dflt === undefined) throw this.fail(field, 'is missing');
      return dflt;
    }
    if (typeof v !== 'string') throw this.fail(field, `must be a string, got ${this.show(v)}`);
    return v;
  }

  /** A token id, or null. */
  tokenId(field: string): number | null {
    const v = this.obj[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw this.fail(field, `must be a token id (integer >= 0) or null, got ${this.show(v)}`);
    return v;
  }

  /** A token id, a list of them, or null. */
  tokenIds(field: string): number[] {
    const v = this.obj[field];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    for (const x of list)
      if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) throw this.fail(field, `must be a token id or a list of token ids, got ${this.show(v)}`);
    return list as number[];
  }

  object(field: string): Record<string, unknown> | null {
    const v = this.obj[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) throw this.fail(field, `must be an object, got ${this.show(v)}`);
    return v as Record<string, unknown>;
  }

  /** Rejects a field whose value would change the model in a way not implemented. */
  forbid(field: string, allowed: (v: unknown) => boolean, why: string): void {
    const v = this.obj[field];
    if (v !== undefined && v !== null && !allowed(v)) throw this.fail(field, `= ${this.show(v)} is not supported (${why})`);
  }
}

function activationOf(f: Fields, field: string, dflt: string): Activation {
  const act = f.str(field, dflt);
  switch (act) {
    case 'silu':
    case 'swish':
      return 'silu';
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return 'gelu_tanh';
    case 'gelu':
      return 'gelu_erf';
    case 'relu':
      return 'relu';
    default:
      throw f.fail(field, `= '${act}' is not a supported activation (silu, gelu, gelu_new, gelu_pytorch_tanh, relu)`);
  }
}

/** rope_parameters (transformers 5) or rope_theta + rope_scaling (transformers 4). */
function ropeOf(f: Fields): RopeConfig {
  let params = f.object('rope_parameters');
  let where = 'rope_parameters';
  let theta: number;
  if (params) {
    // A per-layer-type dict ({full_attention: {...}, sliding_attention: {...}}) is a Gemma-style config.
    if (!('rope_theta' in params) && !('rope_type' in params) && !('type' in params))
      throw f.fail('rope_parameters', 'has no rope_theta / rope_type (per-layer-type rope parameters are not supported)');
    const p = new Fields(f.file, params, 'rope_parameters.');
    theta = p.num('rope_theta', f.num('rope_theta', 10000));
  } else {
    theta = f.num('rope_theta', 10000);
    params = f.object('rope_scaling');
    where = 'rope_scaling';
  }
  const rope: RopeConfig = { type: 'default', theta, factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPositions: 0 };
  const partial = params?.partial_rotary_factor ?? f.obj.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1)
    throw f.fail(params?.partial_rotary_factor !== undefined ? `${where}.partial_rotary_factor` : 'partial_rotary_factor', `= ${JSON.stringify(partial)} is not supported (partial rotary embeddings)`);
  if (!params) return rope;
  const p = new Fields(f.file, params, `${where}.`);
  const type = p.has('rope_type') ? p.str('rope_type') : p.str('type', 'default');
  const typeField = p.has('rope_type') ? 'rope_type' : 'type';
  switch (type) {
    case 'default':
      return rope;
    case 'linear':
      return { ...rope, type: 'linear', factor: p.num('factor') };
    case 'llama3': {
      const r: RopeConfig = {
        ...rope,
        type: 'llama3',
        factor: p.num('factor'),
        lowFreqFactor: p.num('low_freq_factor'),
        highFreqFactor: p.num('high_freq_factor'),
        originalMaxPositions: p.int('original_max_position_embeddings', f.int('max_position_embeddings')),
      };
      if (!(r.highFreqFactor > r.lowFreqFactor)) throw p.fail('high_freq_factor', `(${r.highFreqFactor}) must be greater than low_freq_factor (${r.lowFreqFactor})`);
      return r;
    }
    default:
      throw p.fail(typeField, `= '${type}' is not supported (supported rope types: default, linear, llama3)`);
  }
}

/** Parses a config.json object. `file` names it in errors. */
export function parseModelConfig(raw: Record<string, unknown>, file: string, generationConfig: Record<string, unknown> | null = null): HfModelConfig {
  const f = new Fields(file, raw);
  const modelType = f.str('model_type');
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType))
    throw f.fail('model_type', `= '${modelType}' is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
  const mt = modelType as SupportedModelType;

  const archField = raw.architectures;
  const architectures = Array.isArray(archField) ? archField.filter((a): a is string => typeof a === 'string') : [];
  const seqCls = architectures.some((a) => a.endsWith('ForSequenceClassification'));
  let numLabels: number | null = f.optInt('num_labels');
  const id2label = f.object('id2label');
  if (numLabels === null && id2label) numLabels = Object.keys(id2label).length || null;

  const g = generationConfig ? new Fields(file.replace(/config\.json$/, 'generation_config.json'), generationConfig) : null;
  const eos = [...new Set([...(g ? g.tokenIds('eos_token_id') : []), ...f.tokenIds('eos_token_id')])];
  const bos = f.tokenId('bos_token_id') ?? g?.tokenId('bos_token_id') ?? null;
  const pad = f.tokenId('pad_token_id') ?? g?.tokenId('pad_token_id') ?? null;
  const declaredDtype = typeof raw.dtype === 'string' ? raw.dtype : typeof raw.torch_dtype === 'string' ? raw.torch_dtype : null;

  const common = {
    architectures, architecture: (seqCls ? 'sequence-classification' : 'causal-lm') as Architecture, numLabels: seqCls ? numLabels : null,
    bosTokenId: bos, eosTokenIds: eos, padTokenId: pad, declaredDtype, raw, generationConfig,
  };

  if (mt === 'gpt2') {
    const hidden = f.int('n_embd', f.int('hidden_size', 768));
    const heads = f.int('n_head', f.int('num_attention_heads', 12));
    if (hidden % heads !== 0) throw f.fail('n_head', `(${heads}) must divide n_embd (${hidden})`);
    f.forbid('add_cross_attention', (v) => v === false, 'cross-attention');
    const numLayers = f.int('n_layer', f.int('num_hidden_layers', 12));
    return {
      ...common,
      modelType: mt, family: 'gpt2',
      vocabSize: f.int('vocab_size', 50257),
      hiddenSize: hidden,
      numLayers,
      numHeads: heads,
      numKvHeads: heads,
      headDim: hidden / heads,
      intermediateSize: f.optInt('n_inner') ?? 4 * hidden,
      maxPositions: f.int('n_positions', f.int('max_position_embeddings', 1024)),
      tieWordEmbeddings: f.bool('tie_word_embeddings', true),
      activation: activationOf(f, 'activation_function', 'gelu_new'),
      normEps: f.num('layer_norm_epsilon', 1e-5),
      rope: null, qkvBias: true, outBias: true, mlpBias: true, qkNorm: false,
      slidingWindows: new Array<number | null>(numLayers).fill(null),
      scaleAttnWeights: f.bool('scale_attn_weights', true),
      scaleAttnByInverseLayerIdx: f.bool('scale_attn_by_inverse_layer_idx', false),
    };
  }

  // Llama family: llama (also SmolLM, TinyLlama), mistral, qwen2, qwen3.
  const hidden = f.int('hidden_size');
  const heads = f.int('num_attention_heads');
  const kvHeads = f.int('num_key_value_heads', heads);
  if (heads % kvHeads !== 0) throw f.fail('num_key_value_heads', `(${kvHeads}) must divide num_attention_heads (${heads})`);
  let headDim = f.optInt('head_dim');
  if (headDim === null) {
    if (hidden % heads !== 0) throw f.fail('num_attention_heads', `(${heads}) must divide hidden_size (${hidden}) when head_dim is not given`);
    headDim = hidden / heads;
  }
  if (headDim % 2 !== 0) throw f.fail('head_dim', `(${headDim}) must be even for rotary embeddings`);
  const numLayers = f.int('num_hidden_layers');
  const attentionBias = mt === 'llama' || mt === 'qwen3' ? f.bool('attention_bias', false) : false;

  // Sliding-window attention: mistral applies sliding_window to every layer; qwen2/qwen3 only with
  // use_sliding_window, on the layers layer_types marks (default: layers >= max_window_layers).
  const slidingWindows = new Array<number | null>(numLayers).fill(null);
  if (mt === 'mistral') {
    const w = f.optInt('sliding_window');
    slidingWindows.fill(w);
  } else if (mt === 'qwen2' || mt === 'qwen3') {
    const w = f.bool('use_sliding_window', false) ? f.optInt('sliding_window') : null;
    const types = raw.layer_types;
    if (Array.isArray(types)) {
      if (types.length !== numLayers) throw f.fail('layer_types', `has ${types.length} entries for ${numLayers} layers`);
      types.forEach((t, i) => {
        if (t !== 'full_attention' && t !== 'sliding_attention') throw f.fail('layer_types', `entry ${i} = ${JSON.stringify(t)} is not 'full_attention' or 'sliding_attention'`);
        slidingWindows[i] = t === 'sliding_attention' ? w : null;
      });
    } else if (w !== null) {
      const from = f.int('max_window_layers', 28, 0);
      for (let i = from; i < numLayers; i++) slidingWindows[i] = w;
    }
  }

  return {
    ...common,
    modelType: mt, family: 'llama',
    vocabSize: f.int('vocab_size'),
    hiddenSize: hidden,
    numLayers,
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    intermediateSize: f.int('intermediate_size'),
    maxPositions: f.int('max_position_embeddings', 2048),
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
    activation: activationOf(f, 'hidden_act', 'silu'),
    normEps: f.num('rms_norm_eps', 1e-6),
    rope: ropeOf(f),
    qkvBias: mt === 'qwen2' ? true : attentionBias,
    outBias: attentionBias,
    mlpBias: mt === 'llama' ? f.bool('mlp_bias', false) : false,
    qkNorm: mt === 'qwen3',
    slidingWindows,
    scaleAttnWeights: true,
    scaleAttnByInverseLayerIdx: false,
  };
}

function readJsonObject(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = e instanceof Error && 'code' in e ? String(e.code) : String(e);
    throw new CheckpointError('config', file, code === 'ENOENT' ? `${what} not found` : `cannot read ${what} (${code})`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError('config', file, `invalid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CheckpointError('config', file, `must hold a JSON object`);
  return v as Record<string, unknown>;
}

/** Reads <dir>/config.json (and generation_config.json when present). */
export function readModelConfig(dir: string): HfModelConfig {
  const file = path.join(dir, 'config.json');
  const raw = readJsonObject(file, 'config.json');
  const genFile = path.join(dir, 'generation_config.json');
  const gen = fs.existsSync(genFile) ? readJsonObject(genFile, 'generation_config.json') : null;
  return parseModelConfig(raw, file, gen);
}
