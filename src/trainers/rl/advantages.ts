// Rewards, advantages and returns for the RL trainers, on plain typed arrays (no autograd: these are computed once
// per rollout batch under no gradient and then held fixed through the PPO epochs).
//
// Layout: per-token arrays are row-major [batch][seq] (`seq` = the padded response length: entry [b][t] belongs to
// the t-th generated token of row b) with a mask, 1 = a response token that is trained on, 0 = padding. Sequence-level
// arrays ([batch] scores) hold one number per row. Everything accumulates in float64 and is stored as float32.
//
// Definitions follow TRL (huggingface/trl: trl/core.py masked_whiten / masked_var; PPOTrainer.compute_rewards and
// its GAE loop; GRPOTrainer and RLOOTrainer's group baselines) and the papers cited at each function;
// docs/rl-math.md lists where alignkit differs from TRL and why.

function checkShape(op: string, batch: number, seq: number, arrays: Record<string, ArrayLike<number>>): number {
  if (!Number.isSafeInteger(batch) || batch < 1) throw new RangeError(`${op}: batch must be a positive integer, got ${batch}`);
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError(`${op}: seq must be a positive integer, got ${seq}`);
  const n = batch * seq;
  for (const [name, a] of Object.entries(arrays))
    if (a.length !== n) throw new RangeError(`${op}: ${name} has ${a.length} entries, expected batch * seq = ${batch} * ${seq} = ${n}`);
  return n;
}

function checkFinite(op: string, name: string, a: ArrayLike<number>, mask: Uint8Array | null, seq: number): void {
  for (let i = 0; i < a.length; i++)
    if ((!mask || mask[i]) && !Number.isFinite(a[i]))
      throw new RangeError(`${op}: ${name}[${Math.floor(i / seq)}][${i % seq}] = ${a[i]} is not finite`);
}

// ============================================================================================== masked moments
/** Σ mask·x / Σ mask (all entries when mask is null). Throws when the mask selects nothing. */
export function maskedMean(values: ArrayLike<number>, mask: Uint8Array | null): number {
  if (mask && mask.length !== values.length) throw new RangeError(`maskedMean: mask has ${mask.length} entries, values ${values.length}`);
  let s = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++)
    if (!mask || mask[i]) {
      s += values[i];
      n++;
    }
  if (n === 0) throw new RangeError('maskedMean: the mask selects no entries');
  return s / n;
}

/**
 * Variance of the selected entries: Σ mask·(x − mean)² / Σ mask, times n / (n − 1) when `unbiased` (Bessel's
 * correction, TRL's masked_var default). Throws when fewer than 2 entries are selected for the unbiased estimate
 * (TRL raises for 0 and divides by zero for 1).
 */
export function maskedVar(values: ArrayLike<number>, mask: Uint8Array | null, unbiased = true): number {
  const mean = maskedMean(values, mask);
  let s = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++)
    if (!mask || mask[i]) {
      const d = values[i] - mean;
      s += d * d;
      n++;
    }
  if (!unbiased) return s / n;
  if (n < 2) throw new RangeError(`maskedVar: the unbiased variance needs at least 2 selected entries, the mask selects ${n}`);
  return s / (n - 1);
}

/**
 * TRL's masked_whiten: (x − mean) / sqrt(var + 1e-8) with the mean and the UNBIASED variance of the entries the mask
 * selects (all entries for a null mask); with shiftMean = false the mean is added back (scale only, used for
 * `whiten_rewards`). Like TRL, every entry is transformed, masked-out ones included — callers that need zeros
 * there fill them (as PPOTrainer does with masked_fill(advantages, padding_mask, 0)).
 */
export function whiten(values: Float32Array, mask: Uint8Array | null, shiftMean = true): Float32Array {
  if (mask && mask.length !== values.length) throw new RangeError(`whiten: mask has ${mask.length} entries, values ${values.length}`);
  const mean = maskedMean(values, mask);
  const inv = 1 / Math.sqrt(maskedVar(values, mask, true) + 1e-8);
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = (values[i] - mean) * inv + (shiftMean ? 0 : mean);
  return out;
}

// ============================================================================================== PPO rewards
/**
 * TRL PPO's per-token rewards (Ziegler et al. 2019; Stiennon et al. 2020): a KL penalty at every response token and
 * the sequence score at each row's LAST response token,
 *   nonScore[b][t] = −klCoef · kl[b][t]                        (mask 1; 0 elsewhere)
 *   rewards[b][t]  = nonScore[b][t] + (t = last_b ? score[b] : 0)
 * `kl` is the per-token estimate from klPerToken (k1 in TRL's classic PPO). Throws for a row without response tokens
 * (it has nowhere to receive its score).
 */
