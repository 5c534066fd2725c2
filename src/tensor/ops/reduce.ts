// Reductions: sum, mean, max (with argmax-routed gradient), logsumexp, and sumToShape (the reverse of
// broadcasting, used by every broadcasting op's backward). Sums accumulate in float64 (JS numbers).

import type { FloatArray } from '../../backend/index.ts';
import { ShapeError, fmtShape } from '../errors.ts';
import { Tensor, contiguousStrides, empty, fromOp, shapeSize } from '../tensor.ts';
import { floatInputs } from './elementwise.ts';
import { permute } from './shape.ts';

function normAxes(axes: number | readonly number[] | undefined, rank: number, op: string): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => {
    const r = a < 0 ? a + rank : a;
    if (!Number.isInteger(r) || r < 0 || r >= rank) throw new ShapeError(`${op}: axis ${a} out of range for rank ${rank}`);
    return r;
  });
  if (new Set(out).size !== out.length) throw new ShapeError(`${op}: repeated axis in ${fmtShape(list)}`);
  return out.sort((a, b) => a - b);
}

/** Moves `axes` to the end and returns the data as [outer, inner] rows plus the kept shape. */
function rowsView(x: Tensor, axes: number[]): { data: FloatArray; outer: number; inner: number; keptShape: number[]; keepdimShape: number[] } {
  const r = x.rank;
  const kept = [...Array(r).keys()].filter((a) => !axes.includes(a));
  const inner = shapeSize(axes.map((a) => x.shape[a]));
  const outer = shapeSize(kept.map((a) => x.shape[a]));
  const isTail = axes.every((a, i) => a === r - axes.length + i);
  let data: FloatArray;
  if (isTail) data = x.data as FloatArray;
  else {
    const p = permute(x, [...kept, ...axes]);
    data = p.data as FloatArray;
    p.dispose();
  }
  const keepdimShape = x.shape.map((s, i) => (axes.includes(i) ? 1 : s));
  return { data, outer, inner, keptShape: kept.map((a) => x.shape[a]), keepdimShape };
}

/** Broadcasts g (shape `small`, size-1 on reduced dims) back to `big` as a new contiguous tensor. */
function broadcastTo(g: Tensor, small: readonly number[], big: readonly number[]): Tensor {
  const out = empty(big, 'float', g.backend);
  const o = out.storage.data as FloatArray;
  const gd = g.data as FloatArray;
  const r = big.length;
  const gs = contiguousStrides(small).map((s, i) => (small[i] === 1 ? 0 : s));
  const idx = new Array<number>(r).fill(0);
  let p = 0;
  for (let i = 0; i < o.length; i++) {
    o[i] = gd[p];
    for (let ax = r - 1; ax >= 0; ax--) {
      idx[ax]++;
      p += gs[ax];
      if (idx[ax] < big[ax]) break;
      p -= gs[ax] * big[ax];
      idx[ax] = 0;
    }
  }
  return out;
}

/** Sum (scale = 1) or mean (scale = 1 / count) over axes; dx = broadcast(g) * scale. */
function scaledSum(op: 'sum' | 'mean', x: Tensor, axes: number | readonly number[] | undefined, keepdim: boolean): Tensor {
  floatInputs(op, x);
  const ax = normAxes(axes, x.rank, op);
  const { data, outer, inner, keptShape, keepdimShape } = rowsView(x, ax);
  const scale = op === 'mean' ? 1 / inner : 1;
  const out = empty(keepdim ? keepdimShape : keptShape, 'float', x.backend);
  const o = out.storage.data as FloatArray;
  for (let i = 0; i < outer; i++) {
    let s = 0;
    for (let j = 0, p = i * inner; j < inner; j++, p++) s += data[p];
    o[i] = op === 'mean' ? s / inner : s;
  }
  const inShape = x.shape;
  return fromOp(out, op, [x], (g) => {
    const dx = broadcastTo(g, keepdimShape, inShape);
    if (scale !== 1) {
      const d = dx.storage.data as FloatArray;
      for (let i = 0; i < d.length; i++) d[i] /= inner;
    }
    return [dx];
  });
}

