// SGEMM: the native kernel against the JS reference (computed in float64) on odd shapes, every transpose,
// alpha/beta, padded leading dimensions and batches, for every ISA this CPU runs; 1-vs-2 thread
// bit-identity; and argument validation on both backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend, nativeBackend } from '../../src/backend/index.ts';
import type { FloatArray, GemmParams } from '../../src/backend/types.ts';
import { nativeAddon } from '../../src/native/addon.ts';
import { randArray } from '../util.ts';
import { runnableIsas, withIsa, withThreads } from '../native_env.ts';


interface Case {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  alpha?: number; // default 1
  beta?: number; // default 0 (C starts NaN-filled then, which must be ignored)
  pad?: number; // added to every leading dimension
  batch?: number;
  broadcastA?: boolean; // strideA = 0
  broadcastB?: boolean;
  stridePad?: number; // extra elements between batch entries
}

/** Builds the parameter object for a case with Float32Array operands (C pre-filled per beta). */
function makeParams(c: Case, seed: number): GemmParams {
  const pad = c.pad ?? 0;
  const batch = c.batch ?? 1;
  const sp = c.stridePad ?? 0;
  const beta = c.beta ?? 0;
  const [aRows, aCols] = c.transA ? [c.k, c.m] : [c.m, c.k];
  const [bRows, bCols] = c.transB ? [c.n, c.k] : [c.k, c.n];
  const lda = aCols + pad, ldb = bCols + pad, ldc = c.n + pad;
  const aSize = aRows * lda, bSize = bRows * ldb, cSize = c.m * ldc;
  const strideA = c.broadcastA ? 0 : aSize + sp;
  const strideB = c.broadcastB ? 0 : bSize + sp;
  const strideC = cSize + sp;
  const a = randArray((batch - 1) * strideA + aSize, seed) as Float32Array;
  const b = randArray((batch - 1) * strideB + bSize, seed + 1) as Float32Array;
  const cArr = beta === 0 ? new Float32Array((batch - 1) * strideC + cSize).fill(NaN) : (randArray((batch - 1) * strideC + cSize, seed + 2) as Float32Array);
  return { transA: c.transA, transB: c.transB, m: c.m, n: c.n, k: c.k, alpha: c.alpha ?? 1, a, lda, strideA, b, ldb, strideB, beta, c: cArr, ldc, strideC, batch };
}

function abs64(x: FloatArray): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.abs(x[i]);
  return out;
}

interface Reference {
  want: Float64Array; // float64 result
  tol: Float64Array; // per-element tolerance
}

/**
 * The reference result in float64 through the JS kernel, and a per-element error bound: float32 dot
 * products of length k carry at most about k * 2^-24 relative error in the scale sum_p |alpha a_ip b_pj| +
 * |beta c_ij| (the standard gamma_k bound; typical errors are far smaller). Elements of C outside the
 * matrices (padding between rows / batch entries) must be untouched: their tolerance is 0.
 */
function reference(p: GemmParams): Reference {
  const c64 = Float64Array.from(p.c);
  const want = Float64Array.from(p.c);
  jsBackend.sgemm({ ...p, a: Float64Array.from(p.a), b: Float64Array.from(p.b), c: want });
  const scale = abs64(p.c);
  for (let i = 0; i < scale.length; i++) if (Number.isNaN(scale[i])) scale[i] = 0;
  jsBackend.sgemm({ ...p, alpha: Math.abs(p.alpha), a: abs64(p.a), b: abs64(p.b), beta: Math.abs(p.beta), c: scale });
  const tol = new Float64Array(want.length);
  const gamma = (p.k + 4) * 2 ** -23;
  // Which elements are inside some C matrix: the others must keep their initial value exactly.
  const inside = new Uint8Array(want.length);
  for (let e = 0; e < p.batch; e++)
    for (let i = 0; i < p.m; i++) inside.fill(1, e * p.strideC + i * p.ldc, e * p.strideC + i * p.ldc + p.n);
  for (let i = 0; i < want.length; i++) {
    if (inside[i]) tol[i] = gamma * scale[i] + 1e-30;
    else want[i] = c64[i];
  }
  return { want, tol };
}

function compare(got: Float32Array, ref: Reference, what: string): void {
  assert.equal(got.length, ref.want.length);
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - ref.want[i]);
    const same = Object.is(got[i], ref.want[i]) || (Number.isNaN(got[i]) && Number.isNaN(ref.want[i]));
    if (!(d <= ref.tol[i]) && !same) assert.fail(`${what}: element ${i}: got ${got[i]}, want ${ref.want[i]} (|diff| ${d} > tol ${ref.tol[i]})`);
  }
}

function describe(c: Case): string {
  const t = `${c.transA ? 'T' : 'N'}${c.transB ? 'T' : 'N'}`;
  const extra = [
    c.alpha !== undefined ? `alpha=${c.alpha}` : '',
    c.beta ? `beta=${c.beta}` : '',
    c.pad ? `pad=${c.pad}` : '',
    c.batch ? `batch=${c.batch}${c.broadcastA ? ' bcastA' : ''}${c.broadcastB ? ' bcastB' : ''}` : '',
  ].filter(Boolean);
  return `${c.m}x${c.n}x${c.k} ${t}${extra.length ? ' ' + extra.join(' ') : ''}`;
}

