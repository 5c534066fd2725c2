// The reference-free pairwise methods, both on length-averaged completion log-probs (sum / tokens):
//   ORPO (Hong et al. 2024): the SFT loss on the chosen response plus λ·(−log σ(log odds_c − log odds_r)),
//     odds(y) = p̄(y) / (1 − p̄(y)) with p̄ the per-token average probability — no reference model.
//   SimPO (Meng et al. 2024): −log σ(β(p̄_c − p̄_r) − γ) on average log-probs, target margin γ = simpo_gamma.
// The losses are the pure functions of preference_losses.ts; metric names follow TRL's ORPO/CPO trainers.

import type { Tensor } from '../tensor/index.ts';
import { averageLogps, meanTokenNll } from './sequence_logps.ts';
import type { OrpoConfig, SimpoConfig } from '../train/config.ts';
import { orpoLoss, simpoLoss } from './preference_losses.ts';
import { evaluatePairs, pairLogps, runPairTrainer, type PairMethod, type PairRunResult } from './preference.ts';

/** Average log-prob per completion token of each row (the sums are differentiable, the counts constants). */
function averaged(policy: Parameters<typeof pairLogps>[0], batch: Parameters<typeof pairLogps>[1], fullSequence = false) {
  const p = pairLogps(policy, batch, { fullSequence });
  return { ...p, avgC: averageLogps(p.chosen, p.chosenTokens), avgR: averageLogps(p.rejected, p.rejectedTokens) };
}

export const ORPO_METHOD: PairMethod<OrpoConfig> = {
  name: 'orpo',
  needsReference: () => false,
  loss({ cfg, policy, batch }) {
    // SFT term: TRL's policy_nll_loss, the mean NLL over every real token of the chosen rows (prompt included)
    const p = averaged(policy.model, batch, true);
    const chosenNll = meanTokenNll(p.chosenFull as Tensor, p.chosenFullTokens as Float32Array);
    const r = orpoLoss(p.avgC, p.avgR, chosenNll, { beta: cfg.beta });
    const c = p.avgC.toArray();
    const rj = p.avgR.toArray();
    return {
      losses: r.loss,
      metrics: {
        'rewards/chosen': c.map((v) => cfg.beta * v),
        'rewards/rejected': rj.map((v) => cfg.beta * v),
        'rewards/accuracies': c.map((v, i) => (v > rj[i] ? 1 : 0)),
        'rewards/margins': c.map((v, i) => cfg.beta * (v - rj[i])),
        'logps/chosen': c,
        'logps/rejected': rj,
        nll_loss: c.map(() => chosenNll.item()),
        log_odds_ratio: c.map(() => r.logOddsRatio),
      },
    };
  },
};

export const SIMPO_METHOD: PairMethod<SimpoConfig> = {
  name: 'simpo',
  needsReference: () => false,
  loss({ cfg, policy, batch }) {
    const p = averaged(policy.model, batch);
    const r = simpoLoss(p.avgC, p.avgR, { beta: cfg.beta, gammaBetaRatio: cfg.simpo_gamma / cfg.beta, labelSmoothing: cfg.label_smoothing });
    const margins = Array.from(r.chosenRewards, (c, i) => c - r.rejectedRewards[i]);
    return {
      losses: r.losses,
      metrics: {
        'rewards/chosen': r.chosenRewards,
        'rewards/rejected': r.rejectedRewards,
        'rewards/accuracies': margins.map((m) => (m > 0 ? 1 : 0)),
        'rewards/margins': margins,
        'logps/chosen': p.avgC.toArray(),
        'logps/rejected': p.avgR.toArray(),
      },
    };
  },
};

export const runOrpo = (cfg: OrpoConfig, o: { console?: boolean } = {}): Promise<PairRunResult> => runPairTrainer(cfg, ORPO_METHOD, o);
export const runSimpo = (cfg: SimpoConfig, o: { console?: boolean } = {}): Promise<PairRunResult> => runPairTrainer(cfg, SIMPO_METHOD, o);
export const evaluateOrpo = (cfg: OrpoConfig): Promise<Record<string, number>> => evaluatePairs(cfg, ORPO_METHOD);
export const evaluateSimpo = (cfg: SimpoConfig): Promise<Record<string, number>> => evaluatePairs(cfg, SIMPO_METHOD);
