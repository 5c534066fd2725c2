// Counter-based RNG (Philox4x32-10) fills and dropout.
//  - the JS block function against Random123's published known-answer vectors and an independent BigInt
//    implementation; the native kernel against a known answer through a uniform fill.
//  - native == JS bit for bit for uniform, normal and dropout (out and mask), every ISA, including
//    counters that cross 2^32 and end at 2^53; 1 vs 2 threads identical; a fill split in two pieces
//    equals the whole.
//  - the Box–Muller helpers against Math.log / Math.cos; statistical sanity of uniform, normal and the
//    dropout keep rate; dropout edge cases (p = 0, p = 1) and argument validation naming the kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend, jsBackend64, nativeBackend } from '../../src/backend/index.ts';
import type { Backend, DropoutParams, FloatArray, RandomFillParams } from '../../src/backend/types.ts';
import { cos2pi, lnUnit, philox4x32_10 } from '../../src/backend/js/elementwise.ts';
import { randArray, rng } from '../util.ts';
import { assertBitEqual, forEachIsa, withThreads } from '../native_env.ts';

const NO_NATIVE = 'native addon not built (nativeBackend === null)';
const TWO32 = 2 ** 32;

const hex = (w: ArrayLike<number>): string => Array.from(w, (v) => (v >>> 0).toString(16).padStart(8, '0')).join(' ');

function fill(be: Backend, p: Omit<RandomFillParams, 'out'>, ctor: Float32ArrayConstructor | Float64ArrayConstructor = Float32Array): FloatArray {
  const out = new ctor(p.n).fill(NaN);
  be.randomFill({ ...p, out });
  return out;
}

// ===================================================================================================
// Philox block function
// ===================================================================================================
test('philox4x32_10 (js) reproduces the Random123 known-answer vectors', () => {
  // Random123 kat_vectors: philox4x32 10 <ctr x4> <key x2> <expected x4>
  const kat: [number[], number[], string][] = [
    [[0, 0, 0, 0], [0, 0], '6627e8d5 e169c58d bc57ac4c 9b00dbd8'],
    [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], '408f276d 41c83b0e a20bc7c6 6d5451fd'],
    [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], 'd16cfe09 94fdcceb 5001e420 24126ea1'],
  ];
  for (const [ctr, key, want] of kat) assert.equal(hex(philox4x32_10(ctr, key)), want, `ctr ${hex(ctr)} key ${hex(key)}`);
});

/** Philox4x32-10 written independently with BigInt arithmetic (no 16-bit product splitting). */
function philoxBigInt(ctr: number[], key: number[]): number[] {
  const M = 0xffffffffn;
  let [c0, c1, c2, c3] = ctr.map((v) => BigInt(v >>> 0));
  let [k0, k1] = key.map((v) => BigInt(v >>> 0));
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + 0x9e3779b9n) & M;
      k1 = (k1 + 0xbb67ae85n) & M;
    }
    const p0 = 0xd2511f53n * c0, p1 = 0xcd9e8d57n * c2;
    [c0, c1, c2, c3] = [((p1 >> 32n) ^ c1 ^ k0) & M, p1 & M, ((p0 >> 32n) ^ c3 ^ k1) & M, p0 & M];
  }
  return [c0, c1, c2, c3].map(Number);
}

test('philox4x32_10 (js) agrees with an independent BigInt implementation on random inputs', () => {
  const r = rng(2024);
  const u32 = (): number => Math.floor(r() * TWO32) >>> 0;
  for (let i = 0; i < 500; i++) {
    const ctr = [u32(), u32(), u32(), u32()], key = [u32(), u32()];
    assert.equal(hex(philox4x32_10(ctr, key)), hex(philoxBigInt(ctr, key)), `ctr ${hex(ctr)} key ${hex(key)}`);
  }
});

test('uniform fill exposes the Philox words: known answer on both backends', () => {
  // counter 0, key 0: word 0 = 0x6627e8d5, so element 0 of a [0,1) fill is (0x6627e8d5 >>> 8) 2^-24 exactly.
  const want = (0x6627e8d5 >>> 8) / 2 ** 24;
  for (const be of nativeBackend ? [nativeBackend, jsBackend] : [jsBackend]) {
    const u = fill(be, { n: 3, seed: 0, seedHi: 0, offset: 0, kind: 'uniform', a: 0, b: 1 });
    assert.equal(u[0], want, be.name);
  }
  // a [0, 2^24) fill returns w0 >>> 8 exactly: compare with the block function for counters whose high
  // word is non-zero and keys with every bit pattern.
  const seed = 0xdeadbeef, seedHi = 0x80000001, offset = 3 * TWO32 + 0xfffffff0;
  const n = 64;
  const js = fill(jsBackend, { n, seed, seedHi, offset, kind: 'uniform', a: 0, b: 2 ** 24 });
  for (let i = 0; i < n; i++) {
    const c = offset + i;
    const w = philox4x32_10([c % TWO32, Math.floor(c / TWO32), 0, 0], [seed, seedHi]);
    assert.equal(js[i], w[0] >>> 8, `element ${i}`);
  }
  if (nativeBackend) assertBitEqual(fill(nativeBackend, { n, seed, seedHi, offset, kind: 'uniform', a: 0, b: 2 ** 24 }), js, 'native words');
});

