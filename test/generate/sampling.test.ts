// Logits processors and the sampler, hand-checked on small logit vectors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  applyMinP, applyRepetitionPenalty, applyTemperature, applyTopK, applyTopP, argmaxIndex, logprobAt, processLogits,
  resolveSampling, sampleIndex,
} from '../../src/generate/index.ts';
import { rng } from '../util.ts';

const NI = -Infinity;
const f = (xs: number[]): Float64Array => Float64Array.from(xs);
const arr = (x: Float64Array): number[] => Array.from(x);
const kept = (x: Float64Array): number[] => arr(x).flatMap((v, i) => (v === NI ? [] : [i]));

test('repetition penalty: positive logits divided, negative multiplied, zero unchanged, duplicates once', () => {
  const x = f([2, -2, 0, 3, -1]);
  applyRepetitionPenalty(x, [0, 1, 2, 0, 0, 1], 2);
  assert.deepEqual(arr(x), [1, -4, 0, 3, -1]);
  const y = f([2, -2]);
  applyRepetitionPenalty(y, [0, 1], 1);
  assert.deepEqual(arr(y), [2, -2]); // 1 = off
  const z = f([2, -2]);
  applyRepetitionPenalty(z, [0, 1, 5, -3], 0.5); // < 1 encourages repetition; out-of-range ids ignored
  assert.deepEqual(arr(z), [4, -1]);
});

test('temperature divides', () => {
  const x = f([1, -2, 4]);
  applyTemperature(x, 2);
  assert.deepEqual(arr(x), [0.5, -1, 2]);
});

test('top-k: keeps the k largest, keeps ties at the k-th value, k >= V and k = 0 are no-ops', () => {
  const x = f([1, 5, 3, 4, 2]);
  applyTopK(x, 2);
  assert.deepEqual(arr(x), [NI, 5, NI, 4, NI]);
  const ties = f([1, 3, 3, 0, 3]);
  applyTopK(ties, 2); // the 2nd largest is 3: every 3 stays
  assert.deepEqual(kept(ties), [1, 2, 4]);
  for (const k of [0, 5, 9]) {
    const y = f([1, 5, 3, 4, 2]);
    applyTopK(y, k);
    assert.deepEqual(arr(y), [1, 5, 3, 4, 2], `k = ${k}`);
  }
  const eq = f([2, 2, 2]);
  applyTopK(eq, 1); // all equal: all tie with the 1st
  assert.deepEqual(kept(eq), [0, 1, 2]);
  const one = f([0, 7, 1]);
  applyTopK(one, 1);
  assert.deepEqual(kept(one), [1]);
});

test('top-p: shortest most-likely prefix reaching p; p = 1 no-op; keeps at least one; deterministic ties', () => {
  const ln = Math.log;
  // probs 0.5, 0.3, 0.2 (shuffled order): p = 0.6 needs {0.5, 0.3}
  const x = f([ln(0.2), ln(0.5), ln(0.3)]);
  applyTopP(x, 0.6);
  assert.deepEqual(kept(x), [1, 2]);
  // p = 0.45 is reached by the top token alone
  const y = f([ln(0.2), ln(0.5), ln(0.3)]);
  applyTopP(y, 0.45);
  assert.deepEqual(kept(y), [1]);
  // tiny p: only the top token, never nothing
  const z = f([ln(0.2), ln(0.5), ln(0.3)]);
  applyTopP(z, 1e-9);
  assert.deepEqual(kept(z), [1]);
  // p = 1: untouched
  const w = f([ln(0.2), ln(0.5), ln(0.3)]);
  applyTopP(w, 1);
  assert.deepEqual(kept(w), [0, 1, 2]);
  // all equal (0.25 each): p = 0.5 keeps two, the lowest indices; p = 0.51 keeps three
  const e = f([1, 1, 1, 1]);
  applyTopP(e, 0.5);
  assert.deepEqual(kept(e), [0, 1]);
  const e2 = f([1, 1, 1, 1]);
  applyTopP(e2, 0.51);
  assert.deepEqual(kept(e2), [0, 1, 2]);
  // ties at the boundary: probs 0.2, 0.2, 0.2, 0.4 -> p = 0.55 keeps index 3 and the lowest-index tie (0)
  const t = f([ln(0.2), ln(0.2), ln(0.2), ln(0.4)]);
  applyTopP(t, 0.55);
  assert.deepEqual(kept(t), [0, 3]);
  // already-removed tokens (-inf from top-k) stay removed and do not count
  const r = f([NI, ln(0.6), ln(0.4), NI]);
  applyTopP(r, 0.9);
  assert.deepEqual(kept(r), [1, 2]);
});

test('min-p: drops tokens below minP times the top probability; keeps the top; 0 is a no-op', () => {
  const ln = Math.log;
  const x = f([ln(0.5), ln(0.3), ln(0.15), ln(0.05)]);
  applyMinP(x, 0.25); // threshold 0.125: 0.15 kept, 0.05 dropped
  assert.deepEqual(kept(x), [0, 1, 2]);
  const y = f([ln(0.5), ln(0.3), ln(0.15), ln(0.05)]);
  applyMinP(y, 1); // only tokens as likely as the top
  assert.deepEqual(kept(y), [0]);
  const z = f([ln(0.5), ln(0.3), ln(0.15), ln(0.05)]);
  applyMinP(z, 0);
  assert.deepEqual(kept(z), [0, 1, 2, 3]);
  const eq = f([3, 3, 3]);
  applyMinP(eq, 0.9);
  assert.deepEqual(kept(eq), [0, 1, 2]);
});

