// Preference losses: hand-computed cases (numbers derived in the comments), float64 finite-difference gradient
// checks, numerical stability, option validation, and end-to-end agreement with PyTorch on the tiny Llama fixture
// (fixtures/preference/llama_preference.json from fixtures/make_preference_fixtures.py): per-row losses, the batch
// loss, rewards and metrics, and the gradient of the loss w.r.t. the model's parameters, for every loss and option.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { jsBackend64, withBackend } from '../../src/backend/index.ts';
import * as T from '../../src/tensor/index.ts';
import { loadModel, type PretrainedLM } from '../../src/models/index.ts';
import { positionIdsFromMask } from '../../src/generate/logprobs.ts';
import {
  dpoLoss, ktoKlEstimate, ktoLoss, log1mExp, logSigmoid, orpoLoss, rewardMetrics, rewardModelLoss, simpoLoss, softplus, validateDpoOptions,
  type DpoLossOptions, type DpoLossType,
} from '../../src/trainers/preference_losses.ts';
import { averageLogps, meanTokenNll, sequenceLogps, type LogpsBatch } from '../../src/trainers/sequence_logps.ts';

const vec = (v: number[]): T.Tensor => T.tensor(v);
const arr = (t: T.Tensor): number[] => t.toArray();

/** |got - want| <= rtol * |want| + atol elementwise, naming the worst element. */
function assertRel(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rtol = 1e-5, atol = 1e-6): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    assert.ok(d <= rtol * Math.abs(want[i]) + atol, `${what}[${i}]: ${got[i]} vs ${want[i]} (|diff| ${d.toExponential(2)})`);
  }
}
const exact = (got: ArrayLike<number>, want: ArrayLike<number>, what: string): void => assertRel(got, want, what, 1e-12, 1e-14);

// Constants used below (float64):
//   −logσ(1)  = log(1 + e^-1) = 0.31326168751822286      −logσ(−1) = log(1 + e) = 1.3132616875182228
//   −logσ(0.5)= 0.4740769841801067                        −logσ(−2) = log(1 + e^2) = 2.1269280110429727
//   σ(−1) = 0.2689414213699951, σ(−0.3) = 0.425557483188341, σ(−0.5) = 0.3775406687981454, σ(−0.7) = 0.3318122278318339
const SP_M1 = 0.31326168751822286;
const SP_1 = 1.3132616875182228;

test('logSigmoid / softplus / log1mExp: values, extremes without overflow, gradient checks', () => {
  withBackend(jsBackend64, () =>
    T.noGrad(() => {
      exact(arr(logSigmoid(vec([1, -1, 0]))), [-SP_M1, -SP_1, -Math.LN2], 'logSigmoid');
      exact(arr(softplus(vec([-1, 1, 0]))), [SP_M1, SP_1, Math.LN2], 'softplus');
      // log(1 − e^x): x = log 0.5 → log 0.5; x = log 0.2 → log 0.8; x = −1e-10 → log(1e-10 − 5e-21) ≈ −23.025850929990458
      exact(arr(log1mExp(vec([Math.log(0.5), Math.log(0.2), -1e-10]))), [Math.log(0.5), Math.log(0.8), -23.025850929990458], 'log1mExp');
      // far tails: log σ(−1000) = −1000 (log(sigmoid) would be −inf), log σ(1000) = −e^-1000 = 0
      exact(arr(logSigmoid(vec([-1000, 1000]))), [-1000, 0], 'logSigmoid tails');
      exact(arr(softplus(vec([1000, -1000]))), [1000, 0], 'softplus tails');
      assert.equal(arr(log1mExp(vec([0])))[0], -Infinity); // probability 1: the log-odds are infinite (as in TRL)
    }),
  );
  // gradients in the tails are σ(∓x): 1 and 0, finite
  withBackend(jsBackend64, () => {
    const x = vec([-1000, 1000]).requireGrad();
    T.tidy(() => T.sum(logSigmoid(x)).backward());
    exact(arr(x.grad as T.Tensor), [1, 0], 'logSigmoid tail gradient');
  });
  const xs = { values: [-7.5, -2, -0.3, 0.01, 0.4, 3, 12], shape: [7] };
  T.gradcheck((x) => logSigmoid(x), [xs]);
  T.gradcheck((x) => softplus(x), [xs]);
  // both branches of log1mExp (x above and below −ln 2)
  T.gradcheck((x) => log1mExp(x), [{ values: [-9, -2.5, -0.9, -0.6, -0.2, -1e-3], shape: [6] }], { rtol: 1e-4, atol: 1e-5 });
});