// ===================================================================================================
// Box–Muller helpers
// ===================================================================================================
test('lnUnit and cos2pi match Math.log / Math.cos to a few float64 ulps; log(0) cannot happen', () => {
  const r = rng(7);
  const ws: number[] = [0, 1, 2, 3, 0x7fffffff, 0x80000000, 0xb504f333, 0xb504f334, 0xfffffffe, 0xffffffff, 0x3fffffff, 0x40000000, 0x20000000, 0x1fffffff, 0x20000001, 0xc0000000, 0x60000000, 0xa0000000, 0xe0000000];
  for (let k = 0; k < 32; k++) ws.push(2 ** k - 1, 2 ** k, (2 ** k + 1) >>> 0);
  for (let i = 0; i < 20000; i++) ws.push(Math.floor(r() * TWO32));
  for (const w of ws) {
    const ln = lnUnit(w);
    const lnRef = Math.log((w + 1) / TWO32);
    assert.ok(Number.isFinite(ln) && ln <= 0, `lnUnit(${w}) = ${ln}`);
    assert.ok(Math.abs(ln - lnRef) <= 8 * 2 ** -52 * Math.abs(lnRef), `lnUnit(${w}) = ${ln} vs ${lnRef}`);
    const c = cos2pi(w);
    const cRef = Math.cos((2 * Math.PI * w) / TWO32);
    assert.ok(Math.abs(c - cRef) <= 2e-15, `cos2pi(${w}) = ${c} vs ${cRef}`);
  }
  assert.equal(lnUnit(0xffffffff), 0);
  assert.equal(cos2pi(0), 1);
  assert.equal(cos2pi(0x80000000), -1);
  assert.equal(lnUnit(0), -32 * Math.LN2);
});

test('normal fill = a + b * sqrt(-2 ln u1) cos(2 pi u2) from words 0 and 1 of each element\'s block', () => {
  const seed = 99, seedHi = 5, offset = 1234567;
  const n = 500;
  const z = fill(jsBackend, { n, seed, seedHi, offset, kind: 'normal', a: 0.25, b: 3 });
  const z64 = fill(jsBackend64, { n, seed, seedHi, offset, kind: 'normal', a: 0.25, b: 3 }, Float64Array);
  for (let i = 0; i < n; i++) {
    const w = philox4x32_10([offset + i, 0, 0, 0], [seed, seedHi]);
    const ref = 0.25 + 3 * Math.sqrt(-2 * Math.log((w[0] + 1) / TWO32)) * Math.cos((2 * Math.PI * w[1]) / TWO32);
    assert.ok(Math.abs(z64[i] - ref) <= 1e-14 * (1 + Math.abs(ref)), `element ${i}: ${z64[i]} vs ${ref}`);
    assert.equal(z[i], Math.fround(z64[i]), `element ${i}: float32 fill is the float64 value rounded once`);
  }
});

// ===================================================================================================
// native == js, splitting, threads
// ===================================================================================================
interface FillCase {
  n: number;
  seed: number;
  seedHi: number;
  offset: number;
}
const FILL_CASES: FillCase[] = [
  { n: 1, seed: 0, seedHi: 0, offset: 0 },
  { n: 7, seed: 1, seedHi: 0, offset: 5 },
  { n: 1001, seed: 0xffffffff, seedHi: 0xffffffff, offset: 17 },
  { n: 40003, seed: 42, seedHi: 0, offset: TWO32 - 20001 }, // the low counter word wraps mid-fill
  { n: 3001, seed: 7, seedHi: 1, offset: TWO32 - 3 },
  { n: 999, seed: 9, seedHi: 2, offset: 2 ** 53 - 999 }, // ends exactly at 2^53
];

