// Elementwise kernels: RoPE (both layouts, partial rotary, inverse = backward, aliasing, position bounds),
// unary ops forward/backward, sumSquares and scaleInPlace.
//  - JS reference against independent formulations (complex rotation, HF rotate_half, literal GELU
//    definitions, high-precision erf values) and float64 central finite differences.
//  - native against the JS reference on odd shapes for every ISA this CPU runs (rope, sumSquares and
//    scaleInPlace bit for bit; unary within a few float ulps), bit-identical across ISAs and 1-vs-2 threads.
//  - bad arguments throw errors that name the kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend, jsBackend64, nativeBackend } from '../../src/backend/index.ts';
import type { FloatArray, RopeParams, UnaryOp } from '../../src/backend/types.ts';
import { erf, erfc } from '../../src/backend/js/elementwise.ts';
import { nativeAddon } from '../../src/native/addon.ts';
import { randArray, rng } from '../util.ts';
import { ALL_ISAS, assertBitEqual, forEachIsa, isaSupported, withIsa, withThreads } from '../native_env.ts';

const NO_NATIVE = 'native addon not built (nativeBackend === null)';

function f32ulp(v: number): number {
  const a = Math.abs(Math.fround(v));
  if (!Number.isFinite(a)) return 0;
  const f = new Float32Array([a]);
  const u = new Uint32Array(f.buffer);
  u[0] += 1;
  return f[0] - a;
}

// ===================================================================================================
// RoPE
// ===================================================================================================
interface RopeCase {
  B: number;
  H: number;
  T: number;
  D: number;
  R: number;
  maxPos: number;
  interleaved: boolean;
}

function ropeTables(maxPos: number, R: number, ctor: Float32ArrayConstructor | Float64ArrayConstructor): { cos: FloatArray; sin: FloatArray } {
  const half = R / 2;
  const cos = new ctor(maxPos * half), sin = new ctor(maxPos * half);
  for (let p = 0; p < maxPos; p++) {
    for (let q = 0; q < half; q++) {
      const ang = p * Math.pow(10000, -(2 * q) / R);
      cos[p * half + q] = Math.cos(ang);
      sin[p * half + q] = Math.sin(ang);
    }
  }
  return { cos, sin };
}

function ropeParams(c: RopeCase, seed: number, ctor: Float32ArrayConstructor | Float64ArrayConstructor, inverse = false): RopeParams {
  const { cos, sin } = ropeTables(c.maxPos, c.R, ctor);
  const r = rng(seed);
  const positions = new Int32Array(c.B * c.T);
  for (let i = 0; i < positions.length; i++) positions[i] = Math.floor(r() * c.maxPos);
  const n = c.B * c.H * c.T * c.D;
  return {
    x: randArray(n, seed + 1, 1, ctor), out: new ctor(n).fill(NaN), cos, sin, positions, maxPos: c.maxPos,
    batch: c.B, heads: c.H, seq: c.T, headDim: c.D, rotaryDim: c.R, interleaved: c.interleaved, inverse,
  };
}

const ROPE_CASES: RopeCase[] = [
  { B: 1, H: 1, T: 1, D: 2, R: 2, maxPos: 1, interleaved: false },
  { B: 2, H: 3, T: 5, D: 8, R: 8, maxPos: 11, interleaved: false },
  { B: 2, H: 3, T: 5, D: 8, R: 8, maxPos: 11, interleaved: true },
  { B: 1, H: 2, T: 7, D: 10, R: 6, maxPos: 9, interleaved: false }, // partial rotary
  { B: 1, H: 2, T: 7, D: 10, R: 6, maxPos: 9, interleaved: true },
  { B: 3, H: 1, T: 3, D: 6, R: 0, maxPos: 4, interleaved: false }, // nothing rotates
  { B: 2, H: 4, T: 33, D: 64, R: 64, maxPos: 40, interleaved: false },
  { B: 1, H: 3, T: 17, D: 96, R: 34, maxPos: 20, interleaved: true },
];

