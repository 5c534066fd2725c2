// PPO policy / value losses, the GRPO loss and the entropy metric against hand-derived values (derivations in the
// comments), and their gradients against finite differences (src/tensor/gradcheck.ts, float64).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { add, gradcheck, tensor, tidy, type Tensor } from '../../../src/tensor/index.ts';
import { entropyFromLogits, grpoLoss, ppoPolicyLoss, ppoValueLoss, type GrpoLossOptions } from '../../../src/trainers/rl/core.ts';
import { assertClose } from '../../util.ts';

const f32 = (xs: number[]) => Float32Array.from(xs);

/** The loss value and d loss / d input of a loss built on a fresh trainable vector. */
function lossAndGrad(values: number[], build: (x: Tensor) => Tensor): { loss: number; grad: number[] } {
  return tidy(() => {
    const x = tensor(values).requireGrad();
    const loss = build(x);
    loss.backward();
    const out = { loss: loss.item(), grad: (x.grad as Tensor).toArray() };
    x.zeroGrad();
    return out;
  });
}

test('PPO clipped surrogate: the worked example r = 1.2 and 1.3, A = 0.5, ε = 0.2 gives objective 0.6 twice', () => {
  // min(r·A, clip(r)·A): r = 1.2 → min(0.6, 1.2·0.5) = 0.6;  r = 1.3 → min(0.65, 1.2·0.5) = 0.6 (clipped)
  // loss = mean(−0.6, −0.6) = −0.6
  const r = tidy(() => {
    const res = ppoPolicyLoss(tensor([Math.log(1.2), Math.log(1.3)]), f32([0, 0]), f32([0.5, 0.5]), 0.2);
    return { loss: res.loss.item(), ratioMean: res.ratioMean, approxKl: res.approxKl };
  });
  assert.ok(Math.abs(r.loss - -0.6) < 1e-6, `loss ${r.loss}`);
  assert.ok(Math.abs(r.ratioMean - 1.25) < 1e-6);
  // approxkl = ½ mean((ln 1.2)², (ln 1.3)²) = ¼ (0.0332412 + 0.0688350) = 0.0255190
  assert.ok(Math.abs(r.approxKl - 0.025519) < 1e-6, `approxKl ${r.approxKl}`);
});

test('PPO policy loss: every branch of max(−A r, −A clip(r)), its gradient and clipfrac', () => {
  // ε = 0.2; per token (ratio, A) → loss term, d term / d log-prob (= −A·r on the unclipped branch, 0 when clipped):
  //   (1.1,  0.5): max(−0.55, −0.55) = −0.55 inside the range → −0.55
  //   (1.3,  0.5): max(−0.65, −0.60) = −0.60 clipped            → 0
  //   (0.7, −1.0): max( 0.70,  0.80) =  0.80 clipped            → 0
  //   (1.3, −1.0): max( 1.30,  1.20) =  1.30 unclipped (pessimistic bound keeps the gradient) → 1.3
  //   (0.7,  1.0): max(−0.70, −0.80) = −0.70 unclipped          → −0.7
  // loss = (−0.55 − 0.6 + 0.8 + 1.3 − 0.7) / 5 = 0.05; gradients / 5 = [−0.11, 0, 0, 0.26, −0.14]
  // clipfrac = 2 / 5; ratioMean = 5.1 / 5 = 1.02
  const ratios = [1.1, 1.3, 0.7, 1.3, 0.7];
  const adv = f32([0.5, 0.5, -1, -1, 1]);
  let metrics = { clipfrac: 0, ratioMean: 0 };
  const { loss, grad } = lossAndGrad(ratios.map(Math.log), (x) => {
    const r = ppoPolicyLoss(x, new Float32Array(5), adv, 0.2);
    metrics = r;
    return r.loss;
  });
  assert.ok(Math.abs(loss - 0.05) < 1e-6, `loss ${loss}`);
  assertClose(grad, [-0.11, 0, 0, 0.26, -0.14], 1e-6, 0, 'gradient');
  assert.equal(metrics.clipfrac, 0.4);
  assert.ok(Math.abs(metrics.ratioMean - 1.02) < 1e-6);
  // normalizer: the same tokens split into two micro-batches, each divided by the total count 5, add up to the whole
  const a = lossAndGrad(ratios.slice(0, 2).map(Math.log), (x) => ppoPolicyLoss(x, new Float32Array(2), adv.subarray(0, 2), 0.2, { normalizer: 5 }).loss);
  const b = lossAndGrad(ratios.slice(2).map(Math.log), (x) => ppoPolicyLoss(x, new Float32Array(3), adv.subarray(2), 0.2, { normalizer: 5 }).loss);
  assert.ok(Math.abs(a.loss + b.loss - 0.05) < 1e-6);
  assertClose([...a.grad, ...b.grad], grad, 1e-7, 0, 'accumulated gradient');
});

