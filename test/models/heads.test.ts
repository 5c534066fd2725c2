// Value and score (reward) heads: golden agreement with HF LlamaForSequenceClassification, last-real-token
// selection with left and right padding, HF/TRL tensor names on save and load, and gradients flowing through
// the heads into the body.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as T from '../../src/tensor/index.ts';
import { openSafetensors } from '../../src/io/index.ts';
import { initModel, lastTokenIndices, loadModel, saveModel } from '../../src/models/index.ts';
import { fixtureDir, ids2d, maxDelta, readRef } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'alignkit-heads-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('reward model (LlamaForSequenceClassification) scores match transformers, left and right padding', (t) => {
  const ref = readRef('llama_reward');
  const model = loadModel(fixtureDir('llama_reward'), { trainable: false });
  try {
    assert.equal(model.config.architecture, 'sequence-classification');
    assert.equal(model.scoreHead?.numLabels, 2);
    assert.throws(() => model.lmHeadWeight(), /has no LM head/);
    let worst = 0;
    for (const side of ['left', 'right'] as const) {
      const r = ref.reward?.[side];
      assert.ok(r);
      const scores = T.noGrad(() =>
        T.tidy(() => {
          const mask = ids2d(r.mask);
          return model.scores(model.forward(ids2d(r.ids), { attentionMask: mask }), mask).toArray();
        }),
      );
      const d = maxDelta(scores, r.scores.flat());
      assert.ok(d <= 1e-4, `${side} padding: scores differ by ${d}`);
      worst = Math.max(worst, d);
    }
    t.diagnostic(`reward head: max |Δ score| vs transformers ${ref.transformers_version} = ${worst.toExponential(2)}`);
  } finally {
    model.dispose();
  }
});

test('lastTokenIndices picks the rightmost real token (left, right, no padding, empty row)', () => {
  const mask = ids2d([
    [1, 1, 1, 0, 0],
    [0, 0, 1, 1, 1],
    [1, 1, 1, 1, 1],
    [0, 0, 0, 0, 0],
  ]);
  assert.deepEqual([...lastTokenIndices(mask, 4, 5)], [2, 4, 4, 0]);
  assert.deepEqual([...lastTokenIndices(null, 2, 5)], [4, 4]);
  assert.throws(() => lastTokenIndices(mask, 4, 4), /must be \[4, 4\]/);
});

test('score head: same score for a sequence whatever the padding; saved as score.weight', () => {
  const model = initModel({ arch: 'qwen2', hidden: 16, layers: 1, heads: 2, kvHeads: 1, vocab: 40, seed: 3, initializerRange: 0.3 });
  try {
    model.attachScoreHead(1, 7);
    const seq = [5, 6, 7, 8];
    const s = T.noGrad(() =>
      T.tidy(() => {
        const run = (ids: number[][], mask: number[][]): number[] => {
          const m = ids2d(mask);
          return model.scores(model.forward(ids2d(ids), { attentionMask: m }), m).toArray();
        };
        return [run([seq], [[1, 1, 1, 1]]), run([[0, 0, ...seq]], [[0, 0, 1, 1, 1, 1]]), run([[...seq, 0, 0]], [[1, 1, 1, 1, 0, 0]])];
      }),
    );
    assert.ok(maxDelta(s[1], s[0]) <= 1e-5 && maxDelta(s[2], s[0]) <= 1e-5, JSON.stringify(s));
    const out = join(tmp, 'rm');
    saveModel(model, out);
    const r = openSafetensors(out);
    assert.deepEqual(r.info('score.weight').shape, [1, 16]);
    r.close();
    const back = loadModel(out);
    assert.equal(back.scoreHead?.numLabels, 1);
    assert.ok(maxDelta(back.scoreHead?.weight.toArray() ?? [], model.scoreHead?.weight.toArray() ?? [1]) === 0);
    back.dispose();
  } finally {
    model.dispose();
  }
});

test('value head: [B, T] values, TRL names v_head.summary.*, reload', () => {
  const model = loadModel(fixtureDir('llama'));
  try {
    const head = model.attachValueHead(5);
    assert.deepEqual(head.weight.shape, [1, 32]);
    assert.deepEqual(head.bias.shape, [1]);
    const ids = ids2d([[3, 4, 5], [6, 7, 8]]);
    const v = T.noGrad(() => T.tidy(() => { const x = model.values(model.forward(ids)); return { shape: [...x.shape], data: x.toArray() }; }));
    assert.deepEqual(v.shape, [2, 3]);
    const out = join(tmp, 'vh');
    saveModel(model, out);
    const r = openSafetensors(out);
    assert.deepEqual(r.info('v_head.summary.weight').shape, [1, 32]);
    assert.deepEqual(r.info('v_head.summary.bias').shape, [1]);
    assert.ok(r.has('lm_head.weight'));
    r.close();
    const back = loadModel(out);
    try {
      assert.ok(back.valueHead);
      const v2 = T.noGrad(() => T.tidy(() => back.values(back.forward(ids)).toArray()));
      assert.ok(maxDelta(v2, v.data) === 0);
    } finally {
      back.dispose();
    }
  } finally {
    model.dispose();
  }
});

test('gradients flow through the value and score heads into the body', () => {
  const model = loadModel(fixtureDir('gpt2'));
  try {
    const vh = model.attachValueHead(1);
    const sh = model.attachScoreHead(1, 2);
    const ids = ids2d([[5, 6, 7, 0, 0], [0, 0, 8, 9, 10]]);
    const mask = ids2d([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]]);
    const selected = T.tidy(() => {
      const h = model.forward(ids, { attentionMask: mask });
      const values = model.values(h); // [2, 5]
      const scores = model.scores(h, mask); // [2, 1]
      const loss = T.add(T.sum(T.mul(values, T.tensor([1, 1, 1, 0, 0, 0, 0, 1, 1, 1], [2, 5]))), T.sum(scores));
      loss.backward();
      return T.noGrad(() => T.tidy(() => T.keep(T.reshape(T.indexSelect(T.reshape(h, [10, 32]), 0, T.intTensor([2, 9])), [2, 32]))));
    });
    // d loss / d bias = number of unmasked value positions; d loss / d score.weight = sum of the selected hidden rows
    assert.ok(Math.abs((vh.bias.grad?.item() ?? 0) - 6) < 1e-5, `value bias grad ${vh.bias.grad?.item()}`);
    const sel = selected.toArray();
    const want = sel.slice(0, 32).map((x, i) => x + sel[32 + i]);
    assert.ok(maxDelta(sh.weight.grad?.toArray() ?? [], want) <= 1e-5);
    selected.dispose();
    const emb = model.namedParameters().get('transformer.wte.weight')?.grad;
    assert.ok(emb, 'embedding gradient');
    const g = emb.toArray();
    const row = (i: number): number => Math.max(...g.slice(i * 32, i * 32 + 32).map(Math.abs));
    assert.ok(row(5) > 0 && row(9) > 0 && row(10) > 0, 'real tokens get gradient');
    assert.equal(row(0), 0, 'padding tokens get none (masked keys, positions after the pooled token)');
    const layer = model.namedParameters().get('transformer.h.1.mlp.c_fc.weight')?.grad;
    assert.ok(layer && Math.max(...layer.toArray().map(Math.abs)) > 0);
    for (const p of model.namedParameters().values()) p.zeroGrad();
  } finally {
    model.dispose();
  }
});
