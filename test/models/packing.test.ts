// Packed rows: several documents in one row with per-document attention (documentIds) and positions that
// restart at 0 give every document exactly the hidden states it gets alone — no token sees another document.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor/index.ts';
import { loadModel } from '../../src/models/index.ts';
import { fixtureDir, ids2d, maxDelta } from './helpers.ts';

for (const name of ['gpt2', 'llama', 'qwen3']) {
  test(`packing ${name}: a packed row equals its documents run one by one`, () => {
    const model = loadModel(fixtureDir(name), { trainable: false });
    try {
      const C = model.config.hiddenSize;
      const docs = [[5, 9, 17, 33], [2, 71, 100], [8, 44, 12, 90, 91]];
      const alone = docs.map((d) => T.noGrad(() => T.tidy(() => model.forward(ids2d([d])).toArray())));
      const row = docs.flat();
      const positions = docs.flatMap((d) => d.map((_, i) => i));
      const docIds = docs.flatMap((d, j) => d.map(() => j));
      const packed = T.noGrad(() =>
        T.tidy(() => model.forward(ids2d([row]), { positionIds: ids2d([positions]), documentIds: ids2d([docIds]) }).toArray()),
      );
      let at = 0;
      for (const [j, d] of docs.entries()) {
        const got = packed.slice(at * C, (at + d.length) * C);
        assert.ok(maxDelta(got, alone[j]) < 1e-5, `document ${j}: max |Δ| ${maxDelta(got, alone[j])}`);
        at += d.length;
      }
      // without the document mask the later documents see the earlier ones
      const leaky = T.noGrad(() => T.tidy(() => model.forward(ids2d([row]), { positionIds: ids2d([positions]) }).toArray()));
      assert.ok(maxDelta(leaky.slice(4 * C, 7 * C), alone[1]) > 1e-3);
      assert.throws(() => model.forward(ids2d([row]), { documentIds: ids2d([[0, 1]]) }), /documentIds/);
    } finally {
      model.dispose();
    }
  });
}
