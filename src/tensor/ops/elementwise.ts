// Elementwise ops with NumPy broadcasting: add/sub/mul/div/maximum/minimum, scalar variants, pow, and the
// unary functions (exp, log, tanh, sigmoid, silu, gelu, relu, sqrt, rsqrt, neg, abs) run by the backend.
// Forward and backward of each op side by side.

import type { FloatArray, UnaryOp } from '../../backend/index.ts';
import { DTypeError, LifetimeError, ShapeError, fmtShape } from '../errors.ts';
import { Tensor, contiguousStrides, empty, engineHooks, fromOp, isFloatDType, shapeSize, uninitialized } from '../tensor.ts';
import { sumToShape } from './reduce.ts';

/** Checks an op's float inputs are alive, float and on one backend. */
export function floatInputs(op: string, ...ts: Tensor[]): void {
  const b = ts[0].live(op).backend;
  for (const t of ts) {
    t.live(op);
    if (!isFloatDType(t.dtype)) throw new DTypeError(`${op}: expects float tensors, got ${t.dtype} ${fmtShape(t.shape)}`);
    if (t.storage.backend !== b) throw new LifetimeError(`${op}: tensors live on different backends (${b.name} and ${t.storage.backend?.name})`);
  }
}

/** A contiguous tensor with the same values (the tensor itself, as a new view object, when already contiguous). */
export function contiguousData(t: Tensor): FloatArray {
  return t.data as FloatArray;
}

export function broadcastShapes(a: readonly number[], b: readonly number[], op: string): number[] {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1)
      throw new ShapeError(`${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} cannot be broadcast (dim ${i}: ${da} vs ${db})`);
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides of `t` when broadcast to `shape` (0 on broadcast dims). */
function broadcastStrides(t: Tensor, shape: readonly number[]): number[] {
  const r = shape.length;
  const out = new Array<number>(r).fill(0);
  const off = r - t.rank;
  for (let i = 0; i < t.rank; i++) out[off + i] = t.shape[i] === 1 && shape[off + i] !== 1 ? 0 : t.strides[i];
  return out;
}

type BinaryFn = (x: number, y: number) => number;
const ADD: BinaryFn = (x, y) => x + y;
const SUB: BinaryFn = (x, y) => x - y;
const MUL: BinaryFn = (x, y) => x * y;

/** out[i] = fn(a[...], b[...]) over the broadcast shape; handles any strides. */
function binaryKernel(a: Tensor, b: Tensor, shape: number[], fn: BinaryFn): Tensor {
  const out = uninitialized(shape, a.backend);
  const o = out.storage.data as FloatArray;
  const n = o.length;
  if (n === 0) return out;
  const ad = a.storage.data as FloatArray;
  const bd = b.storage.data as FloatArray;
  const sameShape = a.size === n && b.size === n && a.isContiguous && b.isContiguous;
  if (sameShape) {
    const pa = a.offset;
    const pb = b.offset;
    // The backend's binary kernel for the common ops: a per-element callback costs several times more.
    const op = fn === ADD ? 'add' : fn === MUL ? 'mul' : fn === SUB ? 'sub' : null;
    if (op) a.backend.binary({ op, a: ad.subarray(pa, pa + n), b: bd.subarray(pb, pb + n), out: o, n });
    else for (let i = 0; i < n; i++) o[i] = fn(ad[pa + i], bd[pb + i]);
    return out;
  }
  if (b.size === 1) {
    const y = bd[b.offset];
    if (a.isContiguous && a.size === n) {
      for (let i = 0, pa = a.offset; i < n; i++) o[i] = fn(ad[pa + i], y);
      return out;
    }
  }
  const r = shape.length;
  const as = broadcastStrides(a, shape);
  const bs = broadcastStrides(b, shape);
  const inner = shape[r - 1];
  const ai = as[r - 1];
  const bi = bs[r - 1];
  const idx = new Array<number>(r).fill(0);
  let pa = a.offset;
  let pb = b.offset;
  let p = 0;
  for (;;) {
    for (let j = 0, qa = pa, qb = pb; j < inner; j++, qa += ai, qb += bi) o[p++] = fn(ad[qa], bd[qb]);
    let ax = r - 2;
    for (; ax >= 0; ax--) {
      idx[ax]++;
      pa += as[ax];
      pb += bs[ax];
      if (idx[ax] < shape[ax]) break;
      pa -= as[ax] * shape[ax];
      pb -= bs[ax] * shape[ax];
      idx[ax] = 0;
    }
    if (ax < 0) break;
  }
  return out;
}

