// The objectives of the preference trainers as pure functions over autograd Tensors of per-row (summed or
// length-averaged) sequence log-probs or reward scores: DPO and its variants (cDPO, robust, hinge/RSO, IPO,
// reference-free), the Bradley–Terry reward-model loss, KTO, ORPO and SimPO. Each returns per-example losses (or
// the scalar loss) with gradients, plus the detached metrics TRL logs. Formulas follow TRL's trainers
// (huggingface/trl, trl/trainer/{dpo,reward,kto,orpo,cpo}_trainer.py) and the papers cited at each function;
// docs/preference-losses.md explains every metric. The stable scalar functions they need (log-sigmoid,
// softplus, log(1 - e^x)) are defined here as differentiable ops.

import type { FloatArray } from '../backend/index.ts';
import {
  add, addScalar, fromOp, mapUnary, mean, mul, neg, pow, relu, reshape, sigmoid, sub, tensor, zipMap,
  type Tensor,
} from '../tensor/index.ts';

// ============================================================================================== stable scalar ops
/** y = f(x) elementwise with dy/dx = df(x, y), as one autograd op. */
function elementwise(op: string, x: Tensor, f: (v: number) => number, df: (v: number, y: number) => number): Tensor {
  x.live(op);
  const out = mapUnary(x, f);
  return fromOp(out, op, [x], (g) => {
    const dydx = zipMap(x, out, df);
    const dx = zipMap(g, dydx, (gv, d) => gv * d);
    dydx.dispose();
    return [dx];
  });
}

/** σ(v) = 1 / (1 + e^-v) without overflow for either sign. */
function sigmoidScalar(v: number): number {
  if (v >= 0) return 1 / (1 + Math.exp(-v));
  const e = Math.exp(v);
  return e / (1 + e);
}

/**
 * log σ(x) = -softplus(-x) = min(x, 0) - log1p(e^-|x|): finite for every finite x (log(sigmoid(x)) would give
 * log 0 = -inf below x ≈ -104 in float32 and lose all precision well before). d/dx = σ(-x).
 * PyTorch's F.logsigmoid, which TRL uses.
 */
export function logSigmoid(x: Tensor): Tensor {
  return elementwise('logSigmoid', x, (v) => Math.min(v, 0) - Math.log1p(Math.exp(-Math.abs(v))), (v) => sigmoidScalar(-v));
}

/** softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|), stable; d/dx = σ(x). */
export function softplus(x: Tensor): Tensor {
  return elementwise('softplus', x, (v) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))), (v) => sigmoidScalar(v));
}

/**
 * log(1 - e^x) for x < 0 (a log-probability): log(-expm1(x)) near 0, where 1 - e^x cancels, and log1p(-e^x)
 * for x < -ln 2 (Mächler, "Accurately computing log(1 - exp(-|a|))", 2012). d/dx = -e^x / (1 - e^x) =
 * -1 / expm1(-x). x = 0 (probability 1) gives -Infinity, as TRL's log1p(-exp(x)) does.
 */
export function log1mExp(x: Tensor): Tensor {
  return elementwise(
    'log1mExp',
    x,
    (v) => (v > -Math.LN2 ? Math.log(-Math.expm1(v)) : Math.log1p(-Math.exp(v))),
    (v) => -1 / Math.expm1(-v),
  );
}

// ============================================================================================== helpers
function checkRows(op: string, named: Record<string, Tensor>): number {
  let n = -1;
  for (const [name, t] of Object.entries(named)) {
    t.live(op);
    if (t.rank !== 1) throw new RangeError(`${op}: ${name} must be a vector [batch], got shape [${t.shape.join(', ')}]`);
    if (n === -1) n = t.shape[0];
    else if (t.shape[0] !== n) throw new RangeError(`${op}: ${name} has ${t.shape[0]} rows, expected ${n} like the others`);
  }
  return n;
}

function checkBeta(op: string, beta: number): void {
  if (!(Number.isFinite(beta) && beta > 0)) throw new RangeError(`${op}: beta must be a finite number > 0, got ${beta}`);
}

function values(t: Tensor): FloatArray {
  return t.data as FloatArray;
}

/** beta * (a - b) per row as a detached Float32Array (b null: beta * a). */
function scaledDiff(beta: number, a: Tensor, b: Tensor | null): Float32Array {
  const av = values(a);
  const bv = b ? values(b) : null;
  return Float32Array.from(av, (v, i) => beta * (v - (bv ? bv[i] : 0)));
}

