// RMSNorm, LayerNorm and (log-)softmax: the JS reference against hand-computed values and float64 finite
// differences, and the native kernels against the JS reference (every ISA, odd shapes, 1 vs 2 threads,
// bad input).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend, jsBackend64, nativeBackend } from '../../src/backend/index.ts';
import type { Backend, FloatArray } from '../../src/backend/index.ts';
import { nativeAddon } from '../../src/native/addon.ts';
import { assertClose, randArray } from '../util.ts';
import { runnableIsas, withIsa, withThreads } from '../native_env.ts';

type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;

const ROWS = [1, 3, 17];
const DIMS = [1, 7, 33, 257];

const copy = (a: FloatArray, ctor: Ctor = Float32Array): FloatArray => ctor.from(a);

// ------------------------------------------------------------------------------------------ kernels as functions
// Each runner takes a backend and inputs and returns every output (fresh arrays), so the same call runs on
// native, JS float32 and JS float64. Gradient accumulators start from `init*` to check they accumulate.

interface RmsIn { x: FloatArray; w: FloatArray; dy: FloatArray; dwInit: FloatArray; rows: number; dim: number; eps: number }
function runRms(b: Backend, ctor: Ctor, i: RmsIn): Record<string, FloatArray> {
  const { rows, dim } = i;
  const x = copy(i.x, ctor), w = copy(i.w, ctor), dy = copy(i.dy, ctor);
  const y = new ctor(rows * dim), rstd = new ctor(rows), dx = new ctor(rows * dim), dweight = copy(i.dwInit, ctor);
  b.rmsnormForward({ x, weight: w, y, rstd, rows, dim, eps: i.eps });
  b.rmsnormBackward({ x, weight: w, rstd, dy, dx, dweight, rows, dim });
  return { y, rstd, dx, dweight };
}

interface LnIn { x: FloatArray; w: FloatArray; bias: FloatArray | null; dy: FloatArray; dwInit: FloatArray; dbInit: FloatArray | null; rows: number; dim: number; eps: number }
function runLn(b: Backend, ctor: Ctor, i: LnIn): Record<string, FloatArray> {
  const { rows, dim } = i;
  const x = copy(i.x, ctor), w = copy(i.w, ctor), dy = copy(i.dy, ctor);
  const bias = i.bias ? copy(i.bias, ctor) : null;
  const y = new ctor(rows * dim), mean = new ctor(rows), rstd = new ctor(rows), dx = new ctor(rows * dim);
  const dweight = copy(i.dwInit, ctor);
  const dbias = i.dbInit ? copy(i.dbInit, ctor) : null;
  b.layernormForward({ x, weight: w, bias, y, mean, rstd, rows, dim, eps: i.eps });
  b.layernormBackward({ x, weight: w, mean, rstd, dy, dx, dweight, dbias, rows, dim });
  const out: Record<string, FloatArray> = { y, mean, rstd, dx, dweight };
  if (dbias) out.dbias = dbias;
  return out;
}

interface SmIn { x: FloatArray; dy: FloatArray; rows: number; dim: number; log: boolean }
function runSm(b: Backend, ctor: Ctor, i: SmIn): Record<string, FloatArray> {
  const { rows, dim, log } = i;
  const x = copy(i.x, ctor), dy = copy(i.dy, ctor);
  const y = new ctor(rows * dim), dx = new ctor(rows * dim);
  b.softmaxForward({ x, y, rows, dim, log });
  b.softmaxBackward({ y, dy, dx, rows, dim, log });
  return { y, dx };
}

function rmsIn(rows: number, dim: number, seed: number): RmsIn {
  return { x: randArray(rows * dim, seed, 2), w: randArray(dim, seed + 1, 1.5), dy: randArray(rows * dim, seed + 2), dwInit: randArray(dim, seed + 3, 0.5), rows, dim, eps: 1e-5 };
}
function lnIn(rows: number, dim: number, seed: number, withBias: boolean): LnIn {
  const x = randArray(rows * dim, seed, 2);
  for (let i = 0; i < x.length; i++) x[i] += 3; // an offset mean, so the centring matters
  return {
    x, w: randArray(dim, seed + 1, 1.5), bias: withBias ? randArray(dim, seed + 4) : null, dy: randArray(rows * dim, seed + 2),
    dwInit: randArray(dim, seed + 3, 0.5), dbInit: withBias ? randArray(dim, seed + 5, 0.5) : null, rows, dim, eps: 1e-5,
  };
}
function smIn(rows: number, dim: number, seed: number, log: boolean): SmIn {
  return { x: randArray(rows * dim, seed, 6), dy: randArray(rows * dim, seed + 2), rows, dim, log };
}