function scalarTensor(x: number, like: Tensor): Tensor {
  const t = empty([], 'float', like.backend);
  (t.storage.data as FloatArray)[0] = x;
  return t;
}

function asTensor(x: Tensor | number, like: Tensor): Tensor {
  return typeof x === 'number' ? scalarTensor(x, like) : x;
}

/** x (op) s for a plain number s: out[i] = fwd(x[i], s), dx[i] = grad(g[i], s). */
function scalarOp(op: string, x: Tensor, s: number, fwd: BinaryFn, grad: BinaryFn): Tensor {
  floatInputs(op, x);
  const out = mapUnary(x, (v) => fwd(v, s));
  return fromOp(out, op, [x], (g) => [mapUnary(g, (gv) => grad(gv, s))]);
}

// --------------------------------------------------------------------------------------------- add / sub
// out = a + b;  da = sum_to(a.shape, g), db = sum_to(b.shape, g)
export function add(a: Tensor, bIn: Tensor | number): Tensor {
  if (typeof bIn === 'number') return scalarOp('add', a, bIn, (v, s) => v + s, (gv, s) => gv);
  const b = bIn;
  floatInputs('add', a, b);
  const shape = broadcastShapes(a.shape, b.shape, 'add');
  const out = binaryKernel(a, b, shape, ADD);
  return fromOp(out, 'add', [a, b], (g) => [a.requiresGrad ? sumToShape(g, a.shape) : null, b.requiresGrad ? sumToShape(g, b.shape) : null]);
}

// out = a - b;  da = sum_to(g), db = -sum_to(g)
export function sub(a: Tensor, bIn: Tensor | number): Tensor {
  if (typeof bIn === 'number') return scalarOp('sub', a, bIn, (v, s) => v - s, (gv, s) => gv);
  const b = bIn;
  floatInputs('sub', a, b);
  const shape = broadcastShapes(a.shape, b.shape, 'sub');
  const out = binaryKernel(a, b, shape, SUB);
  return fromOp(out, 'sub', [a, b], (g) => [
    a.requiresGrad ? sumToShape(g, a.shape) : null,
    b.requiresGrad ? negInPlace(sumToShape(g, b.shape)) : null,
  ]);
}

/** A contiguous copy of x times s. float32 goes through the backend's scale kernel: a per-element JS callback
 *  costs ~10x more on activation-sized tensors (every LoRA projection scales its update, forward and backward).
 *  Both round the same way: float32(double(v) * s). */
function scaledCopy(x: Tensor, s: number): Tensor {
  const d = x.data as FloatArray;
  const out = uninitialized(x.shape, x.backend);
  const o = out.storage.data as FloatArray;
  if (o instanceof Float32Array && d instanceof Float32Array) {
    o.set(d);
    x.backend.scaleInPlace(o, o.length, s);
  } else for (let i = 0; i < o.length; i++) o[i] = d[i] * s;
  return out;
}

// out = a * b;  da = sum_to(g * b), db = sum_to(g * a);  a * s: da = g * s
export function mul(a: Tensor, bIn: Tensor | number): Tensor {
  if (typeof bIn === 'number') {
    floatInputs('mul', a);
    const s = bIn;
    return fromOp(scaledCopy(a, s), 'mul', [a], (g) => [scaledCopy(g, s)]);
  }
  const b = bIn;
  floatInputs('mul', a, b);
  const shape = broadcastShapes(a.shape, b.shape, 'mul');
  const out = binaryKernel(a, b, shape, MUL);
  return fromOp(out, 'mul', [a, b], (g) => [
    a.requiresGrad ? reduceOwned(binaryKernel(g, b, shape, MUL), a.shape) : null,
    b.requiresGrad ? reduceOwned(binaryKernel(g, a, shape, MUL), b.shape) : null,
  ]);
}

