// sequenceLogps: per-row completion log-probs against PyTorch/transformers (fixtures/preference, written by
// fixtures/make_preference_fixtures.py), padding rows and left padding, agreement with the rollout path
// (generate's per-token logprobs), the averaging / NLL helpers, and bad input.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import * as T from '../../src/tensor/index.ts';
import { loadModel, type PretrainedLM } from '../../src/models/index.ts';
import { generate } from '../../src/generate/index.ts';
import { averageLogps, meanTokenNll, segmentSum, sequenceLogps, type LogpsBatch } from '../../src/trainers/sequence_logps.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MODEL = join(ROOT, 'fixtures', 'models', 'llama');

interface Fixture {
  batch: { rows: number; seq: number; input_ids: number[][]; attention_mask: number[][]; labels: number[][] };
  reference_scales: Record<string, number>;
  policy: { logps: number[]; tokens: number[]; avg: number[]; full_logps: number[]; full_tokens: number[] };
  reference: { logps: number[]; tokens: number[]; avg: number[] };
}
const FIX = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'preference', 'llama_preference.json'), 'utf8')) as Fixture;

function toBatch(b: Fixture['batch']): LogpsBatch {
  return { rows: b.rows, seq: b.seq, inputIds: Int32Array.from(b.input_ids.flat()), attentionMask: Int32Array.from(b.attention_mask.flat()), labels: Int32Array.from(b.labels.flat()) };
}

/** |got - want| <= rtol * |want| + atol for every element, with a message naming the worst one. */
function assertRel(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rtol = 1e-5, atol = 1e-6): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    assert.ok(d <= rtol * Math.abs(want[i]) + atol, `${what}[${i}]: ${got[i]} vs torch ${want[i]} (|diff| ${d.toExponential(2)})`);
  }
}

function frozen(scales: Record<string, number> = {}): PretrainedLM {
  const m = loadModel(MODEL, { trainable: false });
  const params = m.namedParameters();
  for (const [name, s] of Object.entries(scales)) {
    const d = (params.get(name) as T.Tensor).data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] *= s; // Float32Array stores the correctly rounded float32 product, as torch
  }
  return m;
}

const evalLogps = (m: PretrainedLM, b: LogpsBatch, full = false) =>
  T.noGrad(() => {
    const r = sequenceLogps(m, b, { fullSequence: full });
    return { logps: r.logps.toArray(), tokens: Array.from(r.tokens), fullLogps: r.fullLogps?.toArray(), fullTokens: r.fullTokens ? Array.from(r.fullTokens) : undefined };
  });

test('per-row completion log-probs (prompt masked, right padding) match transformers, policy and reference model', () => {
  const batch = toBatch(FIX.batch);
  const policy = frozen();
  const reference = frozen(FIX.reference_scales);
  try {
    const p = evalLogps(policy, batch, true);
    assert.deepEqual(p.tokens, FIX.policy.tokens);
    assertRel(p.logps, FIX.policy.logps, 'policy logps');
    assertRel(p.fullLogps ?? [], FIX.policy.full_logps, 'policy full-sequence logps');
    assert.deepEqual(p.fullTokens, FIX.policy.full_tokens);
    const avg = T.noGrad(() => averageLogps(T.tensor(p.logps), Float32Array.from(p.tokens)).toArray());
    assertRel(avg, FIX.policy.avg, 'policy average logps');
    // without fullSequence: the same completion sums, no full fields
    const plain = evalLogps(policy, batch);
    assert.deepEqual(plain.logps, p.logps);
    assert.equal(plain.fullLogps, undefined);
    const r = evalLogps(reference, batch);
    assertRel(r.logps, FIX.reference.logps, 'reference logps');
    // the perturbation makes the reference differ from the policy on every row
    r.logps.forEach((v, i) => assert.ok(Math.abs(v - p.logps[i]) > 0.05, `row ${i}: reference terms are non-trivial`));
  } finally {
    policy.dispose();
    reference.dispose();
  }
});