// Two pairs with z = (πc − πr) − (refc − refr) = 2 and −2; with β = 0.5 the logits βz are ±1.
//   pair 0: πc −1, πr −3, refc −2, refr −2  →  z = 2 − 0 = 2
//   pair 1: πc −4, πr −2, refc −3, refr −3  →  z = −2
const PC = [-1, -4];
const PR = [-3, -2];
const RC = [-2, -3];
const RR = [-2, -3];
const dpo = (lossType: DpoLossType, labelSmoothing = 0, referenceFree = false, beta = 0.5, refs: [number[], number[]] | null = [RC, RR]) =>
  withBackend(jsBackend64, () =>
    T.noGrad(() => {
      const r = dpoLoss(vec(PC), vec(PR), refs ? vec(refs[0]) : null, refs ? vec(refs[1]) : null, { beta, lossType, labelSmoothing, referenceFree });
      return { losses: arr(r.losses), chosen: Array.from(r.chosenRewards), rejected: Array.from(r.rejectedRewards) };
    }),
  );

test('DPO sigmoid, cDPO, robust, hinge, IPO and reference-free: hand-computed values and rewards', () => {
  // sigmoid: −logσ(±1)
  const s = dpo('sigmoid');
  exact(s.losses, [SP_M1, SP_1], 'sigmoid');
  // rewards β(π − ref): chosen 0.5·(−1 + 2) = 0.5, 0.5·(−4 + 3) = −0.5; rejected 0.5·(−3 + 2) = −0.5, 0.5·(−2 + 3) = 0.5
  assertRel(s.chosen, [0.5, -0.5], 'chosen rewards', 1e-7, 0);
  assertRel(s.rejected, [-0.5, 0.5], 'rejected rewards', 1e-7, 0);
  // cDPO ε = 0.1: 0.9·softplus(−a) + 0.1·softplus(a), and softplus(a) − softplus(−a) = a, so = softplus(−a) + 0.1·a
  //   a = 1: 0.31326168751822286 + 0.1 = 0.41326168751822286;  a = −1: 1.3132616875182228 − 0.1 = 1.2132616875182228
  exact(dpo('sigmoid', 0.1).losses, [SP_M1 + 0.1, SP_1 - 0.1], 'cDPO');
  // robust ε = 0.1: (0.9·softplus(−a) − 0.1·softplus(a)) / 0.8 = (0.8·softplus(−a) − 0.1·a) / 0.8 = softplus(−a) − a/8
  //   a = 1: 0.18826168751822286;  a = −1: 1.4382616875182228
  exact(dpo('robust', 0.1).losses, [SP_M1 - 0.125, SP_1 + 0.125], 'robust');
  // ε = 0 reduces robust to plain DPO
  exact(dpo('robust', 0).losses, [SP_M1, SP_1], 'robust ε = 0');
  // hinge relu(1 − βz): relu(1 − 1) = 0, relu(1 + 1) = 2;  with β = 0.25: relu(0.5) = 0.5, relu(1.5) = 1.5
  exact(dpo('hinge').losses, [0, 2], 'hinge');
  exact(dpo('hinge', 0, false, 0.25).losses, [0.5, 1.5], 'hinge β = 0.25');
  // IPO (z − 1/(2β))² with β = 0.5: (2 − 1)² = 1, (−2 − 1)² = 9
  exact(dpo('ipo').losses, [1, 9], 'ipo');
  // reference-free with references that would flip pair 0: refc −1, refr −5 (ref log-ratio 4).
  //   with the reference: z = 2 − 4 = −2 → 1.3132616875182228;  reference-free: z = 2 → 0.31326168751822286
  const refs: [number[], number[]] = [[-1, -3], [-5, -3]];
  exact(dpo('sigmoid', 0, false, 0.5, refs).losses, [SP_1, SP_1], 'with reference');
  const free = dpo('sigmoid', 0, true, 0.5, refs);
  exact(free.losses, [SP_M1, SP_1], 'reference-free');
  // TRL still reports β(π − ref) as rewards when it drops ref from the logits: 0.5·(−1 + 1) = 0, 0.5·(−3 + 5) = 1
  assertRel(free.rejected, [1, 0.5], 'reference-free rejected rewards', 1e-7, 0);
  // and without any reference: β·π
  const none = dpo('sigmoid', 0, true, 0.5, null);
  exact(none.losses, [SP_M1, SP_1], 'no reference');
  assertRel(none.chosen, [-0.5, -2], 'rewards without reference', 1e-7, 0);
});

