// Neural-network ops over the backend's fused kernels: matmul / linear (SGEMM), softmax and log-softmax,
// rmsnorm, layernorm, rotary embeddings, causal grouped-query attention, dropout, and the fused chunked
// linear + log-softmax + gather (per-token log-probs / cross-entropy without [N, V] logits).

import type { Backend, FloatArray } from '../../backend/index.ts';
import { DTypeError, IndexError, ShapeError, fmtShape } from '../errors.ts';
import { Generator, defaultGenerator } from '../random.ts';
import { Tensor, contiguousStrides, empty, fromOp, isGradEnabled, shapeSize, uninitialized } from '../tensor.ts';
import { floatInputs } from './elementwise.ts';
import { sumToShape } from './reduce.ts';
import { contiguous, expand, transpose } from './shape.ts';

// ============================================================================================== matmul
/** How a tensor's last two dims map onto a GEMM operand without copying (when its strides allow). */
interface Operand {
  data: FloatArray;
  rows: number; // logical rows of the matrix
  cols: number; // logical cols
  trans: boolean; // stored column-major (a transposed view)
  ld: number;
  batchStride: number; // 0 = the same matrix for every batch entry
  owned: Tensor | null; // a temporary copy to dispose
}

function operand(t: Tensor, batchShape: readonly number[], op: string): Operand {
  const r = t.rank;
  const rows = t.shape[r - 2];
  const cols = t.shape[r - 1];
  const tb = t.shape.slice(0, r - 2);
  const batch = shapeSize(batchShape);
  const tbSize = shapeSize(tb);
  let src = t;
  let owned: Tensor | null = null;
  const sameBatch = tb.length === batchShape.length && tb.every((d, i) => d === batchShape[i]);
  if (tbSize !== 1 && !sameBatch) {
    // Partial broadcast over batch dims: materialise the expanded operand.
    const e = expand(t, [...batchShape, rows, cols]);
    owned = contiguous(e);
    e.dispose();
    src = owned;
  }
  const sR = src.strides[r - 2 + (src.rank - r)];
  const sC = src.strides[src.rank - 1];
  let trans: boolean;
  let ld: number;
  if (sC === 1 && (rows === 1 || sR >= cols)) {
    trans = false;
    ld = rows === 1 ? Math.max(cols, 1) : sR;
  } else if (sR === 1 && (cols === 1 || sC >= rows)) {
    trans = true;
    ld = cols === 1 ? Math.max(rows, 1) : sC;
  } else {
    const c = contiguous(src);
    if (owned) owned.dispose();
    owned = c;
    src = c;
    trans = false;
    ld = Math.max(cols, 1);
  }
  // Batch stride: uniform over the (collapsed) batch dims, else copy.
  let batchStride = 0;
  if (batch > 1 && shapeSize(src.shape.slice(0, src.rank - 2)) > 1) {
    const bdims = src.rank - 2;
    let uniform = true;
    for (let i = 0; i < bdims - 1; i++) if (src.shape[i] !== 1 && src.strides[i] !== src.strides[i + 1] * src.shape[i + 1]) uniform = false;
    let inner = bdims - 1;
    while (inner > 0 && src.shape[inner] === 1) inner--;
    batchStride = src.strides[inner];
    if (!uniform) {
      const c = contiguous(src);
      if (owned) owned.dispose();
      owned = c;
      src = c;
      trans = false;
      ld = Math.max(cols, 1);
      batchStride = rows * cols;
    }
  }
  const base = src.storage.data as FloatArray;
  const data = base.subarray(src.offset);
  void op;
  return { data, rows, cols, trans, ld, batchStride, owned };
}

function gemmInto(
  b: Backend,
  A: { data: FloatArray; trans: boolean; ld: number; stride: number },
  B: { data: FloatArray; trans: boolean; ld: number; stride: number },
  C: { data: FloatArray; ld: number; stride: number },
  m: number,
  n: number,
  k: number,
  batch: number,
  beta = 0,
): void {
  b.sgemm({
    transA: A.trans, transB: B.trans, m, n, k, alpha: 1,
    a: A.data, lda: A.ld, strideA: A.stride,
    b: B.data, ldb: B.ld, strideB: B.stride,
    beta, c: C.data, ldc: C.ld, strideC: C.stride, batch,
  });
}

