// The RL trainers' objectives over autograd Tensors of per-token log-probs / values of the trained tokens (the masked
// response tokens of a micro-batch, flattened row-major: [N]). Everything that is fixed during the PPO epochs (old
// log-probs, advantages, returns, old values, reference log-probs) comes in as plain arrays. Each loss is one fused
// autograd op (a scalar) whose backward follows PyTorch's subgradients exactly — torch.max / torch.min split the
// gradient in half on ties and torch.clamp passes it on the closed interval [lo, hi] — so a step reproduces TRL's.
// Formulas: TRL PPOTrainer (policy / value losses, approxkl, clipfrac) and GRPOTrainer (_compute_loss); the papers are
// cited at each function; docs/rl-math.md explains every metric.

import type { FloatArray } from '../../backend/index.ts';
import { ShapeError, empty, fmtShape, fromOp, type Tensor } from '../../tensor/index.ts';

function checkTokens(op: string, t: Tensor, arrays: Record<string, ArrayLike<number>>): number {
  t.live(op);
  if (t.rank !== 1) throw new ShapeError(`${op}: expects a vector [N] of the trained tokens, got ${fmtShape(t.shape)}`);
  const n = t.shape[0];
  if (n === 0) throw new RangeError(`${op}: no tokens (N = 0)`);
  for (const [name, a] of Object.entries(arrays))
    if (a.length !== n) throw new RangeError(`${op}: ${name} has ${a.length} entries, expected one per token (${n})`);
  for (const [name, a] of Object.entries(arrays))
    for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) throw new RangeError(`${op}: ${name}[${i}] = ${a[i]} is not finite`);
  return n;
}

function checkClip(op: string, name: string, v: number): void {
  if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`${op}: ${name} must be a finite number >= 0, got ${v}`);
}

function checkNormalizer(op: string, v: number | undefined, fallback: number): number {
  const d = v ?? fallback;
  if (!(Number.isFinite(d) && d > 0)) throw new RangeError(`${op}: normalizer must be a finite number > 0, got ${d}`);
  return d;
}

/** A scalar tensor holding `value`, whose backward scales the fixed per-token gradient `dInput` by the incoming g. */
function scalarLoss(op: string, input: Tensor, value: number, dInput: Float64Array): Tensor {
  const out = empty([], 'float', input.backend);
  (out.storage.data as FloatArray)[0] = value;
  return fromOp(out, op, [input], (g) => {
    const s = (g.data as FloatArray)[0];
    const dx = empty([dInput.length], 'float', g.backend);
    const d = dx.storage.data as FloatArray;
    for (let i = 0; i < dInput.length; i++) d[i] = s * dInput[i];
    return [dx];
  });
}

/**
 * max(a, b) with PyTorch's subgradient: the larger branch's derivative, half of each on a tie.
 * Returns [value, derivative].
 */
function maxWithGrad(a: number, da: number, b: number, db: number): [number, number] {
  if (a > b) return [a, da];
  if (b > a) return [b, db];
  return [a, 0.5 * (da + db)];
}

/**
 * The clipped surrogate of one token, as a loss: max(−A·r, −A·clip(r, lo, hi)) = −min(A·r, A·clip(r, lo, hi)) with
 * r = exp(lp − old), and its derivative in lp: d(−A·r)/dlp = −A·r; the clipped branch passes −A·r only where
 * lo ≤ r ≤ hi (torch.clamp's gradient), 0 outside.
 */
function clippedSurrogate(lp: number, old: number, adv: number, lo: number, hi: number): { loss: number; dlp: number; ratio: number; clippedWins: boolean } {
  const ratio = Math.exp(lp - old);
  const clipped = Math.min(Math.max(ratio, lo), hi);
  const inside = ratio >= lo && ratio <= hi;
  const a = -adv * ratio;
  const b = -adv * clipped;
  const [loss, dlp] = maxWithGrad(a, -adv * ratio, b, inside ? -adv * ratio : 0);
  return { loss, dlp, ratio, clippedWins: b > a };
}

// ============================================================================================== PPO
export interface PpoPolicyLossResult {
  /** Scalar: Σ_i max(−A_i r_i, −A_i clip(r_i, 1 − ε, 1 + ε)) / normalizer. */
  loss: Tensor;
  /** Fraction of tokens where the clipped branch is strictly the larger loss (TRL `policy/clipfrac_avg`). */
  clipfrac: number;
  /** ½ mean((log r)²), the low-variance k2 estimate of KL(π_old ‖ π) (TRL `policy/approxkl_avg`). */
  approxKl: number;
  /** mean(r) over the tokens (TRL `val/ratio`); 1 at the first minibatch of a rollout. */
  ratioMean: number;
  /** mean(old − new log-prob): the k1 estimate of KL(π_old ‖ π) (classic TRL `policy/policykl`). */
  policyKl: number;
}