/** Runs the case on the JS backend (float32 storage) and on native for each ISA, against the float64 reference. */
function checkCase(c: Case, seed: number, checkJs32 = true): void {
  const p = makeParams(c, seed);
  const ref = reference(p);
  if (checkJs32) {
    const js = { ...p, c: Float32Array.from(p.c) };
    jsBackend.sgemm(js);
    compare(js.c, ref, `js ${describe(c)}`);
  }
  if (!nativeBackend) return;
  for (const isa of runnableIsas()) {
    const q = { ...p, c: Float32Array.from(p.c) };
    withIsa(isa, () => nativeBackend!.sgemm(q));
    compare(q.c, ref, `native/${isa} ${describe(c)}`);
  }
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 37, 1],
  [1, 300, 70], // GEMV-like: the direct path
  [3, 41, 129],
  [5, 1, 9],
  [300, 1, 20], // M x 1
  [500, 3, 100], // n <= 4: the direct dot-product path (gathered B columns)
  [900, 1, 300],
  [7, 13, 5],
  [17, 33, 65],
  [6, 16, 300], // exactly one AVX2 tile
  [12, 32, 300], // exactly one AVX-512 tile
  [130, 67, 259],
  [61, 97, 300], // KC-block boundary (k > 256)
  [8, 101, 203], // few rows against B^T (decoding): no packing, k % 8 != 0
  [16, 53, 64], // the most rows that path takes
];
const TRANS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

test('sgemm: native vs reference, odd shapes, every transpose, every ISA', (t) => {
  if (!nativeBackend) t.diagnostic('native addon unavailable: checking the JS backend only');
  else t.diagnostic(`ISAs checked: ${runnableIsas().join(', ')}`);
  let seed = 1;
  for (const [m, n, k] of SHAPES) for (const [transA, transB] of TRANS) checkCase({ m, n, k, transA, transB }, seed++);
});

test('sgemm: AVX-512 path', (t) => {
  if (!nativeAddon) return t.skip('native addon unavailable');
  if (nativeAddon.info().detectedIsa !== 'avx512') return t.skip(`CPU has no AVX-512 (detected ${nativeAddon.info().detectedIsa}); the AVX-512 kernel is untested here`);
  // The shape loop above covers it; this test only makes the coverage visible.
  assert.ok(runnableIsas().includes('avx512'));
});

test('sgemm: alpha, beta (accumulation, NaN-filled C with beta = 0), padded leading dimensions', () => {
  let seed = 100;
  for (const [transA, transB] of TRANS) {
    checkCase({ m: 37, n: 45, k: 53, transA, transB, alpha: 0.5, beta: 1 }, seed++);
    checkCase({ m: 37, n: 45, k: 53, transA, transB, alpha: -1.5, beta: 0.25, pad: 5 }, seed++);
    checkCase({ m: 70, n: 19, k: 300, transA, transB, alpha: 2, beta: 0, pad: 3 }, seed++);
    checkCase({ m: 2, n: 300, k: 40, transA, transB, alpha: 0.75, beta: -1, pad: 1 }, seed++);
    checkCase({ m: 9, n: 10, k: 11, transA, transB, beta: 0 }, seed++);
    checkCase({ m: 300, n: 3, k: 50, transA, transB, alpha: 0.5, beta: 0.5, pad: 2 }, seed++); // direct, n <= 4
  }
});

test('sgemm: alpha = 0 and k = 0 give beta * C without reading A, B', () => {
  for (const b of [nativeBackend, jsBackend]) {
    if (!b) continue;
    const p = makeParams({ m: 20, n: 30, k: 40, transA: false, transB: false, beta: 0.5 }, 7);
    p.a.fill(NaN);
    p.alpha = 0;
    const before = Float32Array.from(p.c);
    b.sgemm(p);
    for (let i = 0; i < before.length; i++) assert.equal(p.c[i], Math.fround(before[i] * 0.5), `${b.name} alpha=0`);
    const z = makeParams({ m: 20, n: 30, k: 0, transA: false, transB: false, beta: 0 }, 8);
    b.sgemm(z);
    assert.ok(z.c.every((v) => v === 0), `${b.name} k=0 beta=0 writes zeros over NaN`);
  }
});

test('sgemm: batched, with strides and broadcast operands', () => {
  let seed = 200;
  for (const [transA, transB] of TRANS) {
    checkCase({ m: 13, n: 21, k: 17, transA, transB, batch: 3 }, seed++);
    checkCase({ m: 13, n: 21, k: 17, transA, transB, batch: 4, broadcastA: true, stridePad: 7, beta: 0.5 }, seed++);
    checkCase({ m: 40, n: 33, k: 70, transA, transB, batch: 3, broadcastB: true, pad: 2, alpha: 0.3 }, seed++);
    checkCase({ m: 3, n: 200, k: 50, transA, transB, batch: 2, broadcastA: true }, seed++);
  }
});