/** Independent references: HF rotate_half (x*cos + rotate_half(x)*sin with the tables duplicated) for the
 * half-split layout, and (x[2p] + i x[2p+1]) * e^{i theta} for the interleaved layout. Float64. */
function ropeReference(p: RopeParams): Float64Array {
  const { batch: B, heads: H, seq: T, headDim: D, rotaryDim: R } = p;
  const half = R / 2;
  const out = new Float64Array(B * H * T * D);
  const sgn = p.inverse ? -1 : 1;
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) {
    const base = ((b * H + h) * T + t) * D;
    const pos = p.positions[b * T + t];
    const xr = Array.from(p.x.subarray(base, base + D));
    if (!p.interleaved) {
      const cosFull = [...Array(R)].map((_, j) => p.cos[pos * half + (j % half)]);
      const sinFull = [...Array(R)].map((_, j) => sgn * p.sin[pos * half + (j % half)]);
      const rot = [...Array(R)].map((_, j) => (j < half ? -xr[j + half] : xr[j - half]));
      for (let j = 0; j < R; j++) out[base + j] = xr[j] * cosFull[j] + rot[j] * sinFull[j];
    } else {
      for (let q = 0; q < half; q++) {
        const re = xr[2 * q], im = xr[2 * q + 1];
        const c = p.cos[pos * half + q], s = sgn * p.sin[pos * half + q];
        out[base + 2 * q] = re * c - im * s; // Re((re + i im)(c + i s))
        out[base + 2 * q + 1] = re * s + im * c; // Im(...)
      }
    }
    for (let j = R; j < D; j++) out[base + j] = xr[j];
  }
  return out;
}

test('rope js (float64) matches rotate_half / complex-rotation references, forward and inverse', () => {
  for (const [ci, c] of ROPE_CASES.entries()) {
    for (const inverse of [false, true]) {
      const p = ropeParams(c, 10 + ci, Float64Array, inverse);
      jsBackend64.rope(p);
      const want = ropeReference(p);
      for (let i = 0; i < want.length; i++) {
        assert.ok(Math.abs(p.out[i] - want[i]) <= 1e-14, `case ${ci} inverse=${inverse} element ${i}: ${p.out[i]} vs ${want[i]}`);
      }
    }
  }
});

test('rope: inverse(rope(x)) == x (float64 exactly to 1e-14, float32 to a few ulps)', () => {
  for (const [ci, c] of ROPE_CASES.entries()) {
    const p = ropeParams(c, 30 + ci, Float64Array);
    jsBackend64.rope(p);
    const back = new Float64Array(p.x.length);
    jsBackend64.rope({ ...p, x: p.out, out: back, inverse: true });
    for (let i = 0; i < back.length; i++) assert.ok(Math.abs(back[i] - p.x[i]) <= 1e-14, `case ${ci} element ${i}`);
    // float32 round trip: within a couple of float ulps
    const p32 = ropeParams(c, 30 + ci, Float32Array);
    jsBackend.rope(p32);
    const back32 = new Float32Array(p32.x.length);
    jsBackend.rope({ ...p32, x: p32.out, out: back32, inverse: true });
    for (let i = 0; i < back32.length; i++) assert.ok(Math.abs(back32[i] - p32.x[i]) <= 4e-7, `f32 case ${ci} element ${i}`);
  }
});

