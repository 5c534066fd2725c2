// Whitening, PPO token rewards, GAE, and the GRPO / RLOO group baselines against hand-derived numbers (derivations
// in the comments) and against their non-recursive definitions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  gae, groupAdvantages, maskedRows, maskedVar, perTokenAdvantages, rlooAdvantages, selectMasked, tokenRewards, whiten,
} from '../../../src/trainers/rl/advantages.ts';
import { assertClose } from '../../util.ts';

const f32 = (xs: number[]) => Float32Array.from(xs);
const u8 = (xs: number[]) => Uint8Array.from(xs);

test('whiten: TRL masked_whiten (unbiased variance, + 1e-8), with and without a mask and shift', () => {
  // [1, 2, 3, 4]: mean 2.5, unbiased var = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3, std 1.2909944
  //   → (x − 2.5) / sqrt(5/3 + 1e-8) = [−1.161895, −0.387298, 0.387298, 1.161895]
  assertClose(whiten(f32([1, 2, 3, 4]), null), [-1.1618950, -0.3872983, 0.3872983, 1.1618950], 1e-6, 0, 'no mask');
  // mask [1, 0, 1, 1] over [1, 100, 3, 5]: mean 3, var = (4 + 0 + 4) / 2 = 4, std 2;
  // every entry is transformed (TRL), the masked 100 too: (100 − 3) / 2 = 48.5
  const m = u8([1, 0, 1, 1]);
  assertClose(whiten(f32([1, 100, 3, 5]), m), [-1, 48.5, 0, 1], 1e-6, 0, 'masked');
  // shiftMean = false adds the mean back: (x − 3) / 2 + 3
  assertClose(whiten(f32([1, 100, 3, 5]), m, false), [2, 51.5, 3, 4], 1e-6, 0, 'scale only');
  assert.equal(maskedVar([1, 2, 3, 4], null, false), 1.25);
  assert.throws(() => whiten(f32([1, 2]), u8([0, 1])), /unbiased variance needs at least 2 selected entries, the mask selects 1/);
  assert.throws(() => whiten(f32([1, 2]), u8([0, 0])), /the mask selects no entries/);
  assert.throws(() => whiten(f32([1, 2]), u8([1])), /mask has 1 entries, values 2/);
});

test('tokenRewards: −β·kl on every response token, the score added at each row\'s last one', () => {
  // row 0 tokens 0..2, row 1 tokens 0..1; β = 0.1
  //   nonScore = −0.1 · kl = [−0.01, 0.02, −0.03, 0 | −0.04, 0, 0, 0]  (kl at padding ignored)
  //   rewards: + 1.5 at [0][2] → −0.03 + 1.5 = 1.47; − 2 at [1][1] → 0 − 2 = −2
  const { rewards, nonScore } = tokenRewards(f32([1.5, -2]), f32([0.1, -0.2, 0.3, 5, 0.4, 0, 7, 7]), u8([1, 1, 1, 0, 1, 1, 0, 0]), 2, 4, 0.1);
  assertClose(nonScore, [-0.01, 0.02, -0.03, 0, -0.04, 0, 0, 0], 1e-7, 0, 'nonScore');
  assertClose(rewards, [-0.01, 0.02, 1.47, 0, -0.04, -2, 0, 0], 1e-7, 0, 'rewards');
  assert.throws(() => tokenRewards(f32([1, 1]), f32([0, 0]), u8([1, 0]), 2, 1, 0.1), /row 1 has no response token/);
  assert.throws(() => tokenRewards(f32([1]), f32([0, 0]), u8([1, 1]), 1, 3, 0.1), /kl has 2 entries, expected batch \* seq = 1 \* 3 = 3/);
  assert.throws(() => tokenRewards(f32([1]), f32([Number.NaN]), u8([1]), 1, 1, 0.1), /kl\[0\]\[0\] = NaN is not finite/);
});