// out[..., M, N] = a[..., M, K] @ b[..., K, N]   (batch dims broadcast; transposed views need no copy)
// da = g @ bᵀ (summed over broadcast batch dims), db = aᵀ @ g
export function matmul(a: Tensor, b: Tensor): Tensor {
  floatInputs('matmul', a, b);
  if (a.rank < 2 || b.rank < 2) throw new ShapeError(`matmul: operands must have rank >= 2, got a ${fmtShape(a.shape)} and b ${fmtShape(b.shape)}`);
  const M = a.shape[a.rank - 2];
  const K = a.shape[a.rank - 1];
  const N = b.shape[b.rank - 1];
  if (b.shape[b.rank - 2] !== K) throw new ShapeError(`matmul: inner dimensions differ: a ${fmtShape(a.shape)} @ b ${fmtShape(b.shape)}`);
  const ab = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const rank = Math.max(ab.length, bb.length);
  const batchShape: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = ab[ab.length - rank + i] ?? 1;
    const db = bb[bb.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new ShapeError(`matmul: batch dims of a ${fmtShape(a.shape)} and b ${fmtShape(b.shape)} cannot be broadcast`);
    batchShape.push(Math.max(da, db));
  }
  const batch = shapeSize(batchShape);
  const be = a.backend;
  const out = uninitialized([...batchShape, M, N], be);
  const A = operand(a, batchShape, 'matmul');
  const B = operand(b, batchShape, 'matmul');
  gemmInto(be, { data: A.data, trans: A.trans, ld: A.ld, stride: A.batchStride }, { data: B.data, trans: B.trans, ld: B.ld, stride: B.batchStride },
    { data: out.storage.data as FloatArray, ld: N, stride: M * N }, M, N, K, batch);
  A.owned?.dispose();
  B.owned?.dispose();
  const fullA = [...batchShape, M, K];
  const fullB = [...batchShape, K, N];
  return fromOp(out, 'matmul', [a, b], (g) => {
    const gd = { data: g.data as FloatArray, trans: false, ld: N, stride: M * N };
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (a.requiresGrad) {
      const Bop = operand(b, batchShape, 'matmul');
      da = uninitialized(fullA, be);
      // da = g @ op(b)ᵀ : op(b)ᵀ is the stored b read with the opposite transpose flag
      gemmInto(be, gd, { data: Bop.data, trans: !Bop.trans, ld: Bop.ld, stride: Bop.batchStride }, { data: da.storage.data as FloatArray, ld: K, stride: M * K }, M, K, N, batch);
      Bop.owned?.dispose();
      if (shapeSize(fullA) !== a.size) {
        const r = sumToShape(da, a.shape);
        da.dispose();
        da = r;
      }
    }
    if (b.requiresGrad) {
      const Aop = operand(a, batchShape, 'matmul');
      db = uninitialized(fullB, be);
      // db = op(a)ᵀ @ g
      gemmInto(be, { data: Aop.data, trans: !Aop.trans, ld: Aop.ld, stride: Aop.batchStride }, gd, { data: db.storage.data as FloatArray, ld: N, stride: K * N }, K, N, M, batch);
      Aop.owned?.dispose();
      if (shapeSize(fullB) !== b.size) {
        const r = sumToShape(db, b.shape);
        db.dispose();
        db = r;
      }
    }
    return [da, db];
  });
}