test('rope backward (inverse) matches float64 central finite differences', () => {
  const c: RopeCase = { B: 2, H: 2, T: 3, D: 6, R: 4, maxPos: 8, interleaved: false };
  for (const interleaved of [false, true]) {
    const p = ropeParams({ ...c, interleaved }, 77, Float64Array);
    const dy = randArray(p.x.length, 78, 1, Float64Array);
    // analytic: dx = rope(dy, inverse)
    const dx = new Float64Array(p.x.length);
    jsBackend64.rope({ ...p, x: dy, out: dx, inverse: true });
    const loss = (x: FloatArray): number => {
      const out = new Float64Array(x.length);
      jsBackend64.rope({ ...p, x, out });
      let s = 0;
      for (let i = 0; i < out.length; i++) s += out[i] * dy[i];
      return s;
    };
    const h = 1e-6;
    for (let i = 0; i < p.x.length; i++) {
      const xp = Float64Array.from(p.x), xm = Float64Array.from(p.x);
      xp[i] += h;
      xm[i] -= h;
      const num = (loss(xp) - loss(xm)) / (2 * h);
      assert.ok(Math.abs(num - dx[i]) <= 1e-8 + 1e-7 * Math.abs(dx[i]), `interleaved=${interleaved} element ${i}: fd ${num} vs ${dx[i]}`);
    }
  }
});

test('rope native == js bit for bit (both layouts, partial, inverse, in place), every ISA', async (t) => {
  if (!nativeBackend) return t.skip(NO_NATIVE);
  await forEachIsa(t, () => {
    for (const [ci, c] of ROPE_CASES.entries()) {
      for (const inverse of [false, true]) {
        const p = ropeParams(c, 50 + ci, Float32Array, inverse);
        const want = new Float32Array(p.x.length);
        jsBackend.rope({ ...p, out: want });
        const got = new Float32Array(p.x.length);
        nativeBackend!.rope({ ...p, out: got });
        assertBitEqual(got, want, `case ${ci} inverse=${inverse}`);
        // out aliasing x
        const inPlace = Float32Array.from(p.x);
        nativeBackend!.rope({ ...p, x: inPlace, out: inPlace });
        assertBitEqual(inPlace, want, `case ${ci} inverse=${inverse} in place`);
      }
    }
  });
});

test('rope native: 1 vs 2 threads bit-identical', (t) => {
  if (!nativeBackend) return t.skip(NO_NATIVE);
  const c: RopeCase = { B: 2, H: 8, T: 129, D: 64, R: 48, maxPos: 200, interleaved: false };
  for (const interleaved of [false, true]) {
    const p = ropeParams({ ...c, interleaved }, 91, Float32Array);
    const a = new Float32Array(p.x.length), b = new Float32Array(p.x.length);
    withThreads(1, () => nativeBackend!.rope({ ...p, out: a }));
    withThreads(2, () => nativeBackend!.rope({ ...p, out: b }));
    assertBitEqual(a, b, `interleaved=${interleaved}`);
  }
});

test('rope: bad arguments throw errors naming the kernel (both backends)', () => {
  const c: RopeCase = { B: 2, H: 1, T: 3, D: 4, R: 4, maxPos: 5, interleaved: false };
  const backends = nativeBackend ? [nativeBackend, jsBackend] : [jsBackend];
  for (const be of backends) {
    const p = ropeParams(c, 5, Float32Array);
    const bad = Int32Array.from(p.positions);
    bad[4] = 5; // == maxPos
    assert.throws(() => be.rope({ ...p, positions: bad }), /rope.*positions\[4\] = 5 is outside \[0, maxPos=5\)/, be.name);
    bad[4] = -1;
    assert.throws(() => be.rope({ ...p, positions: bad }), /rope.*positions\[4\] = -1/, be.name);
    assert.throws(() => be.rope({ ...p, x: new Float32Array(5) }), /rope.*'x'/, be.name);
    assert.throws(() => be.rope({ ...p, out: new Float32Array(23) }), /rope.*'out'/, be.name);
    assert.throws(() => be.rope({ ...p, cos: new Float32Array(9) }), /rope.*'cos'/, be.name);
    assert.throws(() => be.rope({ ...p, positions: new Int32Array(5) }), /rope.*'positions'/, be.name);
    assert.throws(() => be.rope({ ...p, rotaryDim: 3 }), /rope.*rotaryDim must be even/, be.name);
    assert.throws(() => be.rope({ ...p, rotaryDim: 6 }), /rope.*rotaryDim/, be.name);
    assert.throws(() => be.rope({ ...p, positions: new Float32Array(6) as unknown as Int32Array }), /rope.*positions/, be.name);
  }
  if (nativeBackend) {
    const p = ropeParams(c, 5, Float64Array);
    assert.throws(() => nativeBackend!.rope(p), /alignkit native rope: field 'x' must be a Float32Array/);
  }
});

