// The rule task's judge (preference_rule.ts) as a reward module: 1 when the response follows the rule its prompt
// states, 0 otherwise — for `module:` reward specs (RL trainers, best-of-n, the pipeline's eval stage).
import { ruleJudge } from './preference_rule.ts';

export function score(prompt: string, response: string): number {
  return ruleJudge(prompt, response) ? 1 : 0;
}

export default score;
