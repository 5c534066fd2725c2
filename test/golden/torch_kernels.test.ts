// Golden tests: every alignkit kernel against reference values computed by PyTorch (an independent
// implementation) and committed as JSON in fixtures/golden/ (regenerate with `npm run fixtures`; these tests
// need no Python). Each fixture runs on every available backend: native (once per ISA this CPU can run),
// the float32 TypeScript reference `js`, and the float64 `js-f64` (the backend finite-difference checks
// trust, so it had better agree with torch too).
//
// How a case is checked:
//   - inputs are copied into buffers from backend.alloc() and must be unchanged afterwards;
//   - "overwritten" outputs are pre-filled with NaN, so an element the kernel forgets to write fails;
//   - "accumulates" outputs (dweight, dbias) are pre-filled with a non-zero pattern and must equal
//     pattern + torch's gradient, so both overwriting and not writing fail;
//   - backward kernels get torch's saved forward values (out/lse, rstd, mean, y, ...), so a forward bug does
//     not hide or fake a backward result.
//
// Tolerances (|got - torch| <= atol + rtol*|torch|, elementwise; non-finite values must match exactly) are in
// TOL below, per family and tensor. They are float32 tolerances: torch itself differs from an exact (float64)
// evaluation by a few ulps of the reduction magnitudes (PyTorch 1.13 and 2.13 outputs differ by < 3e-6,
// absolute or relative above 1, on these fixtures), and a correct kernel may sum in another order, use FMA, or evaluate exp/erf/tanh with a few
// ulps of error. Each is >= ~10x that noise and <= ~1e-3 of the tensor's magnitude, so real bugs (a missing
// term, an off-by-one mask, eps in the wrong place, a wrong head mapping, the wrong layout, bias correction
// forgotten, ...) change outputs by orders of magnitude more. The "tolerances are not vacuous" test below
// proves for every checked tensor that an all-zero output and a 1e-3 (relative to the tensor's largest
// value) error in a single element are both rejected.
import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import { availableBackends, jsBackend64, type Backend, type FloatArray } from '../../src/backend/index.ts';
import { nativeAddon, nativeLoadError } from '../../src/native/addon.ts';
import { expectClose, findMismatch, listFixtures, loadFixture, type Fixture, type Tol } from './fixtures.ts';

// ---------------------------------------------------------------------------------------------------------
// Tolerances

const t = (atol: number, rtol: number): Tol => ({ atol, rtol });

/** Per family: every output tensor the tests compare, with its tolerance. */
const TOL = {
  // Dot products of length D <= 8 and sums over S <= 9 keys; values O(1).
  attention: { out: t(2e-5, 1e-4), lse: t(1e-5, 1e-5), dq: t(2e-5, 1e-4), dk: t(2e-5, 1e-4), dv: t(2e-5, 1e-4) },
  // rstd reaches ~1e3 for the tiny row, hence rtol-dominated.
  rmsnorm: { y: t(1e-5, 1e-4), rstd: t(1e-6, 1e-5), dx: t(1e-5, 1e-4), dweight: t(2e-5, 1e-4) },
  // y: torch's float32 result for the row offset by +50 is itself ~1e-5 off the exact value (cancellation).
  layernorm: { y: t(3e-5, 1e-4), mean: t(1e-6, 1e-5), rstd: t(1e-6, 1e-4), dx: t(2e-5, 1e-4), dweight: t(2e-5, 1e-4), dbias: t(1e-5, 1e-4) },
  // log_softmax of the x20 row reaches ~ -200, so y has an rtol.
  softmax: { y: t(1e-6, 1e-5), dx: t(1e-5, 1e-4) },
  // A rotation with the given tables: a*cos - b*sin, a few ulps at most.
  rope: { out: t(1e-6, 1e-5), dx: t(1e-6, 1e-5) },
  // Dot products of length H = 16 and log-sum-exps over V = 37.
  linear_logprob: {
    logprob: t(2e-5, 1e-4), lse: t(1e-5, 1e-5), entropy: t(2e-5, 1e-4),
    dhidden: t(1e-5, 1e-4), dweight: t(1e-5, 1e-4), dbias: t(1e-5, 1e-4),
    ceDhidden: t(1e-6, 1e-4), ceDweight: t(1e-6, 1e-4), ceDbias: t(1e-6, 1e-4),
  },
  // Updates are ~lr (1e-2 / 1e-3) per step: atol 1e-6 is >= 1000x below a step. expAvgSq spans 1e-16..1e6.
  adamw: { param: t(1e-6, 1e-5), expAvg: t(1e-6, 1e-5), expAvgSq: t(1e-10, 1e-5) },
  sgd: { param: t(1e-6, 1e-5), momentumBuffer: t(1e-5, 1e-5) },
  // Transcendentals: a few ulps relative; atol covers results that underflow towards 0 (torch's float32
  // gelu_tanh' is 0 at x = -5.25 where the exact value is -6e-7).
  unary: { y: t(1e-6, 1e-5), dx: t(2e-6, 1e-5) },
  // Sums of k <= 33 products of N(0,1) values (|C| up to ~15).
  gemm: { c: t(2e-5, 1e-5) },
} satisfies Record<string, Record<string, Tol>>;

