// How far a preference-trained policy has moved from its reference, measured the way the KL in the RLHF
// objective is defined: KL(π‖π_ref) = E_{x, y~π(·|x)} [log π(y|x) − log π_ref(y|x)].
//
// DPO never samples during training, so its logged rewards/* (β-scaled log-ratios on the *dataset's*
// completions) say nothing about this quantity: a policy can keep those small while drifting far on its own
// samples. At each evaluation we therefore sample one completion per eval prompt from the current policy at
// temperature 1 (the distribution the KL is about — no top-k/top-p), score it under policy and reference, and
// average the per-sequence log-ratio (the unbiased k1 estimator; k3 = (r − 1) − log r per token is reported
// beside it because it is never negative and has lower variance).

import { generate } from '../generate/generate.ts';
import { completionLogprobs } from '../generate/logprobs.ts';
import type { CausalLM } from '../models/types.ts';
import { klTerm } from './rl/kl.ts';

export interface SampledKlOptions {
  /** Tokens sampled per prompt at most. */
  maxNewTokens: number;
  /** Seed of the sampling streams: the same seed and weights give the same estimate. */
  seed: number;
  /** Prompts per generation batch. */
  batchSize?: number;
  padTokenId?: number;
}

export interface SampledKl {
  /** Mean over prompts of Σ_t (log π − log π_ref) over the sampled completion (k1, nats per sequence). */
  kl: number;
  /** Mean over prompts of Σ_t k3 (never negative). */
  klK3: number;
  /** Σ(log π − log π_ref) / Σ tokens: the per-token KL. */
  klPerToken: number;
  /** Mean sampled completion length in tokens. */
  responseLength: number;
  samples: number;
}

/**
 * Samples one completion per prompt from `policy` and estimates KL(π‖π_ref) on them. `reference` runs a
 * function with the reference model (no grad), so callers decide whether that is a frozen copy, the policy
 * with LoRA adapters disabled, or a model loaded just for this measurement.
 */
export function sampledKl(
  policy: CausalLM,
  reference: <T>(fn: (model: CausalLM) => T) => T,
  prompts: readonly (readonly number[])[],
  o: SampledKlOptions,
): SampledKl {
  if (prompts.length === 0) return { kl: 0, klK3: 0, klPerToken: 0, responseLength: 0, samples: 0 };
  const bs = Math.max(1, o.batchSize ?? 8);
  let k1Sum = 0;
  let k3Sum = 0;
  let tokens = 0;
  for (let start = 0; start < prompts.length; start += bs) {
    const batch = prompts.slice(start, start + bs);
    // per-row seeds continue across batches so the estimate does not depend on the batch size
    const seeds = batch.map((_, i) => o.seed * 1_000_003 + start + i);
    const gen = generate(policy, { inputIds: batch, maxNewTokens: o.maxNewTokens, temperature: 1, seed: seeds, padTokenId: o.padTokenId, returnLogprobs: true });
    const completions = gen.map((g) => g.ids);
    const refLp = reference((model) => completionLogprobs(model, batch, completions, { padTokenId: o.padTokenId }));
    gen.forEach((g, row) => {
      const lp = g.logprobs ?? [];
      for (let t = 0; t < g.ids.length; t++) {
        k1Sum += klTerm(lp[t], refLp[row][t], 'k1');
        k3Sum += klTerm(lp[t], refLp[row][t], 'k3');
      }
      tokens += g.ids.length;
    });
  }
  const n = prompts.length;
  return { kl: k1Sum / n, klK3: k3Sum / n, klPerToken: tokens > 0 ? k1Sum / tokens : 0, responseLength: tokens / n, samples: n };
}
