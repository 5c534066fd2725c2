// Direct Preference Optimization (Rafailov et al. 2023) and its relatives selected by loss_type — IPO (Azar et
// al. 2023), hinge (SLiC-style), robust DPO (Chowdhury et al. 2024) and conservative DPO (label_smoothing) —
// against a frozen reference whose log-probs are computed once before training (see preference.ts).
// The loss itself is the pure dpoLoss of preference_losses.ts; this file wires it into the pairwise trainer
// and names the metrics as TRL does:
//   rewards/chosen  = β(log π(y_c|x) − log π_ref(y_c|x))   (often FALLS during training while the margin grows:
//   rewards/rejected  both log-probs drop, the rejected faster — expected, not a bug)
//   rewards/margins = rewards/chosen − rewards/rejected;  rewards/accuracies = fraction of pairs with margin > 0
//   logps/chosen, logps/rejected = summed completion log-probs under the policy
//   objective/kl (eval only) = KL(π‖π_ref) estimated on completions sampled from the policy (sampled_kl.ts)

import type { DpoConfig } from '../train/config.ts';
import { dpoLoss, validateDpoOptions, type DpoLossOptions } from './preference_losses.ts';
import { averageLogps } from './sequence_logps.ts';
import { evaluatePairs, pairLogps, runPairTrainer, type PairMethod, type PairRunResult } from './preference.ts';
import { tensor } from '../tensor/index.ts';

export const DPO_METHOD: PairMethod<DpoConfig> = {
  name: 'dpo',
  needsReference: (cfg) => !cfg.reference_free,
  // objective/kl: the sampled KL(π‖π_ref) the DPO objective constrains implicitly (see sampled_kl.ts)
  sampledKl: (cfg) => (cfg.reference_free ? null : { prompts: cfg.kl_eval_samples, maxNewTokens: cfg.kl_eval_max_new_tokens }),
  loss({ cfg, policy, batch, ref }) {
    const p = pairLogps(policy.model, batch);
    // IPO works on length-averaged log-probs, the reference's too (TRL); the others on sums
    const ipo = cfg.loss_type === 'ipo';
    const perToken = (v: Float32Array, tokens: Float32Array) => (ipo ? v.map((x, i) => (tokens[i] > 0 ? x / tokens[i] : 0)) : v);
    const refChosen = ref ? tensor(perToken(ref.chosen, p.chosenTokens)) : null;
    const refRejected = ref ? tensor(perToken(ref.rejected, p.rejectedTokens)) : null;
    const pc = ipo ? averageLogps(p.chosen, p.chosenTokens) : p.chosen;
    const pr = ipo ? averageLogps(p.rejected, p.rejectedTokens) : p.rejected;
    const r = dpoLoss(pc, pr, refChosen, refRejected, dpoOptions(cfg));
    const margins = r.chosenRewards.map((c, i) => c - r.rejectedRewards[i]);
    return {
      losses: r.losses,
      metrics: {
        'rewards/chosen': r.chosenRewards,
        'rewards/rejected': r.rejectedRewards,
        'rewards/accuracies': margins.map((m) => (m > 0 ? 1 : 0)),
        'rewards/margins': margins,
        'logps/chosen': p.chosen.toArray(),
        'logps/rejected': p.rejected.toArray(),
      },
    };
  },
};

function dpoOptions(cfg: DpoConfig): DpoLossOptions {
  return { beta: cfg.beta, lossType: cfg.loss_type, labelSmoothing: cfg.label_smoothing, referenceFree: cfg.reference_free };
}

export function runDpo(cfg: DpoConfig, o: { console?: boolean } = {}): Promise<PairRunResult> {
  validateDpoOptions(dpoOptions(cfg));
  return runPairTrainer(cfg, DPO_METHOD, o);
}

/** The DPO loss and metrics of the policy against the reference on a dataset, without training. */
export function evaluateDpo(cfg: DpoConfig): Promise<Record<string, number>> {
  validateDpoOptions(dpoOptions(cfg));
  return evaluatePairs(cfg, DPO_METHOD);
}