type Family = keyof typeof TOL;
const CE_LOSS_TOL = t(1e-5, 1e-5);

function tolOf<F extends Family>(family: F, tensor: keyof (typeof TOL)[F] & string): Tol {
  return (TOL[family] as Record<string, Tol>)[tensor];
}

function check<F extends Family>(fx: Fixture, family: F, got: ArrayLike<number>, tensor: keyof (typeof TOL)[F] & string, expected?: ArrayLike<number>, label?: string): void {
  expectClose(got, expected ?? fx.f32(tensor), tolOf(family, tensor), `${fx.caseName}: ${label ?? tensor}`);
}

/** Minimum number of cases per family (so a lost fixture file is noticed). */
const MIN_CASES: Record<Family, number> = {
  attention: 4, rmsnorm: 2, layernorm: 3, softmax: 4, rope: 4, linear_logprob: 4, adamw: 1, sgd: 3, unary: 12, gemm: 4,
};

// ---------------------------------------------------------------------------------------------------------
// Backends / ISAs

type Isa = 'portable' | 'avx2' | 'avx512';
const ISA_ORDER: Isa[] = ['portable', 'avx2', 'avx512'];

interface Target {
  label: string;
  backend: Backend;
  isa: Isa | null; // native only: the ISA forced for the duration of each kernel call
}

function targets(): { run: Target[]; skipped: Array<[string, string]> } {
  const run: Target[] = [];
  const skipped: Array<[string, string]> = [];
  for (const b of availableBackends()) {
    if (b.name === 'native' && nativeAddon) {
      const detected = nativeAddon.info().detectedIsa;
      const top = ISA_ORDER.indexOf(detected as Isa);
      for (const [i, isa] of ISA_ORDER.entries()) {
        if (i <= top) run.push({ label: `native/${isa}`, backend: b, isa });
        else skipped.push([`native/${isa}`, `native/${isa}: not available on this CPU (detected ${detected})`]);
      }
    } else {
      run.push({ label: b.info().isa, backend: b, isa: null });
    }
  }
  if (!availableBackends().some((b) => b.name === 'native')) skipped.push(['native', `native backend unavailable: ${nativeLoadError}`]);
  run.push({ label: 'js-f64', backend: jsBackend64, isa: null });
  return { run, skipped };
}