test('PPO policy loss: gradient check (float64 finite differences), ratios away from the clip kinks', () => {
  const old = f32([0.1, -0.3, 0.2, -0.1, 0.05, 0]);
  // ratios exp(new − old) = 0.6, 0.9, 1.05, 1.35, 0.75, 1.15
  const ratios = [0.6, 0.9, 1.05, 1.35, 0.75, 1.15];
  const lp = ratios.map((r, i) => Math.log(r) + old[i]);
  const adv = f32([1, -0.5, 0.8, 1.2, -1.3, -0.7]);
  const res = gradcheck((x) => ppoPolicyLoss(x, old, adv, 0.2).loss, [{ values: lp, shape: [6] }]);
  assert.equal(res.checked, 6);
});

test('PPO clipped value loss: ½ mean(max((V − R)², (clip(V, V_old ± ε) − R)²)), gradient, clipfrac', () => {
  // ε_v = 0.2; per token (V, V_old, R):
  //   (1.0, 0.9,  1.5): inside [0.7, 1.1]: both errors −0.5 → ½·0.25 = 0.125; d/dV = −0.5
  //   (1.5, 1.0,  2.0): clip → 1.2: (−0.5)² = 0.25 < (−0.8)² = 0.64 → ½·0.64 = 0.32; clipped branch, V outside → 0
  //   (1.5, 1.0,  1.0): clip → 1.2: 0.25 > 0.04 → ½·0.25 = 0.125; d/dV = V − R = 0.5
  //   (0.0, 0.5, −1.0): clip → 0.3: 1 < 1.69 → ½·1.69 = 0.845; → 0
  // loss = (0.125 + 0.32 + 0.125 + 0.845) / 4 = 0.35375; gradient / 4 = [−0.125, 0, 0.125, 0]
  // clipfrac = 2/4; valueError = mean((V − R)²) = (0.25 + 0.25 + 0.25 + 1) / 4 = 0.4375; vpredMean = 4 / 4 = 1
  let m = { clipfrac: 0, valueError: 0, vpredMean: 0 };
  const { loss, grad } = lossAndGrad([1.0, 1.5, 1.5, 0.0], (x) => {
    const r = ppoValueLoss(x, f32([0.9, 1.0, 1.0, 0.5]), f32([1.5, 2.0, 1.0, -1.0]), 0.2);
    m = r;
    return r.loss;
  });
  assert.ok(Math.abs(loss - 0.35375) < 1e-6, `loss ${loss}`);
  assertClose(grad, [-0.125, 0, 0.125, 0], 1e-6, 0, 'gradient');
  assert.equal(m.clipfrac, 0.5);
  assert.ok(Math.abs(m.valueError - 0.4375) < 1e-6);
  assert.ok(Math.abs(m.vpredMean - 1) < 1e-6);
});

test('PPO value loss: gradient check', () => {
  const res = gradcheck(
    (v) => ppoValueLoss(v, f32([0.9, 1.0, 1.0, 0.5, 0.35, 0.1]), f32([1.5, 2.0, 1.0, -1, 0.9, -0.5]), 0.2).loss,
    [{ values: [1.0, 1.5, 1.5, 0.0, 0.3, -0.2], shape: [6] }],
  );
  assert.equal(res.checked, 6);
});

