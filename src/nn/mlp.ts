// Feed-forward blocks: the gated (SwiGLU-style) MLP of the Llama family and GPT-2's two-layer MLP.
// Projections go through project() so LoRA adapters attached to their weights apply.

import { gelu, relu, silu, type Tensor } from '../tensor/index.ts';
import { gatedActivation } from './fused.ts';
import { project } from './lora.ts';

export type ActivationName = 'silu' | 'gelu_tanh' | 'gelu_erf' | 'relu';

export function activate(x: Tensor, act: ActivationName): Tensor {
  switch (act) {
    case 'silu':
      return silu(x);
    case 'gelu_tanh':
      return gelu(x, 'tanh');
    case 'gelu_erf':
      return gelu(x, 'erf');
    case 'relu':
      return relu(x);
  }
}

export interface GatedMlpWeights {
  gate: Tensor; // [I, C]
  up: Tensor; // [I, C]
  down: Tensor; // [C, I]
  gateBias: Tensor | null;
  upBias: Tensor | null;
  downBias: Tensor | null;
}

// out = down(act(gate(x)) * up(x))        x [..., C] -> [..., C]
export function gatedMlp(x: Tensor, w: GatedMlpWeights, act: ActivationName): Tensor {
  return project(gatedActivation(project(x, w.gate, w.gateBias), project(x, w.up, w.upBias), act), w.down, w.downBias);
}

export interface MlpWeights {
  fc: Tensor; // [I, C]
  fcBias: Tensor | null;
  proj: Tensor; // [C, I]
  projBias: Tensor | null;
}

// out = proj(act(fc(x)))
export function mlp(x: Tensor, w: MlpWeights, act: ActivationName): Tensor {
  return project(activate(project(x, w.fc, w.fcBias), act), w.proj, w.projBias);
}