/**
 * The conservative (cDPO) logistic loss on a = beta * z:  -(1 - eps) log σ(a) - eps log σ(-a)
 * (Mitchell, "A note on DPO with noisy preferences", 2023, eq. 3): the cross-entropy against labels that are
 * flipped with probability eps. eps = 0 is the DPO loss -log σ(a) (Rafailov et al. 2023, eq. 7).
 */
function conservativeLogistic(a: Tensor, eps: number): Tensor {
  const clean = mul(logSigmoid(a), -(1 - eps));
  return eps > 0 ? sub(clean, mul(logSigmoid(neg(a)), eps)) : clean;
}

// ============================================================================================== DPO
export type DpoLossType = 'sigmoid' | 'ipo' | 'hinge' | 'robust';
export const DPO_LOSS_TYPES: readonly DpoLossType[] = ['sigmoid', 'ipo', 'hinge', 'robust'];

export interface DpoLossOptions {
  /** β: the strength of the implicit KL penalty toward the reference (TRL default 0.1). For IPO, τ. */
  beta: number;
  lossType: DpoLossType;
  /** ε, the assumed fraction of flipped preference labels: 'sigmoid' (cDPO) in [0, 0.5], 'robust' in [0, 0.5). */
  labelSmoothing: number;
  /** Drop the reference terms from the logits (an implicit uniform reference), as TRL's reference_free. */
  referenceFree: boolean;
}

/** Throws a RangeError naming the option when DPO options are invalid (call it when reading a config). */
export function validateDpoOptions(o: DpoLossOptions): void {
  checkBeta('dpoLoss', o.beta);
  if (!DPO_LOSS_TYPES.includes(o.lossType)) throw new RangeError(`dpoLoss: loss_type must be one of ${DPO_LOSS_TYPES.join(', ')}, got '${o.lossType}'`);
  const eps = o.labelSmoothing;
  if (!Number.isFinite(eps) || eps < 0) throw new RangeError(`dpoLoss: label_smoothing must be a finite number >= 0, got ${eps}`);
  if (o.lossType === 'sigmoid' && eps > 0.5) throw new RangeError(`dpoLoss: label_smoothing must be in [0, 0.5] for loss_type 'sigmoid', got ${eps}`);
  if (o.lossType === 'robust' && eps >= 0.5) throw new RangeError(`dpoLoss: label_smoothing must be in [0, 0.5) for loss_type 'robust' (it divides by 1 - 2ε), got ${eps}`);
  // TRL only warns and ignores it; silently training with a different objective than configured is worse.
  if ((o.lossType === 'hinge' || o.lossType === 'ipo') && eps !== 0)
    throw new RangeError(`dpoLoss: label_smoothing applies to loss_type 'sigmoid' and 'robust' only, got ${eps} with '${o.lossType}'`);
}

/**
 * The DPO family (TRL DPOTrainer.dpo_loss). With z = (π_c − π_r) − (ref_c − ref_r) per pair — π, ref the
 * policy's and the reference's summed log-probs of the chosen (c) and rejected (r) completion; the reference
 * terms are 0 when `referenceFree` —
 *   sigmoid  −(1−ε)·logσ(βz) − ε·logσ(−βz)                 DPO (Rafailov et al. 2023); ε > 0: cDPO
 *   robust   (−(1−ε)·logσ(βz) + ε·logσ(−βz)) / (1−2ε)       unbiased under label noise (Chowdhury et al. 2024)
 *   hinge    relu(1 − βz)                                   SLiC / RSO (Zhao et al. 2023; Liu et al. 2023)
 *   ipo      (z − 1/(2β))²                                  IPO (Azar et al. 2023, eq. 17; β is τ)
 * TRL computes IPO on length-AVERAGED log-probs (policy and reference): pass those for 'ipo'.
 * Rewards are β(π − ref) per completion, detached (β·π when no reference is given); TRL subtracts the reference
 * in the rewards even when `referenceFree` drops it from the logits, and so does this.
 * Returns the per-pair losses [B] (the trainer's loss is their mean).
 */
