// Shape ops: views that share storage (reshape, transpose, permute, slice, squeeze/unsqueeze, expand) and
// copies (contiguous, concat). Backward of a view is the inverse view of the gradient.

import type { FloatArray } from '../../backend/index.ts';
import { ShapeError, fmtShape } from '../errors.ts';
import { Tensor, contiguousStrides, empty, fromOp, gatherStrided, shapeSize } from '../tensor.ts';
import { sumToShape } from './reduce.ts';

function normDim(d: number, rank: number, op: string): number {
  const r = d < 0 ? d + rank : d;
  if (!Number.isInteger(r) || r < 0 || r >= rank) throw new ShapeError(`${op}: dim ${d} out of range for rank ${rank}`);
  return r;
}

/** A contiguous tensor with the same values: a cheap new view object if already contiguous, else a copy. */
export function contiguous(x: Tensor): Tensor {
  x.live('contiguous');
  if (x.isContiguous) {
    const v = x.withLayout(x.shape, contiguousStrides(x.shape), x.offset);
    return fromOp(v, 'contiguous', [x], (g) => [g.withLayout(g.shape, g.strides, g.offset)]);
  }
  const out = empty(x.shape, x.dtype === 'float32' || x.dtype === 'float64' ? 'float' : x.dtype, x.backend);
  (out.storage.data as FloatArray).set(gatherStrided(x) as FloatArray);
  return fromOp(out, 'contiguous', [x], (g) => [g.withLayout(g.shape, g.strides, g.offset)]);
}

/** Same data, new shape (one dim may be -1). Copies only when x is not contiguous. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  x.live('reshape');
  const s = [...shape];
  const neg = s.indexOf(-1);
  if (neg >= 0) {
    const rest = shapeSize(s.filter((_, i) => i !== neg));
    if (rest === 0 || x.size % rest !== 0) throw new ShapeError(`reshape: cannot infer -1 in ${fmtShape(shape)} for ${x.size} elements`);
    s[neg] = x.size / rest;
  }
  if (shapeSize(s) !== x.size || s.some((d) => !Number.isInteger(d) || d < 0))
    throw new ShapeError(`reshape: cannot view ${fmtShape(x.shape)} (${x.size} elements) as ${fmtShape(shape)}`);
  const src = x.isContiguous ? x : contiguous(x);
  const out = src.withLayout(s, contiguousStrides(s), src.offset);
  if (src !== x) src.dispose();
  const inShape = x.shape;
  // g may be a non-contiguous view (e.g. from a permute's backward): reshape copies it when needed.
  return fromOp(out, 'reshape', [x], (g) => [reshape(g, inShape)]);
}

export const view = reshape;

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  const r = x.rank;
  const s = normDim(startDim, r, 'flatten');
  const e = normDim(endDim, r, 'flatten');
  const shape = [...x.shape.slice(0, s), shapeSize(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

/** Reorders dims (a view). */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  x.live('permute');
  const r = x.rank;
  if (dims.length !== r) throw new ShapeError(`permute: ${dims.length} dims given for a rank-${r} tensor ${fmtShape(x.shape)}`);
  const nd = dims.map((d) => normDim(d, r, 'permute'));
  if (new Set(nd).size !== r) throw new ShapeError(`permute: dims ${fmtShape(dims)} are not a permutation`);
  const out = x.withLayout(
    nd.map((d) => x.shape[d]),
    nd.map((d) => x.strides[d]),
    x.offset,
  );
  const inverse = new Array<number>(r);
  nd.forEach((d, i) => (inverse[d] = i));
  return fromOp(out, 'permute', [x], (g) => [permute(g, inverse)]);
}

export function transpose(x: Tensor, d0 = -2, d1 = -1): Tensor {
  const r = x.rank;
  const a = normDim(d0, r, 'transpose');
  const b = normDim(d1, r, 'transpose');
  const dims = [...Array(r).keys()];
  dims[a] = b;
  dims[b] = a;
  return permute(x, dims);
}

/** x[..., start:start+length, ...] along `dim` (a view). */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  x.live('narrow');
  const d = normDim(dim, x.rank, 'narrow');
  const size = x.shape[d];
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > size)
    throw new ShapeError(`narrow: [${start}, ${start + length}) is outside dim ${d} of size ${size} in ${fmtShape(x.shape)}`);
  const shape = [...x.shape];
  shape[d] = length;
  const out = x.withLayout(shape, x.strides, x.offset + start * x.strides[d]);
  const inShape = x.shape;
  return fromOp(out, 'narrow', [x], (g) => {
    const dx = empty(inShape, 'float', g.backend);
    const view = dx.withLayout(shape, contiguousStrides(inShape), start * contiguousStrides(inShape)[d]);
    copyInto(view, g);
    view.dispose();
    return [dx];
  });
}