test('padding rows, extra padding columns and left padding leave every row\'s log-prob unchanged', () => {
  const model = frozen();
  try {
    const base = toBatch(FIX.batch);
    const want = evalLogps(model, base).logps;
    const { rows, seq } = base;
    // two extra trailing pad columns and an all-padding row in the middle
    const S = seq + 2;
    const R = rows + 1;
    const padRow = 2;
    const right: LogpsBatch = { rows: R, seq: S, inputIds: new Int32Array(R * S), attentionMask: new Int32Array(R * S), labels: new Int32Array(R * S).fill(-100) };
    const left: LogpsBatch = { rows, seq: S, inputIds: new Int32Array(rows * S), attentionMask: new Int32Array(rows * S), labels: new Int32Array(rows * S).fill(-100) };
    for (let r = 0; r < rows; r++) {
      const dst = r < padRow ? r : r + 1;
      let len = 0;
      for (let t = 0; t < seq; t++) if (base.attentionMask[r * seq + t]) len = t + 1;
      for (let t = 0; t < len; t++) {
        right.inputIds[dst * S + t] = base.inputIds[r * seq + t];
        right.attentionMask[dst * S + t] = 1;
        right.labels[dst * S + t] = base.labels[r * seq + t];
        const lt = S - len + t; // left padding
        left.inputIds[r * S + lt] = base.inputIds[r * seq + t];
        left.attentionMask[r * S + lt] = 1;
        left.labels[r * S + lt] = base.labels[r * seq + t];
      }
    }
    // labels on padding positions are never scored (a collator bug must not leak pad tokens into the sums)
    right.labels[padRow * S + 3] = 5;
    const got = T.tidy(() => {
      const out = sequenceLogps(model, right);
      const v = out.logps.toArray();
      assert.equal(out.tokens[padRow], 0);
      assert.equal(v[padRow], 0);
      return v;
    });
    assertRel([...got.slice(0, padRow), ...got.slice(padRow + 1)], want, 'right padding + padding row', 1e-6, 1e-6);
    assertRel(evalLogps(model, left).logps, want, 'left padding', 1e-5, 1e-6);
  } finally {
    model.dispose();
  }
});

test('gradients through a batch with an all-padding row are finite and equal those without it', () => {
  const model = loadModel(MODEL, { trainable: true });
  try {
    const base = toBatch(FIX.batch);
    const gradOf = (b: LogpsBatch): number[] => {
      for (const p of model.namedParameters().values()) p.zeroGrad();
      T.tidy(() => T.sum(sequenceLogps(model, b).logps).backward());
      return (model.namedParameters().get('model.layers.0.self_attn.q_proj.weight') as T.Tensor).grad?.toArray() ?? [];
    };
    const want = gradOf(base);
    const R = base.rows + 1;
    const withPad: LogpsBatch = {
      rows: R, seq: base.seq,
      inputIds: Int32Array.from([...base.inputIds, ...new Array<number>(base.seq).fill(0)]),
      attentionMask: Int32Array.from([...base.attentionMask, ...new Array<number>(base.seq).fill(0)]),
      labels: Int32Array.from([...base.labels, ...new Array<number>(base.seq).fill(-100)]),
    };
    const got = gradOf(withPad);
    assert.ok(got.every(Number.isFinite), 'finite gradients');
    assertRel(got, want, 'q_proj gradient', 1e-5, 1e-7);
  } finally {
    model.dispose();
  }
});

test('training log-probs equal the rollout log-probs generate() reports (same code path), at T = 1 and T = 0.8', () => {
  const model = frozen();
  try {
    const prompts = [[1, 17, 45, 92], [1, 8, 33, 71, 102, 5], [1, 64, 29]];
    for (const temperature of [1, 0.8]) {
      const res = generate(model, { inputIds: prompts, maxNewTokens: 6, temperature: 1, seed: 11, returnLogprobs: true, logprobTemperature: temperature, stopTokenIds: [] });
      const seqs = prompts.map((p, b) => [...p, ...res[b].ids]);
      const S = Math.max(...seqs.map((s) => s.length));
      const R = prompts.length;
      const batch: LogpsBatch = { rows: R, seq: S, inputIds: new Int32Array(R * S), attentionMask: new Int32Array(R * S), labels: new Int32Array(R * S).fill(-100) };
      seqs.forEach((s, b) => {
        batch.inputIds.set(s, b * S);
        batch.attentionMask.fill(1, b * S, b * S + s.length);
        batch.labels.set(res[b].ids, b * S + prompts[b].length);
      });
      const got = T.noGrad(() => sequenceLogps(model, batch, { temperature }).logps.toArray());
      res.forEach((r, b) => {
        const rollout = (r.logprobs ?? []).reduce((a, v) => a + v, 0);
        assert.equal(r.logprobs?.length, r.ids.length);
        assert.ok(Math.abs(got[b] - rollout) <= 1e-5 * Math.max(1, Math.abs(rollout)), `T=${temperature} row ${b}: training ${got[b]} vs rollout ${rollout}`);
      });
    }
  } finally {
    model.dispose();
  }
});

