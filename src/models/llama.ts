// The Llama family in one file: llama (also SmolLM, TinyLlama, Llama 3 with llama3 rope scaling), mistral,
// qwen2 and qwen3. They differ only in small switches read from config.json:
//   qwen2       q/k/v projections have a bias
//   llama/qwen3 attention_bias puts a bias on q/k/v/o; llama's mlp_bias on gate/up/down
//   qwen3       RMSNorm over head_dim on queries and keys (q_norm / k_norm) before rope
//   mistral     sliding_window (and qwen2/3 with use_sliding_window): only checked — it changes nothing
//               until a sequence is longer than the window, and longer sequences are refused.
//
// Block (pre-norm, residual):
//   h = rmsnorm(x) ; q, k, v = h Wqᵀ, h Wkᵀ, h Wvᵀ (+ bias) ; [q, k = rmsnorm_headDim(q, k)] ;
//   q, k = rope(q, k, positions) ; a = softmax(q kᵀ / sqrt(D) + causal/padding mask) v   (GQA: Hq/Hkv query
//   heads share each kv head) ; x = x + a Woᵀ ; x = x + down(silu(gate(rmsnorm(x))) * up(rmsnorm(x)))
// then a final rmsnorm. Parameter names are those of HF *ForCausalLM ('model.layers.0.self_attn.q_proj.weight').

import { embedding, reshape, rmsNorm, rope, type Tensor } from '../tensor/index.ts';
import { residualAdd } from '../nn/fused.ts';
import { attend, splitHeads } from '../nn/attention.ts';
import { gatedMlp, type GatedMlpWeights } from '../nn/mlp.ts';
import { project } from '../nn/lora.ts';
import { optionalParam, param, type ParamSpec } from '../nn/params.ts';
import { RopeCache, ropeInverseFrequencies } from '../nn/rope.ts';
import { PretrainedLM, type CheckpointInfo, type PreparedForward } from './base.ts';
import type { HfModelConfig } from './config.ts';
import type { ForwardOptions } from './types.ts';