export function tokenRewards(
  score: Float32Array,
  kl: Float32Array,
  mask: Uint8Array,
  batch: number,
  seq: number,
  klCoef: number,
): { rewards: Float32Array; nonScore: Float32Array } {
  const n = checkShape('tokenRewards', batch, seq, { kl, mask });
  if (score.length !== batch) throw new RangeError(`tokenRewards: score has ${score.length} entries, expected one per row (${batch})`);
  if (!Number.isFinite(klCoef) || klCoef < 0) throw new RangeError(`tokenRewards: klCoef must be a finite number >= 0, got ${klCoef}`);
  checkFinite('tokenRewards', 'kl', kl, mask, seq);
  const rewards = new Float32Array(n);
  const nonScore = new Float32Array(n);
  for (let b = 0; b < batch; b++) {
    if (!Number.isFinite(score[b])) throw new RangeError(`tokenRewards: score[${b}] = ${score[b]} is not finite`);
    let last = -1;
    for (let t = 0; t < seq; t++) {
      const i = b * seq + t;
      if (!mask[i]) continue;
      nonScore[i] = -klCoef * kl[i];
      rewards[i] = nonScore[i];
      last = i;
    }
    if (last < 0) throw new RangeError(`tokenRewards: row ${b} has no response token (mask all 0) to receive its score`);
    rewards[last] = nonScore[last] + score[b];
  }
  return { rewards, nonScore };
}

// ============================================================================================== GAE
/**
 * Generalized advantage estimation (Schulman et al. 2016, "High-Dimensional Continuous Control Using GAE", eq. 16)
 * over each row's response tokens, in reverse:
 *   δ_t = r_t + γ V_{t+1} − V_t,   A_t = δ_t + γλ A_{t+1},   returns R_t = A_t + V_t
 * where t runs over the masked tokens of the row in order, t+1 is the NEXT masked token (a masked-out hole in the
 * middle of a response is skipped, as if absent), and after the last response token the episode has ended:
 * V = 0 and A = 0 (terminal). For a right-padded contiguous mask this is exactly TRL PPOTrainer's loop over
 * values·mask and rewards·mask. Entries outside the mask get advantage 0 and return 0.
 * Advantages are returned raw: PPO whitens them afterwards (whiten(advantages, mask)), returns stay unwhitened.
 */
export function gae(
  rewards: Float32Array,
  values: Float32Array,
  mask: Uint8Array,
  batch: number,
  seq: number,
  gamma: number,
  lam: number,
): { advantages: Float32Array; returns: Float32Array } {
  const n = checkShape('gae', batch, seq, { rewards, values, mask });
  if (!(Number.isFinite(gamma) && gamma >= 0 && gamma <= 1)) throw new RangeError(`gae: gamma must be in [0, 1], got ${gamma}`);
  if (!(Number.isFinite(lam) && lam >= 0 && lam <= 1)) throw new RangeError(`gae: lam must be in [0, 1], got ${lam}`);
  checkFinite('gae', 'rewards', rewards, mask, seq);
  checkFinite('gae', 'values', values, mask, seq);
  const advantages = new Float32Array(n);
  const returns = new Float32Array(n);
  for (let b = 0; b < batch; b++) {
    let nextValue = 0; // V after the last response token: terminal
    let nextAdv = 0;
    for (let t = seq - 1; t >= 0; t--) {
      const i = b * seq + t;
      if (!mask[i]) continue;
      const v = values[i];
      const delta = rewards[i] + gamma * nextValue - v;
      const a = delta + gamma * lam * nextAdv;
      advantages[i] = a;
      returns[i] = a + v;
      nextValue = v;
      nextAdv = a;
    }
  }
  return { advantages, returns };
}

// ============================================================================================== group baselines
function checkGroups(op: string, scores: Float32Array, size: number, what: string): number {
  if (!Number.isSafeInteger(size) || size < 2) throw new RangeError(`${op}: ${what} must be an integer >= 2 (a baseline needs other samples of the prompt), got ${size}`);
  if (scores.length === 0 || scores.length % size !== 0)
    throw new RangeError(`${op}: ${scores.length} scores do not split into groups of ${what} = ${size} (rows g*${size}..g*${size}+${size - 1} are one prompt's samples)`);
  for (let i = 0; i < scores.length; i++) if (!Number.isFinite(scores[i])) throw new RangeError(`${op}: score[${i}] = ${scores[i]} is not finite`);
  return scores.length / size;
}

