// Per-token KL estimators between the policy π and the reference π_ref, evaluated at the tokens the policy sampled,
// and the KL-coefficient controllers of RLHF-PPO.
//
// Estimators (J. Schulman, "Approximating KL Divergence", 2020, http://joschu.net/blog/kl-approx.html). For
// KL(π ‖ π_ref) = E_{x~π}[log π(x) − log π_ref(x)] with samples x ~ π, write r = π_ref(x) / π(x) and
// logr = log π_ref(x) − log π(x) (the REFERENCE over the policy, Schulman's p(x)/q(x) with q the sampler). Then
//   k1 = −logr                    = log π − log π_ref      unbiased, high variance, can be negative
//   k2 = ½ logr²                                            biased, low variance, ≥ 0 (sign of logr irrelevant)
//   k3 = (r − 1) − logr                                     unbiased, low variance, ≥ 0
//   abs = |logr|                                            biased (an upper bound of k1's mean), ≥ 0
// TRL uses the same sign: PPOTrainer (`kl_estimator` "k1" | "k3") computes logr = ref_logprobs − logprobs, kl = −logr
// or (exp(logr) − 1) − logr; GRPOTrainer's per-token KL is exp(ref − logp) − (ref − logp) − 1 = k3; the older
// PPOTrainer's `kl_penalty` "kl" is logprob − ref_logprob = k1, "mse" is ½ (logprob − ref_logprob)² = k2 and "abs"
// is |logprob − ref_logprob| = abs.
// (Writing k3 with r = π/π_ref instead would estimate something else: E_π[π/π_ref − 1 − log(π/π_ref)] is not a KL.)
//
// Controllers: the adaptive one is Ziegler et al. 2019 ("Fine-Tuning Language Models from Human Preferences",
// §2.2): e = clip(KL / target − 1, −0.2, 0.2), β ← β (1 + e · n / horizon), as TRL's AdaptiveKLController.

export type KlEstimator = 'k1' | 'k2' | 'k3' | 'abs';
export const KL_ESTIMATORS: readonly KlEstimator[] = ['k1', 'k2', 'k3', 'abs'];

/** One estimator term for a policy log-prob lp and a reference log-prob ref (float64). */
export function klTerm(lp: number, ref: number, estimator: KlEstimator): number {
  const logr = ref - lp; // log(π_ref / π)
  switch (estimator) {
    case 'k1':
      return -logr;
    case 'k2':
      return 0.5 * logr * logr;
    case 'k3':
      // expm1 keeps (r − 1) accurate when π ≈ π_ref, where r − 1 and logr nearly cancel.
      return Math.expm1(logr) - logr;
    case 'abs':
      return Math.abs(logr);
  }
}

/**
 * The per-token KL estimate at each sampled token: out[i] = k(policyLogps[i], refLogps[i]) (see the header for the
 * formulas and sign convention). Arrays of equal length, any layout; masked-out entries are estimated like any
 * other (callers multiply by their mask). Computed in float64, stored as float32.
 */
export function klPerToken(policyLogps: Float32Array, refLogps: Float32Array, estimator: KlEstimator): Float32Array {
  if (!KL_ESTIMATORS.includes(estimator)) throw new RangeError(`klPerToken: estimator must be one of ${KL_ESTIMATORS.join(', ')}, got '${String(estimator)}'`);
  if (policyLogps.length !== refLogps.length)
    throw new RangeError(`klPerToken: policyLogps has ${policyLogps.length} entries but refLogps has ${refLogps.length}`);
  const out = new Float32Array(policyLogps.length);
  for (let i = 0; i < out.length; i++) out[i] = klTerm(policyLogps[i], refLogps[i], estimator);
  return out;
}

// ============================================================================================== controllers
export type KlControllerState =
  | { kind: 'adaptive'; value: number; target: number; horizon: number }
  | { kind: 'fixed'; value: number };