test('DPO gradients: hand-computed d loss / d π and finite-difference checks for every loss type', () => {
  // d/dπc of −logσ(βz) = −β·σ(−βz): pair 0 −0.5·σ(−1) = −0.13447071068499755, pair 1 −0.5·σ(1) = −0.36552928931500245;
  // d/dπr is the negation.
  withBackend(jsBackend64, () => {
    const pc = vec(PC).requireGrad();
    const pr = vec(PR).requireGrad();
    T.tidy(() => T.sum(dpoLoss(pc, pr, vec(RC), vec(RR), { beta: 0.5, lossType: 'sigmoid', labelSmoothing: 0, referenceFree: false }).losses).backward());
    exact(arr(pc.grad as T.Tensor), [-0.13447071068499755, -0.36552928931500245], 'dL/dπc');
    exact(arr(pr.grad as T.Tensor), [0.13447071068499755, 0.36552928931500245], 'dL/dπr');
  });
  const inputs = [
    { values: [-12.5, -30.25, -8, -20], shape: [4] },
    { values: [-14, -29, -9.5, -17], shape: [4] },
    { values: [-12, -31, -8.5, -19], shape: [4] },
    { values: [-13, -28.5, -10, -18.5], shape: [4] },
  ];
  const cases: DpoLossOptions[] = [
    { beta: 0.1, lossType: 'sigmoid', labelSmoothing: 0, referenceFree: false },
    { beta: 0.3, lossType: 'sigmoid', labelSmoothing: 0.2, referenceFree: false },
    { beta: 0.3, lossType: 'robust', labelSmoothing: 0.2, referenceFree: false },
    { beta: 0.1, lossType: 'hinge', labelSmoothing: 0, referenceFree: false }, // every βz is away from the kink at 1
    { beta: 0.1, lossType: 'ipo', labelSmoothing: 0, referenceFree: false },
    { beta: 0.1, lossType: 'sigmoid', labelSmoothing: 0, referenceFree: true },
  ];
  for (const o of cases) T.gradcheck((a, b, c, d) => dpoLoss(a, b, c, d, o).losses, inputs);
});

test('DPO on extreme log-ratios stays finite (stable log-sigmoid)', () => {
  const r = T.noGrad(() => dpoLoss(vec([-10]), vec([-5000]), vec([-5000]), vec([-10]), { beta: 0.5, lossType: 'sigmoid', labelSmoothing: 0.1, referenceFree: false }));
  // z = 4990 − (−4990) = 9980, a = 4990: 0.9·softplus(−4990) + 0.1·softplus(4990) = 0 + 499
  assertRel(arr(r.losses), [499], 'huge margin', 1e-6, 0);
});

