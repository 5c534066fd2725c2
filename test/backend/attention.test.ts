// Attention kernels: the JS reference against finite differences and against per-document runs, the native
// kernel against the JS reference (every ISA, odd shapes, masks, GQA, KV-cache offsets), thread-count
// bit-identity, and argument validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend, jsBackend64, nativeBackend } from '../../src/backend/index.ts';
import type { AttentionBackwardParams, AttentionParams, Backend, FloatArray } from '../../src/backend/types.ts';
import { nativeAddon } from '../../src/native/addon.ts';
import { assertClose, randArray, rng } from '../util.ts';

type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;
type MaskKind = 'none' | 'left' | 'random';

interface Case {
  B: number;
  Hq: number;
  Hkv: number;
  T: number;
  S: number;
  D: number;
  causal: boolean;
  mask?: MaskKind; // 'left': batch b has a growing left padding, the last batch is fully padded when B > 2
  docs?: boolean; // packed documents of random lengths
}

interface Inputs {
  q: FloatArray;
  k: FloatArray;
  v: FloatArray;
  dout: FloatArray;
  keyMask: Uint8Array | null;
  docIds: Int32Array | null;
}

interface Outputs {
  out: FloatArray;
  lse: FloatArray;
  dq: FloatArray;
  dk: FloatArray;
  dv: FloatArray;
}

function describe(c: Case): string {
  return `B${c.B} Hq${c.Hq} Hkv${c.Hkv} T${c.T} S${c.S} D${c.D}${c.causal ? ' causal' : ''}${c.mask && c.mask !== 'none' ? ` mask:${c.mask}` : ''}${c.docs ? ' docs' : ''}`;
}

function makeInputs(c: Case, seed: number, ctor: Ctor = Float32Array): Inputs {
  const r = rng(seed * 7919 + 13);
  let keyMask: Uint8Array | null = null;
  if (c.mask === 'left') {
    keyMask = new Uint8Array(c.B * c.S);
    for (let b = 0; b < c.B; b++) {
      const pad = c.B > 2 && b === c.B - 1 ? c.S : Math.min(c.S, b * 3 + 2);
      for (let j = pad; j < c.S; j++) keyMask[b * c.S + j] = 1;
    }
  } else if (c.mask === 'random') {
    keyMask = new Uint8Array(c.B * c.S);
    for (let x = 0; x < keyMask.length; x++) keyMask[x] = r() < 0.75 ? 1 : 0;
  }
  let docIds: Int32Array | null = null;
  if (c.docs) {
    docIds = new Int32Array(c.B * c.S);
    for (let b = 0; b < c.B; b++) {
      let id = 0;
      for (let j = 0; j < c.S; j++) {
        if (j > 0 && r() < 0.12) id++;
        docIds[b * c.S + j] = id;
      }
    }
  }
  return {
    q: randArray(c.B * c.Hq * c.T * c.D, seed + 1, 1, ctor),
    k: randArray(c.B * c.Hkv * c.S * c.D, seed + 2, 1, ctor),
    v: randArray(c.B * c.Hkv * c.S * c.D, seed + 3, 1, ctor),
    dout: randArray(c.B * c.Hq * c.T * c.D, seed + 4, 1, ctor),
    keyMask,
    docIds,
  };
}

function params(c: Case, x: Inputs, o: Outputs): AttentionBackwardParams {
  return {
    q: x.q, k: x.k, v: x.v, out: o.out, lse: o.lse, dout: x.dout, dq: o.dq, dk: o.dk, dv: o.dv,
    batch: c.B, headsQ: c.Hq, headsKV: c.Hkv, seqQ: c.T, seqK: c.S, headDim: c.D,
    scale: 1 / Math.sqrt(c.D), causal: c.causal, keyMask: x.keyMask, docIds: x.docIds,
  };
}