// out[..., O] = x[..., I] @ weight[O, I]ᵀ + bias[O]       (the nn.Linear / HF layout)
// dx = g @ weight;  dweight = gᵀ @ x;  dbias = sum over rows of g
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  floatInputs('linear', x, weight, ...(bias ? [bias] : []));
  if (weight.rank !== 2) throw new ShapeError(`linear: weight must be [out, in], got ${fmtShape(weight.shape)}`);
  const [O, I] = weight.shape;
  if (x.rank < 1 || x.shape[x.rank - 1] !== I) throw new ShapeError(`linear: input ${fmtShape(x.shape)} does not end in in_features ${I} of weight ${fmtShape(weight.shape)}`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== O)) throw new ShapeError(`linear: bias ${fmtShape(bias.shape)} must be [${O}]`);
  const N = x.size / I;
  const be = x.backend;
  const xd = x.data as FloatArray;
  const wd = weight.data as FloatArray;
  const out = uninitialized([...x.shape.slice(0, -1), O], be);
  const od = out.storage.data as FloatArray;
  if (bias) {
    const bd = bias.data as FloatArray;
    for (let r = 0; r < N; r++) od.set(bd, r * O);
  }
  be.sgemm({ transA: false, transB: true, m: N, n: O, k: I, alpha: 1, a: xd, lda: I, strideA: 0, b: wd, ldb: I, strideB: 0, beta: bias ? 1 : 0, c: od, ldc: O, strideC: 0, batch: 1 });
  return fromOp(out, 'linear', [x, weight, bias], (g) => {
    const gd = g.data as FloatArray;
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    let db: Tensor | null = null;
    if (x.requiresGrad) {
      dx = uninitialized(x.shape, be);
      be.sgemm({ transA: false, transB: false, m: N, n: I, k: O, alpha: 1, a: gd, lda: O, strideA: 0, b: weight.data as FloatArray, ldb: I, strideB: 0, beta: 0, c: dx.storage.data as FloatArray, ldc: I, strideC: 0, batch: 1 });
    }
    if (weight.requiresGrad) {
      dw = uninitialized([O, I], be);
      be.sgemm({ transA: true, transB: false, m: O, n: I, k: N, alpha: 1, a: gd, lda: O, strideA: 0, b: x.data as FloatArray, ldb: I, strideB: 0, beta: 0, c: dw.storage.data as FloatArray, ldc: I, strideC: 0, batch: 1 });
    }
    if (bias && bias.requiresGrad) {
      db = empty([O], 'float', be);
      const d = db.storage.data as FloatArray;
      const acc = new Float64Array(O);
      for (let r = 0; r < N; r++) for (let j = 0; j < O; j++) acc[j] += gd[r * O + j];
      d.set(acc);
    }
    return [dx, dw, db];
  });
}

// ============================================================================================== softmax
function lastDimOp(x: Tensor, dim: number, op: string, f: (t: Tensor) => Tensor): Tensor {
  const d = dim < 0 ? dim + x.rank : dim;
  if (d < 0 || d >= x.rank) throw new ShapeError(`${op}: dim ${dim} out of range for ${fmtShape(x.shape)}`);
  if (d === x.rank - 1) return f(x);
  const t = transpose(x, d, -1);
  const y = f(t);
  const back = transpose(y, d, -1);
  // The intermediates belong to the graph while gradients are recorded; the enclosing scope frees them.
  if (!back.gradNode) {
    t.dispose();
    y.dispose();
  }
  return back;
}

function softmaxImpl(x: Tensor, log: boolean): Tensor {
  const op = log ? 'logSoftmax' : 'softmax';
  floatInputs(op, x);
  const dim = x.shape[x.rank - 1] ?? 1;
  const rows = x.size / Math.max(dim, 1);
  const be = x.backend;
  const out = uninitialized(x.shape, be);
  be.softmaxForward({ x: x.data as FloatArray, y: out.storage.data as FloatArray, rows, dim, log });
  return fromOp(out, op, [x], (g) => {
    const dx = uninitialized(x.shape, be);
    be.softmaxBackward({ y: out.storage.data as FloatArray, dy: g.data as FloatArray, dx: dx.storage.data as FloatArray, rows, dim, log });
    return [dx];
  });
}

// y = exp(x - max) / sum(exp(x - max));  dx = y * (g - sum(g * y))
export const softmax = (x: Tensor, dim = -1): Tensor => lastDimOp(x, dim, 'softmax', (t) => softmaxImpl(t, false));
// y = x - logsumexp(x);  dx = g - exp(y) * sum(g)
export const logSoftmax = (x: Tensor, dim = -1): Tensor => lastDimOp(x, dim, 'logSoftmax', (t) => softmaxImpl(t, true));

// ============================================================================================== norms
// y = x * rsqrt(mean(x²) + eps) * weight   over the last dim (Llama RMSNorm)
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  floatInputs('rmsNorm', x, weight);
  const D = x.shape[x.rank - 1];
  if (weight.rank !== 1 || weight.shape[0] !== D) throw new ShapeError(`rmsNorm: weight ${fmtShape(weight.shape)} must be [${D}] for input ${fmtShape(x.shape)}`);
  const rows = x.size / D;
  const be = x.backend;
  const out = uninitialized(x.shape, be);
  const rstdT = uninitialized([rows], be); // saved for backward; owned by the current scope like any tensor
  const rstd = rstdT.storage.data as FloatArray;
  be.rmsnormForward({ x: x.data as FloatArray, weight: weight.data as FloatArray, y: out.storage.data as FloatArray, rstd, rows, dim: D, eps });
  const result = fromOp(out, 'rmsNorm', [x, weight], (g) => {
    const dx = uninitialized(x.shape, be);
    const dw = empty([D], 'float', be);
    be.rmsnormBackward({ x: x.data as FloatArray, weight: weight.data as FloatArray, rstd, dy: g.data as FloatArray, dx: dx.storage.data as FloatArray, dweight: dw.storage.data as FloatArray, rows, dim: D });
    return [x.requiresGrad ? dx : (dx.dispose(), null), weight.requiresGrad ? dw : (dw.dispose(), null)];
  }, [rstdT]);
  return result;
}