test('GRPO loss: clipped surrogate + β·k3, per-sequence token mean then batch mean (and bnpo, dr_grpo)', () => {
  // old = new (r = 1, one step per generation); rows: tokens 0, 1 → row 0 (A = 1), token 2 → row 1 (A = −0.5); β = 0.1
  // x = ref − new: ln 2, 0, −ln 2 → k3 = e^x − x − 1 = 1 − ln 2 = 0.306853, 0, ln 2 − 0.5 = 0.193147 (mean 0.5/3)
  // ℓ = −A + β k3 = −0.9693147, −1, 0.5193147
  //   grpo:    mean(mean(−0.9693147, −1), 0.5193147) = (−0.98465735 + 0.5193147) / 2 = −0.232671325
  //   bnpo:    (−0.9693147 − 1 + 0.5193147) / 3 = −1.45 / 3 = −0.483333
  //   dr_grpo: −1.45 / (2 rows · 4) = −0.18125
  // dℓ/dnew = −A·r + β (1 − e^x) = −1.1, −1, 0.55; grpo weights 1/(2·2), 1/(2·2), 1/(1·2) → [−0.275, −0.25, 0.275]
  const nw = [-1.2, -0.7, -2.0];
  const old = f32(nw);
  const ref = f32([nw[0] + Math.LN2, nw[1], nw[2] - Math.LN2]);
  const adv = f32([1, 1, -0.5]);
  const row = Int32Array.from([0, 0, 1]);
  const run = (o: GrpoLossOptions) => {
    let kl = 0;
    const r = lossAndGrad(nw, (x) => {
      const res = grpoLoss(x, old, ref, adv, row, 2, o);
      kl = res.meanKl;
      return res.loss;
    });
    return { ...r, kl };
  };
  const g = run({ cliprange: 0.2, beta: 0.1 });
  assert.ok(Math.abs(g.loss - -0.232671325) < 1e-6, `grpo ${g.loss}`);
  assertClose(g.grad, [-0.275, -0.25, 0.275], 1e-6, 0, 'grpo gradient');
  assert.ok(Math.abs(g.kl - 0.5 / 3) < 1e-6);
  assert.ok(Math.abs(run({ cliprange: 0.2, beta: 0.1, lossType: 'bnpo' }).loss - -1.45 / 3) < 1e-6);
  assert.ok(Math.abs(run({ cliprange: 0.2, beta: 0.1, lossType: 'dr_grpo', maxCompletionLength: 4 }).loss - -0.18125) < 1e-6);
  // β = 0: the reference may be absent; loss = mean(mean(−1, −1), 0.5) = −0.25
  const noRef = lossAndGrad(nw, (x) => grpoLoss(x, old, null, adv, row, 2, { cliprange: 0.2, beta: 0 }).loss);
  assert.ok(Math.abs(noRef.loss - -0.25) < 1e-6);
  assert.throws(() => grpoLoss(tensor(nw), old, null, adv, row, 2, { cliprange: 0.2, beta: 0.1 }), /beta = 0.1 > 0 needs refLogps/);
  assert.throws(() => grpoLoss(tensor(nw), old, ref, adv, row, 2, { cliprange: 0.2, beta: 0.1, lossType: 'dr_grpo' }), /needs maxCompletionLength/);
  assert.throws(() => grpoLoss(tensor(nw), old, ref, adv, Int32Array.from([0, 0, 2]), 2, { cliprange: 0.2, beta: 0.1 }), /row\[2\] = 2 is outside \[0, 2\)/);
});

test('GRPO clip ratios: low (r < 1 − ε, A < 0), high (r > 1 + ε_high, A > 0), clip-higher', () => {
  // ratios / advantages: (0.7, −1) low; (1.3, 1) high; (1.3, −1) neither; (1.25, 1) high with ε_high = 0.2 only
  const ratios = [0.7, 1.3, 1.3, 1.25];
  const adv = f32([-1, 1, -1, 1]);
  const row = Int32Array.from([0, 0, 1, 1]);
  const stats = (high?: number) =>
    tidy(() => {
      const r = grpoLoss(tensor(ratios.map(Math.log)), new Float32Array(4), null, adv, row, 2, { cliprange: 0.2, cliprangeHigh: high, beta: 0 });
      return { low: r.lowClipRatio, high: r.highClipRatio, region: r.clipRatio };
    });
  assert.deepEqual(stats(), { low: 0.25, high: 0.5, region: 0.75 });
  assert.deepEqual(stats(0.28), { low: 0.25, high: 0.25, region: 0.5 });
});

