// KV cache and forward semantics: cached incremental decoding reproduces the full forward (<= 1e-5) with left
// padding and prefills of any chunk size; left padding gives the unpadded sequence's outputs; misuse of a cache
// is reported; forward leaks nothing under tidy and the cache frees its buffers on dispose().
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor/index.ts';
import { initModel, loadModel, type PretrainedLM } from '../../src/models/index.ts';
import { fixtureDir, ids2d, maxDelta, tokenLogprobs } from './helpers.ts';

const CASES = ['gpt2', 'llama', 'qwen3', 'mistral'];

/** Hidden states of every position, computed in one full forward. */
function fullHidden(model: PretrainedLM, ids: number[][], mask: number[][]): number[] {
  return T.noGrad(() => T.tidy(() => model.forward(ids2d(ids), { attentionMask: ids2d(mask) }).toArray()));
}

/** The same, feeding the sequence through the cache in chunks of the given sizes. */
function cachedHidden(model: PretrainedLM, ids: number[][], mask: number[][], chunks: number[], capacity: number): number[][] {
  const B = ids.length;
  const L = ids[0].length;
  const cache = model.createCache(B, capacity);
  const parts: number[][] = [];
  try {
    let at = 0;
    for (const n of chunks) {
      const part = ids.map((r) => r.slice(at, at + n));
      const m = mask.map((r) => r.slice(0, at + n));
      parts.push(T.noGrad(() => T.tidy(() => model.forward(ids2d(part), { attentionMask: ids2d(m), cache }).toArray())));
      at += n;
      assert.equal(cache.length, at);
    }
    assert.equal(at, L);
  } finally {
    cache.dispose();
  }
  return parts;
}

for (const name of CASES) {
  test(`kv cache ${name}: incremental decoding matches the full forward (left padding, chunked prefill)`, () => {
    const model = loadModel(fixtureDir(name), { trainable: false });
    try {
      const C = model.config.hiddenSize;
      const ids = [
        [0, 0, 0, 5, 9, 17, 33, 2, 71, 100, 8],
        [4, 44, 12, 90, 91, 3, 6, 120, 7, 1, 2],
      ];
      const mask = ids.map((r, b) => r.map((_, t) => (b === 0 && t < 3 ? 0 : 1)));
      const full = fullHidden(model, ids, mask);
      const L = ids[0].length;
      // capacity L + 2: single-token steps attend over the whole buffers (masked tail) once they are half full;
      // capacity 4L: they read a compacted prefix
      for (const [chunks, capacity] of [[[5, 1, 1, 1, 1, 1, 1], L + 2], [[5, 1, 1, 1, 1, 1, 1], 4 * L], [[1, 3, 4, 1, 2], L], [[L], L]] as const) {
        const parts = cachedHidden(model, ids, mask, [...chunks], capacity);
        let at = 0;
        chunks.forEach((n, ci) => {
          for (let b = 0; b < 2; b++)
            for (let t = 0; t < n; t++) {
              if (!mask[b][at + t]) continue;
              const got = parts[ci].slice((b * n + t) * C, (b * n + t + 1) * C);
              const want = full.slice((b * L + at + t) * C, (b * L + at + t + 1) * C);
              const d = maxDelta(got, want);
              assert.ok(d <= 1e-5, `${name} chunks ${chunks}: row ${b} position ${at + t} differs by ${d}`);
            }
          at += n;
        });
      }
    } finally {
      model.dispose();
    }
  });
}

test('left padding gives the same log-probs as the unpadded sequence (positions from the mask)', () => {
  for (const name of ['llama', 'gpt2']) {
    const model = loadModel(fixtureDir(name), { trainable: false });
    try {
      const seq = [7, 19, 3, 88, 41, 5];
      const alone = tokenLogprobs(model, [seq])[0];
      const padded = tokenLogprobs(model, [[0, 0, 0, ...seq], [1, 2, 3, 4, 5, 6, 7, 8, 9]], [[0, 0, 0, 1, 1, 1, 1, 1, 1], Array(9).fill(1)]);
      const d = maxDelta(padded[0].slice(3), alone);
      assert.ok(d <= 1e-5, `${name}: left-padded row differs from the unpadded sequence by ${d}`);
    } finally {
      model.dispose();
    }
  }
});

