// Every stage type a pipeline file can use, by its `type:` name. A new type is one file under stages/ exporting a
// StageType (see stage.ts) plus one line here.

import type { AnyStageType } from './stage.ts';
import { DPO_STAGE, GRPO_STAGE, KTO_STAGE, ORPO_STAGE, PPO_STAGE, REWARD_STAGE, RLOO_STAGE, SFT_STAGE, SIMPO_STAGE } from './stages/trainers.ts';
import { INIT_MODEL_STAGE } from './stages/init_model.ts';
import { BEST_OF_N_STAGE } from './stages/best_of_n.ts';
import { EVAL_STAGE } from './stages/eval.ts';
import { CAI_LABEL_STAGE, CAI_REVISE_STAGE } from './stages/cai.ts';

const STAGE_TYPES: readonly AnyStageType[] = [
  INIT_MODEL_STAGE,
  SFT_STAGE,
  REWARD_STAGE,
  PPO_STAGE,
  GRPO_STAGE,
  RLOO_STAGE,
  DPO_STAGE,
  KTO_STAGE,
  ORPO_STAGE,
  SIMPO_STAGE,
  BEST_OF_N_STAGE,
  CAI_REVISE_STAGE,
  CAI_LABEL_STAGE,
  EVAL_STAGE,
];

export const STAGE_REGISTRY: ReadonlyMap<string, AnyStageType> = new Map(STAGE_TYPES.map((t) => [t.type, t]));

export function stageType(name: string): AnyStageType | undefined {
  return STAGE_REGISTRY.get(name);
}