/**
 * GRPO's group-relative advantage (Shao et al. 2024, "DeepSeekMath", §4.1.2 outcome supervision; TRL GRPOTrainer):
 * rows g·G .. g·G + G − 1 are the G completions of prompt g, and
 *   A_i = (r_i − mean_group) / (std_group + 1e-4)      (scale: true, TRL `scale_rewards`)
 *   A_i =  r_i − mean_group                            (scale: false, Dr. GRPO's recommendation)
 * with the UNBIASED group standard deviation (torch.std), as TRL. One advantage per completion; every token of the
 * completion shares it (see perTokenAdvantages).
 */
export function groupAdvantages(scores: Float32Array, groupSize: number, o: { scale: boolean }): Float32Array {
  const groups = checkGroups('groupAdvantages', scores, groupSize, 'groupSize');
  const out = new Float32Array(scores.length);
  for (let g = 0; g < groups; g++) {
    const lo = g * groupSize;
    let s = 0;
    for (let j = 0; j < groupSize; j++) s += scores[lo + j];
    const mean = s / groupSize;
    let ss = 0;
    for (let j = 0; j < groupSize; j++) ss += (scores[lo + j] - mean) ** 2;
    const std = Math.sqrt(ss / (groupSize - 1));
    for (let j = 0; j < groupSize; j++) out[lo + j] = o.scale ? (scores[lo + j] - mean) / (std + 1e-4) : scores[lo + j] - mean;
  }
  return out;
}

/**
 * RLOO's leave-one-out baseline (Kool et al. 2019, "Buy 4 REINFORCE Samples, Get a Baseline for Free!"; Ahmadian et
 * al. 2024, "Back to Basics"): within each group of k samples of one prompt (rows g·k .. g·k + k − 1),
 *   A_i = r_i − (1 / (k − 1)) Σ_{j≠i} r_j  =  k/(k − 1) · (r_i − mean_group)
 * The scores are whatever the trainer optimises (TRL RLOOTrainer: the score minus β·KL of the sequence).
 */
export function rlooAdvantages(scores: Float32Array, k: number): Float32Array {
  const groups = checkGroups('rlooAdvantages', scores, k, 'k');
  const out = new Float32Array(scores.length);
  for (let g = 0; g < groups; g++) {
    const lo = g * k;
    let s = 0;
    for (let j = 0; j < k; j++) s += scores[lo + j];
    for (let j = 0; j < k; j++) out[lo + j] = scores[lo + j] - (s - scores[lo + j]) / (k - 1);
  }
  return out;
}

/** A sequence-level value per row copied to each of the row's masked tokens, flattened in order: [Σ mask]. */
export function perTokenAdvantages(perRow: Float32Array, mask: Uint8Array, batch: number, seq: number): Float32Array {
  checkShape('perTokenAdvantages', batch, seq, { mask });
  if (perRow.length !== batch) throw new RangeError(`perTokenAdvantages: ${perRow.length} values for ${batch} rows`);
  const out: number[] = [];
  for (let b = 0; b < batch; b++) for (let t = 0; t < seq; t++) if (mask[b * seq + t]) out.push(perRow[b]);
  return Float32Array.from(out);
}

/** The entries of a [batch][seq] array where mask = 1, in row-major order (what the tensor losses take): [Σ mask]. */
export function selectMasked(values: Float32Array, mask: Uint8Array): Float32Array {
  if (values.length !== mask.length) throw new RangeError(`selectMasked: values has ${values.length} entries, mask ${mask.length}`);
  let n = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) n++;
  const out = new Float32Array(n);
  for (let i = 0, k = 0; i < mask.length; i++) if (mask[i]) out[k++] = values[i];
  return out;
}

/** The row of each masked token of a [batch][seq] mask, in row-major order: [Σ mask] (grpoLoss's `row`). */
export function maskedRows(mask: Uint8Array, batch: number, seq: number): Int32Array {
  checkShape('maskedRows', batch, seq, { mask });
  const out: number[] = [];
  for (let b = 0; b < batch; b++) for (let t = 0; t < seq; t++) if (mask[b * seq + t]) out.push(b);
  return Int32Array.from(out);
}