// ===================================================================================================
// Unary ops
// ===================================================================================================
const OPS: UnaryOp[] = ['exp', 'log', 'tanh', 'sigmoid', 'silu', 'gelu_tanh', 'gelu_erf', 'relu', 'sqrt', 'rsqrt', 'neg', 'abs'];
const POSITIVE_DOMAIN = new Set<UnaryOp>(['log', 'sqrt', 'rsqrt']);

const SPECIALS = [0, -0, 1e-30, -1e-30, 1e-40, -1e-40, 1, -1, 0.5, -0.5, 0.6249, 0.6251, -0.6251, 3, -3, 9, -9, 20, -20,
  50, -50, 88.5, 88.8, 89, -87.5, -100, -103.9, -104.1, -120, 1e30, -1e30, 3.4e38, Infinity, -Infinity, NaN];

/** Inputs for an op: random values at several scales plus the special values (sizes are not multiples of 8). */
function unaryInputs(op: UnaryOp, n: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n + SPECIALS.length);
  for (let i = 0; i < n; i++) {
    const scale = [0.1, 1, 4, 12, 40][i % 5];
    x[i] = (r() * 2 - 1) * scale;
  }
  x.set(SPECIALS, n);
  if (POSITIVE_DOMAIN.has(op)) {
    for (let i = 0; i < n; i++) x[i] = Math.abs(x[i]);
  }
  return x;
}

/** Close within `ulps` float32 ulps of the reference plus atol; NaN matches NaN, infinities must match. */
function assertUlpClose(got: ArrayLike<number>, want: ArrayLike<number>, ulps: number, atol: (i: number) => number, what: string, x: ArrayLike<number>): void {
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w) || Number.isNaN(g)) {
      assert.ok(Number.isNaN(w) && Number.isNaN(g), `${what}: x=${x[i]}: ${g} vs ${w} (NaN mismatch)`);
      continue;
    }
    if (!Number.isFinite(w) || !Number.isFinite(g)) {
      assert.equal(g, w, `${what}: x=${x[i]}: ${g} vs ${w}`);
      continue;
    }
    const tol = ulps * f32ulp(w) + atol(i);
    assert.ok(Math.abs(g - w) <= tol, `${what}: x=${x[i]} (element ${i}): ${g} vs ${w}, |diff| ${Math.abs(g - w)} > ${tol}`);
  }
}

test('erf / erfc (js) match high-precision values', () => {
  // mpmath, 30 digits
  const cases: [number, number, number][] = [
    [1e-10, 1.1283791670955126e-10, 0.99999999988716208],
    [0.1, 0.1124629160182849, 0.8875370839817151],
    [0.5, 0.52049987781304654, 0.47950012218695346],
    [1, 0.84270079294971487, 0.15729920705028513],
    [2, 0.99532226501895273, 0.0046777349810472658],
    [2.4999, 0.99959283009966655, 0.00040716990033345138],
    [2.5, 0.99959304798255504, 0.00040695201744495894],
    [3, 0.99997790950300141, 2.2090496998585441e-5],
    [5, 0.99999999999846254, 1.5374597944280349e-12],
    [10, 1, 2.0884875837625448e-45],
    [26, 1, 5.6631924088561428e-296],
  ];
  for (const [x, e, ec] of cases) {
    assert.ok(Math.abs(erf(x) - e) <= 1e-15 * Math.abs(e), `erf(${x}) = ${erf(x)} vs ${e}`);
    assert.ok(Math.abs(erf(-x) + e) <= 1e-15 * Math.abs(e), `erf(${-x})`);
    assert.ok(Math.abs(erfc(x) - ec) <= 1e-12 * ec, `erfc(${x}) = ${erfc(x)} vs ${ec}`);
    assert.ok(Math.abs(erfc(-x) - (2 - ec)) <= 1e-15 * 2, `erfc(${-x})`);
  }
  assert.ok(Number.isNaN(erf(NaN)) && Number.isNaN(erfc(NaN)));
  assert.equal(erf(Infinity), 1);
  assert.equal(erf(-Infinity), -1);
  assert.equal(erfc(Infinity), 0);
});