export function dpoLoss(
  policyChosen: Tensor,
  policyRejected: Tensor,
  refChosen: Tensor | null,
  refRejected: Tensor | null,
  o: DpoLossOptions,
): { losses: Tensor; chosenRewards: Float32Array; rejectedRewards: Float32Array } {
  validateDpoOptions(o);
  if ((refChosen === null) !== (refRejected === null)) throw new RangeError('dpoLoss: pass both reference log-probs or neither');
  if (!refChosen && !o.referenceFree) throw new RangeError('dpoLoss: reference log-probs are required unless referenceFree is set');
  checkRows('dpoLoss', {
    policyChosen, policyRejected, ...(refChosen && refRejected ? { refChosen, refRejected } : {}),
  });
  const { beta, labelSmoothing: eps } = o;
  const piLogratios = sub(policyChosen, policyRejected);
  const z = o.referenceFree || !refChosen || !refRejected ? piLogratios : sub(piLogratios, sub(refChosen, refRejected));
  let losses: Tensor;
  switch (o.lossType) {
    case 'sigmoid':
      losses = conservativeLogistic(mul(z, beta), eps);
      break;
    case 'robust': {
      const a = mul(z, beta);
      const scale = 1 / (1 - 2 * eps);
      losses = add(mul(logSigmoid(a), -(1 - eps) * scale), mul(logSigmoid(neg(a)), eps * scale));
      break;
    }
    case 'hinge':
      losses = relu(addScalar(mul(z, -beta), 1));
      break;
    case 'ipo':
      losses = pow(addScalar(z, -1 / (2 * beta)), 2);
      break;
  }
  return { losses, chosenRewards: scaledDiff(beta, policyChosen, refChosen), rejectedRewards: scaledDiff(beta, policyRejected, refRejected) };
}

/** The reward metrics TRL logs for DPO / ORPO / SimPO (rewards/chosen, /rejected, /accuracies, /margins). */
export interface RewardMetrics {
  /** Mean reward of the chosen completions. */
  chosen: number;
  /** Mean reward of the rejected completions. */
  rejected: number;
  /** Fraction of pairs whose chosen reward is strictly greater. */
  accuracy: number;
  /** Mean of chosen − rejected reward. */
  margin: number;
}

export function rewardMetrics(chosenRewards: ArrayLike<number>, rejectedRewards: ArrayLike<number>): RewardMetrics {
  const n = chosenRewards.length;
  if (rejectedRewards.length !== n) throw new RangeError(`rewardMetrics: ${n} chosen but ${rejectedRewards.length} rejected rewards`);
  if (n === 0) throw new RangeError('rewardMetrics: no pairs');
  let c = 0;
  let r = 0;
  let wins = 0;
  for (let i = 0; i < n; i++) {
    c += chosenRewards[i];
    r += rejectedRewards[i];
    if (chosenRewards[i] > rejectedRewards[i]) wins++;
  }
  return { chosen: c / n, rejected: r / n, accuracy: wins / n, margin: (c - r) / n };
}

// ============================================================================================== reward model
/** A [B] or [B, 1] score tensor as [B]. */
function scoreVector(op: string, name: string, t: Tensor): Tensor {
  t.live(op);
  if (t.rank === 1) return t;
  if (t.rank === 2 && t.shape[1] === 1) return reshape(t, [t.shape[0]]);
  throw new RangeError(`${op}: ${name} must be [batch] or [batch, 1] scores, got shape [${t.shape.join(', ')}]`);
}

/**
 * Bradley–Terry reward-model loss (TRL RewardTrainer.compute_loss; Ouyang et al. 2022, eq. 1):
 *   mean_i −logσ(r_c,i − r_r,i − m_i)  +  c · mean_i (r_c,i + r_r,i)²
 * m = the per-pair margins (Llama 2's margin loss, Touvron et al. 2023) or 0; c = center_rewards_coefficient
 * (Eisenstein et al. 2023), which pulls the rewards toward zero mean (0 disables it). Metrics as TRL logs them:
 * accuracy = fraction with r_c > r_r (strictly), meanMargin = mean(r_c − r_r) (without m), and the min / mean /
 * max of all 2B rewards.
 */
export function rewardModelLoss(
  rChosen: Tensor,
  rRejected: Tensor,
  margins: Float32Array | null,
  centerRewardsCoefficient: number,
): { loss: Tensor; accuracy: number; meanMargin: number; minReward: number; meanReward: number; maxReward: number } {
  const rc = scoreVector('rewardModelLoss', 'rChosen', rChosen);
  const rr = scoreVector('rewardModelLoss', 'rRejected', rRejected);
  const B = checkRows('rewardModelLoss', { rChosen: rc, rRejected: rr });
  if (B === 0) throw new RangeError('rewardModelLoss: empty batch');
  if (margins) {
    if (margins.length !== B) throw new RangeError(`rewardModelLoss: ${margins.length} margins for ${B} pairs`);
    margins.forEach((m, i) => {
      if (!Number.isFinite(m)) throw new RangeError(`rewardModelLoss: margin ${i} is ${m}`);
    });
  }
  const c = centerRewardsCoefficient;
  if (!(Number.isFinite(c) && c >= 0)) throw new RangeError(`rewardModelLoss: center_rewards_coefficient must be a finite number >= 0, got ${c}`);
  let diff = sub(rc, rr);
  if (margins) diff = sub(diff, tensor(margins, [B], rc.backend));
  let loss = mul(mean(logSigmoid(diff)), -1);
  if (c > 0) loss = add(loss, mul(mean(pow(add(rc, rr), 2)), c));
  const cv = values(rc);
  const rv = values(rr);
  let wins = 0;
  let margin = 0;
  let lo = Infinity;
  let hi = -Infinity;
  let total = 0;
  for (let i = 0; i < B; i++) {
    if (cv[i] > rv[i]) wins++;
    margin += cv[i] - rv[i];
    for (const v of [cv[i], rv[i]]) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      total += v;
    }
  }
  return { loss, accuracy: wins / B, meanMargin: margin / B, minReward: lo, meanReward: total / (2 * B), maxReward: hi };
}