// GAE by its closed form A_t = Σ_{l ≥ 0} (γλ)^l δ_{t+l} over one row's response tokens (no recursion), V = 0 after the end.
function gaeByDefinition(r: number[], v: number[], gamma: number, lam: number): number[] {
  const n = r.length;
  const delta = r.map((rt, t) => rt + gamma * (t + 1 < n ? v[t + 1] : 0) - v[t]);
  return r.map((_, t) => {
    let a = 0;
    for (let l = 0; t + l < n; l++) a += (gamma * lam) ** l * delta[t + l];
    return a;
  });
}

test('GAE on a 5-step trajectory with a terminal (γ = 0.9, λ = 0.8), and a row with a hole', () => {
  // Row 0: 5 response tokens then padding (whose garbage must not leak in). γλ = 0.72.
  //   δ4 = 1.0 + 0.9·0 − 0.8 = 0.2 (terminal: V after the last token is 0)      A4 = 0.2
  //   δ3 = 0 + 0.9·0.8 − 0.6 = 0.12                                              A3 = 0.12 + 0.72·0.2 = 0.264
  //   δ2 = −0.2 + 0.9·0.6 − 0.3 = 0.04                                           A2 = 0.04 + 0.72·0.264 = 0.23008
  //   δ1 = 0.1 + 0.9·0.3 − 0.4 = −0.03                                           A1 = −0.03 + 0.72·0.23008 = 0.1356576
  //   δ0 = 0 + 0.9·0.4 − 0.5 = −0.14                                             A0 = −0.14 + 0.72·0.1356576 = −0.042326528
  //   returns = A + V = [0.457673472, 0.5356576, 0.53008, 0.864, 1.0]
  // Row 1: mask [0, 1, 1, 0, 1, 0]: tokens 1, 2, 4 (the hole at 3 is skipped: token 2's next value is token 4's)
  //   t=4: δ = 2 − 0.25 = 1.75                       A = 1.75
  //   t=2: δ = 0 + 0.9·0.25 − 1 = −0.775             A = −0.775 + 0.72·1.75 = 0.485
  //   t=1: δ = 1 + 0.9·1 − 0.5 = 1.4                 A = 1.4 + 0.72·0.485 = 1.7492
  //   returns: 2.2492, 1.485, 2.0
  const rewards = f32([0, 0.1, -0.2, 0, 1.0, 7, 5, 1, 0, 9, 2, 0]);
  const values = f32([0.5, 0.4, 0.3, 0.6, 0.8, 9, 5, 0.5, 1, 9, 0.25, 0]);
  const mask = u8([1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 0]);
  const { advantages, returns } = gae(rewards, values, mask, 2, 6, 0.9, 0.8);
  assertClose(advantages, [-0.042326528, 0.1356576, 0.23008, 0.264, 0.2, 0, 0, 1.7492, 0.485, 0, 1.75, 0], 1e-6, 0, 'advantages');
  assertClose(returns, [0.457673472, 0.5356576, 0.53008, 0.864, 1.0, 0, 0, 2.2492, 1.485, 0, 2.0, 0], 1e-6, 0, 'returns');
  // the recursion equals the closed-form sum of discounted TD errors
  const r0 = [0, 0.1, -0.2, 0, 1.0];
  const v0 = [0.5, 0.4, 0.3, 0.6, 0.8];
  assertClose(advantages.subarray(0, 5), gaeByDefinition(r0, v0, 0.9, 0.8), 1e-6, 0, 'closed form');
  assertClose(selectMasked(advantages, mask).subarray(5), gaeByDefinition([1, 0, 2], [0.5, 1, 0.25], 0.9, 0.8), 1e-6, 0, 'closed form with hole');
});

