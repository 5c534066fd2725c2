// `eval`: measures several models side by side — typically the outputs of the earlier stages — with the same
// numbers for each: the completion loss on an SFT-format file, the mean reward of sampled responses to prompt sets
// (any reward source the RL trainers take: a module, a reward model, an HTTP endpoint), and the preference accuracy
// on pairs. The report shows the models × metrics table; eval.json holds it.

import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeAtomically } from '../../io/file.ts';
import { completionLoss, meanReward, preferenceAccuracy } from '../measure.ts';
import { defineStage } from '../stage.ts';

const REWARD_SPEC = /^(module:.+|rm:.+|http:.+|https?:\/\/.+)$/;

const RewardSuiteSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z][\w-]*$/, 'must be a name (letters, digits, _ or -)').describe('Names the metric: reward/<name>.'),
  prompts: z.string().min(1).describe('Prompts: .txt (one per line) or JSONL / JSON / Parquet rows with a prompt field.'),
  prompt_field: z.string().min(1).default('prompt').describe('Field of each row holding the prompt.'),
  reward_funcs: z.array(z.string().regex(REWARD_SPEC, "must be 'module:FILE', 'rm:DIR' or 'http:URL'")).min(1).describe('Reward sources, as for the RL trainers; several are summed with reward_weights.'),
  reward_weights: z.array(z.number()).min(1).nullable().default(null).describe('Weight of each source; null = 1 each.'),
});

export const EvalStageConfigSchema = z.strictObject({
  models: z.record(z.string().regex(/^[A-Za-z][\w-]*$/, 'model labels must be names'), z.string().min(1)).refine((m) => Object.keys(m).length > 0, 'must name at least one model')
    .describe('The models to compare: label → model folder (e.g. sft: ${stages.sft.output}).'),
  loss_file: z.string().min(1).nullable().default(null).describe('SFT-format data (prompt/completion, messages, text): each model\'s completion loss and perplexity on it.'),
  max_length: z.number().int().gte(1).default(256).describe('Longest example in tokens for loss_file and preference_file (longer ones are truncated).'),
  rewards: z.array(RewardSuiteSchema).default([]).describe('Mean-reward measurements: each samples responses to its prompts and averages the reward.'),
  samples_per_prompt: z.number().int().gte(1).default(4).describe('Responses sampled per prompt for each reward measurement.'),
  max_new_tokens: z.number().int().gte(1).default(16).describe('Most tokens per sampled response.'),
  temperature: z.number().gt(0).default(0.7).describe('Sampling temperature of the responses.'),
  preference_file: z.string().min(1).nullable().default(null).describe('{prompt, chosen, rejected} pairs: each model\'s preference accuracy.'),
  preference_reference: z.string().min(1).nullable().default(null)
    .describe("With a reference model folder: DPO's implicit-reward accuracy against it; null: the fraction of pairs whose chosen response is more likely under the model."),
  beta: z.number().gt(0).default(0.1).describe('β of the implicit reward (with preference_reference).'),
  seed: z.number().int().gte(0).default(0).describe('Seed of the sampling streams (the same for every model).'),
}).superRefine((c, ctx) => {
  if (c.loss_file === null && c.rewards.length === 0 && c.preference_file === null)
    ctx.addIssue({ code: 'custom', path: ['loss_file'], message: 'nothing to measure: give loss_file, rewards or preference_file' });
  const seen = new Set<string>();
  c.rewards.forEach((r, i) => {
    if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: ['rewards', i, 'name'], message: `'${r.name}' is used twice` });
    seen.add(r.name);
  });
});

const outFile = (dir: string) => path.join(dir, 'eval.json');

type EvalStageConfig = z.output<typeof EvalStageConfigSchema>;

/** What each column of the table means. */
function tableNotes(cfg: EvalStageConfig): string[] {
  const out: string[] = [];
  if (cfg.loss_file) out.push(`loss: nats per completion token of ${path.basename(cfg.loss_file)}`);
  if (cfg.rewards.length) out.push(`reward/NAME: mean reward of ${cfg.samples_per_prompt} responses per prompt at temperature ${cfg.temperature}`);
  if (cfg.preference_file)
    out.push(`preference_accuracy: pairs of ${path.basename(cfg.preference_file)} ${cfg.preference_reference ? 'whose chosen response has the higher implicit reward against the reference' : 'whose chosen response is more likely than the rejected one'}`);
  return out;
}

export const EVAL_STAGE = defineStage({
  type: 'eval',
  description: 'compare models on completion loss, mean reward of sampled responses and preference accuracy',
  schema: EvalStageConfigSchema,
  outputs: (dir) => ({ output: outFile(dir) }),
  async run(cfg, ctx) {
    const results: Record<string, Record<string, number>> = {};
    const columns: string[] = [];
    const add = (model: string, key: string, v: number) => {
      (results[model] ??= {})[key] = v;
      if (!columns.includes(key)) columns.push(key);
    };
    for (const [label, dir] of Object.entries(cfg.models)) {
      ctx.log(`${ctx.name}: measuring ${label} (${dir})`);
      if (cfg.loss_file) {
        const r = await completionLoss(dir, cfg.loss_file, { maxLength: cfg.max_length });
        add(label, 'loss', r.loss);
        add(label, 'perplexity', r.perplexity);
      }
      for (const suite of cfg.rewards) {
        const r = await meanReward(dir, {
          prompts: suite.prompts, promptField: suite.prompt_field, rewardFuncs: suite.reward_funcs, rewardWeights: suite.reward_weights,
          samplesPerPrompt: cfg.samples_per_prompt, maxNewTokens: cfg.max_new_tokens, temperature: cfg.temperature, seed: cfg.seed,
        });
        add(label, `reward/${suite.name}`, r.mean);
      }
      if (cfg.preference_file) {
        const r = await preferenceAccuracy(dir, cfg.preference_file, {
          reference: cfg.preference_reference, beta: cfg.beta, maxLength: cfg.max_length, maxPromptLength: null, scratchDir: ctx.outputDir,
        });
        add(label, 'preference_accuracy', r.accuracy);
      }
    }
    fs.mkdirSync(ctx.outputDir, { recursive: true });
    writeAtomically('eval', outFile(ctx.outputDir), (f) => f.write(new TextEncoder().encode(`${JSON.stringify({ models: cfg.models, results }, null, 2)}\n`)));
    const metrics: Record<string, number> = {};
    for (const [m, r] of Object.entries(results)) for (const [k, v] of Object.entries(r)) metrics[`${m}/${k}`] = v;
    return {
      metrics,
      tables: [{ title: `models compared (${tableNotes(cfg).join('; ')})`, columns: ['model', ...columns], rows: Object.entries(results).map(([m, r]) => [m, ...columns.map((k) => r[k] ?? null)]) }],
    };
  },
});