// ============================================================================================== KTO
/**
 * KTO's reference point estimate (TRL KTOTrainer): mean over a batch of mismatched (prompt, completion) rows of
 * policy − reference summed log-probs, a Monte-Carlo estimate of KL(π ‖ π_ref). Unclamped; `ktoLoss` clamps it
 * at 0. (TRL also averages it across processes first.)
 */
export function ktoKlEstimate(policyKlLogps: Tensor, refKlLogps: Tensor): number {
  const n = checkRows('ktoKlEstimate', { policyKlLogps, refKlLogps });
  if (n === 0) throw new RangeError('ktoKlEstimate: no rows');
  const p = values(policyKlLogps);
  const r = values(refKlLogps);
  let s = 0;
  for (let i = 0; i < n; i++) s += p[i] - r[i];
  return s / n;
}

/**
 * KTO (Ethayarajh et al. 2024, eq. 7; TRL KTOTrainer.kto_loss, loss_type "kto"). Per example, with
 * ρ = π − ref (summed log-probs) and z0 = max(0, klEstimate) (a constant: no gradient flows through it):
 *   desirable    λ_D · (1 − σ(β(ρ − z0)))
 *   undesirable  λ_U · (1 − σ(β(z0 − ρ)))
 * computed as λ·σ(∓β(ρ − z0)) (the same values without the cancellation of 1 − σ). λ_D / λ_U =
 * desirableWeight / undesirableWeight. Losses are returned in the input order (TRL concatenates all desirable
 * then all undesirable; the mean is the same). Rewards β·ρ of the desirable and of the undesirable rows, detached.
 */
export function ktoLoss(
  policyLogps: Tensor,
  refLogps: Tensor,
  desirable: Uint8Array,
  klEstimate: number,
  o: { beta: number; desirableWeight: number; undesirableWeight: number },
): { losses: Tensor; chosenRewards: Float32Array; rejectedRewards: Float32Array; kl: number } {
  const B = checkRows('ktoLoss', { policyLogps, refLogps });
  if (desirable.length !== B) throw new RangeError(`ktoLoss: ${desirable.length} desirable flags for ${B} rows`);
  checkBeta('ktoLoss', o.beta);
  for (const [name, w] of [['desirable_weight', o.desirableWeight], ['undesirable_weight', o.undesirableWeight]] as const)
    if (!(Number.isFinite(w) && w >= 0)) throw new RangeError(`ktoLoss: ${name} must be a finite number >= 0, got ${w}`);
  if (Number.isNaN(klEstimate)) throw new RangeError('ktoLoss: the KL estimate is NaN');
  const z0 = Math.max(0, klEstimate);
  const ratio = sub(policyLogps, refLogps);
  // desirable: σ(−β(ρ − z0)); undesirable: σ(+β(ρ − z0))
  const slope = tensor(Array.from(desirable, (d) => (d ? -o.beta : o.beta)), [B], ratio.backend);
  const weight = tensor(Array.from(desirable, (d) => (d ? o.desirableWeight : o.undesirableWeight)), [B], ratio.backend);
  const losses = mul(sigmoid(mul(addScalar(ratio, -z0), slope)), weight);
  const rewards = scaledDiff(o.beta, policyLogps, refLogps);
  return {
    losses,
    chosenRewards: rewards.filter((_, i) => desirable[i]),
    rejectedRewards: rewards.filter((_, i) => !desirable[i]),
    kl: z0,
  };
}