test('unary js (float64) matches the literal PyTorch definitions', () => {
  const x = randArray(2001, 3, 6, Float64Array);
  const y = new Float64Array(x.length);
  const defs: Partial<Record<UnaryOp, (v: number) => number>> = {
    sigmoid: (v) => 1 / (1 + Math.exp(-v)),
    silu: (v) => v / (1 + Math.exp(-v)),
    gelu_tanh: (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))),
    gelu_erf: (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)),
    relu: (v) => Math.max(v, 0),
    neg: (v) => -v,
    abs: (v) => Math.abs(v),
    exp: Math.exp,
    tanh: Math.tanh,
  };
  for (const [op, f] of Object.entries(defs) as [UnaryOp, (v: number) => number][]) {
    jsBackend64.unary({ op, x, y, n: x.length });
    for (let i = 0; i < x.length; i++) {
      const w = f(x[i]);
      assert.ok(Math.abs(y[i] - w) <= 1e-13 * Math.max(1, Math.abs(w)), `${op}(${x[i]}) = ${y[i]} vs ${w}`);
    }
  }
  // stable forms far out in the tails, where the literal formulas lose everything
  const tail = new Float64Array([-40, -80, -700, 40, 700]);
  const out = new Float64Array(tail.length);
  jsBackend64.unary({ op: 'sigmoid', x: tail, y: out, n: tail.length });
  assert.ok(Math.abs(out[2] - Math.exp(-700)) <= 1e-15 * Math.exp(-700), `sigmoid(-700) = ${out[2]}`);
  assert.equal(out[4], 1);
  jsBackend64.unary({ op: 'gelu_erf', x: tail, y: out, n: tail.length });
  // gelu_erf(-40) = -40 * Phi(-40) = -40 * 0.5 * erfc(40/sqrt2) ~ -1.46e-348: underflows to -0... use -10:
  const t10 = new Float64Array([-10]), o10 = new Float64Array(1);
  jsBackend64.unary({ op: 'gelu_erf', x: t10, y: o10, n: 1 });
  const phi10 = 7.6198530241604696e-24; // Phi(-10), mpmath
  assert.ok(Math.abs(o10[0] - -10 * phi10) <= 1e-13 * 10 * phi10, `gelu_erf(-10) = ${o10[0]}`);
  jsBackend64.unary({ op: 'gelu_tanh', x: t10, y: o10, n: 1 });
  const u = Math.sqrt(2 / Math.PI) * (-10 + 0.044715 * -1000);
  assert.ok(Math.abs(o10[0] - -10 / (1 + Math.exp(-2 * u))) <= 1e-13 * Math.abs(o10[0]), `gelu_tanh(-10) = ${o10[0]}`);
});

test('unary backward (js, float64) matches central finite differences', () => {
  for (const op of OPS) {
    const n = 257;
    const r = rng(400 + OPS.indexOf(op));
    const x = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let v = (r() * 2 - 1) * 5;
      if (POSITIVE_DOMAIN.has(op)) v = 0.05 + Math.abs(v);
      if ((op === 'relu' || op === 'abs') && Math.abs(v) < 1e-3) v = 0.5; // away from the kink
      x[i] = v;
    }
    const dy = randArray(n, 500, 1, Float64Array);
    const y = new Float64Array(n), dx = new Float64Array(n);
    jsBackend64.unary({ op, x, y, n });
    jsBackend64.unaryBackward({ op, x, y, dy, dx, n });
    const h = 1e-6;
    const xp = x.map((v) => v + h), xm = x.map((v) => v - h);
    const yp = new Float64Array(n), ym = new Float64Array(n);
    jsBackend64.unary({ op, x: xp, y: yp, n });
    jsBackend64.unary({ op, x: xm, y: ym, n });
    for (let i = 0; i < n; i++) {
      const num = (dy[i] * (yp[i] - ym[i])) / (2 * h);
      const scale = Math.abs(dy[i]) * Math.max(1, Math.abs(y[i]) / Math.max(Math.abs(x[i]), 1e-3));
      assert.ok(Math.abs(num - dx[i]) <= 1e-6 * scale + 1e-7 * Math.abs(dx[i]), `${op} x=${x[i]}: fd ${num} vs analytic ${dx[i]}`);
    }
  }
});