/** The tensors of a Llama-family checkpoint (body + LM head; the heads are declared by the loader). */
export function llamaParamSpecs(c: HfModelConfig, std = 0.02): ParamSpec[] {
  const C = c.hiddenSize;
  const D = c.headDim;
  const I = c.intermediateSize;
  const normal = { kind: 'normal', std } as const;
  const zeros = { kind: 'zeros' } as const;
  const ones = { kind: 'ones' } as const;
  const specs: ParamSpec[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, C], init: normal }];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}.`;
    specs.push({ name: `${p}input_layernorm.weight`, shape: [C], init: ones });
    for (const [n, rows] of [['q', c.numHeads * D], ['k', c.numKvHeads * D], ['v', c.numKvHeads * D]] as const) {
      specs.push({ name: `${p}self_attn.${n}_proj.weight`, shape: [rows, C], init: normal });
      if (c.qkvBias) specs.push({ name: `${p}self_attn.${n}_proj.bias`, shape: [rows], init: zeros });
    }
    specs.push({ name: `${p}self_attn.o_proj.weight`, shape: [C, c.numHeads * D], init: normal });
    if (c.outBias) specs.push({ name: `${p}self_attn.o_proj.bias`, shape: [C], init: zeros });
    if (c.qkNorm) {
      specs.push({ name: `${p}self_attn.q_norm.weight`, shape: [D], init: ones });
      specs.push({ name: `${p}self_attn.k_norm.weight`, shape: [D], init: ones });
    }
    specs.push({ name: `${p}post_attention_layernorm.weight`, shape: [C], init: ones });
    for (const [n, shape] of [['gate', [I, C]], ['up', [I, C]], ['down', [C, I]]] as const) {
      specs.push({ name: `${p}mlp.${n}_proj.weight`, shape: [...shape], init: normal });
      if (c.mlpBias) specs.push({ name: `${p}mlp.${n}_proj.bias`, shape: [shape[0]], init: zeros });
    }
  }
  specs.push({ name: 'model.norm.weight', shape: [C], init: ones });
  if (c.architecture === 'causal-lm' && !c.tieWordEmbeddings) specs.push({ name: 'lm_head.weight', shape: [c.vocabSize, C], init: normal });
  return specs;
}

interface LlamaBlock {
  inputNorm: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  o: Tensor;
  qBias: Tensor | null;
  kBias: Tensor | null;
  vBias: Tensor | null;
  oBias: Tensor | null;
  qNorm: Tensor | null;
  kNorm: Tensor | null;
  postNorm: Tensor;
  mlp: GatedMlpWeights;
}

export class LlamaModel extends PretrainedLM {
  readonly basePrefix = 'model.';
  private readonly embed: Tensor;
  private readonly blocks: LlamaBlock[];
  private readonly norm: Tensor;
  private readonly rope: RopeCache;

  constructor(config: HfModelConfig, params: Map<string, Tensor>, checkpoint: CheckpointInfo) {
    super(config, params, checkpoint);
    if (config.family !== 'llama' || !config.rope) throw new Error(`LlamaModel: config of model_type '${config.modelType}' is not a Llama-family config`);
    const c = config;
    this.embed = param(params, 'model.embed_tokens.weight', [c.vocabSize, c.hiddenSize]);
    this.blocks = [];
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}.`;
      const get = (n: string): Tensor => param(params, p + n);
      const opt = (n: string): Tensor | null => optionalParam(params, p + n);
      this.blocks.push({
        inputNorm: get('input_layernorm.weight'),
        q: get('self_attn.q_proj.weight'),
        k: get('self_attn.k_proj.weight'),
        v: get('self_attn.v_proj.weight'),
        o: get('self_attn.o_proj.weight'),
        qBias: opt('self_attn.q_proj.bias'),
        kBias: opt('self_attn.k_proj.bias'),
        vBias: opt('self_attn.v_proj.bias'),
        oBias: opt('self_attn.o_proj.bias'),
        qNorm: opt('self_attn.q_norm.weight'),
        kNorm: opt('self_attn.k_norm.weight'),
        postNorm: get('post_attention_layernorm.weight'),
        mlp: {
          gate: get('mlp.gate_proj.weight'),
          up: get('mlp.up_proj.weight'),
          down: get('mlp.down_proj.weight'),
          gateBias: opt('mlp.gate_proj.bias'),
          upBias: opt('mlp.up_proj.bias'),
          downBias: opt('mlp.down_proj.bias'),
        },
      });
    }
    this.norm = param(params, 'model.norm.weight', [c.hiddenSize]);
    this.rope = new RopeCache(ropeInverseFrequencies(c.rope as NonNullable<typeof c.rope>, c.headDim));
  }

  embedWeight(): Tensor {
    return this.embed;
  }

  forward(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    const p = this.begin(`${this.config.modelType}.forward`, ids, opts);
    const tables = this.rope.get(p.maxPosition + 1);
    const x = embedding(this.embed, ids); // [B, T, C]
    const h = this.runBlocks(x, p, (xi, i) => this.block(xi, i, p, tables.cos, tables.sin));
    const out = rmsNorm(h, this.norm, this.config.normEps);
    p.cache?.advance(p.seq);
    return out;
  }

  private block(x: Tensor, i: number, p: PreparedForward, cos: Tensor, sin: Tensor): Tensor {
    const c = this.config;
    const w = this.blocks[i];
    const { batch: B, seq: T } = p;
    const D = c.headDim;
    const eps = c.normEps;
    const h = rmsNorm(x, w.inputNorm, eps);
    // projections [B, T, H*D] -> heads [B, H, T, D]; qwen3 normalises each head vector first
    const heads = (y: Tensor, H: number, norm: Tensor | null): Tensor => splitHeads(norm ? reshape(rmsNorm(reshape(y, [B, T, H, D]), norm, eps), [B, T, H * D]) : y, H, D);
    const q = heads(project(h, w.q, w.qBias), c.numHeads, w.qNorm); // [B, Hq, T, D]
    const k = heads(project(h, w.k, w.kBias), c.numKvHeads, w.kNorm); // [B, Hkv, T, D]
    const v = splitHeads(project(h, w.v, w.vBias), c.numKvHeads, D); // [B, Hkv, T, D]
    const qr = rope(q, cos, sin, p.positions);
    const kr = rope(k, cos, sin, p.positions);
    const a = attend(qr, kr, v, { scale: 1 / Math.sqrt(D), keyMask: p.keyMask, docIds: p.docIds, cache: p.cache, layer: i }); // [B, T, Hq*D]
    const x1 = residualAdd(x, this.drop(project(a, w.o, w.oBias), p));
    return residualAdd(x1, this.drop(gatedMlp(rmsNorm(x1, w.postNorm, eps), w.mlp, c.activation), p));
  }

  override dispose(): void {
    super.dispose();
    this.rope.dispose();
  }
}
