// Online RL commands: `alignkit ppo|grpo|rloo --config FILE` (every config field is also a --snake_case flag;
// flags override the file), plus `--reward SPEC` (repeatable: module:FILE, rm:DIR, http:URL or constitution:JUDGE[@FILE]) for reward_funcs.

import type { Command } from 'commander';
import type { z } from 'zod';
import { GrpoConfigSchema, PpoConfigSchema, RlooConfigSchema, parseConfig } from '../../train/config.ts';
import { flagOverrides, registerConfigFlags } from '../../train/cli_flags.ts';
import { runPpo } from '../../trainers/rl/ppo.ts';
import { runGrpo } from '../../trainers/rl/grpo.ts';
import { runRloo } from '../../trainers/rl/rloo.ts';
import type { OnPolicyResult, OnPolicyRunOptions } from '../../trainers/rl/rollout.ts';

interface RlFlags {
  config?: string;
  resume?: boolean;
  skipInvalid?: boolean;
  reward?: string[];
  json?: boolean;
}

interface RlTrainer {
  name: 'ppo' | 'grpo' | 'rloo';
  description: string;
  schema: z.ZodType;
  run: (cfg: never, o: OnPolicyRunOptions) => Promise<OnPolicyResult>;
}

const TRAINERS: RlTrainer[] = [
  {
    name: 'ppo',
    description:
      'RLHF with PPO: sample responses to the prompts, score them (reward model, TypeScript reward function or HTTP endpoint), add a per-token KL penalty to the reference (kl_coef, or adaptive with target_kl), GAE advantages from a value head on the policy, then num_ppo_epochs of clipped policy + value updates. Metrics as TRL: objective/scores, objective/kl, objective/rlhf_reward, policy/approxkl_avg, policy/clipfrac_avg, loss/policy_avg, loss/value_avg, val/ratio, ...; output_dir/reward_kl.svg plots score and KL per iteration.',
    schema: PpoConfigSchema,
    run: runPpo as RlTrainer['run'],
  },
  {
    name: 'grpo',
    description:
      'GRPO: num_generations completions per prompt, advantages normalised within each group, the clipped objective plus beta × k3 KL to the reference; no value model.',
    schema: GrpoConfigSchema,
    run: runGrpo as RlTrainer['run'],
  },
  {
    name: 'rloo',
    description: 'RLOO: rloo_k responses per prompt, each baselined by the mean reward (score − kl_coef × KL) of the others; clipped sequence-level updates; no value model.',
    schema: RlooConfigSchema,
    run: runRloo as RlTrainer['run'],
  },
];

function fmt(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(4);
}

function register(program: Command, t: RlTrainer): void {
  const cmd = program
    .command(t.name)
    .description(`${t.description} Every config field is also a --snake_case flag (flags override --config).`)
    .option('--config <file>', 'YAML or JSON config (flags override it)')
    .option('--reward <spec>', "a reward source, repeatable: module:FILE (exports score(prompt, response) => number), rm:DIR (a reward model folder), http:URL (POST {prompt, response} -> {reward}) or constitution:JUDGE[@FILE.yaml] (a judge rates adherence to a constitution); replaces reward_funcs", (v: string, prev: string[] = []) => [...prev, v])
    .option('--resume', 'continue from the newest complete checkpoint in output_dir')
    .option('--skip-invalid', 'skip (and count) malformed prompt rows instead of stopping at the first')
    .option('--json', 'print the result as one JSON object');
  registerConfigFlags(cmd, t.schema);
  cmd.action(async () => {
    const o = cmd.opts<RlFlags>();
    try {
      const overrides = flagOverrides(cmd, t.schema);
      if (o.reward?.length) overrides.reward_funcs = o.reward;
      if (o.resume) overrides.resume_from_checkpoint = true;
      if (o.skipInvalid) overrides.skip_invalid = true;
      const cfg = parseConfig(t.schema, { file: o.config, overrides }) as never;
      const r = await t.run(cfg, { console: !o.json });
      const last = r.iterations.at(-1);
      if (o.json)
        console.log(JSON.stringify({
          output_dir: r.outputDir, global_step: r.globalStep, iterations: r.iterations.length, train_loss: r.trainLoss,
          final_score: last?.score ?? null, final_kl: last && Number.isFinite(last.kl) ? last.kl : null,
          dropped_samples: r.droppedSamples, nan_skipped_steps: r.nanSteps, resumed_from: r.resumedFrom,
        }));
      else
        console.log(`${t.name}: ${r.globalStep} steps over ${r.iterations.length} rollouts; objective/scores ${fmt(r.iterations[0]?.score)} -> ${fmt(last?.score)}, objective/kl ${fmt(last?.kl)}${r.droppedSamples ? `, ${r.droppedSamples} samples dropped` : ''} -> ${r.outputDir}`);
    } catch (e) {
      // one line, `alignkit <cmd>: <message>`, exit code 1
      const err = e as Error;
      console.error(`alignkit ${t.name}: ${err.message.replace(new RegExp(`^${t.name}: `), '')}`);
      if (process.env.ALIGNKIT_DEBUG) console.error(err.stack);
      process.exitCode = 1;
    }
  });
}

export function registerRlCommands(program: Command): void {
  for (const t of TRAINERS) register(program, t);
}