test('processLogits applies penalty -> temperature -> top-k -> top-p -> min-p in HF order', () => {
  // logits [4, 2, 1, -1, 3], seen {0, 3}, penalty 2: [2, 2, 1, -2, 3]; temperature 0.5: [4, 4, 2, -4, 6];
  // top-k 3: keeps 6, 4, 4 (indices 4, 0, 1); top-p 0.8 over softmax(6, 4, 4) = (0.787, 0.107, 0.107):
  // tail of index 1 alone = 0.107 <= 0.2 -> removed; tail of {0, 1} = 0.213 > 0.2 -> index 0 kept.
  const s = resolveSampling({ repetitionPenalty: 2, temperature: 0.5, topK: 3, topP: 0.8, minP: 0.1 });
  const x = f([4, 2, 1, -1, 3]);
  processLogits(x, s, [0, 3, 3]);
  assert.deepEqual(arr(x), [4, NI, NI, NI, 6]);
  // min-p then drops index 0 once it is large enough: exp(4 - 6) = 0.135 < 0.2
  const y = f([4, 2, 1, -1, 3]);
  processLogits(y, resolveSampling({ repetitionPenalty: 2, temperature: 0.5, topK: 3, topP: 0.8, minP: 0.2 }), [0, 3]);
  assert.deepEqual(kept(y), [4]);
  // greedy: only the penalty is applied (the filters cannot change the argmax)
  const g = f([4, 2, 1, -1, 3]);
  processLogits(g, resolveSampling({ repetitionPenalty: 2, temperature: 0, topK: 1 }), [0]);
  assert.deepEqual(arr(g), [2, 2, 1, -1, 3]);
  assert.equal(argmaxIndex(g), 4);
});

test('argmax takes the lowest index among ties', () => {
  assert.equal(argmaxIndex([1, 3, 3, 2]), 1);
  assert.equal(argmaxIndex([NI, NI, 0]), 2);
  assert.equal(argmaxIndex([5]), 0);
});

test('sampleIndex follows softmax exactly on a uniform grid and never picks removed tokens', () => {
  const probs = [0.1, 0, 0.6, 0.3];
  const logits = probs.map((p) => (p === 0 ? NI : Math.log(p)));
  const N = 1000;
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < N; i++) counts[sampleIndex(logits, (i + 0.5) / N)]++;
  assert.deepEqual(counts, [100, 0, 600, 300]);
  assert.equal(sampleIndex(logits, 0), 0);
  assert.equal(sampleIndex(logits, 0.999999999), 3);
  assert.equal(sampleIndex(logits, 1), 3); // u rounded up to 1: last token with nonzero probability
  assert.equal(sampleIndex([NI, 2, NI], 0.3), 1);
});

test('logprobAt is log softmax(logits / T)', () => {
  const x = [1, 2, 3];
  const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
  assert.ok(Math.abs(logprobAt(x, 2) - (3 - lse)) < 1e-15);
  const lse2 = Math.log(Math.exp(0.5) + Math.exp(1) + Math.exp(1.5));
  assert.ok(Math.abs(logprobAt(x, 0, 2) - (0.5 - lse2)) < 1e-15);
  assert.equal(logprobAt([NI, 0], 1), 0);
});

test('resolveSampling rejects invalid options with clear messages', () => {
  assert.throws(() => resolveSampling({ temperature: -0.1 }), /temperature must be a finite number >= 0/);
  assert.throws(() => resolveSampling({ temperature: NaN }), /temperature/);
  assert.throws(() => resolveSampling({ topP: 0 }), /topP must be in \(0, 1\]/);
  assert.throws(() => resolveSampling({ topP: 1.5 }), /topP must be in \(0, 1\]/);
  assert.throws(() => resolveSampling({ topK: -1 }), /topK must be an integer >= 0/);
  assert.throws(() => resolveSampling({ topK: 1.5 }), /topK/);
  assert.throws(() => resolveSampling({ minP: 2 }), /minP must be in \[0, 1\]/);
  assert.throws(() => resolveSampling({ repetitionPenalty: 0 }), /repetitionPenalty must be a finite number > 0/);
  assert.deepEqual(resolveSampling({}), { temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 });
});

test('top-k and top-p agree with brute-force full-sort references on large random vocabularies', () => {
  const r = rng(7);
  for (let trial = 0; trial < 12; trial++) {
    const V = trial % 3 === 0 ? 7 : 3000 + trial * 101;
    const scale = [0.5, 3, 8][trial % 3];
    // rounded values make exact ties common
    const x = Float64Array.from({ length: V }, () => Math.round((r() * 2 - 1) * scale * 4) / 4);
    // top-k reference: the k-th value of a full descending sort
    const k = 1 + Math.floor(r() * Math.min(V, 60));
    const kth = Float64Array.from(x).sort()[V - k];
    const refK = arr(x).flatMap((v, i) => (v >= kth ? [i] : []));
    const gotK = f(arr(x));
    applyTopK(gotK, k);
    assert.deepEqual(kept(gotK), refK, `top-k trial ${trial}`);
    // top-p reference: rank all tokens, drop the ranked suffix whose tail mass <= 1 - p
    const p = [0.3, 0.9, 0.99, 0.5][trial % 4];
    const m = Math.max(...x);
    const e = arr(x).map((v) => Math.exp(v - m));
    const S = e.reduce((a, b) => a + b, 0);
    const order = [...x.keys()].sort((a, b) => x[b] - x[a] || a - b);
    const removed = new Set<number>();
    let tail = 0;
    for (let j = V - 1; j >= 1; j--) {
      tail += e[order[j]];
      if (tail <= (1 - p) * S) removed.add(order[j]);
      else break;
    }
    const gotP = f(arr(x));
    applyTopP(gotP, p);
    const refP = [...x.keys()].filter((i) => !removed.has(i));
    assert.deepEqual(kept(gotP), refP, `top-p trial ${trial} (V=${V}, p=${p})`);
  }
});
