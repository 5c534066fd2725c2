// GPT-2: learned absolute position embeddings, LayerNorm, one fused q/k/v projection, gelu_new MLP, tied head.
//
// Block (pre-norm, residual):
//   qkv = ln_1(x) Wᵀ + b  -> q, k, v [B, H, T, D] ; a = softmax(q kᵀ · scale + mask) v ; x = x + c_proj(a)
//   x = x + c_proj(gelu_tanh(c_fc(ln_2(x))))
// then ln_f. HF stores the four projections as Conv1D weights [in, out]; the loader transposes them to the
// nn.Linear layout [out, in] used here (and save transposes back), so every projection is one `project`
// (linear, plus a LoRA update when an adapter is attached: src/nn/lora.ts).

import { embedding, layerNorm, narrow, reshape, ShapeError, type Tensor } from '../tensor/index.ts';
import { residualAdd } from '../nn/fused.ts';
import { attend, headsFirst } from '../nn/attention.ts';
import { mlp, type MlpWeights } from '../nn/mlp.ts';
import { project } from '../nn/lora.ts';
import { param, type ParamSpec } from '../nn/params.ts';
import { PretrainedLM, type CheckpointInfo, type PreparedForward } from './base.ts';
import type { HfModelConfig } from './config.ts';
import type { ForwardOptions } from './types.ts';

/** The tensors of a GPT-2 checkpoint (names of GPT2LMHeadModel; `conv1d` ones are stored [in, out]). */
export function gpt2ParamSpecs(c: HfModelConfig, std = 0.02): ParamSpec[] {
  const C = c.hiddenSize;
  const I = c.intermediateSize;
  const normal = { kind: 'normal', std } as const;
  // GPT-2's scaled init of the residual projections: std / sqrt(2 * layers)
  const resid = { kind: 'normal', std: std / Math.sqrt(2 * c.numLayers) } as const;
  const zeros = { kind: 'zeros' } as const;
  const ones = { kind: 'ones' } as const;
  const specs: ParamSpec[] = [
    { name: 'transformer.wte.weight', shape: [c.vocabSize, C], init: normal },
    { name: 'transformer.wpe.weight', shape: [c.maxPositions, C], init: { kind: 'normal', std: 0.01 } },
  ];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `transformer.h.${i}.`;
    specs.push(
      { name: `${p}ln_1.weight`, shape: [C], init: ones },
      { name: `${p}ln_1.bias`, shape: [C], init: zeros },
      { name: `${p}attn.c_attn.weight`, shape: [3 * C, C], init: normal, conv1d: true },
      { name: `${p}attn.c_attn.bias`, shape: [3 * C], init: zeros },
      { name: `${p}attn.c_proj.weight`, shape: [C, C], init: resid, conv1d: true },
      { name: `${p}attn.c_proj.bias`, shape: [C], init: zeros },
      { name: `${p}ln_2.weight`, shape: [C], init: ones },
      { name: `${p}ln_2.bias`, shape: [C], init: zeros },
      { name: `${p}mlp.c_fc.weight`, shape: [I, C], init: normal, conv1d: true },
      { name: `${p}mlp.c_fc.bias`, shape: [I], init: zeros },
      { name: `${p}mlp.c_proj.weight`, shape: [C, I], init: resid, conv1d: true },
      { name: `${p}mlp.c_proj.bias`, shape: [C], init: zeros },
    );
  }
  specs.push({ name: 'transformer.ln_f.weight', shape: [C], init: ones }, { name: 'transformer.ln_f.bias', shape: [C], init: zeros });
  if (c.architecture === 'causal-lm' && !c.tieWordEmbeddings) specs.push({ name: 'lm_head.weight', shape: [c.vocabSize, C], init: normal });
  return specs;
}

interface Gpt2Block {
  ln1: [Tensor, Tensor];
  qkv: Tensor; // [3C, C]
  qkvBias: Tensor;
  proj: Tensor; // [C, C]
  projBias: Tensor;
  ln2: [Tensor, Tensor];
  mlp: MlpWeights;
}

export class Gpt2Model extends PretrainedLM {
  readonly basePrefix = 'transformer.';
  private readonly wte: Tensor;
  private readonly wpe: Tensor;
  private readonly blocks: Gpt2Block[];
  private readonly lnf: [Tensor, Tensor];

  constructor(config: HfModelConfig, params: Map<string, Tensor>, checkpoint: CheckpointInfo) {
    super(config, params, checkpoint);
    if (config.family !== 'gpt2') throw new Error(`Gpt2Model: config of model_type '${config.modelType}' is not a GPT-2 config`);
    const c = config;
    const C = c.hiddenSize;
    this.wte = param(params, 'transformer.wte.weight', [c.vocabSize, C]);
    this.wpe = param(params, 'transformer.wpe.weight', [c.maxPositions, C]);
    this.blocks = [];
    for (let i = 0; i < c.numLayers; i++) {
      const get = (n: string): Tensor => param(params, `transformer.h.${i}.${n}`);
      this.blocks.push({
        ln1: [get('ln_1.weight'), get('ln_1.bias')],
        qkv: get('attn.c_attn.weight'),
        qkvBias: get('attn.c_attn.bias'),
        proj: get('attn.c_proj.weight'),
        projBias: get('attn.c_proj.bias'),
        ln2: [get('ln_2.weight'), get('ln_2.bias')],
        mlp: { fc: get('mlp.c_fc.weight'), fcBias: get('mlp.c_fc.bias'), proj: get('mlp.c_proj.weight'), projBias: get('mlp.c_proj.bias') },
      });
    }
    this.lnf = [param(params, 'transformer.ln_f.weight'), param(params, 'transformer.ln_f.bias')];
  }

  embedWeight(): Tensor {
    return this.wte;
  }

  forward(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    const op = 'gpt2.forward';
    const p = this.begin(op, ids, opts);
    if (p.maxPosition >= this.config.maxPositions)
      throw new ShapeError(`${op}: position ${p.maxPosition} is beyond n_positions ${this.config.maxPositions} (GPT-2's learned position table)`);
    const x = this.drop(residualAdd(embedding(this.wte, ids), embedding(this.wpe, p.positions)), p); // [B, T, C] (embd_pdrop)
    const h = this.runBlocks(x, p, (xi, i) => this.block(xi, i, p));
    const out = layerNorm(h, this.lnf[0], this.lnf[1], this.config.normEps);
    p.cache?.advance(p.seq);
    return out;
  }

  private block(x: Tensor, i: number, p: PreparedForward): Tensor {
    const c = this.config;
    const w = this.blocks[i];
    const { batch: B, seq: T } = p;
    const H = c.numHeads;
    const D = c.headDim;
    const eps = c.normEps;
    const qkv = project(layerNorm(x, w.ln1[0], w.ln1[1], eps), w.qkv, w.qkvBias); // [B, T, 3C]
    const split = headsFirst(qkv, 3, H, D); // [3, B, H, T, D]
    const part = (j: number): Tensor => reshape(narrow(split, 0, j, 1), [B, H, T, D]); // contiguous views
    let scale = c.scaleAttnWeights ? 1 / Math.sqrt(D) : 1;
    if (c.scaleAttnByInverseLayerIdx) scale /= i + 1;
    const a = attend(part(0), part(1), part(2), { scale, keyMask: p.keyMask, docIds: p.docIds, cache: p.cache, layer: i }); // [B, T, C]
    const x1 = residualAdd(x, this.drop(project(a, w.proj, w.projBias), p));
    return residualAdd(x1, this.drop(mlp(layerNorm(x1, w.ln2[0], w.ln2[1], eps), w.mlp, c.activation), p));
  }
}