/** Runs fn with the target's ISA active (native), restoring the previous ISA afterwards. */
function onTarget<T>(target: Target, fn: () => T): T {
  if (!target.isa || !nativeAddon) return fn();
  const prev = nativeAddon.info().isa as Isa;
  const got = nativeAddon.setIsa(target.isa);
  try {
    assert.equal(got, target.isa, `setIsa('${target.isa}') activated '${got}'`);
    return fn();
  } finally {
    nativeAddon.setIsa(prev);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Buffers

type AnyArray = FloatArray | Int32Array | Uint8Array;

/** Backend buffers for one case: copies of fixture inputs (verified unchanged), pre-filled outputs. */
class Buffers {
  private owned: FloatArray[] = [];
  private inputs: Array<{ name: string; arr: AnyArray; src: ArrayLike<number> }> = [];
  constructor(readonly backend: Backend) {}

  /** A backend buffer holding a copy of src. */
  copy(src: ArrayLike<number>): FloatArray {
    const a = this.backend.alloc(src.length);
    this.owned.push(a);
    for (let i = 0; i < src.length; i++) a[i] = src[i];
    return a;
  }

  /** A copy of a kernel input; checkInputs() verifies the kernel did not write it. */
  input(name: string, src: Float32Array): FloatArray {
    const a = this.copy(src);
    this.inputs.push({ name, arr: a, src });
    return a;
  }

  ints<A extends Int32Array | Uint8Array>(name: string, src: A): A {
    const a = src.slice() as A;
    this.inputs.push({ name, arr: a, src });
    return a;
  }

  filled(n: number, value: number): FloatArray {
    const a = this.backend.alloc(n);
    this.owned.push(a);
    a.fill(value);
    return a;
  }

  checkInputs(kernel: string): void {
    for (const { name, arr, src } of this.inputs) {
      const m = findMismatch(arr, src, { atol: 0, rtol: 0 });
      assert.equal(m, null, `${kernel} modified its input '${name}' (first at [${m?.index}])`);
    }
  }

  free(): void {
    for (const a of this.owned) this.backend.free(a);
    this.owned = [];
  }
}

/** Runs fn with a fresh Buffers, freeing everything afterwards. */
function withBuffers(b: Backend, fn: (bufs: Buffers) => void): void {
  const bufs = new Buffers(b);
  try {
    fn(bufs);
  } finally {
    bufs.free();
  }
}

/** A non-zero pattern (exact in float32) for accumulate-outputs. */
function accumulatorInit(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = 0.25 * Math.sin(i + 1);
  return a;
}

/** init + grad, exactly (float64). */
function plus(init: ArrayLike<number>, grad: ArrayLike<number>): Float64Array {
  const out = new Float64Array(grad.length);
  for (let i = 0; i < grad.length; i++) out[i] = init[i] + grad[i];
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Per-family runners: each runs the kernel(s) of one fixture case on one backend and compares.

function runAttention(b: Backend, fx: Fixture): void {
  const B = fx.int('batch'), Hq = fx.int('headsQ'), Hkv = fx.int('headsKV'), T = fx.int('seqQ'), S = fx.int('seqK'), D = fx.int('headDim');
  withBuffers(b, (bufs) => {
    const common = {
      q: bufs.input('q', fx.f32('q')),
      k: bufs.input('k', fx.f32('k')),
      v: bufs.input('v', fx.f32('v')),
      batch: B, headsQ: Hq, headsKV: Hkv, seqQ: T, seqK: S, headDim: D,
      scale: fx.num('scale'),
      causal: fx.bool('causal'),
      keyMask: fx.bool('hasKeyMask') ? bufs.ints('keyMask', fx.u8('keyMask')) : null,
      docIds: fx.bool('hasDocIds') ? bufs.ints('docIds', fx.i32('docIds')) : null,
    };
    // forward: out [B,Hq,T,D], lse [B,Hq,T]
    const out = bufs.filled(B * Hq * T * D, NaN);
    const lse = bufs.filled(B * Hq * T, NaN);
    b.attentionForward({ ...common, out, lse });
    bufs.checkInputs('attentionForward');
    check(fx, 'attention', out, 'out');
    check(fx, 'attention', lse, 'lse');

    // backward from torch's out/lse
    const dq = bufs.filled(B * Hq * T * D, NaN);
    const dk = bufs.filled(B * Hkv * S * D, NaN);
    const dv = bufs.filled(B * Hkv * S * D, NaN);
    b.attentionBackward({
      ...common,
      out: bufs.input('out', fx.f32('out')),
      lse: bufs.input('lse', fx.f32('lse')),
      dout: bufs.input('dout', fx.f32('dout')),
      dq, dk, dv,
    });
    bufs.checkInputs('attentionBackward');
    check(fx, 'attention', dq, 'dq');
    check(fx, 'attention', dk, 'dk');
    check(fx, 'attention', dv, 'dv');
  });
}

function runRmsnorm(b: Backend, fx: Fixture): void {
  const rows = fx.int('rows'), dim = fx.int('dim');
  withBuffers(b, (bufs) => {
    const x = bufs.input('x', fx.f32('x'));
    const weight = bufs.input('weight', fx.f32('weight'));
    const y = bufs.filled(rows * dim, NaN);
    const rstd = bufs.filled(rows, NaN);
    b.rmsnormForward({ x, weight, y, rstd, rows, dim, eps: fx.num('eps') });
    bufs.checkInputs('rmsnormForward');
    check(fx, 'rmsnorm', y, 'y');
    check(fx, 'rmsnorm', rstd, 'rstd');

    const init = accumulatorInit(dim);
    const dx = bufs.filled(rows * dim, NaN);
    const dweight = bufs.copy(init);
    b.rmsnormBackward({ x, weight, rstd: bufs.input('rstd', fx.f32('rstd')), dy: bufs.input('dy', fx.f32('dy')), dx, dweight, rows, dim });
    bufs.checkInputs('rmsnormBackward');
    check(fx, 'rmsnorm', dx, 'dx');
    check(fx, 'rmsnorm', dweight, 'dweight', plus(init, fx.f32('dweight')), 'dweight (accumulated onto a non-zero buffer)');
  });
}

function runLayernorm(b: Backend, fx: Fixture): void {
  const rows = fx.int('rows'), dim = fx.int('dim'), hasBias = fx.bool('hasBias');
  withBuffers(b, (bufs) => {
    const x = bufs.input('x', fx.f32('x'));
    const weight = bufs.input('weight', fx.f32('weight'));
    const bias = hasBias ? bufs.input('bias', fx.f32('bias')) : null;
    const y = bufs.filled(rows * dim, NaN);
    const mean = bufs.filled(rows, NaN);
    const rstd = bufs.filled(rows, NaN);
    b.layernormForward({ x, weight, bias, y, mean, rstd, rows, dim, eps: fx.num('eps') });
    bufs.checkInputs('layernormForward');
    check(fx, 'layernorm', y, 'y');
    check(fx, 'layernorm', mean, 'mean');
    check(fx, 'layernorm', rstd, 'rstd');

    const init = accumulatorInit(dim);
    const dx = bufs.filled(rows * dim, NaN);
    const dweight = bufs.copy(init);
    const dbias = hasBias ? bufs.copy(init) : null;
    b.layernormBackward({
      x, weight,
      mean: bufs.input('mean', fx.f32('mean')),
      rstd: bufs.input('rstd', fx.f32('rstd')),
      dy: bufs.input('dy', fx.f32('dy')),
      dx, dweight, dbias, rows, dim,
    });
    bufs.checkInputs('layernormBackward');
    check(fx, 'layernorm', dx, 'dx');
    check(fx, 'layernorm', dweight, 'dweight', plus(init, fx.f32('dweight')), 'dweight (accumulated)');
    if (dbias) check(fx, 'layernorm', dbias, 'dbias', plus(init, fx.f32('dbias')), 'dbias (accumulated)');
  });
}

function runSoftmax(b: Backend, fx: Fixture): void {
  const rows = fx.int('rows'), dim = fx.int('dim'), log = fx.bool('log');
  withBuffers(b, (bufs) => {
    const y = bufs.filled(rows * dim, NaN);
    b.softmaxForward({ x: bufs.input('x', fx.f32('x')), y, rows, dim, log });
    bufs.checkInputs('softmaxForward');
    check(fx, 'softmax', y, 'y');

    const dx = bufs.filled(rows * dim, NaN);
    b.softmaxBackward({ y: bufs.input('y', fx.f32('y')), dy: bufs.input('dy', fx.f32('dy')), dx, rows, dim, log });
    bufs.checkInputs('softmaxBackward');
    check(fx, 'softmax', dx, 'dx');
  });
}

function runRope(b: Backend, fx: Fixture): void {
  const n = fx.f32('x').length;
  withBuffers(b, (bufs) => {
    const common = {
      cos: bufs.input('cos', fx.f32('cos')),
      sin: bufs.input('sin', fx.f32('sin')),
      positions: bufs.ints('positions', fx.i32('positions')),
      maxPos: fx.int('maxPos'),
      batch: fx.int('batch'), heads: fx.int('heads'), seq: fx.int('seq'), headDim: fx.int('headDim'),
      rotaryDim: fx.int('rotaryDim'),
      interleaved: fx.bool('interleaved'),
    };
    const out = bufs.filled(n, NaN);
    b.rope({ ...common, x: bufs.input('x', fx.f32('x')), out, inverse: false });
    bufs.checkInputs('rope');
    check(fx, 'rope', out, 'out');

    // out may alias x
    const inplace = bufs.copy(fx.f32('x'));
    b.rope({ ...common, x: inplace, out: inplace, inverse: false });
    check(fx, 'rope', inplace, 'out', undefined, 'out (in place, out === x)');

    // backward: dx = rope(dy, inverse)
    const dx = bufs.filled(n, NaN);
    b.rope({ ...common, x: bufs.input('dy', fx.f32('dy')), out: dx, inverse: true });
    bufs.checkInputs('rope (inverse)');
    check(fx, 'rope', dx, 'dx', undefined, 'dx = rope(dy, inverse)');
  });
}

function runLinearLogprob(b: Backend, fx: Fixture): void {
  const n = fx.int('n'), H = fx.int('hiddenDim'), V = fx.int('vocab'), temperature = fx.num('temperature'), hasBias = fx.bool('hasBias');
  const targetsSrc = fx.i32('targets');
  withBuffers(b, (bufs) => {
    const common = {
      hidden: bufs.input('hidden', fx.f32('hidden')),
      weight: bufs.input('weight', fx.f32('weight')),
      bias: hasBias ? bufs.input('bias', fx.f32('bias')) : null,
      targets: bufs.ints('targets', targetsSrc),
      n, hiddenDim: H, vocab: V, temperature,
    };
    // forward, default chunking and a chunk size that does not divide n (entropy off in that run)
    let logprob0: FloatArray | null = null;
    for (const [chunk, withEntropy] of [[0, true], [3, false]] as const) {
      const logprob = bufs.filled(n, NaN);
      const lse = bufs.filled(n, NaN);
      const entropy = withEntropy ? bufs.filled(n, NaN) : null;
      b.linearLogprobForward({ ...common, logprob, lse, entropy, chunk });
      bufs.checkInputs('linearLogprobForward');
      check(fx, 'linear_logprob', logprob, 'logprob', undefined, `logprob (chunk ${chunk})`);
      check(fx, 'linear_logprob', lse, 'lse', undefined, `lse (chunk ${chunk})`);
      if (entropy) check(fx, 'linear_logprob', entropy, 'entropy', undefined, `entropy (chunk ${chunk})`);
      logprob0 ??= logprob;
    }

    // backward of sum(logprob * dlogprob); dlogprob is non-zero on ignored rows, which must get no gradient
    const lseIn = bufs.input('lse', fx.f32('lse'));
    const dlogprob = bufs.input('dlogprob', fx.f32('dlogprob'));
    const init = accumulatorInit(V * H);
    for (const chunk of [0, 4]) {
      const dhidden = bufs.filled(n * H, NaN);
      const dweight = bufs.copy(init);
      const dbias = hasBias ? bufs.copy(init.subarray(0, V)) : null;
      b.linearLogprobBackward({ ...common, lse: lseIn, dlogprob, dhidden, dweight, dbias, chunk });
      bufs.checkInputs('linearLogprobBackward');
      check(fx, 'linear_logprob', dhidden, 'dhidden', undefined, `dhidden (chunk ${chunk})`);
      check(fx, 'linear_logprob', dweight, 'dweight', plus(init, fx.f32('dweight')), `dweight (accumulated, chunk ${chunk})`);
      if (dbias) check(fx, 'linear_logprob', dbias, 'dbias', plus(init, fx.f32('dbias')), `dbias (accumulated, chunk ${chunk})`);
    }
    // dweight / dbias are optional
    const dhiddenOnly = bufs.filled(n * H, NaN);
    b.linearLogprobBackward({ ...common, lse: lseIn, dlogprob, dhidden: dhiddenOnly, dweight: null, dbias: null, chunk: 0 });
    check(fx, 'linear_logprob', dhiddenOnly, 'dhidden', undefined, 'dhidden (dweight = dbias = null)');

    // torch.nn.functional.cross_entropy(mean, ignore_index=-100) = -mean of logprob over non-ignored rows
    const count = fx.int('ceCount');
    assert.equal(count, targetsSrc.filter((x) => x >= 0).length);
    let sum = 0;
    for (let i = 0; i < n; i++) if (targetsSrc[i] >= 0) sum += logprob0![i];
    expectClose([-sum / count], [fx.num('ceLoss')], CE_LOSS_TOL, `${fx.caseName}: cross-entropy from logprob`);
    const dce = bufs.copy(Array.from(targetsSrc, (x) => (x >= 0 ? -1 / count : 0)));
    const dhidden = bufs.filled(n * H, NaN);
    const dweight = bufs.filled(V * H, 0);
    const dbias = hasBias ? bufs.filled(V, 0) : null;
    b.linearLogprobBackward({ ...common, lse: lseIn, dlogprob: dce, dhidden, dweight, dbias, chunk: 0 });
    check(fx, 'linear_logprob', dhidden, 'ceDhidden');
    check(fx, 'linear_logprob', dweight, 'ceDweight');
    if (dbias) check(fx, 'linear_logprob', dbias, 'ceDbias');
  });
}

function runAdamw(b: Backend, fx: Fixture): void {
  const n = fx.int('n'), steps = fx.int('steps');
  withBuffers(b, (bufs) => {
    const param = bufs.copy(fx.f32('param0'));
    const expAvg = bufs.filled(n, 0);
    const expAvgSq = bufs.filled(n, 0);
    for (let s = 0; s < steps; s++) {
      const grad = bufs.input(`grad[${s}]`, fx.row('grads', s));
      b.adamw({
        param, grad, expAvg, expAvgSq, n,
        lr: fx.num('lr'), beta1: fx.num('beta1'), beta2: fx.num('beta2'), eps: fx.num('eps'), weightDecay: fx.num('weightDecay'),
        step: s + 1,
      });
      bufs.checkInputs('adamw');
      check(fx, 'adamw', param, 'param', fx.row('param', s), `param after step ${s + 1}`);
      check(fx, 'adamw', expAvg, 'expAvg', fx.row('expAvg', s), `expAvg after step ${s + 1}`);
      check(fx, 'adamw', expAvgSq, 'expAvgSq', fx.row('expAvgSq', s), `expAvgSq after step ${s + 1}`);
    }
  });
}

function runSgd(b: Backend, fx: Fixture): void {
  const n = fx.int('n'), steps = fx.int('steps'), momentum = fx.num('momentum');
  withBuffers(b, (bufs) => {
    const param = bufs.copy(fx.f32('param0'));
    // The first step must initialise the buffer, not read it: start it with garbage.
    const momentumBuffer = momentum !== 0 ? bufs.filled(n, 1000) : null;
    for (let s = 0; s < steps; s++) {
      const grad = bufs.input(`grad[${s}]`, fx.row('grads', s));
      b.sgd({
        param, grad, momentumBuffer, n,
        lr: fx.num('lr'), momentum, dampening: fx.num('dampening'), weightDecay: fx.num('weightDecay'), nesterov: fx.bool('nesterov'),
        firstStep: s === 0,
      });
      bufs.checkInputs('sgd');
      check(fx, 'sgd', param, 'param', fx.row('param', s), `param after step ${s + 1}`);
      if (momentumBuffer) check(fx, 'sgd', momentumBuffer, 'momentumBuffer', fx.row('momentumBuffer', s), `momentumBuffer after step ${s + 1}`);
    }
  });
}

const UNARY_OPS = ['exp', 'log', 'tanh', 'sigmoid', 'silu', 'gelu_tanh', 'gelu_erf', 'relu', 'sqrt', 'rsqrt', 'neg', 'abs'] as const;
type UnaryOpName = (typeof UNARY_OPS)[number];

function runUnary(b: Backend, fx: Fixture): void {
  const op = fx.str('op') as UnaryOpName;
  assert.ok(UNARY_OPS.includes(op), `unknown unary op ${op}`);
  const n = fx.int('n');
  withBuffers(b, (bufs) => {
    const x = bufs.input('x', fx.f32('x'));
    const y = bufs.filled(n, NaN);
    b.unary({ op, x, y, n });
    bufs.checkInputs('unary');
    check(fx, 'unary', y, 'y', undefined, `${op}: y`);

    const dx = bufs.filled(n, NaN);
    b.unaryBackward({ op, x, y: bufs.input('y', fx.f32('y')), dy: bufs.input('dy', fx.f32('dy')), dx, n });
    bufs.checkInputs('unaryBackward');
    check(fx, 'unary', dx, 'dx', undefined, `${op}: dx`);
  });
}

function runGemm(b: Backend, fx: Fixture): void {
  withBuffers(b, (bufs) => {
    // c0 holds NaN where beta == 0 (must be ignored) and in no other case; padding of A/B is NaN.
    const c = bufs.copy(fx.f32('c0'));
    b.sgemm({
      transA: fx.bool('transA'), transB: fx.bool('transB'),
      m: fx.int('m'), n: fx.int('n'), k: fx.int('k'),
      alpha: fx.num('alpha'),
      a: bufs.input('a', fx.f32('a')), lda: fx.int('lda'), strideA: fx.int('strideA'),
      b: bufs.input('b', fx.f32('b')), ldb: fx.int('ldb'), strideB: fx.int('strideB'),
      beta: fx.num('beta'),
      c, ldc: fx.int('ldc'), strideC: fx.int('strideC'),
      batch: fx.int('batch'),
    });
    bufs.checkInputs('sgemm');
    check(fx, 'gemm', c, 'c', undefined, 'c (the whole buffer: padding between rows must be untouched)');
  });
}

const RUNNERS: Record<Family, (b: Backend, fx: Fixture) => void> = {
  attention: runAttention,
  rmsnorm: runRmsnorm,
  layernorm: runLayernorm,
  softmax: runSoftmax,
  rope: runRope,
  linear_logprob: runLinearLogprob,
  adamw: runAdamw,
  sgd: runSgd,
  unary: runUnary,
  gemm: runGemm,
};
const FAMILIES = Object.keys(RUNNERS) as Family[];

// ---------------------------------------------------------------------------------------------------------
// Checks of the fixtures and of the comparison itself (no kernel involved)

describe('golden fixtures (PyTorch)', () => {
  test('every fixture loads, is well-formed, and covers every kernel family', () => {
    const all = listFixtures();
    assert.ok(all.length > 0, 'no fixtures in fixtures/golden (run `npm run fixtures`)');
    const families = new Set<string>();
    for (const name of all) {
      const fx = loadFixture(name);
      families.add(fx.family);
      assert.ok((FAMILIES as string[]).includes(fx.family), `${name}: family ${fx.family} has no test runner`);
      assert.match(fx.torchVersion, /^\d+\.\d+/, `${name}: torch_version`);
      for (const tensor of Object.keys(TOL[fx.family as Family])) {
        if (fx.has(tensor)) assert.equal(fx.tensor(tensor).dtype, 'float32', `${name}: ${tensor} dtype`);
      }
    }
    for (const f of FAMILIES) {
      const n = listFixtures(f).length;
      assert.ok(n >= MIN_CASES[f], `family ${f}: ${n} fixture cases, expected at least ${MIN_CASES[f]}`);
    }
  });

  test('tolerances are not vacuous: zeros and a 1e-3 error in one element are rejected', () => {
    let checked = 0;
    for (const name of listFixtures()) {
      const fx = loadFixture(name);
      for (const [tensor, tol] of Object.entries(TOL[fx.family as Family] as Record<string, Tol>)) {
        if (!fx.has(tensor)) continue;
        const e = fx.f32(tensor);
        let maxAbs = 0;
        let at = -1;
        for (let i = 0; i < e.length; i++) {
          if (Number.isFinite(e[i]) && Math.abs(e[i]) > maxAbs) {
            maxAbs = Math.abs(e[i]);
            at = i;
          }
        }
        assert.ok(at >= 0, `${name}: ${tensor} has no finite non-zero value`);
        assert.notEqual(findMismatch(new Float64Array(e.length), e, tol), null, `${name}: ${tensor}: an all-zero output would pass`);
        const perturbed = Float64Array.from(e);
        perturbed[at] += 1e-3 * maxAbs;
        assert.notEqual(findMismatch(perturbed, e, tol), null, `${name}: ${tensor}: a 1e-3 relative error would pass`);
        assert.equal(findMismatch(Float64Array.from(e), e, tol), null, `${name}: ${tensor}: does not match itself`);
        checked++;
      }
    }
    assert.ok(checked > 100, `only ${checked} tensors checked`);
  });

  test('plausible bugs are far outside the tolerances', () => {
    // An optimizer that does nothing, or a rope that copies, must fail.
    for (const name of listFixtures('adamw')) {
      const fx = loadFixture(name);
      assert.notEqual(findMismatch(fx.f32('param0'), fx.row('param', 0), TOL.adamw.param), null, `${name}: a no-op step would pass`);
    }
    for (const name of listFixtures('rope')) {
      const fx = loadFixture(name);
      assert.notEqual(findMismatch(fx.f32('x'), fx.f32('out'), TOL.rope.out), null, `${name}: an identity rope would pass`);
    }
    // The dweight accumulation check distinguishes "accumulate" from "overwrite".
    const fx = loadFixture('rmsnorm.rows5_dim13');
    const g = fx.f32('dweight');
    assert.notEqual(findMismatch(g, plus(accumulatorInit(g.length), g), TOL.rmsnorm.dweight), null);
    // Fully masked queries (causal_leftpad) really have lse = -Infinity in the fixture.
    assert.ok(loadFixture('attention.causal_leftpad').f32('lse').includes(-Infinity));
  });

  test('comparison: NaN and infinities must match exactly; lengths must agree', () => {
    const tol = t(1e-3, 1e-3);
    assert.equal(findMismatch([NaN, Infinity, -Infinity, 1], [NaN, Infinity, -Infinity, 1.0005], tol), null);
    assert.notEqual(findMismatch([0], [NaN], tol), null);
    assert.notEqual(findMismatch([NaN], [0], tol), null);
    assert.notEqual(findMismatch([1e300], [Infinity], tol), null);
    assert.notEqual(findMismatch([-Infinity], [Infinity], tol), null);
    assert.notEqual(findMismatch([1, 2], [1], tol), null);
    assert.throws(() => expectClose([1], [1.1], tol, 'x'), /x: 1 of 1 elements out of tolerance/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// The kernels, on every backend

const { run, skipped } = targets();
for (const [label, why] of skipped) {
  test(`golden torch fixtures on ${label}`, (tc) => tc.skip(why));
}
for (const target of run) {
  describe(`golden torch fixtures on ${target.label}`, () => {
    for (const family of FAMILIES) {
      for (const name of listFixtures(family)) {
        it(name, () => onTarget(target, () => RUNNERS[family](target.backend, loadFixture(name))));
      }
    }
  });
}