test('DPO options: invalid values are rejected with the option named', () => {
  const ok: DpoLossOptions = { beta: 0.1, lossType: 'sigmoid', labelSmoothing: 0, referenceFree: false };
  assert.throws(() => validateDpoOptions({ ...ok, beta: 0 }), /beta must be a finite number > 0, got 0/);
  assert.throws(() => validateDpoOptions({ ...ok, lossType: 'kto_pair' as DpoLossType }), /loss_type must be one of sigmoid, ipo, hinge, robust, got 'kto_pair'/);
  assert.throws(() => validateDpoOptions({ ...ok, labelSmoothing: 0.6 }), /\[0, 0.5\] for loss_type 'sigmoid'/);
  assert.throws(() => validateDpoOptions({ ...ok, lossType: 'robust', labelSmoothing: 0.5 }), /\[0, 0.5\) for loss_type 'robust'/);
  assert.throws(() => validateDpoOptions({ ...ok, lossType: 'ipo', labelSmoothing: 0.1 }), /applies to loss_type 'sigmoid' and 'robust' only/);
  assert.throws(() => validateDpoOptions({ ...ok, labelSmoothing: -0.1 }), /label_smoothing must be a finite number >= 0/);
  T.noGrad(() => {
    assert.throws(() => dpoLoss(vec([1]), vec([1]), null, null, ok), /reference log-probs are required unless referenceFree/);
    assert.throws(() => dpoLoss(vec([1]), vec([1]), vec([1]), null, ok), /both reference log-probs or neither/);
    assert.throws(() => dpoLoss(vec([1, 2]), vec([1]), vec([1]), vec([1]), ok), /policyRejected has 1 rows, expected 2/);
    assert.throws(() => dpoLoss(T.tensor([1, 2], [1, 2]), vec([1]), vec([1]), vec([1]), ok), /policyChosen must be a vector \[batch\]/);
  });
});

test('reward metrics: means, strict accuracy, margin', () => {
  // chosen [0.5, −0.5, 1], rejected [−0.5, 0.5, 1]: wins 1 of 3 (a tie is not a win); margin (1 − 1 + 0)/3 = 0
  const m = rewardMetrics([0.5, -0.5, 1], [-0.5, 0.5, 1]);
  assert.deepEqual(m, { chosen: 1 / 3, rejected: 1 / 3, accuracy: 1 / 3, margin: 0 });
  assert.throws(() => rewardMetrics([1], []), /1 chosen but 0 rejected/);
});

test('reward-model loss: plain, with margins, with centering; metrics; gradient check', () => {
  withBackend(jsBackend64, () =>
    T.noGrad(() => {
      // r_c = [2, 0], r_r = [1, 1]: diffs [1, −1] → losses [0.31326…, 1.31326…], mean 0.8132616875182228
      const plain = rewardModelLoss(vec([2, 0]), vec([1, 1]), null, 0);
      exact([plain.loss.item()], [(SP_M1 + SP_1) / 2], 'plain');
      assert.equal(plain.accuracy, 0.5);
      assert.equal(plain.meanMargin, 0);
      assert.deepEqual([plain.minReward, plain.meanReward, plain.maxReward], [0, 1, 2]);
      // margins [0.5, 0]: diffs [0.5, −1] → (0.4740769841801067 + 1.3132616875182228)/2 = 0.8936693358491647
      const margin = rewardModelLoss(vec([2, 0]), vec([1, 1]), Float32Array.from([0.5, 0]), 0);
      exact([margin.loss.item()], [0.8936693358491647], 'margin');
      // the margin metric is mean(r_c − r_r) without the margins (TRL), still 0
      assert.equal(margin.meanMargin, 0);
      // centering 0.1 · mean((r_c + r_r)²) = 0.1 · (9 + 1)/2 = 0.5 → 1.3936693358491647
      const centered = rewardModelLoss(vec([2, 0]), vec([1, 1]), Float32Array.from([0.5, 0]), 0.1);
      exact([centered.loss.item()], [1.3936693358491647], 'margin + centering');
      // [B, 1] scores (a score head's output) are accepted
      exact([rewardModelLoss(T.tensor([2, 0], [2, 1]), T.tensor([1, 1], [2, 1]), null, 0).loss.item()], [(SP_M1 + SP_1) / 2], '[B, 1]');
      assert.throws(() => rewardModelLoss(vec([1, 2]), vec([1, 2]), Float32Array.from([1]), 0), /1 margins for 2 pairs/);
      assert.throws(() => rewardModelLoss(vec([1]), vec([1]), null, -1), /center_rewards_coefficient must be a finite number >= 0/);
      assert.throws(() => rewardModelLoss(T.tensor([1, 2], [1, 2]), vec([1]), null, 0), /\[batch\] or \[batch, 1\]/);
    }),
  );
  const m = Float32Array.from([0.5, 0, 1.25]);
  T.gradcheck((c, r) => rewardModelLoss(c, r, m, 0.05).loss, [{ values: [0.3, -1.1, 2], shape: [3] }, { values: [0.9, -0.2, 1.4], shape: [3] }]);
});

