// A small deterministic CausalLM for generation tests. No attention, but the same contract as the real
// models (src/models/types.ts): attention masks, position ids (default: cumsum(mask) - 1, padding -> 1),
// and an incremental cache. For a real token at position p with previous real token q:
//   h = tanh(tok[id] + pos[p] + prev[q] + mean over the row's real tokens s <= t of ctx[ids[s]])
// (prev[V] is the "no previous token" row). Padding (mask 0) contributes nothing and gets
// h = tanh(tok[id] + pos[p]). The cache holds each row's running ctx sum, count and last real token,
// accumulated in float64 in token order, so cached and uncached forwards give bit-identical hidden states.
// The weights come from a seeded test PRNG; the LM head is [V, H] with an optional bias.

import type { CausalLM, ForwardOptions, KvCache, ModelConfig } from '../../src/models/types.ts';
import { IndexError, ShapeError, Tensor, empty, fmtShape, tensor, untracked } from '../../src/tensor/index.ts';
import type { FloatArray } from '../../src/backend/index.ts';
import { randArray } from '../util.ts';

export interface MockLMOptions {
  vocabSize?: number;
  hidden?: number;
  maxPositions?: number;
  seed?: number;
  bias?: boolean;
  eosTokenIds?: number[];
  padTokenId?: number | null;
  /** Scale of the LM-head weights (larger = peakier distributions). */
  headScale?: number;
}

export class MockCache implements KvCache {
  length = 0;
  disposed = false;
  readonly sum: Float64Array;
  readonly count: Int32Array;
  readonly prev: Int32Array;
  constructor(
    readonly batch: number,
    readonly capacity: number,
    hidden: number,
  ) {
    this.sum = new Float64Array(batch * hidden);
    this.count = new Int32Array(batch);
    this.prev = new Int32Array(batch).fill(-1);
  }
  dispose(): void {
    this.disposed = true;
  }
}

export interface ForwardCall {
  batch: number;
  seq: number;
  past: number;
  cached: boolean;
  /** The attention mask's last column (1 = the newest token of that row is real). */
  lastMask: number[];
}

function ints(t: Tensor): Int32Array {
  const d = t.data as ArrayLike<number | bigint>;
  const out = new Int32Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
  return out;
}

export class MockLM implements CausalLM {
  readonly config: ModelConfig;
  readonly calls: ForwardCall[] = [];
  readonly caches: MockCache[] = [];
  private readonly tok: Tensor;
  private readonly pos: Tensor;
  private readonly prevEmb: Tensor;
  private readonly ctx: Tensor;
  private readonly head: Tensor;
  private readonly bias: Tensor | null;

  constructor(o: MockLMOptions = {}) {
    const V = o.vocabSize ?? 37;
    const H = o.hidden ?? 12;
    const P = o.maxPositions ?? 64;
    const seed = o.seed ?? 1;
    this.config = {
      modelType: 'mock', vocabSize: V, hiddenSize: H, numLayers: 1, numHeads: 1, numKvHeads: 1, headDim: H,
      intermediateSize: H, maxPositions: P, tieWordEmbeddings: false, bosTokenId: null,
      eosTokenIds: o.eosTokenIds ?? [], padTokenId: o.padTokenId === undefined ? null : o.padTokenId,
    };
    const mk = (shape: number[], s: number, scale: number): Tensor => untracked(() => tensor(randArray(shape[0] * (shape[1] ?? 1), s, scale), shape));
    this.tok = mk([V, H], seed * 10 + 1, 1);
    this.pos = mk([P, H], seed * 10 + 2, 0.5);
    this.prevEmb = mk([V + 1, H], seed * 10 + 3, 1);
    this.ctx = mk([V, H], seed * 10 + 4, 1);
    this.head = mk([V, H], seed * 10 + 5, o.headScale ?? 1.5);
    this.bias = o.bias ? mk([V], seed * 10 + 6, 0.5) : null;
  }

