// RLOO (Kool et al. 2019; Ahmadian et al. 2024, "Back to Basics"; TRL's RLOOTrainer): REINFORCE with a leave-one-out
// baseline and no critic. Each prompt is answered rloo_k times; a response's reward is its score minus β times its
// summed KL to the reference, and its advantage is that reward minus the mean reward of the prompt's other k − 1
// responses. The update is PPO's clipped surrogate on the SEQUENCE log-prob ratio exp(Σ new − Σ old), averaged over
// responses, for num_ppo_epochs passes over the rollout. Rollouts, rewards and the training loop are shared with
// PPO (rollout.ts).
//
// A prompt left with one response (the others' rewards failed) has no baseline: advantage 0.
//
// Metrics: objective/scores, objective/kl, objective/non_score_reward (−β · KL), objective/rlhf_reward (score − β·KL),
// policy/approxkl_avg, policy/clipfrac_avg, val/ratio, loss/policy_avg (all over sequences), and the shared ones.

import type { RlooConfig } from '../../train/config.ts';
import { rlooAdvantages, whiten } from './advantages.ts';
import { ppoPolicyLoss } from './core.ts';
import { FixedKlController, klPerToken } from './kl.ts';
import { segmentSum } from '../sequence_logps.ts';
import { broadcastRows, groupwise, rowSums, runOnPolicy, type OnPolicyMethod, type OnPolicyResult, type OnPolicyRunOptions, type ScoredRollout } from './rollout.ts';

function meanOf(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return a.length ? s / a.length : 0;
}

/** Per-row RLOO advantages of a rollout: score − β·KL, minus the leave-one-out mean of the group. */
export function rlooRolloutAdvantages(
  cfg: Pick<RlooConfig, 'kl_estimator' | 'normalize_reward' | 'normalize_advantage'>,
  r: ScoredRollout,
): { perRow: Float32Array; metrics: Record<string, number> } {
  if (!r.refLogps) throw new Error('rlooRolloutAdvantages: the rollout needs reference log-probs');
  const scores = cfg.normalize_reward && r.rows > 1 ? whiten(r.scores, null) : r.scores;
  const seqKl = rowSums(klPerToken(r.logps, r.refLogps, cfg.kl_estimator), r.mask, r.rows, r.R);
  const nonScore = Float32Array.from(seqKl, (k) => -r.klCoef * k);
  const rlhf = scores.map((s, i) => s + nonScore[i]);
  let perRow = groupwise(rlhf, r.group, (s) => rlooAdvantages(s, s.length));
  if (cfg.normalize_advantage && r.rows > 1) perRow = whiten(perRow, null);
  return { perRow, metrics: { 'objective/non_score_reward': meanOf(nonScore), 'objective/rlhf_reward': meanOf(rlhf) } };
}

export function rlooMethod(cfg: RlooConfig): OnPolicyMethod {
  return {
    name: 'rloo',
    samplesPerPrompt: cfg.rloo_k,
    responseLength: cfg.response_length,
    epochs: cfg.num_ppo_epochs,
    miniBatches: cfg.num_mini_batches,
    needsValues: false,
    needsReference: true,
    entropyBonus: false,
    klEstimator: cfg.kl_estimator,
    makeKlController: () => new FixedKlController(cfg.kl_coef),
    prepare(r) {
      const a = rlooRolloutAdvantages(cfg, r);
      return { advantages: broadcastRows(a.perRow, r.mask, r.R), returns: null, metrics: a.metrics };
    },
    lossUnits: (_tokens, rows) => rows,
    loss(f, d, normalizer) {
      // sequence log-probs: Σ over each response's tokens, new (differentiable) and old; one advantage per response
      const newSeq = segmentSum(f.logps, d.row, d.rows);
      const oldSeq = new Float64Array(d.rows);
      const adv = new Float32Array(d.rows);
      for (let k = 0; k < d.row.length; k++) {
        oldSeq[d.row[k]] += d.oldLogps[k];
        adv[d.row[k]] = d.advantages[k];
      }
      const pol = ppoPolicyLoss(newSeq, Float32Array.from(oldSeq), adv, cfg.cliprange, { normalizer });
      const w = d.rows / normalizer;
      return {
        loss: pol.loss,
        metrics: {
          'loss/policy_avg': pol.loss.item(),
          'policy/approxkl_avg': pol.approxKl * w,
          'policy/clipfrac_avg': pol.clipfrac * w,
          'val/ratio': pol.ratioMean * w,
        },
      };
    },
  };
}

/** `alignkit rloo`. */
export function runRloo(cfg: RlooConfig, o: OnPolicyRunOptions = {}): Promise<OnPolicyResult> {
  return runOnPolicy(cfg, rlooMethod(cfg), o);
}
