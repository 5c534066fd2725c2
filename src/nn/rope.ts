// Rotary position embeddings: inverse frequencies (default, linear and Llama-3 scaling, computed in float32 the
// way transformers computes them) and cos/sin tables that grow with the positions actually used.

import { ropeTables, untracked, type Tensor } from '../tensor/index.ts';

export interface RopeFrequencySpec {
  type: 'default' | 'linear' | 'llama3';
  theta: number;
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

const f32 = Math.fround;

/**
 * inv_freq[i] = 1 / theta^(2i / dim) for i < dim/2, in float32 arithmetic, then scaled:
 * linear divides by factor; llama3 divides low frequencies (wavelength > original / low_freq_factor) by
 * factor, keeps high ones (wavelength < original / high_freq_factor), and interpolates in between.
 */
export function ropeInverseFrequencies(spec: RopeFrequencySpec, dim: number): Float32Array {
  const half = dim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f32(1 / f32(Math.pow(spec.theta, f32((2 * i) / dim))));
  if (spec.type === 'linear') for (let i = 0; i < half; i++) inv[i] = f32(inv[i] / spec.factor);
  if (spec.type === 'llama3') {
    const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositions: old } = spec;
    const lowWavelen = f32(old / low);
    const highWavelen = f32(old / high);
    for (let i = 0; i < half; i++) {
      const wavelen = f32(f32(2 * Math.PI) / inv[i]);
      const scaled = wavelen > lowWavelen ? f32(inv[i] / factor) : inv[i];
      if (wavelen < highWavelen || wavelen > lowWavelen) {
        inv[i] = scaled;
        continue;
      }
      const smooth = f32(f32(f32(old / wavelen) - low) / f32(high - low));
      inv[i] = f32(f32(f32(f32(1 - smooth) * scaled) / factor) + f32(smooth * scaled));
    }
  }
  return inv;
}

/**
 * cos/sin tables [n, dim/2] for positions 0..n-1, grown (doubling) on demand. Superseded tables stay alive until
 * dispose(): an autograd graph built earlier may still read them in its backward pass.
 */
export class RopeCache {
  private tables: { cos: Tensor; sin: Tensor } | null = null;
  private retired: Tensor[] = [];
  private size = 0;

  constructor(readonly invFreq: Float32Array) {}

  /** Tables covering positions [0, needed). */
  get(needed: number): { cos: Tensor; sin: Tensor } {
    if (!this.tables || needed > this.size) {
      let n = Math.max(64, this.size);
      while (n < needed) n *= 2;
      if (this.tables) this.retired.push(this.tables.cos, this.tables.sin);
      this.tables = untracked(() => ropeTables(n, this.invFreq));
      this.size = n;
    }
    return this.tables;
  }

  dispose(): void {
    for (const t of this.retired) t.dispose();
    this.retired = [];
    if (this.tables) {
      this.tables.cos.dispose();
      this.tables.sin.dispose();
      this.tables = null;
    }
    this.size = 0;
  }
}