  forward(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    if (ids.rank !== 2 || ids.dtype !== 'int32') throw new ShapeError(`mock forward: ids must be int32 [B, T], got ${ids.dtype} ${fmtShape(ids.shape)}`);
    const [B, T] = ids.shape;
    const { vocabSize: V, hiddenSize: H, maxPositions: P } = this.config;
    const cache = (opts.cache ?? null) as MockCache | null;
    if (cache) {
      if (!(cache instanceof MockCache)) throw new TypeError('mock forward: foreign cache');
      if (cache.disposed) throw new Error('mock forward: cache used after dispose');
      if (cache.batch !== B) throw new ShapeError(`mock forward: cache batch ${cache.batch} != ${B}`);
      if (cache.length + T > cache.capacity) throw new RangeError(`mock forward: cache capacity ${cache.capacity} exceeded`);
    }
    const past = cache ? cache.length : 0;
    const S = past + T;
    let m: Int32Array;
    if (opts.attentionMask) {
      const am = opts.attentionMask;
      if (am.rank !== 2 || am.shape[0] !== B || am.shape[1] !== S) throw new ShapeError(`mock forward: attentionMask ${fmtShape(am.shape)} must be [${B}, ${S}]`);
      m = ints(am);
    } else m = new Int32Array(B * S).fill(1);
    this.calls.push({ batch: B, seq: T, past, cached: cache !== null, lastMask: Array.from({ length: B }, (_, b) => m[b * S + S - 1]) });
    let pos: Int32Array;
    if (opts.positionIds) {
      if (opts.positionIds.size !== B * T) throw new ShapeError(`mock forward: positionIds ${fmtShape(opts.positionIds.shape)} must be [${B}, ${T}]`);
      pos = ints(opts.positionIds);
    } else {
      pos = new Int32Array(B * T);
      for (let b = 0; b < B; b++) {
        let c = 0;
        for (let s = 0; s < S; s++) {
          const real = m[b * S + s] !== 0;
          if (s >= past) pos[b * T + s - past] = real ? c : 1;
          if (real) c++;
        }
      }
    }
    const idv = ints(ids);
    const tok = this.tok.data as FloatArray;
    const pe = this.pos.data as FloatArray;
    const pv = this.prevEmb.data as FloatArray;
    const cx = this.ctx.data as FloatArray;
    const out = empty([B, T, H]);
    const o = out.storage.data as FloatArray;
    const sum = new Float64Array(H);
    for (let b = 0; b < B; b++) {
      // Row state: from the cache, else from scratch (the uncached call sees the whole sequence).
      let count = cache ? cache.count[b] : 0;
      let prev = cache ? cache.prev[b] : -1;
      for (let h = 0; h < H; h++) sum[h] = cache ? cache.sum[b * H + h] : 0;
      for (let t = 0; t < T; t++) {
        const id = idv[b * T + t];
        const p = pos[b * T + t];
        if (id < 0 || id >= V) throw new IndexError(`mock forward: token ${id} out of range`);
        if (p < 0 || p >= P) throw new IndexError(`mock forward: position ${p} out of range for ${P} positions`);
        const real = m[b * S + past + t] !== 0;
        if (real) {
          count++;
          for (let h = 0; h < H; h++) sum[h] += cx[id * H + h];
        }
        const pr = prev < 0 ? V : prev;
        for (let h = 0; h < H; h++) {
          const x = real ? tok[id * H + h] + pe[p * H + h] + pv[pr * H + h] + sum[h] / count : tok[id * H + h] + pe[p * H + h];
          o[(b * T + t) * H + h] = Math.tanh(x);
        }
        if (real) prev = id;
      }
      if (cache) {
        cache.count[b] = count;
        cache.prev[b] = prev;
        for (let h = 0; h < H; h++) cache.sum[b * H + h] = sum[h];
      }
    }
    if (cache) cache.length += T;
    return out;
  }

  lmHeadWeight(): Tensor {
    return this.head;
  }
  lmHeadBias(): Tensor | null {
    return this.bias;
  }
  createCache(batch: number, capacity: number): KvCache {
    const c = new MockCache(batch, capacity, this.config.hiddenSize);
    this.caches.push(c);
    return c;
  }
  namedParameters(): Map<string, Tensor> {
    const m = new Map<string, Tensor>([['tok', this.tok], ['pos', this.pos], ['prev', this.prevEmb], ['ctx', this.ctx], ['lm_head.weight', this.head]]);
    if (this.bias) m.set('lm_head.bias', this.bias);
    return m;
  }
  dispose(): void {
    for (const t of this.namedParameters().values()) t.dispose();
  }
}