/** What the PPO loop needs from a KL-coefficient controller: the current β and its per-batch update. */
export interface KlController {
  /** The current KL coefficient β. */
  readonly value: number;
  /** Called once per rollout batch with the measured KL (per sequence, summed over tokens) and the batch size. */
  update(currentKl: number, nSteps: number): void;
  /** A JSON-serialisable snapshot (checkpoints). */
  state(): KlControllerState;
  /** Restores a snapshot written by state(); throws naming the field when it is invalid or of the other kind. */
  restore(s: KlControllerState): void;
}

function finiteAtLeast(op: string, name: string, v: unknown, min: number, strict: boolean): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || (strict ? v <= min : v < min))
    throw new RangeError(`${op}: ${name} must be a finite number ${strict ? '>' : '>='} ${min}, got ${String(v)}`);
  return v;
}

/**
 * β adapted toward a target KL (Ziegler et al. 2019): after each batch of n episodes with mean KL `currentKl`,
 * e = clip(currentKl / target − 1, −0.2, 0.2) and β ← β · (1 + e · n / horizon). A KL above target raises β (at most
 * by 20 % · n / horizon per update), one below lowers it. TRL: `adap_kl_ctrl`, `init_kl_coef`, `target`, `horizon`.
 */
export class AdaptiveKlController implements KlController {
  value: number;
  target: number;
  horizon: number;

  constructor(initKlCoef: number, target: number, horizon: number) {
    this.value = finiteAtLeast('AdaptiveKlController', 'initKlCoef', initKlCoef, 0, false);
    this.target = finiteAtLeast('AdaptiveKlController', 'target', target, 0, true);
    this.horizon = finiteAtLeast('AdaptiveKlController', 'horizon', horizon, 0, true);
  }

  update(currentKl: number, nSteps: number): void {
    if (!Number.isFinite(currentKl)) throw new RangeError(`AdaptiveKlController.update: currentKl must be finite, got ${currentKl}`);
    finiteAtLeast('AdaptiveKlController.update', 'nSteps', nSteps, 0, false);
    const e = Math.min(Math.max(currentKl / this.target - 1, -0.2), 0.2);
    this.value *= 1 + (e * nSteps) / this.horizon;
  }

  state(): KlControllerState {
    return { kind: 'adaptive', value: this.value, target: this.target, horizon: this.horizon };
  }

  restore(s: KlControllerState): void {
    if (s?.kind !== 'adaptive') throw new RangeError(`AdaptiveKlController.restore: state kind must be 'adaptive', got '${String(s?.kind)}'`);
    this.value = finiteAtLeast('AdaptiveKlController.restore', 'value', s.value, 0, false);
    this.target = finiteAtLeast('AdaptiveKlController.restore', 'target', s.target, 0, true);
    this.horizon = finiteAtLeast('AdaptiveKlController.restore', 'horizon', s.horizon, 0, true);
  }
}

/** A constant β (TRL's FixedKLController, `adap_kl_ctrl=False`). */
export class FixedKlController implements KlController {
  value: number;

  constructor(klCoef: number) {
    this.value = finiteAtLeast('FixedKlController', 'klCoef', klCoef, 0, false);
  }

  update(_currentKl?: number, _nSteps?: number): void {}

  state(): KlControllerState {
    return { kind: 'fixed', value: this.value };
  }

  restore(s: KlControllerState): void {
    if (s?.kind !== 'fixed') throw new RangeError(`FixedKlController.restore: state kind must be 'fixed', got '${String(s?.kind)}'`);
    this.value = finiteAtLeast('FixedKlController.restore', 'value', s.value, 0, false);
  }
}

/** A controller from a snapshot written by either controller's state(). */
export function klControllerFromState(s: KlControllerState): KlController {
  if (s?.kind === 'adaptive') {
    const c = new AdaptiveKlController(0, 1, 1);
    c.restore(s);
    return c;
  }
  if (s?.kind === 'fixed') {
    const c = new FixedKlController(0);
    c.restore(s);
    return c;
  }
  throw new RangeError(`klControllerFromState: kind must be 'adaptive' or 'fixed', got '${String((s as { kind?: unknown } | null)?.kind)}'`);
}