/** Runs forward then backward on `be`. Outputs start as NaN so "overwritten" is checked too. */
function runBoth(be: Backend, c: Case, x: Inputs, ctor: Ctor = Float32Array): Outputs {
  const mk = (n: number): FloatArray => new ctor(n).fill(NaN);
  const o: Outputs = {
    out: mk(c.B * c.Hq * c.T * c.D), lse: mk(c.B * c.Hq * c.T),
    dq: mk(c.B * c.Hq * c.T * c.D), dk: mk(c.B * c.Hkv * c.S * c.D), dv: mk(c.B * c.Hkv * c.S * c.D),
  };
  const p = params(c, x, o);
  be.attentionForward(p);
  be.attentionBackward(p);
  return o;
}

const FIELDS = ['out', 'lse', 'dq', 'dk', 'dv'] as const;

function compare(a: Outputs, ref: Outputs, what: string): void {
  assertClose(a.out, ref.out, 2e-5, 1e-4, `${what} out`);
  assertClose(a.lse, ref.lse, 2e-5, 1e-5, `${what} lse`);
  assertClose(a.dq, ref.dq, 3e-5, 2e-4, `${what} dq`);
  assertClose(a.dk, ref.dk, 3e-5, 2e-4, `${what} dk`);
  assertClose(a.dv, ref.dv, 3e-5, 2e-4, `${what} dv`);
}