function compareAll(got: Record<string, FloatArray>, want: Record<string, FloatArray>, atol: number, rtol: number, what: string): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${what}: output sets`);
  for (const k of Object.keys(want)) assertClose(got[k], want[k], atol, rtol, `${what} ${k}`);
}

function assertBitEqual(a: Record<string, FloatArray>, b: Record<string, FloatArray>, what: string): void {
  for (const k of Object.keys(a)) {
    const x = a[k], y = b[k];
    assert.equal(x.length, y.length);
    for (let i = 0; i < x.length; i++) {
      if (!Object.is(x[i], y[i])) assert.fail(`${what} ${k}[${i}]: ${x[i]} vs ${y[i]} (1 vs 2 threads)`);
    }
  }
}

// ------------------------------------------------------------------------------------------ JS reference sanity
test('js reference: hand-computed values', () => {
  // rmsnorm of [3, 4]: mean square 12.5
  const y = new Float64Array(2), rstd = new Float64Array(1);
  jsBackend64.rmsnormForward({ x: Float64Array.of(3, 4), weight: Float64Array.of(1, 2), y, rstd, rows: 1, dim: 2, eps: 0 });
  assertClose(rstd, [1 / Math.sqrt(12.5)], 1e-15);
  assertClose(y, [3 / Math.sqrt(12.5), 8 / Math.sqrt(12.5)], 1e-15);
  // layernorm of [1, 3]: mean 2, var 1
  const ly = new Float64Array(2), mean = new Float64Array(1), lr = new Float64Array(1);
  jsBackend64.layernormForward({ x: Float64Array.of(1, 3), weight: Float64Array.of(2, 3), bias: Float64Array.of(0.5, -0.5), y: ly, mean, rstd: lr, rows: 1, dim: 2, eps: 0 });
  assertClose(mean, [2], 1e-15);
  assertClose(lr, [1], 1e-15);
  assertClose(ly, [-1.5, 2.5], 1e-15);
  // softmax of [0, ln 3]: [1/4, 3/4]; log-softmax = log of that; huge inputs do not overflow
  const sy = new Float64Array(2);
  jsBackend64.softmaxForward({ x: Float64Array.of(0, Math.log(3)), y: sy, rows: 1, dim: 2, log: false });
  assertClose(sy, [0.25, 0.75], 1e-15);
  jsBackend64.softmaxForward({ x: Float64Array.of(0, Math.log(3)), y: sy, rows: 1, dim: 2, log: true });
  assertClose(sy, [Math.log(0.25), Math.log(0.75)], 1e-15);
  jsBackend64.softmaxForward({ x: Float64Array.of(1000, 1000), y: sy, rows: 1, dim: 2, log: false });
  assertClose(sy, [0.5, 0.5], 1e-15);
});

// ------------------------------------------------------------------------------------------ finite differences
// loss = sum(y * R) through the float64 JS forward; its central differences must match the backward.
function fdCheck(name: string, inputs: Record<string, Float64Array>, forward: () => Float64Array, analytic: Record<string, Float64Array>, R: Float64Array): void {
  const h = 1e-6;
  const loss = (): number => {
    const y = forward();
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * R[i];
    return s;
  };
  for (const [k, arr] of Object.entries(inputs)) {
    const num = new Float64Array(arr.length);
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i];
      arr[i] = v + h;
      const lp = loss();
      arr[i] = v - h;
      const lm = loss();
      arr[i] = v;
      num[i] = (lp - lm) / (2 * h);
    }
    assertClose(analytic[k], num, 1e-6, 1e-6, `${name} d${k}`);
  }
}

test('js float64 backward matches finite differences', () => {
  const rows = 3, dim = 7;
  const R = randArray(rows * dim, 99, 1, Float64Array) as Float64Array;
  const dy = R; // dloss/dy = R
  {
    const x = randArray(rows * dim, 1, 2, Float64Array) as Float64Array, w = randArray(dim, 2, 1.5, Float64Array) as Float64Array;
    const fwd = (): Float64Array => {
      const y = new Float64Array(rows * dim);
      jsBackend64.rmsnormForward({ x, weight: w, y, rstd: new Float64Array(rows), rows, dim, eps: 1e-3 });
      return y;
    };
    const rstd = new Float64Array(rows);
    jsBackend64.rmsnormForward({ x, weight: w, y: new Float64Array(rows * dim), rstd, rows, dim, eps: 1e-3 });
    const dx = new Float64Array(rows * dim), dweight = new Float64Array(dim);
    jsBackend64.rmsnormBackward({ x, weight: w, rstd, dy, dx, dweight, rows, dim });
    fdCheck('rmsnorm', { x, w }, fwd, { x: dx, w: dweight }, R);
  }
  {
    const x = randArray(rows * dim, 3, 2, Float64Array) as Float64Array, w = randArray(dim, 4, 1.5, Float64Array) as Float64Array;
    const bias = randArray(dim, 5, 1, Float64Array) as Float64Array;
    const fwd = (): Float64Array => {
      const y = new Float64Array(rows * dim);
      jsBackend64.layernormForward({ x, weight: w, bias, y, mean: new Float64Array(rows), rstd: new Float64Array(rows), rows, dim, eps: 1e-3 });
      return y;
    };
    const mean = new Float64Array(rows), rstd = new Float64Array(rows);
    jsBackend64.layernormForward({ x, weight: w, bias, y: new Float64Array(rows * dim), mean, rstd, rows, dim, eps: 1e-3 });
    const dx = new Float64Array(rows * dim), dweight = new Float64Array(dim), dbias = new Float64Array(dim);
    jsBackend64.layernormBackward({ x, weight: w, mean, rstd, dy, dx, dweight, dbias, rows, dim });
    fdCheck('layernorm', { x, w, bias }, fwd, { x: dx, w: dweight, bias: dbias }, R);
  }
  for (const log of [false, true]) {
    const x = randArray(rows * dim, 6, 3, Float64Array) as Float64Array;
    const fwd = (): Float64Array => {
      const y = new Float64Array(rows * dim);
      jsBackend64.softmaxForward({ x, y, rows, dim, log });
      return y;
    };
    const y = fwd();
    const dx = new Float64Array(rows * dim);
    jsBackend64.softmaxBackward({ y, dy, dx, rows, dim, log });
    fdCheck(log ? 'log-softmax' : 'softmax', { x }, fwd, { x: dx }, R);
  }
});

// ------------------------------------------------------------------------------------------ native vs JS
const skipNative = nativeBackend === null ? 'native addon not built: native tests skipped' : false;

test('native matches the JS reference on odd shapes, every ISA', { skip: skipNative }, (t) => {
  const nb = nativeBackend!;
  if (!runnableIsas().includes('avx512')) t.diagnostic('AVX-512 not detected on this CPU: the avx512 ISA setting is not exercised');
  for (const isa of runnableIsas()) {
    withIsa(isa, () => {
      let seed = 10;
      for (const rows of ROWS) {
        for (const dim of DIMS) {
          const what = `[${isa}] rows=${rows} dim=${dim}`;
          const ri = rmsIn(rows, dim, seed++);
          compareAll(runRms(nb, Float32Array, ri), runRms(jsBackend, Float32Array, ri), 2e-5, 2e-5, `rmsnorm ${what}`);
          for (const withBias of [false, true]) {
            const li = lnIn(rows, dim, seed++, withBias);
            compareAll(runLn(nb, Float32Array, li), runLn(jsBackend, Float32Array, li), 5e-5, 5e-5, `layernorm bias=${withBias} ${what}`);
          }
          for (const log of [false, true]) {
            const si = smIn(rows, dim, seed++, log);
            compareAll(runSm(nb, Float32Array, si), runSm(jsBackend, Float32Array, si), 2e-6, 2e-5, `softmax log=${log} ${what}`);
          }
        }
      }
    });
  }
});

test('avx512 ISA setting', { skip: skipNative }, (t) => {
  if (nativeAddon!.info().detectedIsa !== 'avx512') {
    t.skip('AVX-512 not detected on this CPU: avx512 dispatch not tested here');
    return;
  }
  // Covered by the every-ISA test above; this only makes the skip visible on other machines.
});

test('native softmax: large and -inf inputs stay finite / exact zeros', { skip: skipNative }, () => {
  for (const isa of runnableIsas()) {
    withIsa(isa, () => {
      const dim = 11;
      const x = new Float32Array(dim);
      for (let j = 0; j < dim; j++) x[j] = 1e4 + j;
      x[3] = -Infinity;
      const y = new Float32Array(dim), ly = new Float32Array(dim);
      nativeBackend!.softmaxForward({ x, y, rows: 1, dim, log: false });
      nativeBackend!.softmaxForward({ x, y: ly, rows: 1, dim, log: true });
      const ry = new Float32Array(dim), rly = new Float32Array(dim);
      jsBackend.softmaxForward({ x, y: ry, rows: 1, dim, log: false });
      jsBackend.softmaxForward({ x, y: rly, rows: 1, dim, log: true });
      assert.equal(y[3], 0, `[${isa}] exp(-inf) is exactly 0`);
      assertClose(y, ry, 1e-6, 1e-5, `[${isa}] softmax large`);
      assert.equal(ly[3], -Infinity);
      assertClose(ly.subarray(4), rly.subarray(4), 1e-5, 1e-6, `[${isa}] log-softmax large`);
    });
  }
});

test('native results are bit-identical for 1 and 2 threads', { skip: skipNative }, () => {
  const nb = nativeBackend!;
  for (const isa of runnableIsas()) {
    withIsa(isa, () => {
      // 203 rows > the 64 fixed reduction blocks, and enough work to be split across threads.
      for (const [rows, dim] of [[203, 257], [1000, 33], [5, 4099]] as const) {
        const ri = rmsIn(rows, dim, 1), li = lnIn(rows, dim, 2, true), si = smIn(rows, dim, 3, false), sl = smIn(rows, dim, 4, true);
        const one = withThreads(1, () => ({ r: runRms(nb, Float32Array, ri), l: runLn(nb, Float32Array, li), s: runSm(nb, Float32Array, si), sl: runSm(nb, Float32Array, sl) }));
        const two = withThreads(2, () => ({ r: runRms(nb, Float32Array, ri), l: runLn(nb, Float32Array, li), s: runSm(nb, Float32Array, si), sl: runSm(nb, Float32Array, sl) }));
        const what = `[${isa}] rows=${rows} dim=${dim}`;
        assertBitEqual(one.r, two.r, `rmsnorm ${what}`);
        assertBitEqual(one.l, two.l, `layernorm ${what}`);
        assertBitEqual(one.s, two.s, `softmax ${what}`);
        assertBitEqual(one.sl, two.sl, `log-softmax ${what}`);
      }
    });
  }
});

// ------------------------------------------------------------------------------------------ bad input
function badInputCases(b: Backend, ctor: Ctor): Array<[string, () => void]> {
  const rows = 3, dim = 5, n = rows * dim;
  const a = (k: number): FloatArray => new ctor(k);
  return [
    ['rmsnormForward', () => b.rmsnormForward({ x: a(n - 1), weight: a(dim), y: a(n), rstd: a(rows), rows, dim, eps: 1e-5 })],
    ['rmsnormForward', () => b.rmsnormForward({ x: a(n), weight: a(dim), y: a(n), rstd: a(rows - 1), rows, dim, eps: 1e-5 })],
    ['rmsnormBackward', () => b.rmsnormBackward({ x: a(n), weight: a(dim), rstd: a(rows), dy: a(n), dx: a(n), dweight: a(dim - 1), rows, dim })],
    ['layernormForward', () => b.layernormForward({ x: a(n), weight: a(dim), bias: a(dim - 1), y: a(n), mean: a(rows), rstd: a(rows), rows, dim, eps: 1e-5 })],
    ['layernormBackward', () => b.layernormBackward({ x: a(n), weight: a(dim), mean: a(rows), rstd: a(rows), dy: a(n), dx: a(n - 2), dweight: a(dim), dbias: null, rows, dim })],
    ['layernormBackward', () => b.layernormBackward({ x: a(n), weight: a(dim), mean: a(rows), rstd: a(rows), dy: a(n), dx: a(n), dweight: a(dim), dbias: a(1), rows, dim })],
    ['softmaxForward', () => b.softmaxForward({ x: a(n), y: a(n - 1), rows, dim, log: false })],
    ['softmaxBackward', () => b.softmaxBackward({ y: a(n), dy: a(1), dx: a(n), rows, dim, log: true })],
    ['softmaxForward', () => b.softmaxForward({ x: a(n), y: a(n), rows, dim: 0, log: false })],
  ];
}

test('bad input throws an error naming the kernel (js)', () => {
  for (const [kernel, fn] of badInputCases(jsBackend, Float32Array)) assert.throws(fn, (e: Error) => e instanceof RangeError && e.message.includes(`js ${kernel}`), kernel);
});

test('bad input throws an error naming the kernel (native)', { skip: skipNative }, () => {
  for (const [kernel, fn] of badInputCases(nativeBackend!, Float32Array)) assert.throws(fn, (e: Error) => e.message.includes(`native ${kernel}`), kernel);
  // float64 data is not accepted by native kernels
  for (const [kernel, fn] of badInputCases(nativeBackend!, Float64Array)) assert.throws(fn, (e: Error) => e.message.includes(kernel), `${kernel} f64`);
  const x = new Float64Array(6);
  assert.throws(() => nativeBackend!.softmaxForward({ x, y: new Float32Array(6), rows: 2, dim: 3, log: false }), /native softmaxForward: field 'x' must be a Float32Array/);
  assert.throws(() => nativeBackend!.rmsnormForward({ x: new Float32Array(6), weight: new Float64Array(3), y: new Float32Array(6), rstd: new Float32Array(2), rows: 2, dim: 3, eps: 1e-5 }), /native rmsnormForward: field 'weight' must be a Float32Array/);
});