/** Python-style slice along one dim: start/end may be negative, end is exclusive. */
export function slice(x: Tensor, dim: number, start: number, end?: number): Tensor {
  const d = normDim(dim, x.rank, 'slice');
  const n = x.shape[d];
  const s = Math.min(Math.max(start < 0 ? start + n : start, 0), n);
  const e = Math.min(Math.max(end === undefined ? n : end < 0 ? end + n : end, s), n);
  return narrow(x, d, s, e - s);
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normDim(dim, x.rank + 1, 'unsqueeze');
  const shape = [...x.shape];
  shape.splice(d, 0, 1);
  return reshape(x, shape);
}

export function squeeze(x: Tensor, dim?: number): Tensor {
  if (dim === undefined) return reshape(x, x.shape.filter((s) => s !== 1));
  const d = normDim(dim, x.rank, 'squeeze');
  if (x.shape[d] !== 1) throw new ShapeError(`squeeze: dim ${d} of ${fmtShape(x.shape)} is not 1`);
  return reshape(x, x.shape.filter((_, i) => i !== d));
}

/** Broadcasts size-1 dims to `shape` (a view with zero strides). Backward sums over the broadcast dims. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  x.live('expand');
  const r = shape.length;
  if (r < x.rank) throw new ShapeError(`expand: cannot expand ${fmtShape(x.shape)} to fewer dims ${fmtShape(shape)}`);
  const strides = new Array<number>(r).fill(0);
  const off = r - x.rank;
  const target = [...shape];
  for (let i = 0; i < x.rank; i++) {
    const want = shape[off + i] === -1 ? x.shape[i] : shape[off + i];
    target[off + i] = want;
    if (x.shape[i] === want) strides[off + i] = x.strides[i];
    else if (x.shape[i] !== 1) throw new ShapeError(`expand: cannot expand ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  }
  const out = x.withLayout(target, strides, x.offset);
  const inShape = x.shape;
  return fromOp(out, 'expand', [x], (g) => [sumToShape(g, inShape)]);
}

/** Copies src's values (any strides) into dst (any strides, same shape). No autograd. */
export function copyInto(dst: Tensor, src: Tensor): void {
  if (shapeSize(dst.shape) !== shapeSize(src.shape)) throw new ShapeError(`copyInto: ${fmtShape(dst.shape)} <- ${fmtShape(src.shape)}`);
  const values = src.data as FloatArray;
  const d = dst.storage.data as FloatArray;
  if (dst.isContiguous) {
    d.set(values, dst.offset);
    return;
  }
  const r = dst.rank;
  const idx = new Array<number>(r).fill(0);
  let p = dst.offset;
  for (let i = 0; i < values.length; i++) {
    d[p] = values[i];
    for (let ax = r - 1; ax >= 0; ax--) {
      idx[ax]++;
      p += dst.strides[ax];
      if (idx[ax] < dst.shape[ax]) break;
      p -= dst.strides[ax] * dst.shape[ax];
      idx[ax] = 0;
    }
  }
}

/** Concatenates along `dim`. */
export function concat(xs: readonly Tensor[], dim = 0): Tensor {
  if (xs.length === 0) throw new ShapeError('concat: no tensors');
  const first = xs[0].live('concat');
  const d = normDim(dim, first.rank, 'concat');
  let total = 0;
  for (const x of xs) {
    x.live('concat');
    if (x.rank !== first.rank || x.shape.some((s, i) => i !== d && s !== first.shape[i]))
      throw new ShapeError(`concat: shapes ${xs.map((t) => fmtShape(t.shape)).join(', ')} differ outside dim ${d}`);
    total += x.shape[d];
  }
  const shape = [...first.shape];
  shape[d] = total;
  const out = empty(shape, 'float', first.backend);
  const outStrides = contiguousStrides(shape);
  let at = 0;
  for (const x of xs) {
    const v = out.withLayout(x.shape, outStrides, at * outStrides[d]);
    copyInto(v, x);
    v.dispose();
    at += x.shape[d];
  }
  return fromOp(out, 'concat', xs, (g) => {
    let pos = 0;
    return xs.map((x) => {
      let piece: Tensor | null = null;
      if (x.requiresGrad) {
        const v = narrow(g, d, pos, x.shape[d]);
        piece = contiguous(v);
        v.dispose();
      }
      pos += x.shape[d];
      return piece;
    });
  });
}

/** Splits into pieces of the given sizes along dim (views). */
export function split(x: Tensor, sizes: readonly number[], dim = 0): Tensor[] {
  const d = normDim(dim, x.rank, 'split');
  if (sizes.reduce((a, b) => a + b, 0) !== x.shape[d]) throw new ShapeError(`split: sizes ${fmtShape(sizes)} do not sum to dim ${d} of ${fmtShape(x.shape)}`);
  let pos = 0;
  return sizes.map((s) => {
    const t = narrow(x, d, pos, s);
    pos += s;
    return t;
  });
}
