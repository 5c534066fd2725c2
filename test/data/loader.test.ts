// Batch order and train/eval split: seeded, a permutation per epoch, exactly resumable.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchSampler, Xoshiro128, permutation, splitTrainEval } from '../../src/data/loader.ts';

describe('Xoshiro128', () => {
  it('xoshiro128** from state {1, 2, 3, 4}: the first outputs, computed by hand from the algorithm', () => {
    // out = rotl(s1 * 5, 7) * 9. Step 1: s1 = 2 -> rotl(10, 7) * 9 = 1280 * 9 = 11520. The update makes
    // s = {7, 0, 1026, 12288}: out = 0. Then s = {12295, 1029, 1029, 25165824}: rotl(5145, 7) * 9 = 5927040.
    const g = new Xoshiro128([1, 2, 3, 4]);
    assert.deepEqual([g.next(), g.next(), g.next()], [11520, 0, 5927040]);
  });

  it('below(n) is uniform-ish and in range; permutations are permutations', () => {
    const g = Xoshiro128.fromSeed([42]);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60000; i++) counts[g.below(6)]++;
    for (const c of counts) assert.ok(Math.abs(c - 10000) < 400, String(counts));
    const p = permutation(1000, Xoshiro128.fromSeed([7]));
    assert.deepEqual(Array.from(p).sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
    assert.deepEqual(Array.from(permutation(1000, Xoshiro128.fromSeed([7]))), Array.from(p));
    assert.notDeepEqual(Array.from(permutation(1000, Xoshiro128.fromSeed([8]))), Array.from(p));
    assert.throws(() => new Xoshiro128([0, 0, 0, 0]), /all-zero/);
  });
});

describe('BatchSampler', () => {
  const take = (s: BatchSampler, n: number) => Array.from({ length: n }, () => s.next());

  it('each epoch is a permutation, keyed by (seed, epoch); the last batch may be smaller', () => {
    const s = new BatchSampler(10, { batchSize: 4, seed: 1 });
    assert.equal(s.batchesPerEpoch, 3);
    const e0 = take(s, 3);
    const e1 = take(s, 3);
    assert.deepEqual(e0.map((b) => b.indices.length), [4, 4, 2]);
    assert.deepEqual(e0.map((b) => b.epoch), [0, 0, 0]);
    assert.deepEqual(e1.map((b) => b.epoch), [1, 1, 1]);
    const flat = (bs: { indices: number[] }[]) => bs.flatMap((b) => b.indices);
    assert.deepEqual([...flat(e0)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual([...flat(e1)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.notDeepEqual(flat(e0), flat(e1));
    // same seed, same order; another seed, another order
    assert.deepEqual(flat(take(new BatchSampler(10, { batchSize: 4, seed: 1 }), 3)), flat(e0));
    assert.notDeepEqual(flat(take(new BatchSampler(10, { batchSize: 4, seed: 2 }), 3)), flat(e0));
  });

  it('restoring {epoch, cursor} mid-epoch reproduces exactly the remaining batches', () => {
    const a = new BatchSampler(23, { batchSize: 5, seed: 99 });
    take(a, 7); // epoch 1, two batches in
    const saved = a.state();
    assert.deepEqual(saved, { epoch: 1, cursor: 2, seed: 99 });
    const rest = take(a, 9);
    const b = new BatchSampler(23, { batchSize: 5, seed: 12345 }); // the saved seed wins
    b.restore(JSON.parse(JSON.stringify(saved)));
    assert.deepEqual(take(b, 9), rest);
    assert.throws(() => b.restore({ epoch: 0, cursor: 6, seed: 1 }), /cursor 6 out of range \[0, 5\]/);
  });

  it('shuffle: false and dropLast', () => {
    const s = new BatchSampler(7, { batchSize: 3, seed: 0, shuffle: false, dropLast: true });
    assert.equal(s.batchesPerEpoch, 2);
    assert.deepEqual(take(s, 3).map((b) => b.indices), [[0, 1, 2], [3, 4, 5], [0, 1, 2]]);
    assert.throws(() => new BatchSampler(2, { batchSize: 3, seed: 0, dropLast: true }), /no full batch/);
    assert.throws(() => new BatchSampler(0, { batchSize: 3, seed: 0 }), /size must be a positive integer/);
    assert.throws(() => new BatchSampler(5, { batchSize: 3, seed: 0.5 }), /seed must be a safe integer/);
  });
});

describe('splitTrainEval', () => {
  it('a seeded split into sorted, disjoint, complete index lists', () => {
    const s = splitTrainEval(100, { evalFraction: 0.1, seed: 3 });
    assert.equal(s.eval.length, 10);
    assert.equal(s.train.length, 90);
    assert.deepEqual([...s.train, ...s.eval].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
    assert.deepEqual(s.eval, [...s.eval].sort((a, b) => a - b));
    assert.deepEqual(splitTrainEval(100, { evalFraction: 0.1, seed: 3 }), s);
    assert.notDeepEqual(splitTrainEval(100, { evalFraction: 0.1, seed: 4 }).eval, s.eval);
    assert.equal(splitTrainEval(10, { evalFraction: 0.01, seed: 0 }).eval.length, 1, 'rounded up');
    assert.equal(splitTrainEval(10, { evalSize: 3, seed: 0 }).eval.length, 3);
    assert.deepEqual(splitTrainEval(4, { seed: 0 }), { train: [0, 1, 2, 3], eval: [] });
  });

  it('errors', () => {
    assert.throws(() => splitTrainEval(10, { evalFraction: 0.1, evalSize: 1, seed: 0 }), /not both/);
    assert.throws(() => splitTrainEval(10, { evalFraction: 1, seed: 0 }), /evalFraction must be in \[0, 1\)/);
    assert.throws(() => splitTrainEval(3, { evalSize: 3, seed: 0 }), /leaves none to train on/);
  });
});