// out = a / b;  da = sum_to(g / b), db = sum_to(-g * a / b^2)
export function div(a: Tensor, bIn: Tensor | number): Tensor {
  if (typeof bIn === 'number') return scalarOp('div', a, bIn, (v, s) => v / s, (gv, s) => gv / s);
  const b = bIn;
  floatInputs('div', a, b);
  const shape = broadcastShapes(a.shape, b.shape, 'div');
  const out = binaryKernel(a, b, shape, (x, y) => x / y);
  return fromOp(out, 'div', [a, b], (g) => {
    const ga = binaryKernel(g, b, shape, (x, y) => x / y); // g / b
    const db = b.requiresGrad ? reduceOwned(binaryKernel(ga, out, shape, (x, y) => -x * y), b.shape) : null; // -(g/b) * (a/b)
    return [a.requiresGrad ? reduceOwned(ga, a.shape) : (ga.dispose(), null), db];
  });
}

// out = max(a, b); the gradient goes to a where a >= b (ties to a), else to b
export function maximum(a: Tensor, bIn: Tensor | number): Tensor {
  const b = asTensor(bIn, a);
  floatInputs('maximum', a, b);
  const shape = broadcastShapes(a.shape, b.shape, 'maximum');
  const out = binaryKernel(a, b, shape, (x, y) => (x >= y || Number.isNaN(x) ? x : y));
  return fromOp(out, 'maximum', [a, b], (g) => {
    const pickA = binaryKernel(a, b, shape, (x, y) => (x >= y || Number.isNaN(x) ? 1 : 0));
    const da = a.requiresGrad ? reduceOwned(binaryKernel(g, pickA, shape, (x, m) => x * m), a.shape) : null;
    const db = b.requiresGrad ? reduceOwned(binaryKernel(g, pickA, shape, (x, m) => x * (1 - m)), b.shape) : null;
    pickA.dispose();
    return [da, db];
  });
}

// out = min(a, b); ties to a
export function minimum(a: Tensor, bIn: Tensor | number): Tensor {
  const b = asTensor(bIn, a);
  floatInputs('minimum', a, b);
  const shape = broadcastShapes(a.shape, b.shape, 'minimum');
  const out = binaryKernel(a, b, shape, (x, y) => (x <= y || Number.isNaN(x) ? x : y));
  return fromOp(out, 'minimum', [a, b], (g) => {
    const pickA = binaryKernel(a, b, shape, (x, y) => (x <= y || Number.isNaN(x) ? 1 : 0));
    const da = a.requiresGrad ? reduceOwned(binaryKernel(g, pickA, shape, (x, m) => x * m), a.shape) : null;
    const db = b.requiresGrad ? reduceOwned(binaryKernel(g, pickA, shape, (x, m) => x * (1 - m)), b.shape) : null;
    pickA.dispose();
    return [da, db];
  });
}

// out = x^p (scalar p);  dx = g * p * x^(p-1)
export function pow(x: Tensor, p: number): Tensor {
  floatInputs('pow', x);
  const out = mapUnary(x, (v) => Math.pow(v, p));
  return fromOp(out, 'pow', [x], (g) => [zipMap(g, x, (gv, v) => gv * p * Math.pow(v, p - 1))]);
}

/** out = clamp(x, lo, hi); gradient passes where lo <= x <= hi. */
export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  floatInputs('clamp', x);
  const out = mapUnary(x, (v) => (v < lo ? lo : v > hi ? hi : v));
  return fromOp(out, 'clamp', [x], (g) => [zipMap(g, x, (gv, v) => (v >= lo && v <= hi ? gv : 0))]);
}

function reduceOwned(t: Tensor, shape: readonly number[]): Tensor {
  if (t.size === shapeSize(shape) && t.rank === shape.length) return t;
  const r = sumToShape(t, shape);
  t.dispose();
  return r;
}

function negInPlace(t: Tensor): Tensor {
  const d = t.data as FloatArray;
  for (let i = 0; i < d.length; i++) d[i] = -d[i];
  return t;
}