test('GRPO loss: gradient check for every loss type', () => {
  const old = f32([-1.0, -0.5, -2.0, -1.5, -0.8]);
  const ref = f32([-1.3, -0.4, -1.6, -1.5, -1.1]);
  const adv = f32([0.9, 0.9, -0.6, -0.6, 1.4]);
  const row = Int32Array.from([0, 0, 1, 1, 2]);
  // ratios exp(new − old) = 0.9, 1.1, 0.7, 1.3, 1.05 (away from 0.8 / 1.2)
  const lp = [0.9, 1.1, 0.7, 1.3, 1.05].map((r, i) => Math.log(r) + old[i]);
  for (const o of [{ lossType: 'grpo' }, { lossType: 'bnpo' }, { lossType: 'dr_grpo', maxCompletionLength: 3 }] as const) {
    const res = gradcheck((x) => grpoLoss(x, old, ref, adv, row, 3, { cliprange: 0.2, beta: 0.04, ...o }).loss, [{ values: lp, shape: [5] }]);
    assert.equal(res.checked, 5);
  }
});

test('losses reject bad shapes and values with messages naming the input', () => {
  tidy(() => {
    assert.throws(() => ppoPolicyLoss(tensor([0, 0], [1, 2]), f32([0, 0]), f32([0, 0]), 0.2), /expects a vector \[N\] of the trained tokens, got \[1,2\]/);
    assert.throws(() => ppoPolicyLoss(tensor([0, 0]), f32([0]), f32([0, 0]), 0.2), /oldLogps has 1 entries, expected one per token \(2\)/);
    assert.throws(() => ppoPolicyLoss(tensor([0]), f32([0]), f32([Number.NaN]), 0.2), /advantages\[0\] = NaN is not finite/);
    assert.throws(() => ppoValueLoss(tensor([0]), f32([0]), f32([0]), -0.1), /cliprangeValue must be a finite number >= 0, got -0.1/);
    assert.throws(() => ppoValueLoss(tensor([0]), f32([0]), f32([0]), 0.2, { normalizer: 0 }), /normalizer must be a finite number > 0, got 0/);
  });
});

test('the losses compose with other ops (total = policy + vf_coef · value)', () => {
  // Reusing the two hand-computed cases: 0.05 + 0.1 · 0.35375 = 0.085375
  const total = tidy(() => {
    const pg = ppoPolicyLoss(tensor([1.1, 1.3, 0.7, 1.3, 0.7].map(Math.log)), new Float32Array(5), f32([0.5, 0.5, -1, -1, 1]), 0.2).loss;
    const vf = ppoValueLoss(tensor([1.0, 1.5, 1.5, 0.0]), f32([0.9, 1.0, 1.0, 0.5]), f32([1.5, 2.0, 1.0, -1.0]), 0.2).loss;
    return add(pg, tensor([0.1 * vf.item()], [])).item();
  });
  assert.ok(Math.abs(total - 0.085375) < 1e-6);
});

test('entropyFromLogits: log V for uniform logits, −Σ p log p otherwise, 0 for a point mass', () => {
  const NEG = Number.NEGATIVE_INFINITY;
  // row 0: uniform over 4 → ln 4 = 1.386294
  // row 1: [ln 3, 0, −∞, −∞] → p = [0.75, 0.25, 0, 0] → 0.75·0.287682 + 0.25·1.386294 = 0.562335 (−∞ logits add 0)
  // row 2: [0, −∞, −∞, −∞] → a point mass → 0
  // row 3: [5, −∞, 0, 0] → p ∝ [e^5, 0, 1, 1]
  const h = tidy(() => entropyFromLogits(tensor([0, 0, 0, 0, Math.log(3), 0, NEG, NEG, 0, NEG, NEG, NEG, 5, NEG, 0, 0], [4, 4])));
  const z = Math.exp(5) + 2;
  const p = [Math.exp(5) / z, 1 / z, 1 / z];
  const h3 = -p.reduce((s, q) => s + q * Math.log(q), 0);
  assertClose(h, [1.3862944, 0.5623351, 0, h3], 1e-6, 0, 'entropy');
});