// y = (x - mean) * rsqrt(var + eps) * weight + bias   over the last dim (biased variance, as PyTorch)
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor | null, eps = 1e-5): Tensor {
  floatInputs('layerNorm', x, weight, ...(bias ? [bias] : []));
  const D = x.shape[x.rank - 1];
  if (weight.rank !== 1 || weight.shape[0] !== D) throw new ShapeError(`layerNorm: weight ${fmtShape(weight.shape)} must be [${D}] for input ${fmtShape(x.shape)}`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== D)) throw new ShapeError(`layerNorm: bias ${fmtShape(bias.shape)} must be [${D}]`);
  const rows = x.size / D;
  const be = x.backend;
  const out = uninitialized(x.shape, be);
  const stats = uninitialized([2, rows], be); // mean and rstd, saved for backward
  const mean = (stats.storage.data as FloatArray).subarray(0, rows);
  const rstd = (stats.storage.data as FloatArray).subarray(rows, 2 * rows);
  be.layernormForward({ x: x.data as FloatArray, weight: weight.data as FloatArray, bias: bias ? (bias.data as FloatArray) : null, y: out.storage.data as FloatArray, mean, rstd, rows, dim: D, eps });
  const result = fromOp(out, 'layerNorm', [x, weight, bias], (g) => {
    const dx = uninitialized(x.shape, be);
    const dw = empty([D], 'float', be);
    const db = bias ? empty([D], 'float', be) : null;
    be.layernormBackward({ x: x.data as FloatArray, weight: weight.data as FloatArray, mean, rstd, dy: g.data as FloatArray, dx: dx.storage.data as FloatArray, dweight: dw.storage.data as FloatArray, dbias: db ? (db.storage.data as FloatArray) : null, rows, dim: D });
    return [x.requiresGrad ? dx : (dx.dispose(), null), weight.requiresGrad ? dw : (dw.dispose(), null), bias?.requiresGrad ? db : (db?.dispose(), null)];
  }, [stats]);
  return result;
}

// ============================================================================================== rope
export interface RopeOptions {
  /** Rotated features per head (default: all). The rest pass through (GPT-NeoX partial rotary). */
  rotaryDim?: number;
  /** false: HF Llama / GPT-NeoX rotate_half halves; true: GPT-J / Meta interleaved pairs. */
  interleaved?: boolean;
}

/** cos/sin tables [maxPos, rotaryDim/2] for inverse frequencies invFreq[p] (angle = pos * invFreq[p]). */
export function ropeTables(maxPos: number, invFreq: ArrayLike<number>, on?: Backend): { cos: Tensor; sin: Tensor } {
  const half = invFreq.length;
  const cos = empty([maxPos, half], 'float', on);
  const sin = empty([maxPos, half], 'float', on);
  const c = cos.storage.data as FloatArray;
  const s = sin.storage.data as FloatArray;
  // Angles are formed in float32 (pos * inv_freq rounded), as HF computes them, then cos/sin in double.
  const f32 = new Float32Array(1);
  for (let p = 0; p < maxPos; p++)
    for (let i = 0; i < half; i++) {
      f32[0] = p * Math.fround(invFreq[i]);
      c[p * half + i] = Math.cos(f32[0]);
      s[p * half + i] = Math.sin(f32[0]);
    }
  return { cos, sin };
}