/** Elementwise map of one tensor into a new contiguous tensor (no autograd). */
export function mapUnary(x: Tensor, fn: (v: number) => number): Tensor {
  const out = uninitialized(x.shape, x.backend);
  const o = out.storage.data as FloatArray;
  const d = x.data as FloatArray;
  for (let i = 0; i < o.length; i++) o[i] = fn(d[i]);
  return out;
}

/** out[i] = fn(a[i], b[i]) for two tensors of the same size, contiguous result (no autograd). */
export function zipMap(a: Tensor, b: Tensor, fn: BinaryFn): Tensor {
  if (a.size !== b.size) throw new ShapeError(`zipMap: ${fmtShape(a.shape)} vs ${fmtShape(b.shape)}`);
  const out = uninitialized(b.shape, b.backend);
  const o = out.storage.data as FloatArray;
  const ad = a.data as FloatArray;
  const bd = b.data as FloatArray;
  for (let i = 0; i < o.length; i++) o[i] = fn(ad[i], bd[i]);
  return out;
}

// --------------------------------------------------------------------------------------------- scalar forms
export const addScalar = (x: Tensor, s: number): Tensor => add(x, s);
export const mulScalar = (x: Tensor, s: number): Tensor => mul(x, s);

// --------------------------------------------------------------------------------------------- unary (backend)
function unaryOp(op: UnaryOp, x: Tensor): Tensor {
  floatInputs(op, x);
  const b = x.backend;
  const xd = x.data as FloatArray;
  const out = uninitialized(x.shape, b);
  const yd = out.storage.data as FloatArray;
  b.unary({ op, x: xd, y: yd, n: yd.length });
  return fromOp(out, op, [x], (g) => {
    const dx = uninitialized(x.shape, b);
    b.unaryBackward({ op, x: x.data as FloatArray, y: out.storage.data as FloatArray, dy: g.data as FloatArray, dx: dx.storage.data as FloatArray, n: yd.length });
    return [dx];
  });
}

export const exp = (x: Tensor): Tensor => unaryOp('exp', x);
export const log = (x: Tensor): Tensor => unaryOp('log', x);
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x);
export const silu = (x: Tensor): Tensor => unaryOp('silu', x);
export const relu = (x: Tensor): Tensor => unaryOp('relu', x);
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', x);
export const rsqrt = (x: Tensor): Tensor => unaryOp('rsqrt', x);
export const neg = (x: Tensor): Tensor => unaryOp('neg', x);
export const abs = (x: Tensor): Tensor => unaryOp('abs', x);
/** GELU: 'tanh' (GPT-2's gelu_new / PyTorch approximate='tanh') or 'erf' (exact). */
export const gelu = (x: Tensor, approximate: 'tanh' | 'erf' = 'tanh'): Tensor => unaryOp(approximate === 'tanh' ? 'gelu_tanh' : 'gelu_erf', x);

// --------------------------------------------------------------------------------------------- engine hooks
/** dst += src in place (dst contiguous; same number of elements). No autograd. */
export function addInto(dst: Tensor, src: Tensor): void {
  if (dst.size !== src.size) throw new ShapeError(`addInto: ${fmtShape(dst.shape)} += ${fmtShape(src.shape)}`);
  const d = dst.data as FloatArray;
  dst.backend.binary({ op: 'add', a: d, b: src.data as FloatArray, out: d, n: d.length });
}

/** A contiguous copy (no autograd). */
export function copyTensor(t: Tensor): Tensor {
  const out = empty(t.shape, t.dtype === 'float32' || t.dtype === 'float64' ? 'float' : t.dtype, t.backend);
  (out.storage.data as FloatArray).set(t.data as FloatArray);
  return out;
}

engineHooks.addInto = addInto;
engineHooks.add = (a, b) => {
  const out = uninitialized(a.shape, a.backend);
  const o = out.storage.data as FloatArray;
  a.backend.binary({ op: 'add', a: a.data as FloatArray, b: b.data as FloatArray, out: o, n: o.length });
  return out;
};
engineHooks.copy = copyTensor;
engineHooks.onesLike = (a) => {
  const out = uninitialized(a.shape, a.backend);
  (out.storage.data as FloatArray).fill(1);
  return out;
};

export { contiguousStrides };