test('sgemm: larger 513x257x1031', () => {
  let seed = 300;
  for (const [transA, transB] of [[false, false], [true, true]] as const) checkCase({ m: 513, n: 257, k: 1031, transA, transB, beta: 0.5 }, seed++, false);
});

test('sgemm: n > 4096 and a long k (several column panels and packed-B panels)', () => {
  let seed = 350;
  for (const [transA, transB] of [[false, false], [true, true]] as const) checkCase({ m: 7, n: 4100, k: 800, transA, transB, beta: 0.5 }, seed++, false);
});

test('sgemm: 1 and 2 threads give bit-identical results', (t) => {
  if (!nativeBackend) return t.skip('native addon unavailable');
  const cases: Case[] = [];
  for (const [transA, transB] of TRANS) cases.push({ m: 300, n: 200, k: 500, transA, transB, beta: 0.5 });
  cases.push({ m: 3, n: 700, k: 300, transA: false, transB: false }); // direct path, parallel over columns
  cases.push({ m: 4, n: 700, k: 300, transA: true, transB: true });
  cases.push({ m: 2000, n: 2, k: 300, transA: true, transB: false }); // direct path, parallel over rows
  cases.push({ m: 8, n: 700, k: 301, transA: false, transB: true }); // few rows x B^T, parallel over column chunks
  cases.push({ m: 13, n: 190, k: 77, transA: true, transB: true, beta: 0.5 });
  cases.push({ m: 40, n: 30, k: 20, transA: false, transB: true, batch: 16, broadcastB: true }); // batch-parallel
  cases.push({ m: 30, n: 4100, k: 800, transA: false, transB: false, beta: 1 }); // several panels
  let seed = 400;
  for (const isa of runnableIsas()) {
    for (const c of cases) {
      const p = makeParams(c, seed++);
      const one = { ...p, c: Float32Array.from(p.c) };
      const two = { ...p, c: Float32Array.from(p.c) };
      withIsa(isa, () => {
        withThreads(1, () => nativeBackend!.sgemm(one));
        withThreads(2, () => nativeBackend!.sgemm(two));
      });
      assert.ok(Buffer.from(one.c.buffer).equals(Buffer.from(two.c.buffer)), `${isa} ${describe(c)}: 1 vs 2 threads differ`);
    }
  }
});

test('sgemm: bad arguments throw errors naming the kernel', () => {
  const good = (): GemmParams => makeParams({ m: 5, n: 6, k: 7, transA: false, transB: false, beta: 1 }, 9);
  const backends = [jsBackend, ...(nativeBackend ? [nativeBackend] : [])];
  for (const b of backends) {
    const bad: [string, (p: GemmParams) => GemmParams][] = [
      ['short a', (p) => ({ ...p, a: p.a.subarray(0, p.a.length - 1) })],
      ['short b', (p) => ({ ...p, b: p.b.subarray(0, 20) })],
      ['short c', (p) => ({ ...p, c: p.c.subarray(0, 29) })],
      // transA: A is [k=7, m=5] with lda 7, so it needs 6*7 + 5 = 47 > 35 elements.
      ['short a for the transpose', (p) => ({ ...p, transA: true })],
      ['lda too small', (p) => ({ ...p, lda: 6 })],
      ['ldc too small', (p) => ({ ...p, ldc: 5 })],
      ['batch reaches past a', (p) => ({ ...p, batch: 2, strideA: 35, strideB: 0, strideC: 30, c: new Float32Array(60) })],
      ['overlapping C batch entries', (p) => ({ ...p, batch: 2, strideA: 0, strideB: 0, strideC: 10, c: new Float32Array(60) })],
      ['non-integer m', (p) => ({ ...p, m: 2.5 })],
      ['negative k', (p) => ({ ...p, k: -1 })],
    ];
    for (const [what, mutate] of bad) {
      const p = mutate(good());
      assert.throws(() => b.sgemm(p), /sgemm/, `${b.name}: ${what}`);
    }
  }
  if (nativeBackend) {
    const p = good();
    assert.throws(() => nativeBackend!.sgemm({ ...p, a: Float64Array.from(p.a) }), /sgemm.*Float32Array/);
    assert.throws(() => nativeBackend!.sgemm({ ...p, c: Float64Array.from(p.c) }), /sgemm.*Float32Array/);
  }
  // Exactly long enough is fine, and empty shapes are no-ops on empty arrays.
  for (const b of backends) {
    const p = good();
    b.sgemm({ ...p, a: p.a.subarray(0, 35), b: p.b.subarray(0, 42), c: p.c.subarray(0, 30) });
    const e = new Float32Array(0);
    b.sgemm({ ...p, m: 0, n: 0, k: 0, a: e, b: e, c: e, lda: 0, ldb: 0, ldc: 0 });
    b.sgemm({ ...p, batch: 0, a: e, b: e, c: e });
  }
});
