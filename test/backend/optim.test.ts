// Optimizer steps (torch.optim.AdamW / torch.optim.SGD semantics):
//  - hand-computed values for the first steps (float64 reference, and float32 within an ulp of them);
//  - the float64 reference against the textbook update equations over many steps;
//  - native == JS (float32) BIT FOR BIT over multi-step runs: weight decay 0 and > 0, both lerp branches
//    (beta1 = 0.9 and 0.3), nesterov, momentum with and without dampening; every ISA; 1 vs 2 threads;
//  - argument validation naming the kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend, jsBackend64, nativeBackend } from '../../src/backend/index.ts';
import type { AdamWParams, Backend, FloatArray, SgdParams } from '../../src/backend/types.ts';
import { randArray } from '../util.ts';
import { assertBitEqual, forEachIsa, withThreads } from '../native_env.ts';

const NO_NATIVE = 'native addon not built (nativeBackend === null)';

function f32ulp(v: number): number {
  const a = Math.abs(Math.fround(v));
  const f = new Float32Array([a]);
  new Uint32Array(f.buffer)[0] += 1;
  return f[0] - a;
}

// ===================================================================================================
// AdamW
// ===================================================================================================
interface AdamCfg {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

function adamState(n: number, ctor: Float32ArrayConstructor | Float64ArrayConstructor, p0: ArrayLike<number>): { param: FloatArray; expAvg: FloatArray; expAvgSq: FloatArray } {
  const param = new ctor(n);
  for (let i = 0; i < n; i++) param[i] = p0[i];
  return { param, expAvg: new ctor(n), expAvgSq: new ctor(n) };
}

test('adamw: hand-computed first steps (float64 to 1e-14, float32 within 3 ulps)', () => {
  const cfg: AdamCfg = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
  // p0 = 1, grads 0.5, -0.25, 2: the textbook equations evaluated by hand (python float64)
  const want = [
    { p: 0.899000002, m: 0.04999999999999999, v: 0.0002500000000000002 },
    { p: 0.8714672987058463, m: 0.019999999999999997, v: 0.0003122500000000003 },
    { p: 0.8035310672284472, m: 0.21799999999999994, v: 0.004311937750000004 },
  ];
  const grads = [0.5, -0.25, 2];
  const backends: [Backend, Float32ArrayConstructor | Float64ArrayConstructor][] = [[jsBackend64, Float64Array], [jsBackend, Float32Array]];
  if (nativeBackend) backends.push([nativeBackend, Float32Array]);
  for (const [be, ctor] of backends) {
    const s = adamState(1, ctor, [1]);
    for (let t = 0; t < 3; t++) {
      be.adamw({ ...cfg, ...s, grad: new ctor([grads[t]]), n: 1, step: t + 1 });
      for (const k of ['p', 'm', 'v'] as const) {
        const got = (k === 'p' ? s.param : k === 'm' ? s.expAvg : s.expAvgSq)[0];
        const tol = ctor === Float64Array ? 1e-14 * Math.abs(want[t][k]) : 3 * f32ulp(want[t][k]);
        assert.ok(Math.abs(got - want[t][k]) <= tol, `${be.info().isa} step ${t + 1} ${k}: ${got} vs ${want[t][k]}`);
      }
    }
  }
});

/** The textbook AdamW (decoupled decay, bias correction), float64. */
function adamTextbook(p: Float64Array, m: Float64Array, v: Float64Array, g: ArrayLike<number>, cfg: AdamCfg, step: number): void {
  const bc1 = 1 - cfg.beta1 ** step, bc2 = 1 - cfg.beta2 ** step;
  for (let i = 0; i < p.length; i++) {
    p[i] -= cfg.lr * cfg.weightDecay * p[i];
    m[i] = cfg.beta1 * m[i] + (1 - cfg.beta1) * g[i];
    v[i] = cfg.beta2 * v[i] + (1 - cfg.beta2) * g[i] * g[i];
    p[i] -= ((cfg.lr / bc1) * m[i]) / (Math.sqrt(v[i]) / Math.sqrt(bc2) + cfg.eps);
  }
}

const ADAM_CFGS: AdamCfg[] = [
  { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 },
  { lr: 3e-2, beta1: 0.9, beta2: 0.95, eps: 1e-6, weightDecay: 0.1 },
  { lr: 1e-2, beta1: 0.3, beta2: 0.99, eps: 1e-8, weightDecay: 0.01 }, // lerp weight 0.7 >= 0.5: the other branch
  { lr: 5e-3, beta1: 0, beta2: 0, eps: 1e-3, weightDecay: 0.5 },
];

test('adamw js float64 follows the textbook equations over 25 steps', () => {
  const n = 57;
  for (const [ci, cfg] of ADAM_CFGS.entries()) {
    const p0 = randArray(n, 10 + ci, 1, Float64Array);
    const s = adamState(n, Float64Array, p0);
    const p = Float64Array.from(p0), m = new Float64Array(n), v = new Float64Array(n);
    for (let step = 1; step <= 25; step++) {
      const g = randArray(n, 100 * ci + step, 2, Float64Array);
      jsBackend64.adamw({ ...cfg, ...s, grad: g, n, step });
      adamTextbook(p, m, v, g, cfg, step);
    }
    for (let i = 0; i < n; i++) {
      assert.ok(Math.abs(s.param[i] - p[i]) <= 1e-12 * Math.max(1, Math.abs(p[i])), `cfg ${ci} param[${i}]: ${s.param[i]} vs ${p[i]}`);
      assert.ok(Math.abs(s.expAvg[i] - m[i]) <= 1e-12 * Math.max(1, Math.abs(m[i])), `cfg ${ci} expAvg[${i}]`);
      assert.ok(Math.abs(s.expAvgSq[i] - v[i]) <= 1e-12 * Math.max(1, Math.abs(v[i])), `cfg ${ci} expAvgSq[${i}]`);
    }
  }
});

function runAdam(be: Backend, cfg: AdamCfg, n: number, steps: number, seed: number): { param: FloatArray; expAvg: FloatArray; expAvgSq: FloatArray } {
  const s = adamState(n, Float32Array, randArray(n, seed, 1));
  for (let step = 1; step <= steps; step++) {
    const g = randArray(n, seed * 1000 + step, step % 3 === 0 ? 1e-4 : 1) as Float32Array; // small grads too
    be.adamw({ ...cfg, ...s, grad: g, n, step });
  }
  return s;
}

test('adamw native == js (float32) bit for bit over 12 steps, every ISA', async (t) => {
  if (!nativeBackend) return t.skip(NO_NATIVE);
  const sizes = [1, 7, 33, 1000];
  const want = ADAM_CFGS.map((cfg, ci) => sizes.map((n) => runAdam(jsBackend, cfg, n, 12, 3 + ci)));
  await forEachIsa(t, (isa) => {
    for (const [ci, cfg] of ADAM_CFGS.entries()) {
      for (const [si, n] of sizes.entries()) {
        const got = runAdam(nativeBackend!, cfg, n, 12, 3 + ci);
        assertBitEqual(got.param, want[ci][si].param, `${isa} cfg ${ci} n=${n} param`);
        assertBitEqual(got.expAvg, want[ci][si].expAvg, `${isa} cfg ${ci} n=${n} expAvg`);
        assertBitEqual(got.expAvgSq, want[ci][si].expAvgSq, `${isa} cfg ${ci} n=${n} expAvgSq`);
      }
    }
  });
});

test('adamw native: 1 vs 2 threads bit-identical (and == js) on a parallel-sized tensor', (t) => {
  if (!nativeBackend) return t.skip(NO_NATIVE);
  const n = 70001;
  const cfg = ADAM_CFGS[1];
  const a = withThreads(1, () => runAdam(nativeBackend!, cfg, n, 3, 9));
  const b = withThreads(2, () => runAdam(nativeBackend!, cfg, n, 3, 9));
  const js = runAdam(jsBackend, cfg, n, 3, 9);
  assertBitEqual(a.param, b.param, 'param 1 vs 2 threads');
  assertBitEqual(a.expAvgSq, b.expAvgSq, 'expAvgSq 1 vs 2 threads');
  assertBitEqual(b.param, js.param, 'param native vs js');
});

// ===================================================================================================
// SGD
// ===================================================================================================
interface SgdCfg {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

test('sgd: hand-computed steps (momentum + dampening + decay, nesterov, plain + decay)', () => {
  const cases: { cfg: SgdCfg; want: { p: number; buf: number | null }[] }[] = [
    { cfg: { lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01, nesterov: false },
      want: [{ p: 0.949, buf: 0.51 }, { p: 0.8842458999999999, buf: 0.647541 }, { p: 0.9151713886899999, buf: -0.3092548869 }] },
    { cfg: { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: true },
      want: [{ p: 0.905, buf: 0.5 }, { p: 0.8265, buf: 0.65 }, { p: 0.96385, buf: -0.4149999999999999 }] },
    { cfg: { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0.01, nesterov: false },
      want: [{ p: 0.949, buf: null }, { p: 0.928051, buf: null }, { p: 1.027122949, buf: null }] },
  ];
  const grads = [0.5, 0.2, -1];
  const backends: [Backend, Float32ArrayConstructor | Float64ArrayConstructor][] = [[jsBackend64, Float64Array], [jsBackend, Float32Array]];
  if (nativeBackend) backends.push([nativeBackend, Float32Array]);
  for (const [ci, { cfg, want }] of cases.entries()) {
    for (const [be, ctor] of backends) {
      const param = new ctor([1]);
      const momentumBuffer = cfg.momentum !== 0 ? new ctor(1) : null;
      for (let t = 0; t < 3; t++) {
        be.sgd({ ...cfg, param, grad: new ctor([grads[t]]), momentumBuffer, n: 1, firstStep: t === 0 });
        const tol = (v: number): number => (ctor === Float64Array ? 1e-15 * Math.abs(v) : 4 * f32ulp(v));
        assert.ok(Math.abs(param[0] - want[t].p) <= tol(want[t].p), `case ${ci} ${be.info().isa} step ${t + 1}: p ${param[0]} vs ${want[t].p}`);
        if (want[t].buf !== null) assert.ok(Math.abs(momentumBuffer![0] - want[t].buf!) <= tol(want[t].buf!), `case ${ci} step ${t + 1} buf`);
      }
    }
  }
});

const SGD_CFGS: SgdCfg[] = [
  { lr: 0.05, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
  { lr: 0.05, momentum: 0, dampening: 0, weightDecay: 0.01, nesterov: false },
  { lr: 0.01, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false },
  { lr: 0.01, momentum: 0.9, dampening: 0.5, weightDecay: 1e-3, nesterov: false },
  { lr: 0.01, momentum: 0.9, dampening: 0, weightDecay: 1e-2, nesterov: true },
  { lr: 0.3, momentum: 0.5, dampening: 0, weightDecay: 0, nesterov: true },
];

function sgdTextbook(p: Float64Array, buf: Float64Array, g0: ArrayLike<number>, c: SgdCfg, first: boolean): void {
  for (let i = 0; i < p.length; i++) {
    let g = g0[i] + c.weightDecay * p[i];
    if (c.momentum !== 0) {
      buf[i] = first ? g : c.momentum * buf[i] + (1 - c.dampening) * g;
      g = c.nesterov ? g + c.momentum * buf[i] : buf[i];
    }
    p[i] -= c.lr * g;
  }
}

test('sgd js float64 follows the textbook equations over 25 steps', () => {
  const n = 41;
  for (const [ci, cfg] of SGD_CFGS.entries()) {
    const p0 = randArray(n, 20 + ci, 1, Float64Array);
    const param = Float64Array.from(p0), buf = new Float64Array(n);
    const p = Float64Array.from(p0), b = new Float64Array(n);
    for (let step = 1; step <= 25; step++) {
      const g = randArray(n, 200 * ci + step, 2, Float64Array);
      jsBackend64.sgd({ ...cfg, param, grad: g, momentumBuffer: cfg.momentum !== 0 ? buf : null, n, firstStep: step === 1 });
      sgdTextbook(p, b, g, cfg, step === 1);
    }
    for (let i = 0; i < n; i++) {
      assert.ok(Math.abs(param[i] - p[i]) <= 1e-12 * Math.max(1, Math.abs(p[i])), `cfg ${ci} param[${i}]: ${param[i]} vs ${p[i]}`);
      if (cfg.momentum !== 0) assert.ok(Math.abs(buf[i] - b[i]) <= 1e-12 * Math.max(1, Math.abs(b[i])), `cfg ${ci} buf[${i}]`);
    }
  }
});

function runSgd(be: Backend, cfg: SgdCfg, n: number, steps: number, seed: number): { param: Float32Array; buf: Float32Array } {
  const param = randArray(n, seed, 1) as Float32Array;
  const buf = new Float32Array(n).fill(NaN); // the first step must overwrite it
  for (let step = 1; step <= steps; step++) {
    const g = randArray(n, seed * 1000 + step, 1) as Float32Array;
    be.sgd({ ...cfg, param, grad: g, momentumBuffer: cfg.momentum !== 0 ? buf : null, n, firstStep: step === 1 });
  }
  return { param, buf };
}

test('sgd native == js (float32) bit for bit over 10 steps, every ISA', async (t) => {
  if (!nativeBackend) return t.skip(NO_NATIVE);
  const sizes = [1, 7, 33, 1000];
  const want = SGD_CFGS.map((cfg, ci) => sizes.map((n) => runSgd(jsBackend, cfg, n, 10, 5 + ci)));
  await forEachIsa(t, (isa) => {
    for (const [ci, cfg] of SGD_CFGS.entries()) {
      for (const [si, n] of sizes.entries()) {
        const got = runSgd(nativeBackend!, cfg, n, 10, 5 + ci);
        assertBitEqual(got.param, want[ci][si].param, `${isa} cfg ${ci} n=${n} param`);
        assertBitEqual(got.buf, want[ci][si].buf, `${isa} cfg ${ci} n=${n} momentum buffer`);
      }
    }
  });
});

test('sgd native: 1 vs 2 threads bit-identical (and == js) on a parallel-sized tensor', (t) => {
  if (!nativeBackend) return t.skip(NO_NATIVE);
  const n = 70001;
  for (const cfg of [SGD_CFGS[3], SGD_CFGS[4]]) {
    const a = withThreads(1, () => runSgd(nativeBackend!, cfg, n, 3, 8));
    const b = withThreads(2, () => runSgd(nativeBackend!, cfg, n, 3, 8));
    const js = runSgd(jsBackend, cfg, n, 3, 8);
    assertBitEqual(a.param, b.param, 'param 1 vs 2 threads');
    assertBitEqual(a.buf, b.buf, 'buffer 1 vs 2 threads');
    assertBitEqual(b.param, js.param, 'param native vs js');
  }
});

// ===================================================================================================
// validation
// ===================================================================================================
test('adamw / sgd: bad arguments throw errors naming the kernel', () => {
  const backends = nativeBackend ? [nativeBackend, jsBackend] : [jsBackend];
  const f = (): Float32Array => new Float32Array(4);
  const adam = (): AdamWParams => ({ param: f(), grad: f(), expAvg: f(), expAvgSq: f(), n: 4, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 });
  const sgd = (): SgdParams => ({ param: f(), grad: f(), momentumBuffer: f(), n: 4, lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false, firstStep: true });
  for (const be of backends) {
    assert.throws(() => be.adamw({ ...adam(), expAvgSq: new Float32Array(3) }), /adamw.*'expAvgSq'/, be.name);
    assert.throws(() => be.adamw({ ...adam(), step: 0 }), /adamw.*'step'/, be.name);
    assert.throws(() => be.adamw({ ...adam(), step: 1.5 }), /adamw.*'step'/, be.name);
    assert.throws(() => be.adamw({ ...adam(), beta1: 1 }), /adamw.*beta1/, be.name);
    assert.throws(() => be.adamw({ ...adam(), beta2: -0.1 }), /adamw.*beta2/, be.name);
    assert.throws(() => be.adamw({ ...adam(), lr: '1' as unknown as number }), /adamw.*'lr'/, be.name);
    assert.throws(() => be.sgd({ ...sgd(), momentumBuffer: null }), /sgd.*momentumBuffer/, be.name);
    assert.throws(() => be.sgd({ ...sgd(), momentumBuffer: new Float32Array(2) }), /sgd.*'momentumBuffer'/, be.name);
    assert.throws(() => be.sgd({ ...sgd(), nesterov: true, dampening: 0.1 }), /sgd.*nesterov/, be.name);
    assert.throws(() => be.sgd({ ...sgd(), nesterov: true, momentum: 0 }), /sgd.*nesterov/, be.name);
    assert.throws(() => be.sgd({ ...sgd(), grad: new Float32Array(1) }), /sgd.*'grad'/, be.name);
    // momentum 0 needs no buffer
    be.sgd({ ...sgd(), momentum: 0, momentumBuffer: null });
  }
  if (nativeBackend) {
    assert.throws(() => nativeBackend!.adamw({ ...adam(), param: new Float64Array(4) }), /alignkit native adamw: field 'param' must be a Float32Array/);
    assert.throws(() => nativeBackend!.sgd({ ...sgd(), grad: new Float64Array(4) }), /alignkit native sgd: field 'grad' must be a Float32Array/);
  }
});