function bitEqual(a: FloatArray, b: FloatArray, what: string): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${what}: element ${i}: ${a[i]} vs ${b[i]}`);
}

/** The ISAs this machine can run, in increasing order. */
function isas(): Array<'portable' | 'avx2' | 'avx512'> {
  if (!nativeAddon) return [];
  const all = ['portable', 'avx2', 'avx512'] as const;
  return all.slice(0, all.indexOf(nativeAddon.info().detectedIsa as (typeof all)[number]) + 1);
}

function withNative(fn: (addon: NonNullable<typeof nativeAddon>) => void): void {
  const addon = nativeAddon!;
  const { isa, threads } = addon.info();
  try {
    fn(addon);
  } finally {
    addon.setIsa(isa as 'portable' | 'avx2' | 'avx512');
    addon.setThreads(threads);
  }
}

// ----------------------------------------------------------------------------------------------- JS reference
test('js attention: float64 finite-difference gradients of q, k, v', () => {
  const cases: Case[] = [
    { B: 1, Hq: 4, Hkv: 2, T: 4, S: 6, D: 3, causal: true, mask: 'random' }, // KV cache offset, GQA, padding
    { B: 2, Hq: 2, Hkv: 1, T: 5, S: 5, D: 2, causal: false, docs: true },
    { B: 1, Hq: 2, Hkv: 2, T: 3, S: 3, D: 4, causal: true },
  ];
  for (const [ci, c] of cases.entries()) {
    const x = makeInputs(c, 100 + ci, Float64Array);
    const w = x.dout; // loss = sum(out * w)
    const loss = (): number => {
      const out = new Float64Array(c.B * c.Hq * c.T * c.D);
      const lse = new Float64Array(c.B * c.Hq * c.T);
      const p = params(c, x, { out, lse, dq: out, dk: out, dv: out });
      jsBackend64.attentionForward(p);
      let s = 0;
      for (let i = 0; i < out.length; i++) s += out[i] * w[i];
      return s;
    };
    const g = runBoth(jsBackend64, c, x, Float64Array);
    const eps = 1e-6;
    for (const name of ['q', 'k', 'v'] as const) {
      const arr = x[name];
      const grad = name === 'q' ? g.dq : name === 'k' ? g.dk : g.dv;
      for (let i = 0; i < arr.length; i++) {
        const keep = arr[i];
        arr[i] = keep + eps;
        const up = loss();
        arr[i] = keep - eps;
        const down = loss();
        arr[i] = keep;
        const fd = (up - down) / (2 * eps);
        assert.ok(Math.abs(fd - grad[i]) <= 1e-7 + 1e-6 * Math.abs(fd), `${describe(c)} d${name}[${i}]: backward ${grad[i]} vs finite difference ${fd}`);
      }
    }
  }
});

test('js attention: padded queries that see no key give out 0, lse -Infinity, zero gradients', () => {
  // left padding + causal: queries inside the padding see only padding keys; the last batch is all padding
  const c: Case = { B: 3, Hq: 2, Hkv: 1, T: 7, S: 7, D: 3, causal: true, mask: 'left' };
  const x = makeInputs(c, 5);
  const o = runBoth(jsBackend, c, x);
  let masked = 0;
  for (let b = 0; b < c.B; b++)
    for (let h = 0; h < c.Hq; h++)
      for (let i = 0; i < c.T; i++) {
        const row = (b * c.Hq + h) * c.T + i;
        const seesNothing = !x.keyMask!.subarray(b * c.S, b * c.S + i + 1).some((m) => m !== 0);
        if (!seesNothing) {
          assert.ok(Number.isFinite(o.lse[row]));
          continue;
        }
        masked++;
        assert.equal(o.lse[row], -Infinity);
        for (let d = 0; d < c.D; d++) {
          assert.equal(o.out[row * c.D + d], 0);
          assert.equal(o.dq[row * c.D + d], 0);
        }
      }
  assert.ok(masked >= c.Hq * c.T, 'the fully padded batch and the padded prefixes are covered');
  // fully padded batch: dk, dv are zero
  for (let x2 = (c.B - 1) * c.S * c.D; x2 < c.B * c.S * c.D; x2++) assert.equal(o.dk[x2] + o.dv[x2], 0);
});

/**
 * Packed documents never attend across a boundary: every output / gradient of a packed run equals the run of each
 * document on its own (a batch of one, T = S = the document's length).
 */
function checkPackedAgainstSeparate(be: Backend, c: Case, x: Inputs, o: Outputs, atol: number): void {
  const { D, S } = c;
  for (let b = 0; b < c.B; b++) {
    const ids = x.docIds!.subarray(b * S, (b + 1) * S);
    for (let s0 = 0; s0 < S;) {
      let s1 = s0 + 1;
      while (s1 < S && ids[s1] === ids[s0]) s1++;
      const len = s1 - s0;
      const sub: Case = { B: 1, Hq: c.Hq, Hkv: c.Hkv, T: len, S: len, D, causal: c.causal };
      const slice = (a: FloatArray, heads: number, seq: number): FloatArray => {
        const r = new Float32Array(heads * len * D);
        for (let h = 0; h < heads; h++) r.set(a.subarray(((b * heads + h) * seq + s0) * D, ((b * heads + h) * seq + s1) * D), h * len * D);
        return r;
      };
      const xs: Inputs = { q: slice(x.q, c.Hq, c.T), k: slice(x.k, c.Hkv, S), v: slice(x.v, c.Hkv, S), dout: slice(x.dout, c.Hq, c.T), keyMask: null, docIds: null };
      const os = runBoth(be, sub, xs);
      const what = `${be.name} ${describe(c)} document [${s0}, ${s1}) of batch ${b}`;
      assertClose(slice(o.out, c.Hq, c.T), os.out, atol, 1e-4, `${what} out`);
      assertClose(slice(o.dq, c.Hq, c.T), os.dq, atol, 1e-4, `${what} dq`);
      assertClose(slice(o.dk, c.Hkv, S), os.dk, atol, 1e-4, `${what} dk`);
      assertClose(slice(o.dv, c.Hkv, S), os.dv, atol, 1e-4, `${what} dv`);
      const lse = new Float32Array(c.Hq * len);
      for (let h = 0; h < c.Hq; h++) lse.set(o.lse.subarray((b * c.Hq + h) * c.T + s0, (b * c.Hq + h) * c.T + s1), h * len);
      assertClose(lse, os.lse, atol, 1e-5, `${what} lse`);
      s0 = s1;
    }
  }
}

test('attention docIds: packed documents equal separate per-document runs (js and native)', () => {
  const cases: Case[] = [
    { B: 2, Hq: 4, Hkv: 2, T: 40, S: 40, D: 5, causal: true, docs: true },
    { B: 1, Hq: 2, Hkv: 1, T: 150, S: 150, D: 16, causal: true, docs: true }, // documents across 64-row tiles
    { B: 1, Hq: 2, Hkv: 2, T: 23, S: 23, D: 3, causal: false, docs: true },
  ];
  for (const [ci, c] of cases.entries()) {
    const x = makeInputs(c, 40 + ci);
    for (const be of nativeBackend ? [jsBackend, nativeBackend] : [jsBackend]) {
      checkPackedAgainstSeparate(be, c, x, runBoth(be, c, x), 2e-5);
    }
  }
});

// ----------------------------------------------------------------------------------------------- native vs JS
const gridCases: Case[] = [];
for (const D of [1, 3, 8, 13, 64, 80]) {
  for (const T of [1, 5, 33]) {
    gridCases.push({ B: 1, Hq: 4, Hkv: 4, T, S: T, D, causal: true });
    gridCases.push({ B: 2, Hq: 4, Hkv: 2, T, S: T + 7, D, causal: true }); // KV cache: S > T
    gridCases.push({ B: 1, Hq: 8, Hkv: 2, T, S: T + 3, D, causal: false });
    gridCases.push({ B: 3, Hq: 4, Hkv: 2, T, S: T, D, causal: true, mask: 'left' }); // incl. fully masked rows
    gridCases.push({ B: 2, Hq: 4, Hkv: 1, T, S: T, D, causal: true, docs: true });
  }
}
// shapes that cross the 64-row / 64-key tiles, odd tile remainders, decode (T = 1) with a long cache
const bigCases: Case[] = [
  { B: 1, Hq: 4, Hkv: 1, T: 130, S: 150, D: 13, causal: true },
  { B: 2, Hq: 2, Hkv: 2, T: 129, S: 129, D: 64, causal: false, mask: 'random' },
  { B: 1, Hq: 4, Hkv: 2, T: 200, S: 200, D: 8, causal: true, docs: true, mask: 'random' },
  { B: 1, Hq: 8, Hkv: 2, T: 1, S: 150, D: 80, causal: true },
  { B: 1, Hq: 2, Hkv: 1, T: 70, S: 65, D: 7, causal: false }, // S < T without causal
  { B: 3, Hq: 4, Hkv: 4, T: 66, S: 66, D: 20, causal: true, mask: 'left' },
];

test('native attention matches the JS reference (forward and backward, every ISA)', (t) => {
  if (!nativeBackend) {
    t.skip(`native addon unavailable; native attention tests skipped`);
    return;
  }
  const nb = nativeBackend;
  const cases = [...gridCases, ...bigCases];
  const refs = cases.map((c, ci) => {
    const x = makeInputs(c, 1000 + ci);
    return { c, x, ref: runBoth(jsBackend, c, x) };
  });
  withNative((addon) => {
    for (const isa of isas()) {
      addon.setIsa(isa);
      for (const { c, x, ref } of refs) compare(runBoth(nb, c, x), ref, `native ${isa} ${describe(c)}`);
    }
  });
});

test('native attention: avx512 path', (t) => {
  if (!nativeAddon || nativeAddon.info().detectedIsa !== 'avx512') {
    t.skip('AVX-512 not available on this CPU; the avx512 path is covered only where it runs');
    return;
  }
  // (the main comparison above already loops over avx512 when detected; this states it explicitly)
  withNative((addon) => {
    addon.setIsa('avx512');
    for (const c of bigCases) {
      const x = makeInputs(c, 77);
      compare(runBoth(nativeBackend!, c, x), runBoth(jsBackend, c, x), `native avx512 ${describe(c)}`);
    }
  });
});

test('native attention: rows with no visible key give out 0, lse -Infinity, zero gradients', (t) => {
  if (!nativeBackend) {
    t.skip('native addon unavailable');
    return;
  }
  const c: Case = { B: 3, Hq: 2, Hkv: 1, T: 70, S: 70, D: 5, causal: true, mask: 'left' };
  const x = makeInputs(c, 9);
  const o = runBoth(nativeBackend, c, x);
  for (let h = 0; h < c.Hq; h++)
    for (let i = 0; i < c.T; i++) {
      const row = (2 * c.Hq + h) * c.T + i; // batch 2 is all padding
      assert.equal(o.lse[row], -Infinity);
      for (let d = 0; d < c.D; d++) assert.equal(o.out[row * c.D + d] + o.dq[row * c.D + d], 0);
    }
  for (let x2 = 2 * c.S * c.D; x2 < 3 * c.S * c.D; x2++) assert.equal(o.dk[x2] + o.dv[x2], 0);
  // no keys at all
  const empty: Case = { B: 1, Hq: 2, Hkv: 1, T: 3, S: 0, D: 4, causal: false };
  const e = runBoth(nativeBackend, empty, makeInputs(empty, 3));
  assert.ok(e.lse.every((v) => v === -Infinity));
  assert.ok(e.out.every((v) => v === 0) && e.dq.every((v) => v === 0));
});

test('native attention: bit-identical for 1, 2 and 4 threads (both backward schedules)', (t) => {
  if (!nativeBackend) {
    t.skip('native addon unavailable');
    return;
  }
  // B*Hkv = 1 or 2 makes multi-thread runs take the two-pass backward, single-thread runs the one-pass one
  const cases: Case[] = [
    { B: 1, Hq: 4, Hkv: 1, T: 150, S: 170, D: 13, causal: true, mask: 'random', docs: true },
    { B: 1, Hq: 2, Hkv: 2, T: 100, S: 100, D: 32, causal: true },
    { B: 2, Hq: 6, Hkv: 3, T: 70, S: 70, D: 7, causal: false, mask: 'left' },
  ];
  const nb = nativeBackend;
  withNative((addon) => {
    for (const isa of isas()) {
      addon.setIsa(isa);
      for (const [ci, c] of cases.entries()) {
        const x = makeInputs(c, 500 + ci);
        addon.setThreads(1);
        const one = runBoth(nb, c, x);
        for (const n of [2, 4]) {
          addon.setThreads(n);
          const many = runBoth(nb, c, x);
          for (const f of FIELDS) bitEqual(many[f], one[f], `${isa} ${describe(c)} ${f} with ${n} threads vs 1`);
        }
      }
    }
  });
});

// ----------------------------------------------------------------------------------------------- bad input
test('attention rejects bad input with errors naming the kernel', () => {
  const c: Case = { B: 1, Hq: 4, Hkv: 2, T: 5, S: 6, D: 3, causal: true };
  const x = makeInputs(c, 1);
  const fresh = (): Outputs => ({
    out: new Float32Array(60), lse: new Float32Array(20), dq: new Float32Array(60), dk: new Float32Array(36), dv: new Float32Array(36),
  });
  for (const be of nativeBackend ? [jsBackend, nativeBackend] : [jsBackend]) {
    const good = params(c, x, fresh());
    be.attentionForward(good);
    be.attentionBackward(good);
    const bad: Array<[string, Partial<AttentionBackwardParams>]> = [
      ['short q', { q: new Float32Array(59) }],
      ['short k', { k: new Float32Array(35) }],
      ['short lse', { lse: new Float32Array(19) }],
      ['headsQ not a multiple of headsKV', { headsQ: 3, q: new Float32Array(45), out: new Float32Array(45), lse: new Float32Array(15) }],
      ['causal with S < T', { seqK: 4 }],
      ['short keyMask', { keyMask: new Uint8Array(5) }],
      ['keyMask of the wrong type', { keyMask: new Int32Array(6) as unknown as Uint8Array }],
      ['short docIds', { docIds: new Int32Array(5) }],
      ['non-integer dim', { headDim: 2.5 }],
    ];
    if (be.name === 'native') bad.push(['float64 data on native', { q: new Float64Array(60) }]);
    for (const [what, patch] of bad) {
      assert.throws(() => be.attentionForward({ ...good, ...patch } as AttentionParams), /attentionForward/, `${be.name} forward: ${what}`);
      assert.throws(() => be.attentionBackward({ ...good, ...patch }), /attentionBackward/, `${be.name} backward: ${what}`);
    }
    for (const f of ['dout', 'dq', 'dk', 'dv'] as const) {
      assert.throws(() => be.attentionBackward({ ...good, [f]: new Float32Array(good[f].length - 1) }), new RegExp(`attentionBackward.*${f}`), `${be.name}: short ${f}`);
    }
  }
});