test('unary native vs js (float32): forward within 4 ulps, backward within 8 ulps (+ cancellation slack), every ISA', async (t) => {
  if (!nativeBackend) return t.skip(NO_NATIVE);
  await forEachIsa(t, (isa) => {
    for (const op of OPS) {
      for (const n0 of [0, 1, 7, 1000]) {
        const x = unaryInputs(op, n0, 7 + n0);
        const n = x.length;
        const want = new Float32Array(n), got = new Float32Array(n);
        jsBackend.unary({ op, x, y: want, n });
        nativeBackend!.unary({ op, x, y: got, n });
        // gelu_tanh = x sigmoid(2u): rounding the float32 argument u costs ~|2u| eps relative (left tail)
        const fwdAtol = (i: number): number => {
          if (op !== 'gelu_tanh') return 1e-37;
          const v = x[i];
          const u2 = 2 * Math.sqrt(2 / Math.PI) * Math.abs(v + 0.044715 * v * v * v);
          return 4 * 2 ** -23 * u2 * Math.abs(want[i]);
        };
        assertUlpClose(got, want, 4, fwdAtol, `${isa} ${op} forward`, x);
        const dy = randArray(n, 99, 2) as Float32Array;
        const dxWant = new Float32Array(n), dxGot = new Float32Array(n);
        jsBackend.unaryBackward({ op, x, y: want, dy, dx: dxWant, n });
        nativeBackend!.unaryBackward({ op, x, y: want, dy, dx: dxGot, n });
        // float32 formulas like 1 - y*y or s + 2x s (1-s) u' cancel: allow ~4 eps of |dy| (1 + |x|) absolute
        assertUlpClose(dxGot, dxWant, 8, (i) => 4 * 2 ** -23 * Math.abs(dy[i]) * (1 + (Number.isNaN(x[i]) ? 10 : Math.min(Math.abs(x[i]), 10))), `${isa} ${op} backward`, x);
      }
    }
  });
});

test('unary native: bit-identical across ISAs and for 1 vs 2 threads', (t) => {
  if (!nativeBackend) return t.skip(NO_NATIVE);
  const isas = ALL_ISAS.filter(isaSupported);
  for (const op of OPS) {
    const x = unaryInputs(op, 70001, 21); // > the parallel grain
    const n = x.length;
    const dy = randArray(n, 22, 1) as Float32Array;
    const run = (): [Float32Array, Float32Array] => {
      const y = new Float32Array(n), dx = new Float32Array(n);
      nativeBackend!.unary({ op, x, y, n });
      nativeBackend!.unaryBackward({ op, x, y, dy, dx, n });
      return [y, dx];
    };
    const [y1, d1] = withThreads(1, run);
    const [y2, d2] = withThreads(2, run);
    assertBitEqual(y1, y2, `${op} forward 1 vs 2 threads`);
    assertBitEqual(d1, d2, `${op} backward 1 vs 2 threads`);
    for (const isa of isas) {
      const [yi, di] = withIsa(isa, run);
      assertBitEqual(yi, y1, `${op} forward ${isa} vs default ISA`);
      assertBitEqual(di, d1, `${op} backward ${isa} vs default ISA`);
    }
  }
});