export interface TokenLossOptions {
  /**
   * The divisor of the summed per-token losses; default N (the mean over this call's tokens, TRL's masked_mean). Pass
   * the token count of the whole accumulated minibatch when splitting it into micro-batches so the step equals one
   * call on the full minibatch.
   */
  normalizer?: number;
}

/**
 * PPO's clipped policy loss (Schulman et al. 2017, "Proximal Policy Optimization Algorithms", eq. 7), per token as
 * in TRL's PPOTrainer:
 *   r_i = exp(newLogps_i − oldLogps_i),   loss = (1/N) Σ_i max(−A_i r_i, −A_i clip(r_i, 1 − ε, 1 + ε))
 * i.e. minus the pessimistic (min) surrogate objective. newLogps [N] are the current policy's log-probs of the N
 * trained tokens (differentiable); oldLogps, advantages (whitened, for PPO) [N] are fixed. ε = cliprange.
 * Worked example: A = 0.5, ε = 0.2, r = 1.2 → min(0.6, 0.6) = 0.6; r = 1.3 → min(0.65, 1.2·0.5) = 0.6 (clipped):
 * loss −0.6 and no gradient through the second token.
 */
export function ppoPolicyLoss(newLogps: Tensor, oldLogps: Float32Array, advantages: Float32Array, cliprange: number, opts: TokenLossOptions = {}): PpoPolicyLossResult {
  const op = 'ppoPolicyLoss';
  const n = checkTokens(op, newLogps, { oldLogps, advantages });
  checkClip(op, 'cliprange', cliprange);
  const denom = checkNormalizer(op, opts.normalizer, n);
  const lp = newLogps.data as FloatArray;
  const d = new Float64Array(n);
  let total = 0;
  let clipped = 0;
  let sq = 0;
  let ratioSum = 0;
  let k1 = 0;
  for (let i = 0; i < n; i++) {
    const s = clippedSurrogate(lp[i], oldLogps[i], advantages[i], 1 - cliprange, 1 + cliprange);
    total += s.loss;
    d[i] = s.dlp / denom;
    if (s.clippedWins) clipped++;
    const logr = lp[i] - oldLogps[i];
    sq += logr * logr;
    ratioSum += s.ratio;
    k1 -= logr;
  }
  return {
    loss: scalarLoss(op, newLogps, total / denom, d),
    clipfrac: clipped / n,
    approxKl: (0.5 * sq) / n,
    ratioMean: ratioSum / n,
    policyKl: k1 / n,
  };
}

export interface PpoValueLossResult {
  /** Scalar: ½ Σ_i max((V_i − R_i)², (clip(V_i, V_old,i ± ε_v) − R_i)²) / normalizer. */
  loss: Tensor;
  /** Fraction of tokens where the clipped squared error is strictly the larger (TRL `val/clipfrac_avg`). */
  clipfrac: number;
  /** mean(V) of the new predictions (classic TRL `val/vpred`). */
  vpredMean: number;
  /** mean((V − R)²), the unclipped squared error (classic TRL `val/error`). */
  valueError: number;
}

/**
 * PPO's clipped value loss (as in OpenAI baselines' ppo2 and TRL's PPOTrainer):
 *   V^clip_i = clip(V_i, V_old,i − ε_v, V_old,i + ε_v),   loss = ½ (1/N) Σ_i max((V_i − R_i)², (V^clip_i − R_i)²)
 * newValues [N] are the value head's predictions at the trained tokens (differentiable); oldValues (from the
 * rollout) and returns R = A + V_old (unwhitened GAE returns) [N] are fixed. ε_v = cliprangeValue.
 */
