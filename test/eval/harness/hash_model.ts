// The tiny scoring model of fixtures/make_harness_fixtures.py, rebuilt here from its closed-form weights instead
// of a committed checkpoint: a Llama (hidden 32, 2 layers, 4 query / 2 key-value heads, head_dim 8, MLP 64,
// vocab 32000 = the Llama-2 ids of the Phi-3 tokenizer in the shared assets, tied embeddings) whose every weight
// is u = fmix32(i * 0x9E3779B1 + fnv1a32(name)) / 2^32 * 2 - 1 (murmur3's finaliser over the flat index i, salted
// by the parameter name), scaled per kind: norms 1 + 0.2u, embeddings 0.5u, projections u * 1.5 / sqrt(fan_in).
// Integer arithmetic + one float64 multiply-add, then rounding to float32: identical in numpy and here.
import { createModel, initConfigJson, modelSpecs, parseModelConfig, type InitModelOptions, type PretrainedLM } from '../../../src/models/index.ts';
import { tensor } from '../../../src/tensor/index.ts';

export const HASH_MODEL: InitModelOptions = {
  arch: 'llama', vocab: 32000, hidden: 32, layers: 2, heads: 4, kvHeads: 2, headDim: 8, intermediate: 64, maxPositions: 4096,
  tieWordEmbeddings: true, bosTokenId: 1, eosTokenId: 2,
};

export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(text, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h >>> 0;
}

/** n values in [-1, 1), as hash_uniform() in the fixture script. */
export function hashUniform(name: string, n: number): Float64Array {
  const salt = fnv1a32(name);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let h = (Math.imul(i, 0x9e3779b1) + salt) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
    h = Math.imul(h, 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
    out[i] = (h / 4294967296) * 2 - 1;
  }
  return out;
}

export function hashModel(): PretrainedLM {
  const config = parseModelConfig(initConfigJson(HASH_MODEL), 'hash_model');
  const params = new Map(
    modelSpecs(config).specs.map((s) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const u = hashUniform(s.name, n);
      const v = new Float32Array(n);
      const scale = s.name.endsWith('norm.weight') ? 0 : s.name === 'model.embed_tokens.weight' ? 0.5 : 1.5 / Math.sqrt(s.shape[1]);
      for (let i = 0; i < n; i++) v[i] = s.name.endsWith('norm.weight') ? 1 + 0.2 * u[i] : u[i] * scale;
      return [s.name, tensor(v, s.shape)] as const;
    }),
  );
  return createModel(config, params, { dir: null, dtypes: new Map(), unprefixed: false });
}