test('KTO: desirable and undesirable rows, KL clamping, weights, rewards, gradient check', () => {
  withBackend(jsBackend64, () =>
    T.noGrad(() => {
      // ρ = π − ref = [1, −1]; row 0 desirable, row 1 undesirable; β 0.5, λ_D 1, λ_U 2.
      // KL estimate 0.4 → z0 = 0.4:
      //   row 0: 1·(1 − σ(0.5·(1 − 0.4)))  = σ(−0.3)  = 0.425557483188341
      //   row 1: 2·(1 − σ(0.5·(0.4 + 1)))  = 2σ(−0.7) = 0.6636244556636678
      const o = { beta: 0.5, desirableWeight: 1, undesirableWeight: 2 };
      const r = ktoLoss(vec([-1, -2]), vec([-2, -1]), Uint8Array.from([1, 0]), 0.4, o);
      exact(arr(r.losses), [0.425557483188341, 2 * 0.3318122278318339], 'z0 = 0.4');
      assert.equal(r.kl, 0.4);
      assertRel(r.chosenRewards, [0.5], 'chosen rewards β·ρ', 1e-7, 0);
      assertRel(r.rejectedRewards, [-0.5], 'rejected rewards β·ρ', 1e-7, 0);
      // a negative estimate is clamped to z0 = 0: σ(−0.5) = 0.3775406687981454 and 2σ(−0.5)
      const c = ktoLoss(vec([-1, -2]), vec([-2, -1]), Uint8Array.from([1, 0]), -0.3, o);
      exact(arr(c.losses), [0.3775406687981454, 2 * 0.3775406687981454], 'clamped');
      assert.equal(c.kl, 0);
      // the KL estimate: mean(π_KL − ref_KL) = mean([0.5, −1.5, 2.5]) = 0.5, unclamped
      assert.equal(ktoKlEstimate(vec([-1, -3, 0.5]), vec([-1.5, -1.5, -2])), 0.5);
      assert.throws(() => ktoLoss(vec([1]), vec([1]), Uint8Array.from([1, 0]), 0, o), /2 desirable flags for 1 rows/);
      assert.throws(() => ktoLoss(vec([1]), vec([1]), Uint8Array.from([1]), Number.NaN, o), /KL estimate is NaN/);
      assert.throws(() => ktoLoss(vec([1]), vec([1]), Uint8Array.from([1]), 0, { ...o, undesirableWeight: -1 }), /undesirable_weight must be/);
    }),
  );
  const flags = Uint8Array.from([1, 0, 0, 1]);
  T.gradcheck((p, r) => ktoLoss(p, r, flags, 0.7, { beta: 0.2, desirableWeight: 1, undesirableWeight: 1.33 }).losses, [
    { values: [-10, -12, -7, -20], shape: [4] },
    { values: [-11, -10.5, -9, -19], shape: [4] },
  ]);
});

test('ORPO: closed-form odds ratios, metrics, gradient check', () => {
  withBackend(jsBackend64, () =>
    T.noGrad(() => {
      // pair 0: p_c = 0.5, p_r = 0.2 → odds 1 and 0.25 → log_odds = log 4; σ(log 4) = 4/5 → logσ = log 0.8 = −0.2231435513142097
      // pair 1: p_c = 0.25, p_r = 0.5 → odds 1/3 and 1 → log_odds = log(1/3); σ = 1/4 → logσ = log 0.25 = −1.3862943611198906
      // β = 0.1, NLL 2: loss = 2 − 0.1·mean(logσ) = 2 + 0.1·0.8047189562170501 = 2.080471895621705
      const r = orpoLoss(vec([Math.log(0.5), Math.log(0.25)]), vec([Math.log(0.2), Math.log(0.5)]), T.tensor([2], []), { beta: 0.1 });
      exact([r.loss.item()], [2.080471895621705], 'loss');
      exact(arr(r.losses), [0.02231435513142097, 0.13862943611198906], 'per-pair −β logσ');
      exact([r.logOddsRatio, r.logOddsChosen], [(Math.log(0.8) + Math.log(0.25)) / 2, (Math.log(4) + Math.log(1 / 3)) / 2], 'metrics');
      assert.equal(r.nll, 2);
      assertRel(r.chosenRewards, [0.1 * Math.log(0.5), 0.1 * Math.log(0.25)], 'rewards β·l', 1e-7, 0);
      assert.throws(() => orpoLoss(vec([-1]), vec([-2]), vec([1, 2]), { beta: 0.1 }), /chosenNll must be a scalar/);
    }),
  );
  T.gradcheck((c, r, n) => orpoLoss(c, r, n, { beta: 0.25 }).loss, [
    { values: [-0.4, -2.2, -0.05], shape: [3] },
    { values: [-1.1, -0.3, -3], shape: [3] },
    { values: [1.7], shape: [] },
  ], { rtol: 1e-4, atol: 1e-5 });
});