test('randomFill native == js bit for bit (uniform and normal), every ISA', async (t) => {
  if (!nativeBackend) return t.skip(NO_NATIVE);
  const want = FILL_CASES.map((c) => ({
    u: fill(jsBackend, { ...c, kind: 'uniform', a: -1.5, b: 2.5 }),
    z: fill(jsBackend, { ...c, kind: 'normal', a: 0.5, b: 0.02 }),
  }));
  await forEachIsa(t, (isa) => {
    for (const [ci, c] of FILL_CASES.entries()) {
      assertBitEqual(fill(nativeBackend!, { ...c, kind: 'uniform', a: -1.5, b: 2.5 }), want[ci].u, `${isa} case ${ci} uniform`);
      assertBitEqual(fill(nativeBackend!, { ...c, kind: 'normal', a: 0.5, b: 0.02 }), want[ci].z, `${isa} case ${ci} normal`);
    }
  });
});

test('randomFill / dropout: a fill split in two equals the whole (both backends); 1 vs 2 threads identical', () => {
  const backends = nativeBackend ? [nativeBackend, jsBackend] : [jsBackend];
  for (const be of backends) {
    for (const kind of ['uniform', 'normal'] as const) {
      for (const c of FILL_CASES.slice(2)) {
        const whole = fill(be, { ...c, kind, a: 0, b: 1 });
        const n1 = Math.floor(c.n / 3) + 1;
        const first = fill(be, { ...c, n: n1, kind, a: 0, b: 1 });
        const second = fill(be, { ...c, n: c.n - n1, offset: c.offset + n1, kind, a: 0, b: 1 });
        const joined = new Float32Array(c.n);
        joined.set(first, 0);
        joined.set(second, n1);
        assertBitEqual(joined, whole, `${be.name} ${kind} offset ${c.offset}`);
      }
    }
  }
  // dropout draws from the same counters: splitting it is invisible too
  for (const be of backends) {
    const c = FILL_CASES[3];
    const x = randArray(c.n, 31, 1) as Float32Array;
    const whole = dropoutRun(be, { ...c, x, p: 0.25 });
    const n1 = 12345;
    const a = dropoutRun(be, { ...c, x, n: n1, p: 0.25 });
    const b = dropoutRun(be, { ...c, x: x.subarray(n1), n: c.n - n1, offset: c.offset + n1, p: 0.25 });
    assertBitEqual([...a.out, ...b.out], whole.out, `${be.name} dropout split out`);
    assertBitEqual([...a.mask, ...b.mask], whole.mask, `${be.name} dropout split mask`);
  }
  if (!nativeBackend) return;
  for (const kind of ['uniform', 'normal'] as const) {
    for (const c of FILL_CASES) {
      const a = withThreads(1, () => fill(nativeBackend!, { ...c, kind, a: 0, b: 1 }));
      const b = withThreads(2, () => fill(nativeBackend!, { ...c, kind, a: 0, b: 1 }));
      assertBitEqual(a, b, `${kind} 1 vs 2 threads offset ${c.offset}`);
    }
  }
});

// ===================================================================================================
// statistics
// ===================================================================================================
function moments(x: ArrayLike<number>): { mean: number; variance: number; min: number; max: number } {
  let s = 0, min = Infinity, max = -Infinity;
  for (let i = 0; i < x.length; i++) {
    s += x[i];
    min = Math.min(min, x[i]);
    max = Math.max(max, x[i]);
  }
  const mean = s / x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i] - mean) ** 2;
  return { mean, variance: v / x.length, min, max };
}

