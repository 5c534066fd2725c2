// Constitutional AI as pipeline stages (src/cai/):
//   cai-revise  the policy answers each prompt, critiques the answer against a sampled principle and revises it
//               (rounds times); outputs `output` = SFT data (prompt, final revision), `pairs` = preference pairs
//               (final revision chosen over the first answer), `trace`.
//   cai-label   a judge (local model or OpenAI-compatible endpoint) picks the better of two responses under a
//               principle: `output` = preference JSONL for dpo / reward stages.
// Before the pipeline's first stage runs (preflight), a critic or judge given as a URL is probed and a constitution
// file is validated, so neither fails after hours of training.

import path from 'node:path';
import { z } from 'zod';
import { caiLabel, caiRevise, loadConstitution, openChatModel } from '../../cai/index.ts';
import { defineStage } from '../stage.ts';

const sampling = {
  max_new_tokens: z.number().int().gte(1).default(64).describe('Most tokens per generated text.'),
  temperature: z.number().gte(0).default(0.7).describe('Sampling temperature (0 = greedy).'),
  top_k: z.number().int().gte(0).default(0).describe('Top-k filtering (0 = off).'),
  top_p: z.number().gt(0).lte(1).default(1).describe('Nucleus filtering (1 = off).'),
  seed: z.number().int().gte(0).default(0).describe('Seed of principle sampling and generation.'),
  constitution: z.string().min(1).nullable().default(null).describe('Constitution YAML (default: data/cai/default_constitution.yaml).'),
  endpoint_model: z.string().min(1).nullable().default(null).describe("The 'model' field sent to an endpoint critic / judge."),
};

const isUrl = (v: unknown): v is string => typeof v === 'string' && /^https?:\/\//i.test(v);

/** Validates a constitution file given literally (not an earlier stage's output): its errors name file, line and field. */
function checkConstitution(user: Readonly<Record<string, unknown>>): void {
  const file = user.constitution;
  if (typeof file === 'string' && !file.includes('${')) loadConstitution(file);
}

/** Opens (and so probes) the endpoint named by `field` when it is a URL; closes it again. */
async function probeIfUrl(user: Readonly<Record<string, unknown>>, field: string): Promise<void> {
  const url = user[field];
  if (!isUrl(url)) return;
  try {
    const m = await openChatModel(url, { model: typeof user.endpoint_model === 'string' ? user.endpoint_model : undefined });
    m.dispose();
  } catch (e) {
    throw new Error(`field '${field}': ${e instanceof Error ? e.message : String(e)}`);
  }
}

export const CaiReviseConfigSchema = z.strictObject({
  model: z.string().min(1).describe('The policy model folder.'),
  prompts: z.string().min(1).describe('Prompts: JSONL / JSON / Parquet rows with a prompt field, or .txt one per line.'),
  rounds: z.number().int().gte(1).default(1).describe('Critique -> revision rounds per prompt.'),
  critic: z.string().min(1).nullable().default(null).describe('The critic: a model folder or an OpenAI-compatible URL (default: the policy).'),
  ...sampling,
});

export const CAI_REVISE_STAGE = defineStage({
  type: 'cai-revise',
  description: 'Constitutional AI critique -> revision: SFT data (prompt, final revision) and revision-over-answer pairs',
  schema: CaiReviseConfigSchema,
  outputs: (dir) => ({ output: path.join(dir, 'sft.jsonl'), pairs: path.join(dir, 'pairs.jsonl'), trace: path.join(dir, 'trace.jsonl') }),
  preflight: async (user) => {
    checkConstitution(user);
    await probeIfUrl(user, 'critic');
  },
  async run(c, ctx) {
    const r = await caiRevise({
      model: c.model, prompts: c.prompts, constitution: c.constitution ?? undefined, outputDir: ctx.outputDir, rounds: c.rounds,
      critic: c.critic ?? undefined, criticEndpoint: c.endpoint_model ? { model: c.endpoint_model } : undefined, seed: c.seed,
      maxNewTokens: c.max_new_tokens, temperature: c.temperature, topK: c.top_k, topP: c.top_p,
      onStage: ctx.console ? (stage) => ctx.log(`  ${stage}`) : undefined,
    });
    const metrics: Record<string, number> = { revisions: r.count, skipped: r.skipped };
    for (const [name, n] of Object.entries(r.principleCounts)) metrics[`principle/${name}`] = n;
    return {
      metrics,
      outputs: { output: r.sftPath, pairs: r.pairsPath, trace: r.tracePath },
      tables: [{ title: 'principles applied (critiques per principle)', columns: ['principle', 'critiques'], rows: Object.entries(r.principleCounts) }],
    };
  },
});

export const CaiLabelConfigSchema = z
  .strictObject({
    model: z.string().min(1).nullable().default(null).describe('A local judge model folder (also samples missing responses unless policy is set).'),
    judge: z.string().min(1).nullable().default(null).describe('An OpenAI-compatible judge endpoint URL (instead of model).'),
    policy: z.string().min(1).nullable().default(null).describe('Model folder sampling the two responses of rows without responses (default: model).'),
    input: z.string().min(1).describe('JSONL rows {prompt, responses: [a, b]}, or {prompt} to sample two responses.'),
    ...sampling,
  })
  .superRefine((c, ctx) => {
    if ((c.model === null) === (c.judge === null)) ctx.addIssue({ code: 'custom', path: ['model'], message: 'set exactly one of model (a local judge) and judge (an endpoint URL)' });
  });

export const CAI_LABEL_STAGE = defineStage({
  type: 'cai-label',
  description: 'AI feedback (RLAIF): a judge picks the better of two responses under a principle; preference JSONL for dpo / reward',
  schema: CaiLabelConfigSchema,
  outputs: (dir) => ({ output: path.join(dir, 'preferences.jsonl') }),
  preflight: async (user) => {
    checkConstitution(user);
    await probeIfUrl(user, 'judge');
  },
  async run(c, ctx) {
    const output = path.join(ctx.outputDir, 'preferences.jsonl');
    const r = await caiLabel({
      model: c.model ?? undefined, judge: c.judge ?? undefined, judgeEndpoint: c.endpoint_model ? { model: c.endpoint_model } : undefined,
      policy: c.policy ?? undefined, input: c.input, output, constitution: c.constitution ?? undefined, seed: c.seed,
      maxNewTokens: c.max_new_tokens, temperature: c.temperature, topK: c.top_k, topP: c.top_p,
    });
    return { metrics: { pairs: r.count, mean_confidence: r.meanConfidence, ties: r.ties, identical: r.identical }, outputs: { output: r.path } };
  },
});