test('SimPO: target margin γ = β·gamma_beta_ratio, label smoothing, TRL simpo_gamma equivalence, gradient check', () => {
  withBackend(jsBackend64, () =>
    T.noGrad(() => {
      // β 2, γ/β 0.5: pair 0 (−1, −2): a = 2·(1 − 0.5) = 1 → 0.31326168751822286;
      //               pair 1 (−2, −1.5): a = 2·(−0.5 − 0.5) = −2 → log(1 + e^2) = 2.1269280110429727
      const r = simpoLoss(vec([-1, -2]), vec([-2, -1.5]), { beta: 2, gammaBetaRatio: 0.5, labelSmoothing: 0 });
      exact(arr(r.losses), [SP_M1, 2.1269280110429727], 'simpo');
      assertRel(r.chosenRewards, [-2, -4], 'rewards β·l', 1e-7, 0);
      // ε = 0.1: softplus(−a) + 0.1·a (as cDPO): 0.41326168751822286, 2.1269280110429727 − 0.2
      exact(arr(simpoLoss(vec([-1, -2]), vec([-2, -1.5]), { beta: 2, gammaBetaRatio: 0.5, labelSmoothing: 0.1 }).losses), [SP_M1 + 0.1, 2.1269280110429727 - 0.2], 'smoothed');
      // TRL: simpo_gamma = 1 = β·0.5, logits = (l_c − l_r) − simpo_gamma/β, loss −logσ(β·logits): the same a = 1
      const trl = -Math.log(1 / (1 + Math.exp(-(2 * ((-1 - -2) - 1 / 2)))));
      exact([arr(r.losses)[0]], [trl], 'TRL parametrisation');
      assert.throws(() => simpoLoss(vec([-1]), vec([-2]), { beta: 2, gammaBetaRatio: 0.5, labelSmoothing: 0.7 }), /label_smoothing must be in \[0, 0.5\]/);
    }),
  );
  T.gradcheck((c, r) => simpoLoss(c, r, { beta: 2.5, gammaBetaRatio: 0.4, labelSmoothing: 0.15 }).losses, [
    { values: [-1.2, -0.7, -2.5], shape: [3] },
    { values: [-1.9, -0.6, -1.5], shape: [3] },
  ]);
});

// ============================================================================================== PyTorch reference
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
interface GradRef {
  norm: number;
  entries: { param: string; index: number; value: number }[];
}
interface LossRef {
  options: Record<string, number | string | boolean>;
  losses: number[];
  loss: number;
  chosen_rewards: number[];
  rejected_rewards: number[];
  grad: GradRef;
  logps_key?: 'logps' | 'avg';
  desirable?: number[];
  kl?: number;
  nll?: number;
  log_odds_ratio?: number;
  log_odds_chosen?: number;
}
interface RewardRef {
  margins: number[] | null;
  center_rewards_coefficient: number;
  rewards_chosen: number[];
  rewards_rejected: number[];
  loss: number;
  accuracy: number;
  mean_margin: number;
  grad: GradRef;
}
type BatchRef = { rows: number; seq: number; input_ids: number[][]; attention_mask: number[][]; labels: number[][] };
interface Fixture {
  pairs: number;
  batch: BatchRef;
  kto_kl_batch: BatchRef;
  reference_scales: Record<string, number>;
  reference: { logps: number[]; avg: number[] };
  kto_kl: { policy_logps: number[]; reference_logps: number[]; estimate: number };
  grad_params: string[];
  losses: Record<string, LossRef>;
  reward: Record<string, RewardRef>;
}
const FIX = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'preference', 'llama_preference.json'), 'utf8')) as Fixture;
const toBatch = (b: BatchRef): LogpsBatch => ({
  rows: b.rows, seq: b.seq, inputIds: Int32Array.from(b.input_ids.flat()), attentionMask: Int32Array.from(b.attention_mask.flat()), labels: Int32Array.from(b.labels.flat()),
});

