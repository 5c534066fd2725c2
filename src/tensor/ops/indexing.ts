// Indexing ops: embedding, gather, indexSelect (scatter-add backward, sequential so it is deterministic),
// where / maskedFill. Every index is range-checked with a message naming the op, position and bound.

import type { FloatArray } from '../../backend/index.ts';
import { DTypeError, IndexError, ShapeError, fmtShape } from '../errors.ts';
import { Tensor, contiguousStrides, empty, fromOp, shapeSize } from '../tensor.ts';
import { broadcastShapes, floatInputs } from './elementwise.ts';
import { sumToShape as sumToShapeLocal } from './reduce.ts';

function intIndices(idx: Tensor, op: string): Int32Array {
  idx.live(op);
  if (idx.dtype === 'int32') return idx.data as Int32Array;
  if (idx.dtype === 'int64') {
    const d = idx.data as BigInt64Array;
    const out = new Int32Array(d.length);
    for (let i = 0; i < d.length; i++) {
      if (d[i] > 2147483647n || d[i] < -2147483648n) throw new IndexError(`${op}: index ${d[i]} at ${i} does not fit int32`);
      out[i] = Number(d[i]);
    }
    return out;
  }
  throw new DTypeError(`${op}: indices must be int32 or int64, got ${idx.dtype} ${fmtShape(idx.shape)}`);
}

function checkRange(ids: Int32Array, bound: number, op: string, what: string): void {
  for (let i = 0; i < ids.length; i++)
    if (ids[i] < 0 || ids[i] >= bound) throw new IndexError(`${op}: index ${ids[i]} at position ${i} is out of range for ${what} of size ${bound}`);
}

// out[..., :] = weight[ids[...], :]          weight [V, H], ids [...] -> out [..., H]
// dweight[ids[i], :] += g[i, :]              (scatter-add, in index order)
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  floatInputs('embedding', weight);
  if (weight.rank !== 2) throw new ShapeError(`embedding: weight must be [vocab, dim], got ${fmtShape(weight.shape)}`);
  const [V, H] = weight.shape;
  const idx = intIndices(ids, 'embedding');
  checkRange(idx, V, 'embedding', 'the vocabulary');
  const w = weight.data as FloatArray;
  const out = empty([...ids.shape, H], 'float', weight.backend);
  const o = out.storage.data as FloatArray;
  for (let i = 0; i < idx.length; i++) o.set(w.subarray(idx[i] * H, idx[i] * H + H), i * H);
  return fromOp(out, 'embedding', [weight], (g) => {
    const dw = empty([V, H], 'float', g.backend);
    const d = dw.storage.data as FloatArray;
    const gd = g.data as FloatArray;
    for (let i = 0; i < idx.length; i++) {
      const row = idx[i] * H;
      for (let j = 0; j < H; j++) d[row + j] += gd[i * H + j];
    }
    return [dw];
  });
}

// out[i][j][k] = x[i][index[i][j][k]][k] (for dim = 1; likewise for any dim), out.shape = index.shape
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  floatInputs('gather', x);
  const r = x.rank;
  const d = dim < 0 ? dim + r : dim;
  if (d < 0 || d >= r) throw new ShapeError(`gather: dim ${dim} out of range for ${fmtShape(x.shape)}`);
  if (index.rank !== r) throw new ShapeError(`gather: index ${fmtShape(index.shape)} must have the rank of input ${fmtShape(x.shape)}`);
  for (let i = 0; i < r; i++)
    if (i !== d && index.shape[i] > x.shape[i]) throw new ShapeError(`gather: index ${fmtShape(index.shape)} exceeds input ${fmtShape(x.shape)} at dim ${i}`);
  const idx = intIndices(index, 'gather');
  checkRange(idx, x.shape[d], 'gather', `dim ${d}`);
  const xd = x.data as FloatArray;
  const xs = contiguousStrides(x.shape);
  const shape = index.shape;
  const n = shapeSize(shape);
  const out = empty(shape, 'float', x.backend);
  const o = out.storage.data as FloatArray;
  const src = new Int32Array(n); // flat source position of each output element
  const is = contiguousStrides(shape);
  for (let p = 0; p < n; p++) {
    let rem = p;
    let q = 0;
    for (let a = 0; a < r; a++) {
      const c = Math.floor(rem / is[a]);
      rem -= c * is[a];
      q += (a === d ? idx[p] : c) * xs[a];
    }
    src[p] = q;
    o[p] = xd[q];
  }
  const inShape = x.shape;
  return fromOp(out, 'gather', [x], (g) => {
    const dx = empty(inShape, 'float', g.backend);
    const dd = dx.storage.data as FloatArray;
    const gd = g.data as FloatArray;
    for (let p = 0; p < n; p++) dd[src[p]] += gd[p];
    return [dx];
  });
}