// ============================================================================================== ORPO
/**
 * ORPO (Hong et al. 2024, eqs. 4–7; TRL ORPOTrainer.odds_ratio_loss) on length-AVERAGED log-probs l_c, l_r:
 *   log_odds = (l_c − l_r) − (log(1 − e^l_c) − log(1 − e^l_r))        (log of the odds ratio, odds = p / (1 − p))
 *   loss     = NLL − β · mean(logσ(log_odds))
 * NLL is `chosenNll`, the SFT term (TRL: token-mean cross-entropy of the chosen rows over prompt AND response —
 * `sequenceLogps(..., { fullSequence: true })` + `meanTokenNll`). `losses` are the per-pair odds-ratio terms
 * −β·logσ(log_odds) (≥ 0). Metrics named as TRL logs them: logOddsRatio = mean(logσ(log_odds)) (TRL's
 * "log_odds_ratio"), logOddsChosen = mean(log_odds) ("log_odds_chosen"); rewards β·l, detached.
 */
export function orpoLoss(
  chosenAvgLogps: Tensor,
  rejectedAvgLogps: Tensor,
  chosenNll: Tensor,
  o: { beta: number },
): { loss: Tensor; losses: Tensor; nll: number; logOddsRatio: number; logOddsChosen: number; chosenRewards: Float32Array; rejectedRewards: Float32Array } {
  const B = checkRows('orpoLoss', { chosenAvgLogps, rejectedAvgLogps });
  if (B === 0) throw new RangeError('orpoLoss: empty batch');
  checkBeta('orpoLoss', o.beta);
  chosenNll.live('orpoLoss');
  if (chosenNll.size !== 1) throw new RangeError(`orpoLoss: chosenNll must be a scalar, got shape [${chosenNll.shape.join(', ')}]`);
  const logOdds = sub(sub(chosenAvgLogps, rejectedAvgLogps), sub(log1mExp(chosenAvgLogps), log1mExp(rejectedAvgLogps)));
  const ratio = logSigmoid(logOdds);
  const losses = mul(ratio, -o.beta);
  const loss = add(reshape(chosenNll, []), mean(losses));
  const mean1 = (t: Tensor): number => {
    let s = 0;
    for (const v of values(t)) s += v;
    return s / B;
  };
  return {
    loss,
    losses,
    nll: chosenNll.item(),
    logOddsRatio: mean1(ratio),
    logOddsChosen: mean1(logOdds),
    chosenRewards: scaledDiff(o.beta, chosenAvgLogps, null),
    rejectedRewards: scaledDiff(o.beta, rejectedAvgLogps, null),
  };
}

// ============================================================================================== SimPO
/**
 * SimPO (Meng et al. 2024, eq. 6; TRL CPOTrainer with loss_type="simpo") on length-AVERAGED log-probs:
 *   a = β(l_c − l_r) − γ,  loss = −(1−ε)·logσ(a) − ε·logσ(−a)
 * with the target margin γ = β · gammaBetaRatio. Parametrisation: the SimPO paper's code takes
 * gamma_beta_ratio = γ/β; TRL's CPOConfig takes simpo_gamma = γ itself and computes
 * logits = (l_c − l_r) − simpo_gamma/β, loss −logσ(β·logits) — the same a. So TRL simpo_gamma = β·gammaBetaRatio
 * (TRL defaults: beta 0.1, simpo_gamma 0.5; the paper's typical β 2–2.5, γ/β 0.3–0.55). ε is TRL's label
 * smoothing. TRL's CPO adds cpo_alpha·NLL (default 1.0); pure SimPO is cpo_alpha = 0: that term is the
 * trainer's, not part of this. Rewards β·l, detached. Returns the per-pair losses [B].
 */
export function simpoLoss(
  chosenAvgLogps: Tensor,
  rejectedAvgLogps: Tensor,
  o: { beta: number; gammaBetaRatio: number; labelSmoothing: number },
): { losses: Tensor; chosenRewards: Float32Array; rejectedRewards: Float32Array } {
  checkRows('simpoLoss', { chosenAvgLogps, rejectedAvgLogps });
  checkBeta('simpoLoss', o.beta);
  if (!Number.isFinite(o.gammaBetaRatio)) throw new RangeError(`simpoLoss: gamma_beta_ratio must be finite, got ${o.gammaBetaRatio}`);
  const eps = o.labelSmoothing;
  if (!(Number.isFinite(eps) && eps >= 0 && eps <= 0.5)) throw new RangeError(`simpoLoss: label_smoothing must be in [0, 0.5], got ${eps}`);
  const a = mul(addScalar(sub(chosenAvgLogps, rejectedAvgLogps), -o.gammaBetaRatio), o.beta);
  return {
    losses: conservativeLogistic(a, eps),
    chosenRewards: scaledDiff(o.beta, chosenAvgLogps, null),
    rejectedRewards: scaledDiff(o.beta, rejectedAvgLogps, null),
  };
}