function gradSummaryCheck(model: PretrainedLM, ref: GradRef, what: string): void {
  const params = model.namedParameters();
  let sq = 0;
  for (const p of params.values()) if (p.grad) for (const g of p.grad.toArray()) sq += g * g;
  assertRel([Math.sqrt(sq)], [ref.norm], `${what}: gradient norm`);
  for (const e of ref.entries) {
    const g = (params.get(e.param) as T.Tensor).grad;
    assert.ok(g, `${what}: ${e.param} has a gradient`);
    assertRel([g.toArray()[e.index]], [e.value], `${what}: d loss / d ${e.param}[${e.index}]`);
  }
}

function zeroGrads(model: PretrainedLM): void {
  for (const p of model.namedParameters().values()) p.zeroGrad();
}

test('every loss, its rewards / metrics and its parameter gradient match PyTorch on the tiny Llama (1e-5 relative)', (t) => {
  const policy = loadModel(join(ROOT, 'fixtures', 'models', 'llama'), { trainable: true });
  const reference = loadModel(join(ROOT, 'fixtures', 'models', 'llama'), { trainable: false });
  try {
    for (const [name, s] of Object.entries(FIX.reference_scales)) {
      const d = (reference.namedParameters().get(name) as T.Tensor).data as Float32Array;
      for (let i = 0; i < d.length; i++) d[i] *= s;
    }
    const batch = toBatch(FIX.batch);
    const P = FIX.pairs;
    const ref = T.noGrad(() => {
      const r = sequenceLogps(reference, batch);
      return { logps: r.logps.toArray(), avg: averageLogps(r.logps, r.tokens).toArray() };
    });
    assertRel(ref.logps, FIX.reference.logps, 'reference logps');
    // KTO's KL batch (mismatched prompt / completion rows), both models, no gradient
    const klBatch = toBatch(FIX.kto_kl_batch);
    const kl = T.noGrad(() => {
      const p = sequenceLogps(policy, klBatch).logps;
      const r = sequenceLogps(reference, klBatch).logps;
      assertRel(p.toArray(), FIX.kto_kl.policy_logps, 'KL rows, policy');
      assertRel(r.toArray(), FIX.kto_kl.reference_logps, 'KL rows, reference');
      return ktoKlEstimate(p, r);
    });
    assertRel([kl], [FIX.kto_kl.estimate], 'KL estimate');

    let worst = 0;
    for (const [name, want] of Object.entries(FIX.losses)) {
      zeroGrads(policy);
      const got = T.tidy(() => {
        const out = sequenceLogps(policy, batch, { fullSequence: true });
        const avg = averageLogps(out.logps, out.tokens);
        const head = (x: T.Tensor): T.Tensor => T.narrow(x, 0, 0, P);
        const tail = (x: T.Tensor): T.Tensor => T.narrow(x, 0, P, P);
        let losses: T.Tensor;
        let loss: T.Tensor;
        let chosenRewards: Float32Array;
        let rejectedRewards: Float32Array;
        const extra: Record<string, number> = {};
        const o = want.options;
        if (name.startsWith('dpo_')) {
          const useAvg = want.logps_key === 'avg';
          const pol = useAvg ? avg : out.logps;
          const refT = T.tensor(useAvg ? ref.avg : ref.logps);
          const opts: DpoLossOptions = { beta: o.beta as number, lossType: o.loss_type as DpoLossType, labelSmoothing: o.label_smoothing as number, referenceFree: o.reference_free as boolean };
          ({ losses, chosenRewards, rejectedRewards } = dpoLoss(head(pol), tail(pol), head(refT), tail(refT), opts));
          loss = T.mean(losses);
        } else if (name === 'kto') {
          const r = ktoLoss(out.logps, T.tensor(ref.logps), Uint8Array.from(want.desirable ?? []), kl, {
            beta: o.beta as number, desirableWeight: o.desirable_weight as number, undesirableWeight: o.undesirable_weight as number,
          });
          ({ losses, chosenRewards, rejectedRewards } = r);
          extra.kl = r.kl;
          loss = T.mean(losses);
        } else if (name === 'orpo') {
          const nll = meanTokenNll(head(out.fullLogps as T.Tensor), (out.fullTokens as Float32Array).slice(0, P));
          const r = orpoLoss(head(avg), tail(avg), nll, { beta: o.beta as number });
          ({ losses, loss, chosenRewards, rejectedRewards } = r);
          Object.assign(extra, { nll: r.nll, log_odds_ratio: r.logOddsRatio, log_odds_chosen: r.logOddsChosen });
        } else if (name.startsWith('simpo')) {
          ({ losses, chosenRewards, rejectedRewards } = simpoLoss(head(avg), tail(avg), {
            beta: o.beta as number, gammaBetaRatio: o.gamma_beta_ratio as number, labelSmoothing: o.label_smoothing as number,
          }));
          loss = T.mean(losses);
        } else throw new Error(`unknown fixture loss ${name}`);
        const value = loss.item();
        loss.backward();
        return { losses: losses.toArray(), loss: value, chosenRewards: Array.from(chosenRewards), rejectedRewards: Array.from(rejectedRewards), extra };
      });
      assertRel(got.losses, want.losses, `${name}: per-row losses`);
      assertRel([got.loss], [want.loss], `${name}: loss`);
      assertRel(got.chosenRewards, want.chosen_rewards, `${name}: chosen rewards`);
      assertRel(got.rejectedRewards, want.rejected_rewards, `${name}: rejected rewards`);
      for (const k of ['kl', 'nll', 'log_odds_ratio', 'log_odds_chosen'] as const)
        if (want[k] !== undefined) assertRel([got.extra[k]], [want[k] as number], `${name}: ${k}`);
      gradSummaryCheck(policy, want.grad, name);
      worst = Math.max(worst, Math.abs(got.loss - want.loss) / Math.abs(want.loss));
    }
    // the fixture exercises KTO's z0 > 0 path
    assert.ok((FIX.losses.kto.kl ?? 0) > 0);
    t.diagnostic(`max relative |Δ loss| vs torch (float64 reference, float32 alignkit): ${worst.toExponential(2)}`);
  } finally {
    policy.dispose();
    reference.dispose();
  }
});