test('cache misuse is reported: capacity, batch, foreign model, disposed', () => {
  const a = initModel({ arch: 'llama', hidden: 16, layers: 1, heads: 2, vocab: 32, seed: 1 });
  const b = initModel({ arch: 'llama', hidden: 16, layers: 1, heads: 2, vocab: 32, seed: 2 });
  try {
    T.noGrad(() =>
      T.tidy(() => {
        const cache = a.createCache(1, 4);
        a.forward(ids2d([[1, 2, 3]]), { cache });
        assert.throws(() => a.forward(ids2d([[1, 2]]), { cache }), /3 cached \+ 2 new positions exceed the capacity of 4/);
        assert.equal(cache.length, 3, 'a refused forward leaves the cache as it was');
        assert.throws(() => a.forward(ids2d([[1], [2]]), { cache }), /created for batch 1, used with batch 2/);
        assert.throws(() => b.forward(ids2d([[1]]), { cache }), /not created by this model/);
        assert.throws(() => a.forward(ids2d([[1]]), { cache, attentionMask: ids2d([[1, 1]]) }), /attentionMask \[1,2\] must be \[1, 4\]/);
        cache.dispose();
        assert.throws(() => a.forward(ids2d([[1]]), { cache }), /disposed/);
        assert.throws(() => a.createCache(0, 4), /batch must be a positive integer/);
      }),
    );
  } finally {
    a.dispose();
    b.dispose();
  }
});

test('sliding_window shorter than the sequence is refused, not silently ignored', () => {
  const m = initModel({ arch: 'mistral', hidden: 16, layers: 2, heads: 2, vocab: 32 });
  try {
    m.config.slidingWindows[1] = 4;
    T.noGrad(() => T.tidy(() => m.forward(ids2d([[1, 2, 3, 4]]))));
    assert.throws(() => T.noGrad(() => T.tidy(() => m.forward(ids2d([[1, 2, 3, 4, 5]])))), /5 positions exceed sliding_window 4 of layer 1/);
  } finally {
    m.dispose();
  }
});

test('forward leaks nothing under tidy (inference and training), the cache frees its buffers', () => {
  const model = loadModel(fixtureDir('qwen3'));
  try {
    const ids = ids2d([[3, 4, 5, 6], [7, 8, 9, 10]]);
    const mask = ids2d([[0, 1, 1, 1], [1, 1, 1, 1]]);
    T.noGrad(() => T.tidy(() => model.forward(ids, { attentionMask: mask }).toArray())); // builds the rope tables
    const before = T.memoryInfo();
    T.noGrad(() => T.tidy(() => model.forward(ids, { attentionMask: mask }).toArray()));
    T.tidy(() => {
      const h = model.forward(ids, { attentionMask: mask });
      const loss = T.fusedCrossEntropy(T.reshape(h, [8, model.config.hiddenSize]), model.lmHeadWeight(), T.intTensor([4, 5, 6, -100, 8, 9, 10, -100]));
      loss.backward();
    });
    for (const p of model.namedParameters().values()) p.zeroGrad();
    const cache = model.createCache(2, 8);
    const withCache = T.memoryInfo();
    assert.ok(withCache.liveStorageBytes - before.liveStorageBytes >= cache.bytes);
    T.noGrad(() => T.tidy(() => void model.forward(ids, { attentionMask: mask, cache })));
    T.noGrad(() => T.tidy(() => void model.forward(ids2d([[1], [2]]), { attentionMask: ids2d([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]]), cache })));
    cache.dispose();
    const after = T.memoryInfo();
    assert.equal(after.liveTensors, before.liveTensors, 'live tensors');
    assert.equal(after.liveStorageBytes, before.liveStorageBytes, 'live storage bytes');
  } finally {
    model.dispose();
  }
});
