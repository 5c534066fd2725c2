// KL estimators (Schulman, "Approximating KL Divergence") and the KL-coefficient controllers (Ziegler et al. 2019),
// against hand-derived numbers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdaptiveKlController, FixedKlController, klControllerFromState, klPerToken, klTerm } from '../../../src/trainers/rl/kl.ts';
import { assertClose } from '../../util.ts';

test('k1, k2, k3, abs at hand-computed tokens (sign: logr = log π_ref − log π, as TRL)', () => {
  // token 0: π = 0.5, π_ref = 0.25 → r = π_ref/π = 0.5, logr = −ln 2
  //   k1 = −logr = ln 2 = 0.693147;  k2 = ½ (ln 2)² = 0.240227;  k3 = (0.5 − 1) + ln 2 = 0.193147
  // token 1: π = 0.2, π_ref = 0.6 → r = 3, logr = ln 3
  //   k1 = −ln 3 = −1.098612 (k1 can be negative);  k2 = ½ (ln 3)² = 0.603474;  k3 = 2 − ln 3 = 0.901388
  // abs = |logr|: ln 2 = 0.693147, ln 3 = 1.098612 (TRL's older kl_penalty "abs")
  // token 2: π = π_ref → 0 for every estimator
  const policy = Float32Array.from([Math.log(0.5), Math.log(0.2), -1.5]);
  const ref = Float32Array.from([Math.log(0.25), Math.log(0.6), -1.5]);
  assertClose(klPerToken(policy, ref, 'k1'), [0.693147, -1.098612, 0], 1e-6, 0, 'k1');
  assertClose(klPerToken(policy, ref, 'k2'), [0.240227, 0.603474, 0], 1e-6, 0, 'k2');
  assertClose(klPerToken(policy, ref, 'k3'), [0.193147, 0.901388, 0], 1e-6, 0, 'k3');
  assertClose(klPerToken(policy, ref, 'abs'), [0.693147, 1.098612, 0], 1e-6, 0, 'abs');
});

test('k1 and k3 are unbiased: their expectation under π is KL(π ‖ π_ref) exactly', () => {
  // π = [0.5, 0.3, 0.2], π_ref = [0.2, 0.5, 0.3]:
  // KL = 0.5 ln 2.5 + 0.3 ln 0.6 + 0.2 ln(2/3) = 0.458145 − 0.153248 − 0.081093 = 0.223805
  // E_π[k3] = Σ π (π_ref/π − 1) + KL = (1 − 1) + KL; k2 is biased (its mean differs).
  const p = [0.5, 0.3, 0.2];
  const q = [0.2, 0.5, 0.3];
  const expect = (k: 'k1' | 'k2' | 'k3') => p.reduce((s, pi, i) => s + pi * klTerm(Math.log(pi), Math.log(q[i]), k), 0);
  assert.ok(Math.abs(expect('k1') - 0.2238047) < 1e-6, `E[k1] = ${expect('k1')}`);
  assert.ok(Math.abs(expect('k3') - 0.2238047) < 1e-6, `E[k3] = ${expect('k3')}`);
  assert.ok(Math.abs(expect('k2') - 0.2238047) > 1e-3, `E[k2] = ${expect('k2')} should be biased`);
});

test('k3 stays accurate when π ≈ π_ref (no cancellation) and is never negative', () => {
  // logr = 1e-7: k3 = e^x − 1 − x ≈ x²/2 = 5e-15 (naive exp(x) − 1 − x gives ~1e-16-scale garbage or 0)
  assert.ok(Math.abs(klTerm(0, 1e-7, 'k3') - 5e-15) < 1e-20);
  for (const x of [-5, -0.3, 0, 0.2, 4]) assert.ok(klTerm(0, x, 'k3') >= 0);
});

test('klPerToken rejects mismatched lengths and unknown estimators', () => {
  assert.throws(() => klPerToken(new Float32Array(2), new Float32Array(3), 'k1'), /policyLogps has 2 entries but refLogps has 3/);
  assert.throws(() => klPerToken(new Float32Array(1), new Float32Array(1), 'kl' as 'k1'), /estimator must be one of k1, k2, k3, abs, got 'kl'/);
});

test('AdaptiveKlController: β ← β (1 + clip(KL/target − 1, ±0.2) · n / horizon)', () => {
  const c = new AdaptiveKlController(0.2, 6, 10000);
  // KL 9 > target 6: e = clip(0.5) = 0.2 → β = 0.2 · (1 + 0.2 · 256 / 10000) = 0.2 · 1.00512 = 0.201024
  c.update(9, 256);
  assert.ok(Math.abs(c.value - 0.201024) < 1e-12, `${c.value}`);
  // KL 3: e = clip(−0.5) = −0.2 → β = 0.201024 · 0.99488 = 0.19999475712
  c.update(3, 256);
  assert.ok(Math.abs(c.value - 0.19999475712) < 1e-12, `${c.value}`);
  // KL 6.6: e = 0.1 (inside the clip) → β · (1 + 0.1 · 1000 / 10000) = 0.19999475712 · 1.01 = 0.2019947046912
  c.update(6.6, 1000);
  assert.ok(Math.abs(c.value - 0.2019947046912) < 1e-12, `${c.value}`);
  // KL on target: no change
  c.update(6, 500);
  assert.ok(Math.abs(c.value - 0.2019947046912) < 1e-12);

  const s = c.state();
  assert.deepEqual(s, { kind: 'adaptive', value: c.value, target: 6, horizon: 10000 });
  const d = new AdaptiveKlController(1, 1, 1);
  d.restore(JSON.parse(JSON.stringify(s)));
  assert.deepEqual(d.state(), s);
  assert.deepEqual(klControllerFromState(s).state(), s);
  assert.throws(() => d.restore({ kind: 'fixed', value: 1 }), /state kind must be 'adaptive', got 'fixed'/);
  assert.throws(() => d.restore({ kind: 'adaptive', value: 0.1, target: 0, horizon: 5 }), /target must be a finite number > 0, got 0/);
  assert.throws(() => new AdaptiveKlController(0.1, 6, 0), /horizon must be a finite number > 0/);
  assert.throws(() => c.update(Number.NaN, 1), /currentKl must be finite/);
});

test('FixedKlController keeps β and round-trips its state', () => {
  const c = new FixedKlController(0.05);
  c.update(100, 1000);
  assert.equal(c.value, 0.05);
  assert.deepEqual(c.state(), { kind: 'fixed', value: 0.05 });
  const d = klControllerFromState({ kind: 'fixed', value: 0.3 });
  assert.ok(d instanceof FixedKlController);
  assert.equal(d.value, 0.3);
  assert.throws(() => new FixedKlController(-1), /klCoef must be a finite number >= 0, got -1/);
  assert.throws(() => klControllerFromState({ kind: 'pid' } as never), /kind must be 'adaptive' or 'fixed', got 'pid'/);
});
