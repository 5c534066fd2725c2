// The constitutional reward: how well a response follows the constitution, as judged by a model. For every
// principle p the judge is asked the reward template ("Does the response follow the principle? Answer Yes or
// No.") and gives P_p(yes) = σ(log p("Yes") − log p("No")) from its log-probs (local model) or its parsed answer
// (endpoint). The reward is the weighted mean Σ_p w_p P_p(yes) / Σ_p w_p, in [0, 1].
//
// It comes in the two shapes the trainers use: a Scorer (best-of-n, win rates; src/trainers/compare.ts) and a
// RewardSource (PPO / GRPO / RLOO; src/trainers/rl/rewards.ts, spec `constitution:JUDGE_DIR[@CONSTITUTION.yaml]`).

import { AlignkitError } from '../tensor/errors.ts';
import type { Scorer } from '../trainers/compare.ts';
import type { RewardOutcome, RewardSample, RewardSource } from '../trainers/rl/rewards.ts';
import { fillTemplate, loadConstitution, type Constitution } from './constitution.ts';
import { openChatModel, type ChatModel, type EndpointChatOptions } from './chat.ts';

export interface ConstitutionalScore {
  /** Weighted mean of the per-principle probabilities. */
  reward: number;
  /** P(yes) per principle name. */
  byPrinciple: Record<string, number>;
}

export class ConstitutionalScorer implements Scorer {
  constructor(
    readonly judge: ChatModel,
    readonly constitution: Constitution,
  ) {}

  /** Per-principle P(yes) and the weighted reward for each (prompt, response). */
  async details(samples: readonly RewardSample[]): Promise<ConstitutionalScore[]> {
    const ps = this.constitution.principles;
    const questions = samples.flatMap((s) => ps.map((p) => [{ role: 'user' as const, content: fillTemplate(this.constitution.rewardTemplate, { prompt: s.prompt, response: s.response, principle: p.description }) }]));
    const choices = await this.judge.choose(questions, ['Yes', 'No']);
    const total = ps.reduce((a, p) => a + p.weight, 0);
    return samples.map((_, i) => {
      const byPrinciple: Record<string, number> = {};
      let reward = 0;
      ps.forEach((p, k) => {
        const v = choices[i * ps.length + k].pFirst;
        byPrinciple[p.name] = v;
        reward += (p.weight * v) / total;
      });
      return { reward, byPrinciple };
    });
  }

  async score(prompt: string, responses: readonly string[]): Promise<number[]> {
    return (await this.details(responses.map((response) => ({ prompt, response })))).map((d) => d.reward);
  }

  dispose(): void {
    this.judge.dispose();
  }
}

/** A constitutional scorer from a judge (model folder or URL) and a constitution file (default: the shipped one). */
export async function constitutionalScorer(judge: string, constitution?: string, endpoint?: EndpointChatOptions): Promise<ConstitutionalScorer> {
  const c = loadConstitution(constitution);
  return new ConstitutionalScorer(await openChatModel(judge, endpoint), c);
}

/** The scorer as an RL reward source: a sample fails (and is dropped) only when its reward is not finite. */
export function constitutionRewardSource(scorer: ConstitutionalScorer, name = 'constitution'): RewardSource {
  return {
    name,
    async score(samples): Promise<RewardOutcome[]> {
      const d = await scorer.details(samples);
      return d.map((x) => (Number.isFinite(x.reward) ? { ok: true, value: x.reward } : { ok: false, reason: `constitutional judge gave ${x.reward}` }));
    },
    dispose: () => scorer.dispose(),
  };
}

/** Parses 'JUDGE[@CONSTITUTION.yaml]' (the part after 'constitution:') into a reward source. */
export async function constitutionRewardFromSpec(spec: string, endpoint?: EndpointChatOptions): Promise<RewardSource> {
  const at = spec.lastIndexOf('@');
  const judge = at > 0 ? spec.slice(0, at) : spec;
  const file = at > 0 ? spec.slice(at + 1) : undefined;
  if (!judge) throw new AlignkitError(`reward 'constitution:${spec}': name the judge: constitution:JUDGE_DIR_OR_URL[@CONSTITUTION.yaml]`);
  return constitutionRewardSource(await constitutionalScorer(judge, file, endpoint));
}