test('unary: edge values (native and js)', () => {
  const backends = nativeBackend ? [nativeBackend, jsBackend] : [jsBackend];
  const check = (be: typeof jsBackend, op: UnaryOp, xs: number[], want: number[]): void => {
    const x = Float32Array.from(xs), y = new Float32Array(xs.length);
    be.unary({ op, x, y, n: xs.length });
    for (let i = 0; i < xs.length; i++) {
      assert.ok(Object.is(y[i], Math.fround(want[i])) || Math.abs(y[i] - want[i]) <= 2 * f32ulp(want[i]), `${be.name} ${op}(${xs[i]}) = ${y[i]}, want ${want[i]}`);
    }
  };
  for (const be of backends) {
    check(be, 'exp', [0, -Infinity, Infinity, 89, -104.5, 1], [1, 0, Infinity, Infinity, 0, Math.E]);
    check(be, 'log', [1, 0, -0, -1, Infinity, 1e-40, Math.E], [0, -Infinity, -Infinity, NaN, Infinity, Math.log(Math.fround(1e-40)), 1]);
    check(be, 'tanh', [0, -0, Infinity, -Infinity, 30, -30], [0, -0, 1, -1, 1, -1]);
    check(be, 'sigmoid', [0, Infinity, -Infinity, 100, -100], [0.5, 1, 0, 1, Math.exp(-100)]);
    check(be, 'silu', [0, -Infinity, 100], [0, NaN, 100]);
    check(be, 'relu', [-1, 0, 2, -Infinity, NaN], [0, 0, 2, 0, NaN]);
    check(be, 'sqrt', [0, 4, -1, Infinity], [0, 2, NaN, Infinity]);
    check(be, 'rsqrt', [0, 4, Infinity], [Infinity, 0.5, 0]);
    check(be, 'gelu_erf', [0, 100, -100, 1], [0, 100, -0, 0.8413447460685429]);
    check(be, 'gelu_tanh', [0, 100, -100, 1], [0, 100, -0, 0.8411919906082768]);
    check(be, 'abs', [-0, -3], [0, 3]);
    check(be, 'neg', [0, 3], [-0, -3]);
  }
});

test('unary: bad arguments throw errors naming the kernel', () => {
  const backends = nativeBackend ? [nativeBackend, jsBackend] : [jsBackend];
  for (const be of backends) {
    const x = new Float32Array(4), y = new Float32Array(4);
    assert.throws(() => be.unary({ op: 'cosh' as UnaryOp, x, y, n: 4 }), /unary: unknown op 'cosh'/, be.name);
    assert.throws(() => be.unary({ op: 'exp', x, y: new Float32Array(3), n: 4 }), /unary.*'y'/, be.name);
    assert.throws(() => be.unary({ op: 'exp', x, y, n: -1 }), /unary.*'n'/, be.name);
    assert.throws(() => be.unary({ op: 'exp', x, y, n: 1.5 }), /unary.*'n'/, be.name);
    assert.throws(() => be.unaryBackward({ op: 'tanh', x, y, dy: new Float32Array(2), dx: y, n: 4 }), /unaryBackward.*'dy'/, be.name);
    assert.throws(() => be.unaryBackward({ op: 'tanh', x, y, dy: x, dx: [0, 0, 0, 0] as unknown as Float32Array, n: 4 }), /unaryBackward.*'dx'/, be.name);
  }
  if (nativeBackend) {
    assert.throws(() => nativeBackend!.unary({ op: 'exp', x: new Float64Array(4), y: new Float32Array(4), n: 4 }), /alignkit native unary: field 'x' must be a Float32Array/);
  }
});

// ===================================================================================================
// sumSquares / scaleInPlace
// ===================================================================================================
const SUM_SIZES = [0, 1, 7, 8, 9, 8191, 8192, 8193, 16385, 100003];