test('statistics of 1e5 samples: uniform, normal', () => {
  const n = 100000;
  const be = nativeBackend ?? jsBackend;
  const u = fill(be, { n, seed: 11, seedHi: 0, offset: 0, kind: 'uniform', a: 0, b: 1 });
  const mu = moments(u);
  assert.ok(Math.abs(mu.mean - 0.5) < 0.005, `uniform mean ${mu.mean}`);
  assert.ok(Math.abs(mu.variance - 1 / 12) < 0.002, `uniform variance ${mu.variance}`);
  assert.ok(mu.min >= 0 && mu.max < 1, `uniform range [${mu.min}, ${mu.max}]`);
  // 10 equal bins within 5 standard errors of n/10
  const bins = new Array<number>(10).fill(0);
  for (let i = 0; i < n; i++) bins[Math.floor(u[i] * 10)]++;
  for (const b of bins) assert.ok(Math.abs(b - n / 10) < 5 * Math.sqrt(n * 0.1 * 0.9), `uniform bins ${bins}`);
  const us = fill(be, { n, seed: 11, seedHi: 0, offset: 0, kind: 'uniform', a: -3, b: 5 });
  const ms = moments(us);
  assert.ok(Math.abs(ms.mean - 1) < 0.04 && ms.min >= -3 && ms.max <= 5, `scaled uniform ${JSON.stringify(ms)}`);

  const z = fill(be, { n, seed: 12, seedHi: 3, offset: 77, kind: 'normal', a: 0, b: 1 });
  const mz = moments(z);
  assert.ok(Math.abs(mz.mean) < 0.02, `normal mean ${mz.mean}`);
  assert.ok(Math.abs(mz.variance - 1) < 0.03, `normal variance ${mz.variance}`);
  let within1 = 0, within2 = 0;
  for (let i = 0; i < n; i++) {
    if (Math.abs(z[i]) < 1) within1++;
    if (Math.abs(z[i]) < 2) within2++;
  }
  assert.ok(Math.abs(within1 / n - 0.6827) < 0.01, `P(|z|<1) = ${within1 / n}`);
  assert.ok(Math.abs(within2 / n - 0.9545) < 0.006, `P(|z|<2) = ${within2 / n}`);
  assert.ok(mz.max < 6.7 && mz.min > -6.7, 'Box–Muller with 32-bit u1 is bounded by sqrt(64 ln 2) = 6.66');
  const zs = fill(be, { n, seed: 12, seedHi: 3, offset: 77, kind: 'normal', a: 2, b: 0.5 });
  const mzs = moments(zs);
  assert.ok(Math.abs(mzs.mean - 2) < 0.01 && Math.abs(mzs.variance - 0.25) < 0.01, `scaled normal ${JSON.stringify(mzs)}`);
  // different seeds / key words give different streams
  const other = fill(be, { n: 100, seed: 12, seedHi: 4, offset: 77, kind: 'normal', a: 0, b: 1 });
  let same = 0;
  for (let i = 0; i < 100; i++) if (other[i] === z[i]) same++;
  assert.ok(same < 3, 'seedHi changes the stream');
});

// ===================================================================================================
// dropout
// ===================================================================================================
function dropoutRun(be: Backend, p: Omit<DropoutParams, 'out' | 'mask'>): { out: Float32Array; mask: Uint8Array } {
  const out = new Float32Array(p.n).fill(NaN);
  const mask = new Uint8Array(p.n).fill(7);
  be.dropout({ ...p, out, mask });
  return { out, mask };
}

const PROBS = [0, 2 ** -24, 0.1, 1 / 3, 0.5, 0.9, 1 - 2 ** -24, 1];

test('dropout: keep iff uniform >= p, out = x * float(1/(1-p)) or 0; p = 0 identity, p = 1 all zero', () => {
  const backends = nativeBackend ? [nativeBackend, jsBackend] : [jsBackend];
  const n = 5003;
  const x = randArray(n, 5, 3) as Float32Array;
  x[0] = Infinity;
  x[1] = NaN;
  x[2] = -0;
  for (const be of backends) {
    for (const p of PROBS) {
      const args = { x, n, p, seed: 3, seedHi: 1, offset: TWO32 - 100 };
      const { out, mask } = dropoutRun(be, args);
      const u = fill(be, { n, seed: 3, seedHi: 1, offset: TWO32 - 100, kind: 'uniform', a: 0, b: 1 });
      const scale = p < 1 ? Math.fround(1 / (1 - p)) : 0;
      for (let i = 0; i < n; i++) {
        const keep = u[i] >= p;
        assert.equal(mask[i], keep ? 1 : 0, `${be.name} p=${p} mask[${i}]`);
        assert.ok(Object.is(out[i], keep ? Math.fround(x[i] * scale) : 0), `${be.name} p=${p} out[${i}] = ${out[i]}`);
      }
      if (p === 0) {
        assertBitEqual(out, x, `${be.name} p=0 is the identity`);
        assert.ok(mask.every((m) => m === 1));
      }
      if (p === 1) {
        assert.ok(out.every((v) => Object.is(v, 0)), `${be.name} p=1: all +0, no NaN`);
        assert.ok(mask.every((m) => m === 0));
      }
    }
    // in place (out aliases x)
    const y = Float32Array.from(x);
    const mask = new Uint8Array(n);
    be.dropout({ x: y, out: y, mask, n, p: 0.3, seed: 3, seedHi: 1, offset: 9 });
    const ref = dropoutRun(be, { x, n, p: 0.3, seed: 3, seedHi: 1, offset: 9 });
    assertBitEqual(y, ref.out, `${be.name} in place`);
  }
});