// x [B, H, T, D] rotated by angle(positions[b, t]);  dx = rope(g, inverse)
export function rope(x: Tensor, cos: Tensor, sin: Tensor, positions: Tensor, opts: RopeOptions = {}): Tensor {
  floatInputs('rope', x, cos, sin);
  if (x.rank !== 4) throw new ShapeError(`rope: x must be [batch, heads, seq, headDim], got ${fmtShape(x.shape)}`);
  const [B, H, T, D] = x.shape;
  const rd = opts.rotaryDim ?? D;
  if (rd % 2 !== 0 || rd > D || rd < 0) throw new ShapeError(`rope: rotaryDim ${rd} must be even and <= headDim ${D}`);
  if (cos.rank !== 2 || cos.shape[1] !== rd / 2 || sin.shape[0] !== cos.shape[0] || sin.shape[1] !== cos.shape[1])
    throw new ShapeError(`rope: tables ${fmtShape(cos.shape)} / ${fmtShape(sin.shape)} must be [maxPos, ${rd / 2}]`);
  if (positions.dtype !== 'int32') throw new DTypeError(`rope: positions must be int32, got ${positions.dtype}`);
  if (positions.size !== B * T) throw new ShapeError(`rope: positions ${fmtShape(positions.shape)} must be [${B}, ${T}]`);
  const maxPos = cos.shape[0];
  const pos = positions.data as Int32Array;
  for (let i = 0; i < pos.length; i++) if (pos[i] < 0 || pos[i] >= maxPos) throw new IndexError(`rope: position ${pos[i]} at ${i} outside the table of ${maxPos} positions`);
  const be = x.backend;
  const out = uninitialized(x.shape, be);
  const common = { cos: cos.data as FloatArray, sin: sin.data as FloatArray, positions: pos, maxPos, batch: B, heads: H, seq: T, headDim: D, rotaryDim: rd, interleaved: opts.interleaved ?? false };
  be.rope({ ...common, x: x.data as FloatArray, out: out.storage.data as FloatArray, inverse: false });
  return fromOp(out, 'rope', [x, null, null], (g) => {
    const dx = uninitialized(x.shape, be);
    be.rope({ ...common, x: g.data as FloatArray, out: dx.storage.data as FloatArray, inverse: true });
    return [dx, null, null];
  });
}

// ============================================================================================== attention
export interface AttentionOptions {
  causal?: boolean;
  /** Defaults to 1/sqrt(headDim). */
  scale?: number;
  /** [B, S] padding mask, nonzero = attend (uint8, int32 or float). */
  keyMask?: Tensor | null;
  /** [B, S] document ids for packed sequences: tokens attend only within their document. */
  docIds?: Tensor | null;
}

// q [B, Hq, T, D], k/v [B, Hkv, S, D] -> out [B, Hq, T, D]: softmax(q kᵀ * scale + mask) v, fused.
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  floatInputs('attention', q, k, v);
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4)
    throw new ShapeError(`attention: q, k, v must be [batch, heads, seq, headDim]; got ${fmtShape(q.shape)}, ${fmtShape(k.shape)}, ${fmtShape(v.shape)}`);
  const [B, Hq, T, D] = q.shape;
  const [Bk, Hkv, S, Dk] = k.shape;
  if (Bk !== B || Dk !== D || v.shape.some((d, i) => d !== k.shape[i]))
    throw new ShapeError(`attention: k ${fmtShape(k.shape)} and v ${fmtShape(v.shape)} must be [${B}, Hkv, S, ${D}] for q ${fmtShape(q.shape)}`);
  if (Hkv === 0 || Hq % Hkv !== 0) throw new ShapeError(`attention: query heads ${Hq} must be a multiple of key/value heads ${Hkv}`);
  const causal = opts.causal ?? true;
  if (causal && S < T) throw new ShapeError(`attention: causal attention needs at least as many keys (${S}) as queries (${T})`);
  const maskBytes = (t: Tensor | null | undefined, what: string): Uint8Array | null => {
    if (!t) return null;
    if (t.size !== B * S) throw new ShapeError(`attention: ${what} ${fmtShape(t.shape)} must be [${B}, ${S}]`);
    const d = t.data as ArrayLike<number | bigint>;
    const m = new Uint8Array(B * S);
    for (let i = 0; i < m.length; i++) m[i] = d[i] ? 1 : 0;
    return m;
  };
  const keyMask = maskBytes(opts.keyMask, 'keyMask');
  let docIds: Int32Array | null = null;
  if (opts.docIds) {
    if (opts.docIds.dtype !== 'int32') throw new DTypeError(`attention: docIds must be int32, got ${opts.docIds.dtype}`);
    if (opts.docIds.size !== B * S) throw new ShapeError(`attention: docIds ${fmtShape(opts.docIds.shape)} must be [${B}, ${S}]`);
    docIds = opts.docIds.data as Int32Array;
  }
  const be = q.backend;
  const out = uninitialized(q.shape, be);
  const lseT = uninitialized([B, Hq, T], be); // saved for backward
  const lse = lseT.storage.data as FloatArray;
  const base = {
    q: q.data as FloatArray, k: k.data as FloatArray, v: v.data as FloatArray,
    out: out.storage.data as FloatArray, lse,
    batch: B, headsQ: Hq, headsKV: Hkv, seqQ: T, seqK: S, headDim: D,
    scale: opts.scale ?? 1 / Math.sqrt(D), causal, keyMask, docIds,
  };
  be.attentionForward(base);
  const result = fromOp(out, 'attention', [q, k, v], (g) => {
    const dq = uninitialized(q.shape, be);
    const dk = uninitialized(k.shape, be);
    const dv = uninitialized(v.shape, be);
    be.attentionBackward({
      ...base, q: q.data as FloatArray, k: k.data as FloatArray, v: v.data as FloatArray, out: out.storage.data as FloatArray,
      dout: g.data as FloatArray, dq: dq.storage.data as FloatArray, dk: dk.storage.data as FloatArray, dv: dv.storage.data as FloatArray,
    });
    return [q.requiresGrad ? dq : (dq.dispose(), null), k.requiresGrad ? dk : (dk.dispose(), null), v.requiresGrad ? dv : (dv.dispose(), null)];
  }, [lseT]);
  return result;
}

