// Residual dropout while training: active only when an autograd graph is recorded, reproducible from the
// generator's seed and state, off at inference and with p = 0.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor/index.ts';
import { loadModel } from '../../src/models/index.ts';
import { fixtureDir, ids2d } from './helpers.ts';

for (const name of ['llama', 'gpt2']) {
  test(`dropout ${name}: training forward drops, inference does not, the generator state replays it`, () => {
    const model = loadModel(fixtureDir(name), { trainable: true });
    try {
      const ids = ids2d([[5, 9, 17, 33, 2, 71]]);
      const plain = T.tidy(() => model.forward(ids).toArray());
      const gen = new T.Generator(7);
      model.setDropout(0.3, gen);
      const state = gen.getState();
      const a = T.tidy(() => model.forward(ids).toArray());
      const b = T.tidy(() => model.forward(ids).toArray());
      assert.notDeepEqual(a, plain, 'dropout changed nothing while training');
      assert.notDeepEqual(a, b, 'two training forwards drew the same masks');
      gen.setState(state);
      assert.deepEqual(T.tidy(() => model.forward(ids).toArray()), a, 'restoring the generator state replays the masks');
      assert.deepEqual(T.noGrad(() => T.tidy(() => model.forward(ids).toArray())), plain, 'no dropout at inference');
      model.setDropout(0, gen);
      assert.deepEqual(T.tidy(() => model.forward(ids).toArray()), plain);
      assert.throws(() => model.setDropout(1, gen), /\[0, 1\)/);
    } finally {
      model.dispose();
    }
  });
}