/** Selects entries along `dim` by a 1-D index. */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  floatInputs('indexSelect', x);
  const r = x.rank;
  const d = dim < 0 ? dim + r : dim;
  if (d < 0 || d >= r) throw new ShapeError(`indexSelect: dim ${dim} out of range for ${fmtShape(x.shape)}`);
  if (index.rank !== 1) throw new ShapeError(`indexSelect: index must be 1-D, got ${fmtShape(index.shape)}`);
  const idx = intIndices(index, 'indexSelect');
  checkRange(idx, x.shape[d], 'indexSelect', `dim ${d}`);
  const outer = shapeSize(x.shape.slice(0, d));
  const inner = shapeSize(x.shape.slice(d + 1));
  const n = x.shape[d];
  const xd = x.data as FloatArray;
  const shape = [...x.shape];
  shape[d] = idx.length;
  const out = empty(shape, 'float', x.backend);
  const o = out.storage.data as FloatArray;
  for (let a = 0; a < outer; a++)
    for (let i = 0; i < idx.length; i++) o.set(xd.subarray((a * n + idx[i]) * inner, (a * n + idx[i] + 1) * inner), (a * idx.length + i) * inner);
  const inShape = x.shape;
  return fromOp(out, 'indexSelect', [x], (g) => {
    const dx = empty(inShape, 'float', g.backend);
    const dd = dx.storage.data as FloatArray;
    const gd = g.data as FloatArray;
    for (let a = 0; a < outer; a++)
      for (let i = 0; i < idx.length; i++) {
        const src = (a * idx.length + i) * inner;
        const dst = (a * n + idx[i]) * inner;
        for (let j = 0; j < inner; j++) dd[dst + j] += gd[src + j];
      }
    return [dx];
  });
}

/** Reads a condition tensor (uint8/bool, int32 or float; nonzero = true) as bytes broadcast to `shape`. */
function conditionBytes(cond: Tensor, shape: readonly number[], op: string): Uint8Array {
  cond.live(op);
  const r = shape.length;
  const cs = contiguousStrides(cond.shape);
  const strides = new Array<number>(r).fill(0);
  const off = r - cond.rank;
  for (let i = 0; i < cond.rank; i++) strides[off + i] = cond.shape[i] === 1 ? 0 : cs[i];
  const cd = cond.data as ArrayLike<number | bigint>;
  const n = shapeSize(shape);
  const out = new Uint8Array(n);
  const idx = new Array<number>(r).fill(0);
  let p = 0;
  for (let i = 0; i < n; i++) {
    out[i] = cd[p] ? 1 : 0;
    for (let ax = r - 1; ax >= 0; ax--) {
      idx[ax]++;
      p += strides[ax];
      if (idx[ax] < shape[ax]) break;
      p -= strides[ax] * shape[ax];
      idx[ax] = 0;
    }
  }
  return out;
}

// out = cond ? a : b (broadcast);  da = sum_to(g * cond), db = sum_to(g * !cond)
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  const like = typeof a === 'number' ? (b as Tensor) : a;
  if (typeof like === 'number') throw new DTypeError('where: at least one of a, b must be a tensor');
  const ta = typeof a === 'number' ? null : a;
  const tb = typeof b === 'number' ? null : b;
  floatInputs('where', ...([ta, tb].filter((t) => t !== null) as Tensor[]));
  let shape = broadcastShapes(cond.shape, like.shape, 'where');
  if (ta && tb) shape = broadcastShapes(shape, tb.shape, 'where');
  if (ta && !tb) shape = broadcastShapes(shape, ta.shape, 'where');
  const c = conditionBytes(cond, shape, 'where');
  const av = ta ? expandedValues(ta, shape) : null;
  const bv = tb ? expandedValues(tb, shape) : null;
  const out = empty(shape, 'float', like.backend);
  const o = out.storage.data as FloatArray;
  for (let i = 0; i < o.length; i++) o[i] = c[i] ? (av ? av[i] : (a as number)) : bv ? bv[i] : (b as number);
  return fromOp(out, 'where', [ta, tb], (g) => {
    const gd = g.data as FloatArray;
    const pick = (want: number, t: Tensor | null): Tensor | null => {
      if (!t || !t.requiresGrad) return null;
      const full = empty(shape, 'float', g.backend);
      const f = full.storage.data as FloatArray;
      for (let i = 0; i < f.length; i++) f[i] = c[i] === want ? gd[i] : 0;
      if (shapeSize(t.shape) === f.length && t.rank === shape.length) return full;
      const red = sumToShapeLocal(full, t.shape);
      full.dispose();
      return red;
    };
    return [pick(1, ta), pick(0, tb)];
  });
}

/** x with `value` where mask is true. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  return where(mask, value, x);
}

function expandedValues(t: Tensor, shape: readonly number[]): FloatArray {
  if (t.size === shapeSize(shape) && t.rank === shape.length) return t.data as FloatArray;
  const r = shape.length;
  const ts = contiguousStrides(t.shape);
  const strides = new Array<number>(r).fill(0);
  const off = r - t.rank;
  for (let i = 0; i < t.rank; i++) strides[off + i] = t.shape[i] === 1 ? 0 : ts[i];
  const src = t.data as FloatArray;
  const out = new (src.constructor as new (n: number) => FloatArray)(shapeSize(shape));
  const idx = new Array<number>(r).fill(0);
  let p = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = src[p];
    for (let ax = r - 1; ax >= 0; ax--) {
      idx[ax]++;
      p += strides[ax];
      if (idx[ax] < shape[ax]) break;
      p -= strides[ax] * shape[ax];
      idx[ax] = 0;
    }
  }
  return out;
}