// ============================================================================================== dropout
// Inverted dropout: out = x * mask / (1 - p);  dx = g * mask / (1 - p). Identity when not training or p = 0.
export function dropout(x: Tensor, p: number, training = true, generator: Generator = defaultGenerator): Tensor {
  floatInputs('dropout', x);
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  if (!training || p === 0) return contiguous(x);
  const be = x.backend;
  const n = x.size;
  const out = uninitialized(x.shape, be);
  const mask = new Uint8Array(n);
  const r = generator.reserve(n);
  be.dropout({ x: x.data as FloatArray, out: out.storage.data as FloatArray, mask, n, p, seed: r.seed, seedHi: r.seedHi, offset: r.offset });
  const scale = p === 1 ? 0 : 1 / (1 - p);
  return fromOp(out, 'dropout', [x], (g) => {
    const dx = uninitialized(x.shape, be);
    const d = dx.storage.data as FloatArray;
    const gd = g.data as FloatArray;
    for (let i = 0; i < n; i++) d[i] = mask[i] ? gd[i] * scale : 0;
    return [dx];
  });
}

// ============================================================================================== fused LM-head log-probs
export interface LinearLogprobOptions {
  bias?: Tensor | null;
  /** Logits are divided by this before the softmax (sampling temperature). */
  temperature?: number;
  /** Rows of logits computed at once (0 = kernel default). */
  chunk?: number;
}

function targetIds(targets: Tensor, n: number, vocab: number, op: string): Int32Array {
  if (targets.dtype !== 'int32') throw new DTypeError(`${op}: targets must be int32, got ${targets.dtype}`);
  if (targets.size !== n) throw new ShapeError(`${op}: targets ${fmtShape(targets.shape)} must have ${n} entries`);
  const t = targets.data as Int32Array;
  for (let i = 0; i < t.length; i++) if (t[i] >= vocab) throw new IndexError(`${op}: target ${t[i]} at position ${i} is out of range for vocabulary size ${vocab}`);
  return t;
}

/** Validates the LM-head operands shared by linearLogprob and fusedCrossEntropy. */
function checkLmHead(op: string, hidden: Tensor, weight: Tensor, bias: Tensor | null, targets: Tensor, temp: number | undefined): { V: number; H: number; N: number; tgt: Int32Array; temperature: number } {
  floatInputs(op, hidden, weight, ...(bias ? [bias] : []));
  if (weight.rank !== 2) throw new ShapeError(`${op}: weight must be [vocab, hidden], got ${fmtShape(weight.shape)}`);
  const [V, H] = weight.shape;
  if (hidden.shape[hidden.rank - 1] !== H) throw new ShapeError(`${op}: hidden ${fmtShape(hidden.shape)} does not end in ${H} (weight ${fmtShape(weight.shape)})`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== V)) throw new ShapeError(`${op}: bias ${fmtShape(bias.shape)} must be [${V}]`);
  const N = hidden.size / H;
  const tgt = targetIds(targets, N, V, op);
  const temperature = temp ?? 1;
  if (!(temperature > 0)) throw new RangeError(`${op}: temperature must be > 0, got ${temperature}`);
  return { V, H, N, tgt, temperature };
}

