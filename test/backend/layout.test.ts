// Same-shape binary ops and the head-layout permutation: native equals the reference exactly (no rounding
// differences are possible: one IEEE operation per element, or a copy), on every ISA and thread count.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend, nativeBackend } from '../../src/backend/index.ts';
import type { BinaryOp } from '../../src/backend/types.ts';
import { randArray } from '../util.ts';
import { assertBitEqual, runnableIsas, withIsa, withThreads } from '../native_env.ts';

describe('binary', () => {
  for (const op of ['add', 'sub', 'mul'] as BinaryOp[])
    it(`${op}: native equals the reference bit for bit (odd sizes, every ISA, 1 and 2 threads)`, (t) => {
      if (!nativeBackend) return t.skip('native addon not built');
      for (const n of [0, 1, 7, 33, 100_003]) {
        const a = randArray(n, 1) as Float32Array;
        const b = randArray(n, 2) as Float32Array;
        const ref = new Float32Array(n);
        jsBackend.binary({ op, a, b, out: ref, n });
        if (n > 0) assert.equal(ref[0], Math.fround(op === 'add' ? a[0] + b[0] : op === 'sub' ? a[0] - b[0] : a[0] * b[0]));
        for (const isa of runnableIsas())
          for (const threads of [1, 2]) {
            const out = new Float32Array(n).fill(NaN);
            withIsa(isa, () => withThreads(threads, () => nativeBackend!.binary({ op, a, b, out, n })));
            assertBitEqual(out, ref, `${op} n=${n} ${isa} ${threads}t`);
          }
      }
    });
  it('in place (out aliases a) and errors name the kernel', (t) => {
    for (const be of nativeBackend ? [nativeBackend, jsBackend] : [jsBackend]) {
      const a = new Float32Array([1, 2, 3]);
      be.binary({ op: 'add', a, b: new Float32Array([10, 20, 30]), out: a, n: 3 });
      assert.deepEqual(Array.from(a), [11, 22, 33]);
      assert.throws(() => be.binary({ op: 'add', a, b: new Float32Array(2), out: a, n: 3 }), /binary.*'b' has 2 elements/);
      assert.throws(() => be.binary({ op: 'pow' as BinaryOp, a, b: a, out: a, n: 3 }), /binary.*unknown op/);
    }
    if (!nativeBackend) t.diagnostic('native addon not built: reference only');
  });
});

describe('permuteHeads', () => {
  it('moves [B,T,G,H,D] <-> [G,B,H,T,D] exactly and round-trips', (t) => {
    const cases = [[1, 1, 1, 1, 1], [2, 5, 3, 4, 7], [3, 17, 1, 9, 64]];
    for (const [B, T, G, H, D] of cases) {
      const n = B * T * G * H * D;
      const src = randArray(n, 3) as Float32Array;
      const ref = new Float32Array(n);
      jsBackend.permuteHeads({ src, dst: ref, batch: B, seq: T, groups: G, heads: H, headDim: D, toHeadsFirst: true });
      // element (b,t,g,h,d) of src lands at (g,b,h,t,d)
      const b = B - 1, tt = T - 1, g = G - 1, h = 0, d = D - 1;
      assert.equal(ref[(((g * B + b) * H + h) * T + tt) * D + d], src[(((b * T + tt) * G + g) * H + h) * D + d]);
      const back = new Float32Array(n);
      jsBackend.permuteHeads({ src: ref, dst: back, batch: B, seq: T, groups: G, heads: H, headDim: D, toHeadsFirst: false });
      assertBitEqual(back, src, 'round trip');
      if (!nativeBackend) continue;
      for (const threads of [1, 2]) {
        const out = new Float32Array(n).fill(NaN);
        withThreads(threads, () => nativeBackend!.permuteHeads({ src, dst: out, batch: B, seq: T, groups: G, heads: H, headDim: D, toHeadsFirst: true }));
        assertBitEqual(out, ref, `native ${B},${T},${G},${H},${D} ${threads}t`);
      }
    }
    if (!nativeBackend) t.diagnostic('native addon not built: reference only');
  });
  it('rejects short arrays and overlapping buffers', (t) => {
    if (!nativeBackend) return t.skip('native addon not built');
    const buf = new Float32Array(64);
    assert.throws(() => nativeBackend!.permuteHeads({ src: buf, dst: new Float32Array(8), batch: 1, seq: 2, groups: 1, heads: 2, headDim: 4, toHeadsFirst: true }), /permuteHeads.*'dst' has 8 elements/);
    assert.throws(() => nativeBackend!.permuteHeads({ src: buf.subarray(0, 16), dst: buf.subarray(8, 24), batch: 1, seq: 2, groups: 1, heads: 2, headDim: 4, toHeadsFirst: true }), /overlap/);
  });
});