test('reward-model loss, accuracy, margin and score-head gradient match PyTorch (llama_reward, label 0 as the reward)', () => {
  const rm = loadModel(join(ROOT, 'fixtures', 'models', 'llama_reward'), { trainable: true });
  try {
    const batch = toBatch(FIX.batch);
    const P = FIX.pairs;
    for (const [name, want] of Object.entries(FIX.reward)) {
      zeroGrads(rm);
      const got = T.tidy(() => {
        const ids = T.intTensor(batch.inputIds, [batch.rows, batch.seq]);
        const mask = T.intTensor(batch.attentionMask, [batch.rows, batch.seq]);
        const scores = rm.scores(rm.forward(ids, { attentionMask: mask, positionIds: positionIdsFromMask(mask) }), mask); // [R, 2]
        const r = T.reshape(T.narrow(scores, 1, 0, 1), [batch.rows]);
        const rc = T.narrow(r, 0, 0, P);
        const rr = T.narrow(r, 0, P, P);
        const out = rewardModelLoss(rc, rr, want.margins ? Float32Array.from(want.margins) : null, want.center_rewards_coefficient);
        const res = { rc: rc.toArray(), rr: rr.toArray(), loss: out.loss.item(), accuracy: out.accuracy, meanMargin: out.meanMargin };
        out.loss.backward();
        return res;
      });
      assertRel(got.rc, want.rewards_chosen, `${name}: chosen rewards`);
      assertRel(got.rr, want.rewards_rejected, `${name}: rejected rewards`);
      assertRel([got.loss], [want.loss], `${name}: loss`);
      assert.equal(got.accuracy, want.accuracy);
      assertRel([got.meanMargin], [want.mean_margin], `${name}: margin`);
      gradSummaryCheck(rm, want.grad, name);
    }
  } finally {
    rm.dispose();
  }
});