function linearLogprobImpl(hidden: Tensor, weight: Tensor, targets: Tensor, opts: LinearLogprobOptions, withEntropy: boolean): { logprob: Tensor; entropy: Tensor | null } {
  const bias = opts.bias ?? null;
  const { V, H, N, tgt, temperature } = checkLmHead('linearLogprob', hidden, weight, bias, targets, opts.temperature);
  const be = hidden.backend;
  const shape = hidden.shape.slice(0, -1);
  const logprob = uninitialized(shape, be);
  const entropy = withEntropy ? uninitialized(shape, be) : null;
  const lseT = uninitialized([N], be); // saved for backward
  const lse = lseT.storage.data as FloatArray;
  const common = { hidden: hidden.data as FloatArray, weight: weight.data as FloatArray, bias: bias ? (bias.data as FloatArray) : null, targets: tgt, n: N, hiddenDim: H, vocab: V, temperature, chunk: opts.chunk ?? 0 };
  be.linearLogprobForward({ ...common, logprob: logprob.storage.data as FloatArray, lse, entropy: entropy ? (entropy.storage.data as FloatArray) : null });
  const result = fromOp(logprob, 'linearLogprob', [hidden, weight, bias], (g) => {
    const dh = uninitialized(hidden.shape, be);
    const dw = weight.requiresGrad ? empty([V, H], 'float', be) : null;
    const db = bias?.requiresGrad ? empty([V], 'float', be) : null;
    be.linearLogprobBackward({
      ...common, hidden: hidden.data as FloatArray, weight: weight.data as FloatArray, bias: bias ? (bias.data as FloatArray) : null,
      lse, dlogprob: g.data as FloatArray, dhidden: dh.storage.data as FloatArray,
      dweight: dw ? (dw.storage.data as FloatArray) : null, dbias: db ? (db.storage.data as FloatArray) : null,
    });
    return [hidden.requiresGrad ? dh : (dh.dispose(), null), dw, db];
  }, [lseT]);
  return { logprob: result, entropy };
}

/**
 * log p(targets | hidden) under the LM head `weight` [V, H] (+ bias), per position, computed in chunks so
 * the [N, V] logits never exist. Negative targets (e.g. -100) are ignored: logprob 0 and no gradient.
 */
export function linearLogprob(hidden: Tensor, weight: Tensor, targets: Tensor, opts: LinearLogprobOptions = {}): Tensor {
  return linearLogprobImpl(hidden, weight, targets, opts, false).logprob;
}

/** linearLogprob plus the per-position entropy of the softmax (a metric; no gradient flows through it). */
export function linearLogprobEntropy(hidden: Tensor, weight: Tensor, targets: Tensor, opts: LinearLogprobOptions = {}): { logprob: Tensor; entropy: Tensor } {
  const r = linearLogprobImpl(hidden, weight, targets, opts, true);
  return { logprob: r.logprob, entropy: r.entropy as Tensor };
}

/** Number of targets that are not ignored (>= 0). */
export function countTargets(targets: Tensor): number {
  const t = targets.data as Int32Array;
  let c = 0;
  for (let i = 0; i < t.length; i++) if (t[i] >= 0) c++;
  return c;
}

/**
 * Cross-entropy of the LM head, fused: -sum(logprob) / normalizer. `normalizer` defaults to the number of
 * non-ignored targets in THIS call; pass the token count of the whole accumulated batch when accumulating
 * gradients so that micro-batching does not change the loss scale.
 *
 * When gradients are recorded, the upstream gradient of every log-prob is known in advance (-1/normalizer),
 * so the kernel computes the loss and the gradients in one pass over the logits (each chunk's logits are
 * formed once, not recomputed in backward); backward only scales them by the incoming scalar.
 */