test('averageLogps, meanTokenNll and segmentSum: values, gradients, empty rows', () => {
  // averages: [-6/3, 0/0 -> 0, -1/2]; NLL over rows 0 and 2: 7/5
  const avg = T.noGrad(() => averageLogps(T.tensor([-6, 0, -1]), Float32Array.from([3, 0, 2])).toArray());
  assert.deepEqual(avg, [-2, 0, -0.5]);
  assert.ok(Math.abs(T.noGrad(() => meanTokenNll(T.tensor([-6, -1]), Float32Array.from([3, 2])).item()) - 1.4) < 1e-7);
  assert.throws(() => meanTokenNll(T.tensor([0]), Float32Array.from([0])), /no scored tokens/);
  assert.throws(() => averageLogps(T.tensor([1, 2]), Float32Array.from([1])), /one per row/);
  // segmentSum: [1, 2, 3, 4] into segments [1, 0, 1, 1] keeping all but index 2 -> [2, 1 + 4]
  assert.deepEqual(T.noGrad(() => segmentSum(T.tensor([1, 2, 3, 4]), Int32Array.from([1, 0, 1, 1]), 2, Uint8Array.from([1, 1, 0, 1])).toArray()), [2, 5]);
  const seg = Int32Array.from([2, 0, 2, 1, 0]);
  const keep = Uint8Array.from([1, 1, 0, 1, 1]);
  T.gradcheck((v) => segmentSum(v, seg, 3, keep), [{ values: [0.3, -1.2, 0.7, 2.5, -0.1], shape: [5] }]);
  T.gradcheck((v) => averageLogps(v, Float32Array.from([4, 1, 0])), [{ values: [-3.1, -0.4, 0], shape: [3] }]);
  T.gradcheck((v) => meanTokenNll(v, Float32Array.from([4, 1])), [{ values: [-3.1, -0.4], shape: [2] }]);
  assert.throws(() => segmentSum(T.tensor([1]), Int32Array.from([3]), 2), /out of range/);
});

test('a batch without any labelled token skips the forward pass; bad input names the field', () => {
  const model = frozen();
  try {
    const ids = Int32Array.from([1, 5, 6, 7]);
    const mask = Int32Array.from([1, 1, 1, 1]);
    const none = T.noGrad(() => sequenceLogps(model, { rows: 2, seq: 2, inputIds: ids, attentionMask: mask, labels: new Int32Array(4).fill(-100) }));
    assert.deepEqual(none.logps.toArray(), [0, 0]);
    assert.deepEqual(Array.from(none.tokens), [0, 0]);
    const ok: LogpsBatch = { rows: 2, seq: 2, inputIds: ids, attentionMask: mask, labels: Int32Array.from([-100, 5, -100, 7]) };
    assert.throws(() => sequenceLogps(model, { ...ok, labels: Int32Array.from([-100, 5, -100]) }), /labels has 3 entries, expected rows \* seq = 2 \* 2 = 4/);
    assert.throws(() => sequenceLogps(model, { ...ok, labels: Int32Array.from([-100, 500, -100, 7]) }), /labels\[0\]\[1\] = 500 is neither a token id in \[0, 128\) nor -100/);
    assert.throws(() => sequenceLogps(model, { ...ok, labels: Int32Array.from([-100, -1, -100, 7]) }), /labels\[0\]\[1\] = -1/);
    assert.throws(() => sequenceLogps(model, { ...ok, attentionMask: Int32Array.from([1, 2, 1, 1]) }), /attentionMask\[0\]\[1\] = 2 is not 0 or 1/);
    assert.throws(() => sequenceLogps(model, { ...ok, rows: 0 }), /rows must be a positive integer/);
    assert.throws(() => sequenceLogps(model, { ...ok, labels: Int32Array.from([-100, 9, -100, 7]) }, { fullSequence: true }), /labels\[0\]\[1\] = 9 must equal inputIds\[0\]\[1\] = 5/);
    // with gradients the result is part of the graph; without, it is not
    const lp = T.tidy(() => {
      const out = sequenceLogps(loadOnceTrainable(), ok);
      return { requiresGrad: out.logps.requiresGrad, tokens: Array.from(out.tokens) };
    });
    assert.deepEqual(lp, { requiresGrad: true, tokens: [1, 1] });
    assert.equal(T.noGrad(() => sequenceLogps(model, ok).logps.requiresGrad), false);
  } finally {
    model.dispose();
    trainable?.dispose();
  }
});

let trainable: PretrainedLM | null = null;
function loadOnceTrainable(): PretrainedLM {
  trainable ??= loadModel(MODEL, { trainable: true });
  return trainable;
}
