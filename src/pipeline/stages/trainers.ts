// The training stages: each one is a trainer's config schema (src/train/config.ts) and its programmatic entry point,
// unchanged. The pipeline sets output_dir (the stage folder), resume_from_checkpoint / overwrite_output_dir (resume
// an interrupted run, else start clean) and, when the stage has evaluation data and the config does not say,
// eval_on_start: true — the "before" number of the report.

import type { z } from 'zod';
import {
  DpoConfigSchema, GrpoConfigSchema, KtoConfigSchema, OrpoConfigSchema, PpoConfigSchema, RewardConfigSchema, RlooConfigSchema, SftConfigSchema, SimpoConfigSchema,
  type OnPolicyConfig,
} from '../../train/config.ts';
import { latestCheckpoint } from '../../train/checkpoint.ts';
import type { LoopResult } from '../../train/loop.ts';
import { runSft } from '../../trainers/sft.ts';
import { runReward } from '../../trainers/reward.ts';
import { runDpo } from '../../trainers/dpo.ts';
import { runKto } from '../../trainers/kto.ts';
import { runOrpo, runSimpo } from '../../trainers/orpo_simpo.ts';
import { runPpo } from '../../trainers/rl/ppo.ts';
import { runGrpo } from '../../trainers/rl/grpo.ts';
import { runRloo } from '../../trainers/rl/rloo.ts';
import type { OnPolicyResult } from '../../trainers/rl/rollout.ts';
import { defineStage, type AnyStageType, type StageContext, type StageRunResult, type TargetMetric } from '../stage.ts';
import { meanReward, modelFolderOf, rewardOf } from '../measure.ts';

/** The fields the pipeline owns in every trainer config. */
const TRAINER_MANAGED = ['output_dir', 'resume_from_checkpoint', 'overwrite_output_dir'] as const;

type TrainerResult = LoopResult & { outputDir: string };

function numbers(o: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}

function trainerRunOptions(cfg: { output_dir: string }, ctx: StageContext): { resume_from_checkpoint: true | null; overwrite_output_dir: boolean } {
  const resume = ctx.resume && latestCheckpoint(cfg.output_dir) !== null;
  return { resume_from_checkpoint: resume ? true : null, overwrite_output_dir: !resume };
}

/**
 * The numbers a finished trainer stage records. Not the mean train loss: after a resume the loop averages only the
 * resumed steps, and a resumed stage must record what an uninterrupted one would (the loss curve is in the report).
 */
function resultMetrics(r: TrainerResult): Record<string, number> {
  return numbers({ global_step: r.globalStep, nan_skipped_steps: r.nanSteps, ...(r.lastEval ?? {}) });
}

/** A stage running an offline trainer (SFT, reward model, DPO family, KTO). */
export function trainerStage<S extends z.ZodType>(o: {
  type: string;
  description: string;
  schema: S;
  run: (cfg: z.output<S>, opts: { console?: boolean }) => Promise<TrainerResult>;
  target: TargetMetric;
}): AnyStageType {
  return defineStage({
    type: o.type,
    description: o.description,
    schema: o.schema,
    managedKeys: TRAINER_MANAGED,
    fill: (outputDir, user) => ({
      output_dir: outputDir,
      ...(user.eval_on_start === undefined && (user.eval_file !== undefined || user.eval_fraction !== undefined) ? { eval_on_start: true } : {}),
    }),
    outputs: (dir) => ({ output: dir }),
    canResume: (dir) => latestCheckpoint(dir) !== null,
    target: o.target,
    async run(cfg, ctx): Promise<StageRunResult> {
      const c = cfg as z.output<S> & { output_dir: string };
      const r = await o.run({ ...c, ...trainerRunOptions(c, ctx) }, { console: ctx.console });
      return { metrics: resultMetrics(r), outputs: { output: modelFolderOf(r.outputDir) } };
    },
  });
}

/** Samples per prompt for the RL stages' before/after mean reward. */
const RL_EVAL_SAMPLES = 8;
const RL_EVAL_SEED = 12345;

/**
 * A stage running an online RL trainer. Its target is the mean reward (the config's own reward sources) of
 * RL_EVAL_SAMPLES responses per training prompt, sampled at the config's temperature from the initial policy
 * (before) and from the trained one (after), with the same seeds.
 */
