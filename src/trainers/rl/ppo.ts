// RLHF with PPO (Schulman et al. 2017; Ziegler et al. 2019; Stiennon et al. 2020; TRL's PPOTrainer): rollouts from
// the current policy, a per-token KL penalty to the reference added to the rewards (the score lands on each
// response's last token), GAE advantages (whitened) and returns from a value head on the policy's own trunk, then
// num_ppo_epochs passes of the clipped surrogate + clipped value loss over the rollout in num_mini_batches
// minibatches. The rollout, reward and training-loop plumbing is shared with GRPO and RLOO (rollout.ts); the
// losses and estimators are the pure functions of core.ts, kl.ts and advantages.ts.
//
// Per optimizer step (one minibatch, split into gradient_accumulation_steps pieces), with N the minibatch's
// response tokens:
//   loss = (1/N) Σ_tokens [ max(−A r, −A clip(r, 1±ε)) + vf_coef · ½ max((V − R)², (clip(V, V_old ± ε_v) − R)²)
//                           − entropy_coef · H ]
// Memory: with use_lora the reference is the same weights with the adapters switched off, and the value head
// shares the trunk, so policy, reference and critic are one model (plus the reward model, if any).
//
// Metrics (TRL's names; docs/rl.md says what each should do during a healthy run): objective/scores,
// objective/non_score_reward, objective/rlhf_reward, objective/kl, objective/entropy, objective/kl_coef,
// policy/approxkl_avg, policy/clipfrac_avg, policy/entropy_avg, loss/policy_avg, loss/value_avg, val/clipfrac_avg,
// val/ratio, val/vpred, val/error, val/num_eos_tokens, completions/*, rollout/dropped_samples, episode, iteration.

import { add, mul, sub, sum, type Tensor } from '../../tensor/index.ts';
import type { PpoConfig } from '../../train/config.ts';
import { gae, tokenRewards, whiten } from './advantages.ts';
import { ppoPolicyLoss, ppoValueLoss } from './core.ts';
import { klPerToken } from './kl.ts';
import { klController, rowSums, runOnPolicy, type OnPolicyMethod, type OnPolicyResult, type OnPolicyRunOptions, type ScoredRollout } from './rollout.ts';

/** x with every entry outside the mask set to 0. */
function masked(x: Float32Array, mask: Uint8Array): Float32Array {
  return x.map((v, i) => (mask[i] ? v : 0));
}

function meanOf(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return a.length ? s / a.length : 0;
}

/**
 * Rewards, advantages and returns of a PPO rollout:
 *   scores → (clip to ±reward_clip) → per-token rewards = −β·kl, + score at the last token → (whiten, scale only)
 *   → GAE(γ, λ) with the rollout's values → advantages whitened over the batch; returns = raw advantages + values.
 */
export function ppoAdvantages(
  cfg: Pick<PpoConfig, 'reward_clip' | 'kl_estimator' | 'whiten_rewards' | 'gamma' | 'lam'>,
  r: ScoredRollout,
): { advantages: Float32Array; returns: Float32Array; metrics: Record<string, number> } {
  if (!r.refLogps || !r.values) throw new Error('ppoAdvantages: the rollout needs reference log-probs and values');
  const clip = cfg.reward_clip;
  const scores = clip !== null ? r.scores.map((s) => Math.min(Math.max(s, -clip), clip)) : r.scores;
  const kl = masked(klPerToken(r.logps, r.refLogps, cfg.kl_estimator), r.mask);
  const { rewards, nonScore } = tokenRewards(scores, kl, r.mask, r.rows, r.R, r.klCoef);
  const shaped = cfg.whiten_rewards ? masked(whiten(rewards, r.mask, false), r.mask) : rewards;
  const { advantages, returns } = gae(shaped, masked(r.values, r.mask), r.mask, r.rows, r.R, cfg.gamma, cfg.lam);
  const nonScorePerRow = rowSums(nonScore, r.mask, r.rows, r.R);
  const nonScoreMean = meanOf(nonScorePerRow);
  return {
    advantages: masked(whiten(advantages, r.mask), r.mask),
    returns,
    metrics: {
      'objective/non_score_reward': nonScoreMean,
      'objective/rlhf_reward': nonScoreMean + meanOf(scores),
      ...(clip !== null ? { 'objective/scores_clipped': meanOf(scores) } : {}),
    },
  };
}

export function ppoMethod(cfg: PpoConfig): OnPolicyMethod {
  return {
    name: 'ppo',
    samplesPerPrompt: 1,
    responseLength: cfg.response_length,
    epochs: cfg.num_ppo_epochs,
    miniBatches: cfg.num_mini_batches,
    needsValues: true,
    valueModelPath: cfg.value_model_path,
    needsReference: true,
    entropyBonus: cfg.entropy_coef > 0,
    klEstimator: cfg.kl_estimator,
    makeKlController: () => klController(cfg.kl_coef, cfg.target_kl, cfg.kl_horizon),
    prepare(r) {
      const a = ppoAdvantages(cfg, r);
      return { advantages: a.advantages, returns: a.returns, metrics: a.metrics };
    },
    lossUnits: (tokens) => tokens,
    loss(f, d, normalizer) {
      const K = f.logps.shape[0];
      const pol = ppoPolicyLoss(f.logps, d.oldLogps, d.advantages, cfg.cliprange, { normalizer });
      const val = ppoValueLoss(f.values as Tensor, d.oldValues as Float32Array, d.returns as Float32Array, cfg.cliprange_value, { normalizer });
      let loss = add(pol.loss, mul(val.loss, cfg.vf_coef));
      if (cfg.entropy_coef > 0 && f.entropy) loss = sub(loss, mul(sum(f.entropy), cfg.entropy_coef / normalizer));
      const w = K / normalizer; // this piece's share of the step's tokens
      return {
        loss,
        metrics: {
          'loss/policy_avg': pol.loss.item(),
          'loss/value_avg': val.loss.item(),
          'policy/approxkl_avg': pol.approxKl * w,
          'policy/clipfrac_avg': pol.clipfrac * w,
          'val/clipfrac_avg': val.clipfrac * w,
          'val/ratio': pol.ratioMean * w,
          'val/vpred': val.vpredMean * w,
          'val/error': val.valueError * w,
        },
      };
    },
  };
}

/** `alignkit ppo`: trains the policy of cfg with PPO against its reward sources. */
export function runPpo(cfg: PpoConfig, o: OnPolicyRunOptions = {}): Promise<OnPolicyResult> {
  return runOnPolicy(cfg, ppoMethod(cfg), o);
}