test('dropout keep rate over 1e5 elements', () => {
  const be = nativeBackend ?? jsBackend;
  const n = 100000;
  const x = new Float32Array(n).fill(1);
  for (const p of [0.1, 0.5, 0.8]) {
    const { out, mask } = dropoutRun(be, { x, n, p, seed: 17, seedHi: 0, offset: 0 });
    let kept = 0, sum = 0;
    for (let i = 0; i < n; i++) {
      kept += mask[i];
      sum += out[i];
    }
    assert.ok(Math.abs(kept / n - (1 - p)) < 0.01, `p=${p}: keep rate ${kept / n}`);
    assert.ok(Math.abs(sum / n - 1) < 0.05, `p=${p}: E[out] = ${sum / n} (inverted dropout preserves the mean)`);
  }
});

test('dropout native == js bit for bit (out and mask), every ISA; 1 vs 2 threads identical', async (t) => {
  if (!nativeBackend) return t.skip(NO_NATIVE);
  const cases = FILL_CASES.map((c, i) => ({ ...c, x: randArray(c.n, 300 + i, 2) as Float32Array }));
  const want = cases.map((c) => PROBS.map((p) => dropoutRun(jsBackend, { ...c, p })));
  await forEachIsa(t, (isa) => {
    for (const [ci, c] of cases.entries()) {
      for (const [pi, p] of PROBS.entries()) {
        const got = dropoutRun(nativeBackend!, { ...c, p });
        assertBitEqual(got.out, want[ci][pi].out, `${isa} case ${ci} p=${p} out`);
        assertBitEqual(got.mask, want[ci][pi].mask, `${isa} case ${ci} p=${p} mask`);
      }
    }
  });
  for (const c of cases) {
    const a = withThreads(1, () => dropoutRun(nativeBackend!, { ...c, p: 0.37 }));
    const b = withThreads(2, () => dropoutRun(nativeBackend!, { ...c, p: 0.37 }));
    assertBitEqual(a.out, b.out, 'out 1 vs 2 threads');
    assertBitEqual(a.mask, b.mask, 'mask 1 vs 2 threads');
  }
});

// ===================================================================================================
// validation
// ===================================================================================================
test('randomFill / dropout: bad arguments throw errors naming the kernel', () => {
  const backends = nativeBackend ? [nativeBackend, jsBackend] : [jsBackend];
  const base: RandomFillParams = { out: new Float32Array(8), n: 8, seed: 1, seedHi: 0, offset: 0, kind: 'uniform', a: 0, b: 1 };
  const x = new Float32Array(8), mask = new Uint8Array(8);
  const dbase: DropoutParams = { x, out: new Float32Array(8), mask, n: 8, p: 0.5, seed: 1, seedHi: 0, offset: 0 };
  for (const be of backends) {
    const rf = (over: Partial<RandomFillParams>): void => be.randomFill({ ...base, ...over } as RandomFillParams);
    assert.throws(() => rf({ out: new Float32Array(7) }), /randomFill.*'out'/, be.name);
    assert.throws(() => rf({ seed: TWO32 }), /randomFill.*seed/, be.name);
    assert.throws(() => rf({ seed: -1 }), /randomFill.*seed/, be.name);
    assert.throws(() => rf({ seedHi: 2 ** 40 }), /randomFill.*seedHi/, be.name);
    assert.throws(() => rf({ offset: 1.5 }), /randomFill.*offset/, be.name);
    assert.throws(() => rf({ offset: 2 ** 53 - 7 }), /randomFill.*offset \+ n/, be.name);
    assert.throws(() => rf({ kind: 'gaussian' as 'normal' }), /randomFill.*kind/, be.name);
    const dr = (over: Partial<DropoutParams>): void => be.dropout({ ...dbase, ...over } as DropoutParams);
    assert.throws(() => dr({ p: -0.1 }), /dropout.*p must be in \[0, 1\]/, be.name);
    assert.throws(() => dr({ p: 1.5 }), /dropout.*p must be in \[0, 1\]/, be.name);
    assert.throws(() => dr({ p: NaN }), /dropout.*p must be in \[0, 1\]/, be.name);
    assert.throws(() => dr({ mask: new Uint8Array(7) }), /dropout.*'mask'/, be.name);
    assert.throws(() => dr({ mask: new Int8Array(8) as unknown as Uint8Array }), /dropout.*'mask'/, be.name);
    assert.throws(() => dr({ x: new Float32Array(3) }), /dropout.*'x'/, be.name);
    assert.throws(() => dr({ seed: 0.5 }), /dropout.*seed/, be.name);
  }
  if (nativeBackend) {
    assert.throws(() => nativeBackend!.randomFill({ ...base, out: new Float64Array(8) }), /alignkit native randomFill: field 'out' must be a Float32Array/);
  }
});
