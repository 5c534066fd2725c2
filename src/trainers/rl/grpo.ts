// GRPO (Shao et al. 2024, "DeepSeekMath"; TRL's GRPOTrainer): no critic. Each prompt is answered num_generations
// times; a completion's advantage is its reward relative to its group, (r − mean_group) / (std_group + 1e-4)
// (scale_rewards: false keeps only the centring, as Dr. GRPO recommends), shared by all of its tokens. The loss is
// the clipped surrogate plus β·k3(π, π_ref) per token, aggregated by loss_type ('grpo': token mean per completion,
// then mean over completions). Rollouts, rewards and the training loop are shared with PPO (rollout.ts); the loss
// is grpoLoss of core.ts.
//
// A group whose other samples were dropped (their reward failed) has no baseline: its remaining sample gets
// advantage 0 and contributes only through the KL term.
//
// Metrics: objective/scores (TRL: reward), reward_std (mean within-group standard deviation), frac_reward_zero_std
// (groups whose samples all scored the same: no learning signal), kl (token mean of k3 in the loss),
// clip_ratio/{low,high,region}_mean, val/ratio, loss/policy_avg, and the shared rollout metrics.

import { mul } from '../../tensor/index.ts';
import type { GrpoConfig } from '../../train/config.ts';
import { groupAdvantages } from './advantages.ts';
import { grpoLoss } from './core.ts';
import { FixedKlController } from './kl.ts';
import { broadcastRows, groupsOf, groupwise, runOnPolicy, type OnPolicyMethod, type OnPolicyResult, type OnPolicyRunOptions, type ScoredRollout } from './rollout.ts';

function std(a: ArrayLike<number>): number {
  if (a.length < 2) return 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) m += a[i] / a.length;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - m) ** 2;
  return Math.sqrt(s / (a.length - 1));
}

/** Group-normalised advantages per row and the group statistics of a rollout. */
export function grpoAdvantages(r: Pick<ScoredRollout, 'scores' | 'group'>, scale: boolean): { perRow: Float32Array; rewardStd: number; fracZeroStd: number } {
  const perRow = groupwise(r.scores, r.group, (s) => groupAdvantages(s, s.length, { scale }));
  const groups = groupsOf(r.group);
  const stds = groups.map((rows) => std(rows.map((i) => r.scores[i])));
  return { perRow, rewardStd: stds.reduce((a, b) => a + b, 0) / groups.length, fracZeroStd: stds.filter((s) => s === 0).length / groups.length };
}

export function grpoMethod(cfg: GrpoConfig): OnPolicyMethod {
  const units = (tokens: number, rows: number): number => (cfg.loss_type === 'bnpo' ? tokens : rows);
  return {
    name: 'grpo',
    samplesPerPrompt: cfg.num_generations,
    responseLength: cfg.max_completion_length,
    epochs: cfg.num_iterations,
    miniBatches: cfg.steps_per_generation,
    needsValues: false,
    needsReference: cfg.beta > 0,
    entropyBonus: false,
    klEstimator: 'k3',
    makeKlController: () => new FixedKlController(cfg.beta),
    prepare(r) {
      const a = grpoAdvantages(r, cfg.scale_rewards);
      return { advantages: broadcastRows(a.perRow, r.mask, r.R), returns: null, metrics: { reward_std: a.rewardStd, frac_reward_zero_std: a.fracZeroStd } };
    },
    lossUnits: units,
    loss(f, d, normalizer) {
      const K = f.logps.shape[0];
      const r = grpoLoss(f.logps, d.oldLogps, d.refLogps, d.advantages, d.row, d.rows, {
        cliprange: cfg.epsilon, beta: d.klCoef, lossType: cfg.loss_type, maxCompletionLength: cfg.max_completion_length,
      });
      // grpoLoss averages over this piece's units; the loop wants Σ over units / the step's units
      const w = units(K, d.rows) / normalizer;
      const loss = mul(r.loss, w);
      return {
        loss,
        metrics: {
          'loss/policy_avg': loss.item(),
          ...(d.refLogps ? { kl: r.meanKl * w } : {}),
          'clip_ratio/low_mean': r.lowClipRatio * w,
          'clip_ratio/high_mean': r.highClipRatio * w,
          'clip_ratio/region_mean': r.clipRatio * w,
          'val/ratio': r.ratioMean * w,
        },
      };
    },
  };
}

/** `alignkit grpo`. */
export function runGrpo(cfg: GrpoConfig, o: OnPolicyRunOptions = {}): Promise<OnPolicyResult> {
  return runOnPolicy(cfg, grpoMethod(cfg), o);
}