// out = sum over axes;  dx = broadcast(g)
export const sum = (x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor => scaledSum('sum', x, axes, keepdim);

// out = sum / count;  dx = broadcast(g) / count
export const mean = (x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor => scaledSum('mean', x, axes, keepdim);

/** Max over one axis; the gradient flows to the first maximal element. */
export function max(x: Tensor, axis = -1, keepdim = false): Tensor {
  floatInputs('max', x);
  const ax = normAxes(axis, x.rank, 'max');
  const { outer, inner, keptShape, keepdimShape } = rowsView(x, ax);
  if (inner === 0) throw new ShapeError(`max: cannot reduce an empty axis of ${fmtShape(x.shape)}`);
  const { values, argmax } = rowMax(x, ax);
  const out = empty(keepdim ? keepdimShape : keptShape, 'float', x.backend);
  (out.storage.data as FloatArray).set(values);
  const inShape = x.shape;
  const axisIdx = ax[0];
  return fromOp(out, 'max', [x], (g) => {
    const dx = empty(inShape, 'float', g.backend);
    const d = dx.storage.data as FloatArray;
    const gd = g.data as FloatArray;
    const st = contiguousStrides(inShape);
    const after = shapeSize(inShape.slice(axisIdx + 1));
    for (let i = 0; i < outer; i++) {
      const o = Math.floor(i / after);
      const a = i % after;
      d[o * st[axisIdx] * inShape[axisIdx] + argmax[i] * st[axisIdx] + a] += gd[i];
    }
    return [dx];
  });
}

/** Row maxima and first argmax over one axis (no autograd). */
export function rowMax(x: Tensor, axes: number[]): { values: Float64Array; argmax: Int32Array } {
  const { data, outer, inner } = rowsView(x, axes);
  const values = new Float64Array(outer);
  const argmax = new Int32Array(outer);
  for (let i = 0; i < outer; i++) {
    let best = -Infinity;
    let at = 0;
    for (let j = 0; j < inner; j++) {
      const v = data[i * inner + j];
      if (v > best || (Number.isNaN(v) && !Number.isNaN(best))) {
        best = v;
        at = j;
      }
    }
    values[i] = best;
    argmax[i] = at;
  }
  return { values, argmax };
}

/** Index of the maximum along an axis, as an int32 tensor. */
export function argmax(x: Tensor, axis = -1): Tensor {
  floatInputs('argmax', x);
  const ax = normAxes(axis, x.rank, 'argmax');
  const { argmax: am } = rowMax(x, ax);
  const shape = x.shape.filter((_, i) => i !== ax[0]);
  const out = empty(shape, 'int32');
  (out.storage.data as Int32Array).set(am);
  return out;
}

// out = log(sum(exp(x))) over one axis, stable;  dx = g * softmax(x)
export function logsumexp(x: Tensor, axis = -1, keepdim = false): Tensor {
  floatInputs('logsumexp', x);
  const ax = normAxes(axis, x.rank, 'logsumexp');
  const { data, outer, inner, keptShape, keepdimShape } = rowsView(x, ax);
  const out = empty(keepdim ? keepdimShape : keptShape, 'float', x.backend);
  const o = out.storage.data as FloatArray;
  for (let i = 0; i < outer; i++) {
    let m = -Infinity;
    for (let j = 0; j < inner; j++) m = Math.max(m, data[i * inner + j]);
    if (m === -Infinity) {
      o[i] = -Infinity;
      continue;
    }
    let s = 0;
    for (let j = 0; j < inner; j++) s += Math.exp(data[i * inner + j] - m);
    o[i] = m + Math.log(s);
  }
  const inShape = x.shape;
  return fromOp(out, 'logsumexp', [x], (g) => {
    if (ax[0] !== x.rank - 1) throw new ShapeError('logsumexp: backward supports the last axis only');
    const dx = empty(inShape, 'float', g.backend);
    const d = dx.storage.data as FloatArray;
    const gd = g.data as FloatArray;
    const xd = x.data as FloatArray;
    for (let i = 0; i < outer; i++)
      for (let j = 0; j < inner; j++) d[i * inner + j] = o[i] === -Infinity ? 0 : gd[i] * Math.exp(xd[i * inner + j] - o[i]);
    return [dx];
  });
}

/** Sums g (a broadcast result) down to `shape` — the backward of broadcasting. Always a new tensor. */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  const r = g.rank;
  const off = r - shape.length;
  if (off < 0) throw new ShapeError(`sumToShape: ${fmtShape(g.shape)} has fewer dims than ${fmtShape(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < r; i++) if (i < off || (shape[i - off] === 1 && g.shape[i] !== 1)) axes.push(i);
  if (axes.length === 0) {
    const out = empty(shape, 'float', g.backend);
    (out.storage.data as FloatArray).set(g.data as FloatArray);
    return out;
  }
  const { data, outer, inner } = rowsView(g, axes);
  const out = empty(shape, 'float', g.backend);
  const o = out.storage.data as FloatArray;
  for (let i = 0; i < outer; i++) {
    let s = 0;
    for (let j = 0, p = i * inner; j < inner; j++, p++) s += data[p];
    o[i] = s;
  }
  return out;
}