export function rlStage<S extends z.ZodType>(o: {
  type: string;
  description: string;
  schema: S;
  run: (cfg: z.output<S>, opts: { console?: boolean }) => Promise<OnPolicyResult>;
  responseLength: (cfg: z.output<S>) => number;
}): AnyStageType {
  return defineStage({
    type: o.type,
    description: o.description,
    schema: o.schema,
    managedKeys: TRAINER_MANAGED,
    fill: (outputDir) => ({ output_dir: outputDir }),
    outputs: (dir) => ({ output: dir }),
    canResume: (dir) => latestCheckpoint(dir) !== null,
    target: { metric: 'mean_reward', higherIsBetter: true, label: `mean reward of ${RL_EVAL_SAMPLES} sampled responses per training prompt` },
    async run(cfg, ctx): Promise<StageRunResult> {
      const c = cfg as z.output<S> & OnPolicyConfig;
      const r = await o.run({ ...c, ...trainerRunOptions(c, ctx) }, { console: ctx.console });
      const output = modelFolderOf(r.outputDir);
      const specs = [...(c.reward_model_path !== null ? [`rm:${c.reward_model_path}`] : []), ...c.reward_funcs];
      const reward = await rewardOf(specs, c.reward_weights);
      try {
        const m = { prompts: c.dataset_path ?? (c.train_file as string), promptField: c.prompt_field, rewardFuncs: specs, samplesPerPrompt: RL_EVAL_SAMPLES, maxNewTokens: o.responseLength(cfg), temperature: c.temperature, seed: RL_EVAL_SEED };
        ctx.log(`${ctx.name}: measuring the mean reward before and after`);
        const before = await meanReward(c.model_name_or_path, m, reward);
        const after = await meanReward(output, m, reward);
        const last = r.iterations.at(-1);
        return {
          metrics: numbers({ ...resultMetrics(r), iterations: r.iterations.length, final_score: last?.score, final_kl: last?.kl, mean_reward_before: before.mean, mean_reward: after.mean }),
          target: { before: before.mean, after: after.mean },
          outputs: { output },
        };
      } finally {
        reward.dispose();
      }
    },
  });
}

export const SFT_STAGE = trainerStage({
  type: 'sft', description: 'supervised fine-tuning (alignkit sft; TRL SFTConfig fields)', schema: SftConfigSchema, run: runSft,
  target: { metric: 'eval_loss', higherIsBetter: false, label: 'loss on the evaluation data' },
});
export const REWARD_STAGE = trainerStage({
  type: 'reward', description: 'a Bradley–Terry reward model (alignkit reward; TRL RewardConfig fields)', schema: RewardConfigSchema, run: runReward,
  target: { metric: 'eval_accuracy', higherIsBetter: true, label: 'fraction of evaluation pairs ranked correctly (chance: 0.5)' },
});
const pairAccuracy: TargetMetric = { metric: 'eval_rewards/accuracies', higherIsBetter: true, label: 'preference accuracy on the evaluation pairs: the implicit reward β(log π − log π_ref) of the chosen response above the rejected one (0 at step 0, where the policy is its own reference and every margin is 0)' };
export const DPO_STAGE = trainerStage({ type: 'dpo', description: 'Direct Preference Optimization (alignkit dpo; TRL DPOConfig fields)', schema: DpoConfigSchema, run: runDpo, target: pairAccuracy });
export const ORPO_STAGE = trainerStage({ type: 'orpo', description: 'ORPO (alignkit orpo; TRL ORPOConfig fields)', schema: OrpoConfigSchema, run: runOrpo, target: pairAccuracy });
export const SIMPO_STAGE = trainerStage({ type: 'simpo', description: 'SimPO (alignkit simpo; TRL CPOConfig fields)', schema: SimpoConfigSchema, run: runSimpo, target: pairAccuracy });
export const KTO_STAGE = trainerStage({
  type: 'kto', description: 'KTO on unpaired desirable / undesirable examples (alignkit kto; TRL KTOConfig fields)', schema: KtoConfigSchema, run: runKto,
  target: { metric: 'eval_loss', higherIsBetter: false, label: 'KTO loss on the evaluation examples' },
});
export const PPO_STAGE = rlStage({ type: 'ppo', description: 'RLHF with PPO (alignkit ppo; TRL PPOConfig fields)', schema: PpoConfigSchema, run: runPpo, responseLength: (c) => c.response_length });
export const GRPO_STAGE = rlStage({ type: 'grpo', description: 'GRPO (alignkit grpo; TRL GRPOConfig fields)', schema: GrpoConfigSchema, run: runGrpo, responseLength: (c) => c.max_completion_length });
export const RLOO_STAGE = rlStage({ type: 'rloo', description: 'RLOO (alignkit rloo; TRL RLOOConfig fields)', schema: RlooConfigSchema, run: runRloo, responseLength: (c) => c.response_length });