export function ppoValueLoss(newValues: Tensor, oldValues: Float32Array, returns: Float32Array, cliprangeValue: number, opts: TokenLossOptions = {}): PpoValueLossResult {
  const op = 'ppoValueLoss';
  const n = checkTokens(op, newValues, { oldValues, returns });
  checkClip(op, 'cliprangeValue', cliprangeValue);
  const denom = checkNormalizer(op, opts.normalizer, n);
  const v = newValues.data as FloatArray;
  const d = new Float64Array(n);
  let total = 0;
  let clipped = 0;
  let vSum = 0;
  let err = 0;
  for (let i = 0; i < n; i++) {
    const lo = oldValues[i] - cliprangeValue;
    const hi = oldValues[i] + cliprangeValue;
    const vc = Math.min(Math.max(v[i], lo), hi);
    const inside = v[i] >= lo && v[i] <= hi;
    const e1 = v[i] - returns[i];
    const e2 = vc - returns[i];
    // d(e1²)/dV = 2 e1; d(e2²)/dV = 2 e2 inside the clip range, 0 outside; the ½ in front cancels the 2.
    const [l, dl] = maxWithGrad(e1 * e1, e1, e2 * e2, inside ? e2 : 0);
    total += 0.5 * l;
    d[i] = dl / denom;
    if (e2 * e2 > e1 * e1) clipped++;
    vSum += v[i];
    err += e1 * e1;
  }
  return { loss: scalarLoss(op, newValues, total / denom, d), clipfrac: clipped / n, vpredMean: vSum / n, valueError: err / n };
}

// ============================================================================================== GRPO
export type GrpoLossType = 'grpo' | 'bnpo' | 'dr_grpo';
export const GRPO_LOSS_TYPES: readonly GrpoLossType[] = ['grpo', 'bnpo', 'dr_grpo'];

export interface GrpoLossOptions {
  /** ε (TRL `epsilon`): the ratio is clipped to [1 − ε, 1 + cliprangeHigh]. */
  cliprange: number;
  /** ε_high (TRL `epsilon_high`, DAPO's clip-higher); defaults to cliprange. */
  cliprangeHigh?: number;
  /** β: weight of the k3 KL to the reference (TRL `beta`); 0 drops the term and refLogps may be null. */
  beta: number;
  /**
   * How per-token losses are averaged (TRL `loss_type`): 'grpo' (default) = mean over sequences of each sequence's
   * token mean (DeepSeekMath eq. 3); 'bnpo' = one mean over all tokens; 'dr_grpo' = sum / (rows · maxCompletionLength).
   */
  lossType?: GrpoLossType;
  /** Required for 'dr_grpo': the generation's max_completion_length. */
  maxCompletionLength?: number;
}

export interface GrpoLossResult {
  /** Scalar loss (see GrpoLossOptions.lossType for the normalisation). */
  loss: Tensor;
  /** Token mean of k3(π, π_ref) (TRL `kl`); 0 when beta = 0 and no reference is given. */
  meanKl: number;
  /** Fraction of tokens with r < 1 − ε and A < 0 (TRL `clip_ratio/low_mean`). */
  lowClipRatio: number;
  /** Fraction of tokens with r > 1 + ε_high and A > 0 (TRL `clip_ratio/high_mean`). */
  highClipRatio: number;
  /** lowClipRatio + highClipRatio: tokens whose gradient the clip removed (TRL `clip_ratio/region_mean`). */
  clipRatio: number;
  /** mean(r) over the tokens. */
  ratioMean: number;
}

/**
 * GRPO's loss (Shao et al. 2024, "DeepSeekMath", eq. 3; TRL GRPOTrainer._compute_loss): per token
 *   ℓ_i = −min(r_i A_i, clip(r_i, 1 − ε, 1 + ε_high) A_i) + β k3_i,
 *   r_i = exp(new_i − old_i),  k3_i = exp(ref_i − new_i) − (ref_i − new_i) − 1
 * then, for 'grpo', the mean of ℓ over each sequence's tokens, averaged over the numRows sequences (a row with no
 * tokens counts as 0, as TRL's clamp(min=1) gives). newLogps [N] differentiable; oldLogps, refLogps, advantages [N]
 * fixed, advantages per token (a sequence's group advantage repeated on its tokens); row [N] = the sequence of each
 * token (in [0, numRows)). With one optimisation step per generation, old = new.detach() and r ≡ 1 (TRL's default).
 */
