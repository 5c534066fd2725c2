// Causal self-attention pieces shared by every family: moving heads between the projection layout
// [B, T, H*D] and the attention layout [B, H, T, D] (the backend's permuteHeads, differentiable), and `attend`,
// which appends to the KV cache, runs the fused grouped-query attention kernel and merges the heads back.

import type { FloatArray } from '../backend/index.ts';
import { ShapeError, uninitialized, fmtShape, fromOp, isGradEnabled, reshape, scaledDotProductAttention, type Tensor } from '../tensor/index.ts';
import type { LayeredKvCache } from './kv_cache.ts';

// out [G, B, H, T, D] = x [B, T, G*H*D] regrouped;   dx = the inverse regrouping of g
export function headsFirst(x: Tensor, groups: number, heads: number, headDim: number): Tensor {
  x.live('headsFirst');
  const [B, T, W] = x.shape;
  if (x.rank !== 3 || W !== groups * heads * headDim) throw new ShapeError(`headsFirst: x ${fmtShape(x.shape)} must be [batch, seq, ${groups}*${heads}*${headDim}]`);
  const shape = [groups, B, heads, T, headDim];
  const out = uninitialized(shape, x.backend);
  x.backend.permuteHeads({ src: x.data as FloatArray, dst: out.storage.data as FloatArray, batch: B, seq: T, groups, heads, headDim, toHeadsFirst: true });
  return fromOp(out, 'headsFirst', [x], (g) => {
    const dx = uninitialized(x.shape, g.backend);
    g.backend.permuteHeads({ src: g.data as FloatArray, dst: dx.storage.data as FloatArray, batch: B, seq: T, groups, heads, headDim, toHeadsFirst: false });
    return [dx];
  });
}

// out [B, T, H*D] = a [B, H, T, D] with the heads side by side;   da = g regrouped heads first
export function headsLast(a: Tensor): Tensor {
  a.live('headsLast');
  if (a.rank !== 4) throw new ShapeError(`headsLast: a ${fmtShape(a.shape)} must be [batch, heads, seq, headDim]`);
  const [B, H, T, D] = a.shape;
  if (T === 1) return reshape(a, [B, T, H * D]); // already in that order
  const out = uninitialized([B, T, H * D], a.backend);
  a.backend.permuteHeads({ src: a.data as FloatArray, dst: out.storage.data as FloatArray, batch: B, seq: T, groups: 1, heads: H, headDim: D, toHeadsFirst: false });
  return fromOp(out, 'headsLast', [a], (g) => {
    const da = uninitialized(a.shape, g.backend);
    g.backend.permuteHeads({ src: g.data as FloatArray, dst: da.storage.data as FloatArray, batch: B, seq: T, groups: 1, heads: H, headDim: D, toHeadsFirst: true });
    return [da];
  });
}

/** x [B, T, H*D] -> [B, H, T, D] (contiguous). */
export function splitHeads(x: Tensor, heads: number, headDim: number): Tensor {
  const [B, T] = x.shape;
  if (T === 1) return reshape(x, [B, heads, 1, headDim]); // the same order
  return reshape(headsFirst(x, 1, heads, headDim), [B, heads, T, headDim]);
}

/** a [B, H, T, D] -> [B, T, H*D]. */
export const mergeHeads = headsLast;

export interface AttendOptions {
  /** Softmax scale (1/sqrt(D) for every family here, GPT-2's inverse-layer scaling aside). */
  scale: number;
  /** [B, past + T] padding mask, or null. */
  keyMask: Tensor | null;
  /** [B, T] document ids of packed rows (no cache), or null. */
  docIds?: Tensor | null;
  /** With a cache: k/v are appended to layer `layer` and attention runs over everything cached. */
  cache: LayeredKvCache | null;
  layer: number;
}

/**
 * q [B, Hq, T, D], k / v [B, Hkv, T, D] (contiguous; the new positions, keys after rope) -> [B, T, Hq*D].
 * Query t sits at slot past + t and attends causally over slots [0, past + t], minus padded ones.
 * Keys and values read back from the cache carry no gradient (the cache is for inference).
 */
export function attend(q: Tensor, k: Tensor, v: Tensor, opts: AttendOptions): Tensor {
  let keys = k;
  let vals = v;
  let keyMask = opts.keyMask;
  const cache = opts.cache;
  if (cache) {
    const T = q.shape[2];
    const past = cache.length;
    const n = past + T;
    cache.write(opts.layer, keys, vals);
    // With nothing cached before, the new keys are all there is. Otherwise, for inference (no backward pass
    // will read keys/values again):
    //  - one new query (decoding): attend over the whole buffers with the unfilled tail masked — no copy; the
    //    query sits at the last slot, so causality is all keys, and masked slots contribute exactly 0. Only
    //    while the buffers are at most twice the filled length (the kernel computes scores for every slot);
    //  - else compact the prefix into the cache's scratch buffers.
    const inference = !(isGradEnabled() && q.requiresGrad);
    if (past > 0 && inference && T === 1 && cache.capacity <= 2 * n) {
      ({ k: keys, v: vals } = cache.buffers(opts.layer));
      keyMask = cache.paddedMask(opts.keyMask, n);
    } else if (past > 0) ({ k: keys, v: vals } = cache.read(opts.layer, n, inference));
  }
  const a = scaledDotProductAttention(q, keys, vals, { causal: true, keyMask, docIds: opts.docIds ?? null, scale: opts.scale });
  return mergeHeads(a);
}