export function fusedCrossEntropy(hidden: Tensor, weight: Tensor, targets: Tensor, opts: LinearLogprobOptions & { normalizer?: number } = {}): Tensor {
  const bias = opts.bias ?? null;
  const wantsGrad = isGradEnabled() && (hidden.requiresGrad || weight.requiresGrad || (bias?.requiresGrad ?? false));
  if (!wantsGrad) {
    const lp = linearLogprob(hidden, weight, targets, opts);
    const out = negMeanOf(lp, opts.normalizer ?? countTargets(targets));
    lp.dispose();
    return out;
  }
  const { V, H, N, tgt, temperature } = checkLmHead('fusedCrossEntropy', hidden, weight, bias, targets, opts.temperature);
  const denom = Math.max(opts.normalizer ?? countTargets(targets), 1);
  const be = hidden.backend;
  const dlogprob = be.alloc(N);
  for (let i = 0; i < N; i++) dlogprob[i] = tgt[i] >= 0 ? -1 / denom : 0;
  const logprob = be.alloc(N);
  const lse = be.alloc(N);
  const dh = uninitialized(hidden.shape, be);
  const dw = weight.requiresGrad ? empty([V, H], 'float', be) : null;
  const db = bias?.requiresGrad ? empty([V], 'float', be) : null;
  be.linearLogprobFused({
    hidden: hidden.data as FloatArray, weight: weight.data as FloatArray, bias: bias ? (bias.data as FloatArray) : null, targets: tgt,
    logprob, lse, entropy: null, n: N, hiddenDim: H, vocab: V, temperature, chunk: opts.chunk ?? 0,
    dlogprob, dhidden: dh.storage.data as FloatArray, dweight: dw ? (dw.storage.data as FloatArray) : null, dbias: db ? (db.storage.data as FloatArray) : null,
  });
  let total = 0;
  for (let i = 0; i < N; i++) total += logprob[i];
  for (const buf of [dlogprob, logprob, lse]) be.free(buf);
  const out = empty([], 'float', be);
  (out.storage.data as FloatArray)[0] = -total / denom;
  const scaled = (t: Tensor | null, s: number): Tensor | null => {
    if (t && s !== 1) be.scaleInPlace(t.storage.data as FloatArray, t.size, s);
    return t;
  };
  const res = fromOp(out, 'fusedCrossEntropy', [hidden, weight, bias], (g) => {
    const s = (g.data as FloatArray)[0];
    return [hidden.requiresGrad ? scaled(dh, s) : (dh.dispose(), null), scaled(dw, s), scaled(db, s)];
  });
  return res;
}

/** A scalar -sum(lp) / denom (no gradient: used when none is recorded). */
function negMeanOf(lp: Tensor, count: number): Tensor {
  const denom = Math.max(count, 1);
  const d = lp.data as FloatArray;
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i];
  const out = empty([], 'float', lp.backend);
  (out.storage.data as FloatArray)[0] = -s / denom;
  return out;
}

// loss = mean over non-ignored rows of -log_softmax(logits)[target]   (logits [N, V] materialised; for small V)
// dlogits = (softmax - onehot) * g / count
export function crossEntropy(logits: Tensor, targets: Tensor, opts: { ignoreIndex?: number; reduction?: 'mean' | 'sum' } = {}): Tensor {
  floatInputs('crossEntropy', logits);
  if (logits.rank !== 2) throw new ShapeError(`crossEntropy: logits must be [N, classes], got ${fmtShape(logits.shape)}`);
  const [N, V] = logits.shape;
  const ignore = opts.ignoreIndex ?? -100;
  if (targets.dtype !== 'int32') throw new DTypeError(`crossEntropy: targets must be int32, got ${targets.dtype}`);
  if (targets.size !== N) throw new ShapeError(`crossEntropy: targets ${fmtShape(targets.shape)} must be [${N}]`);
  const t = targets.data as Int32Array;
  const x = logits.data as FloatArray;
  const lse = new Float64Array(N);
  let total = 0;
  let count = 0;
  for (let i = 0; i < N; i++) {
    if (t[i] === ignore) continue;
    if (t[i] < 0 || t[i] >= V) throw new IndexError(`crossEntropy: target ${t[i]} at row ${i} is out of range for ${V} classes`);
    let m = -Infinity;
    for (let j = 0; j < V; j++) m = Math.max(m, x[i * V + j]);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(x[i * V + j] - m);
    lse[i] = m + Math.log(s);
    total += lse[i] - x[i * V + t[i]];
    count++;
  }
  const denom = opts.reduction === 'sum' ? 1 : Math.max(count, 1);
  const out = empty([], 'float', logits.backend);
  (out.storage.data as FloatArray)[0] = total / denom;
  return fromOp(out, 'crossEntropy', [logits], (g) => {
    const gv = (g.data as FloatArray)[0] / denom;
    const dx = empty([N, V], 'float', logits.backend);
    const d = dx.storage.data as FloatArray;
    for (let i = 0; i < N; i++) {
      if (t[i] === ignore) continue;
      for (let j = 0; j < V; j++) d[i * V + j] = gv * Math.exp(x[i * V + j] - lse[i]);
      d[i * V + t[i]] -= gv;
    }
    return [dx];
  });
}

export { contiguousStrides };