test('GAE limits: λ = 1 is the Monte-Carlo return minus V, λ = 0 the one-step TD error', () => {
  const r = [0, 0.1, -0.2, 0, 1.0];
  const v = [0.5, 0.4, 0.3, 0.6, 0.8];
  const m = u8([1, 1, 1, 1, 1]);
  // λ = 1, γ = 0.9: A0 = (0 + 0.9·0.1 + 0.81·(−0.2) + 0 + 0.6561·1.0) − 0.5 = 0.5841 − 0.5 = 0.0841; returns = Σ γ^l r
  const mc = gae(f32(r), f32(v), m, 1, 5, 0.9, 1);
  const disc = r.map((_, t) => r.slice(t).reduce((s, x, l) => s + 0.9 ** l * x, 0));
  assertClose(mc.returns, disc, 1e-6, 0, 'MC returns');
  assert.ok(Math.abs(mc.advantages[0] - 0.0841) < 1e-6, `${mc.advantages[0]}`);
  // λ = 0: A_t = δ_t = [−0.14, −0.03, 0.04, 0.12, 0.2]
  assertClose(gae(f32(r), f32(v), m, 1, 5, 0.9, 0).advantages, [-0.14, -0.03, 0.04, 0.12, 0.2], 1e-6, 0, 'TD');
  assert.throws(() => gae(f32(r), f32(v), m, 1, 5, 1.5, 0.9), /gamma must be in \[0, 1\], got 1.5/);
});

test('groupAdvantages (GRPO): (r − mean) / (std + 1e-4) with the unbiased std, or r − mean', () => {
  // group 0 = [1, 2, 3, 4]: mean 2.5, std = sqrt(5/3) = 1.2909944 → ±1.5 / 1.2910944 = ±1.161805, ±0.5 / … = ±0.387268
  // group 1 = [0, 0, 0, 6]: mean 1.5, ss = 3·2.25 + 20.25 = 27, var 9, std 3 → −1.5 / 3.0001 = −0.499983, 4.5 / 3.0001 = 1.49995
  // group 2 = [2, 2, 2, 2]: std 0 → 0 / 1e-4 = 0
  const s = f32([1, 2, 3, 4, 0, 0, 0, 6, 2, 2, 2, 2]);
  assertClose(groupAdvantages(s, 4, { scale: true }), [-1.161805, -0.387268, 0.387268, 1.161805, -0.499983, -0.499983, -0.499983, 1.49995, 0, 0, 0, 0], 1e-6, 0, 'scaled');
  assertClose(groupAdvantages(s, 4, { scale: false }), [-1.5, -0.5, 0.5, 1.5, -1.5, -1.5, -1.5, 4.5, 0, 0, 0, 0], 1e-6, 0, 'centred');
  assert.throws(() => groupAdvantages(f32([1, 2, 3]), 2, { scale: true }), /3 scores do not split into groups of groupSize = 2/);
  assert.throws(() => groupAdvantages(f32([1, 2]), 1, { scale: true }), /groupSize must be an integer >= 2/);
});

test('rlooAdvantages: r_i − mean of the other k − 1 samples of the prompt', () => {
  // [1, 2, 3, 4]: sum 10 → 1 − 9/3 = −2, 2 − 8/3 = −0.666667, 3 − 7/3 = 0.666667, 4 − 6/3 = 2  (= 4/3 · (r − 2.5))
  // [0, 0, 0, 6]: sum 6 → 0 − 6/3 = −2 (×3), 6 − 0 = 6
  assertClose(rlooAdvantages(f32([1, 2, 3, 4, 0, 0, 0, 6]), 4), [-2, -0.6666667, 0.6666667, 2, -2, -2, -2, 6], 1e-6, 0, 'rloo');
  // k = 2: each sample's baseline is the other one
  assertClose(rlooAdvantages(f32([3, 1]), 2), [2, -2], 0, 0, 'k = 2');
  assert.throws(() => rlooAdvantages(f32([1, Number.POSITIVE_INFINITY]), 2), /score\[1\] = Infinity is not finite/);
});

test('per-token helpers flatten masked entries row-major', () => {
  const mask = u8([1, 1, 0, 0, 1, 0]);
  assert.deepEqual(Array.from(perTokenAdvantages(f32([0.5, -1]), mask, 2, 3)), [0.5, 0.5, -1]);
  assert.deepEqual(Array.from(selectMasked(f32([1, 2, 3, 4, 5, 6]), mask)), [1, 2, 5]);
  assert.deepEqual(Array.from(maskedRows(mask, 2, 3)), [0, 0, 1]);
});