test('sumSquares: float64 accumulation; native == js exactly; 1 vs 2 threads identical', (t) => {
  for (const n of SUM_SIZES) {
    const x = randArray(n, 600 + n, 3) as Float32Array;
    const js = jsBackend.sumSquares(x, n);
    let naive = 0;
    for (let i = 0; i < n; i++) naive += x[i] * x[i];
    assert.ok(Math.abs(js - naive) <= 1e-12 * Math.max(1, naive), `n=${n}: ${js} vs naive ${naive}`);
    // float64 data through the js64 backend
    const x64 = Float64Array.from(x);
    assert.equal(jsBackend64.sumSquares(x64, n), js, `n=${n}: float64 storage of the same values`);
    if (!nativeBackend) continue;
    for (const isa of ALL_ISAS.filter(isaSupported)) {
      const n1 = withIsa(isa, () => withThreads(1, () => nativeBackend!.sumSquares(x, n)));
      const n2 = withIsa(isa, () => withThreads(2, () => nativeBackend!.sumSquares(x, n)));
      assert.ok(Object.is(n1, js), `n=${n} ${isa}: native ${n1} vs js ${js}`);
      assert.ok(Object.is(n2, n1), `n=${n} ${isa}: 2 threads ${n2} vs 1 thread ${n1}`);
    }
  }
  // a prefix: n smaller than the array
  const x = randArray(100, 1) as Float32Array;
  assert.equal(jsBackend.sumSquares(x, 10), jsBackend.sumSquares(x.subarray(0, 10), 10));
  if (nativeBackend) assert.equal(nativeBackend.sumSquares(x, 10), jsBackend.sumSquares(x, 10));
  if (!nativeBackend) t.diagnostic(NO_NATIVE);
});

test('scaleInPlace: native == js bit for bit, every ISA, 1 vs 2 threads', (t) => {
  for (const n of [0, 1, 7, 33, 100003]) {
    const x = randArray(n + 3, 700 + n, 10) as Float32Array;
    for (const s of [0.3, -1.7, 1e-3, 0, 3.0000001]) {
      const want = Float32Array.from(x);
      jsBackend.scaleInPlace(want, n, s);
      for (let i = 0; i < n; i++) assert.equal(want[i], Math.fround(x[i] * s));
      for (let i = n; i < n + 3; i++) assert.equal(want[i], x[i], 'elements past n untouched');
      if (!nativeBackend) continue;
      for (const isa of ALL_ISAS.filter(isaSupported)) {
        for (const th of [1, 2]) {
          const got = Float32Array.from(x);
          withIsa(isa, () => withThreads(th, () => nativeBackend!.scaleInPlace(got, n, s)));
          assertBitEqual(got, want, `n=${n} s=${s} ${isa} threads=${th}`);
        }
      }
    }
  }
  if (!nativeBackend) t.diagnostic(NO_NATIVE);
});

test('sumSquares / scaleInPlace: bad arguments throw errors naming the kernel', () => {
  const x = new Float32Array(4);
  assert.throws(() => jsBackend.sumSquares(x, 5), /alignkit js sumSquares/);
  assert.throws(() => jsBackend.scaleInPlace(x, -1, 2), /alignkit js scaleInPlace/);
  assert.throws(() => jsBackend.scaleInPlace(new Int32Array(4) as unknown as Float32Array, 4, 2), /alignkit js scaleInPlace.*'x'/);
  if (nativeBackend && nativeAddon) {
    assert.throws(() => nativeBackend!.sumSquares(x, 5), /alignkit native sumSquares/);
    assert.throws(() => nativeBackend!.scaleInPlace(x, 5, 2), /alignkit native scaleInPlace/);
    assert.throws(() => nativeBackend!.sumSquares(new Float64Array(4), 4), /sumSquares/);
    assert.throws(() => nativeAddon!.sumSquares(new Float64Array(4) as unknown as Float32Array, 4), /alignkit native sumSquares: argument 'x' must be a Float32Array/);
    assert.throws(() => nativeAddon!.sumSquares(x, 1.5), /alignkit native sumSquares: argument 'n'/);
    assert.throws(() => nativeAddon!.scaleInPlace(x, 4, 'a' as unknown as number), /alignkit native scaleInPlace: argument 's'/);
  }
});