export function grpoLoss(
  newLogps: Tensor,
  oldLogps: Float32Array,
  refLogps: Float32Array | null,
  advantages: Float32Array,
  row: Int32Array,
  numRows: number,
  o: GrpoLossOptions,
): GrpoLossResult {
  const op = 'grpoLoss';
  const n = checkTokens(op, newLogps, { oldLogps, advantages, ...(refLogps ? { refLogps } : {}) });
  checkClip(op, 'cliprange', o.cliprange);
  const high = o.cliprangeHigh ?? o.cliprange;
  checkClip(op, 'cliprangeHigh', high);
  if (!(Number.isFinite(o.beta) && o.beta >= 0)) throw new RangeError(`${op}: beta must be a finite number >= 0, got ${o.beta}`);
  if (o.beta > 0 && !refLogps) throw new RangeError(`${op}: beta = ${o.beta} > 0 needs refLogps`);
  const lossType = o.lossType ?? 'grpo';
  if (!GRPO_LOSS_TYPES.includes(lossType)) throw new RangeError(`${op}: lossType must be one of ${GRPO_LOSS_TYPES.join(', ')}, got '${String(lossType)}'`);
  if (!Number.isSafeInteger(numRows) || numRows < 1) throw new RangeError(`${op}: numRows must be a positive integer, got ${numRows}`);
  if (row.length !== n) throw new RangeError(`${op}: row has ${row.length} entries, expected one per token (${n})`);
  const perRow = new Float64Array(numRows);
  for (let i = 0; i < n; i++) {
    if (row[i] < 0 || row[i] >= numRows) throw new RangeError(`${op}: row[${i}] = ${row[i]} is outside [0, ${numRows})`);
    perRow[row[i]]++;
  }
  // weight[i]: d loss / d ℓ_i for the chosen normalisation.
  let weightOf: (i: number) => number;
  if (lossType === 'grpo') weightOf = (i) => 1 / (Math.max(perRow[row[i]], 1) * numRows);
  else if (lossType === 'bnpo') weightOf = () => 1 / n;
  else {
    const L = o.maxCompletionLength;
    if (L === undefined || !Number.isSafeInteger(L) || L < 1) throw new RangeError(`${op}: lossType 'dr_grpo' needs maxCompletionLength, a positive integer; got ${String(L)}`);
    weightOf = () => 1 / (numRows * L);
  }
  const lp = newLogps.data as FloatArray;
  const d = new Float64Array(n);
  let total = 0;
  let kl = 0;
  let low = 0;
  let highCount = 0;
  let ratioSum = 0;
  for (let i = 0; i < n; i++) {
    const s = clippedSurrogate(lp[i], oldLogps[i], advantages[i], 1 - o.cliprange, 1 + high);
    let l = s.loss;
    let dl = s.dlp;
    if (refLogps) {
      const x = refLogps[i] - lp[i];
      const k3 = Math.expm1(x) - x;
      kl += k3;
      if (o.beta > 0) {
        l += o.beta * k3;
        dl += o.beta * (1 - Math.exp(x)); // d k3 / d new = −e^x + 1
      }
    }
    const w = weightOf(i);
    total += w * l;
    d[i] = w * dl;
    if (s.ratio < 1 - o.cliprange && advantages[i] < 0) low++;
    if (s.ratio > 1 + high && advantages[i] > 0) highCount++;
    ratioSum += s.ratio;
  }
  return {
    loss: scalarLoss(op, newLogps, total, d),
    meanKl: kl / n,
    lowClipRatio: low / n,
    highClipRatio: highCount / n,
    clipRatio: (low + highCount) / n,
    ratioMean: ratioSum / n,
  };
}

// ============================================================================================== entropy
/**
 * Entropy of the softmax of each row of logits [..., V] (a metric: no gradient): H = logsumexp(z) − Σ_v softmax(z)_v z_v
 * (TRL's entropy_from_logits). For the LM head without materialising logits, use linearLogprobEntropy
 * (src/tensor/ops/nn.ts), which returns the same quantity per position from the hidden states.
 */
export function entropyFromLogits(logits: Tensor): Float32Array {
  logits.live('entropyFromLogits');
  if (logits.rank < 1) throw new ShapeError(`entropyFromLogits: logits must have a vocabulary axis, got ${fmtShape(logits.shape)}`);
  const V = logits.shape[logits.rank - 1];
  if (V === 0) throw new ShapeError(`entropyFromLogits: empty vocabulary axis in ${fmtShape(logits.shape)}`);
  const z = logits.data as FloatArray;
  const rows = z.length / V;
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, z[r * V + v]);
    let s = 0;
    let sz = 0;
    for (let v = 0; v < V; v++) {
      const x = z[r * V + v];
      if (x === -Infinity) continue; // probability 0: contributes 0 (not 0 · −∞ = NaN)
      const e = Math.exp(x - m);
      s += e;
      sz += e * (x - m);
    }
    // H = lse − E[z] = (m + log s) − (m + sz / s)
    out[r] = Math.log(s) - sz / s;
  }
  return out;
}
