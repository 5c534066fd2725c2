// `best-of-n`: rejection sampling as a stage (src/trainers/compare.ts bestOfN): n responses per prompt, scored by a
// reward model or a reward module, the best kept. The output ({prompt, completion, score, candidates} JSONL) is SFT
// data a later stage can train on. Target: the mean score of the kept responses against the mean of all samples.

import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { loadModel } from '../../models/index.ts';
import { loadTokenizer } from '../../tokenizer/index.ts';
import { bestOfN, moduleScorer, rewardModelScorer, type Scorer } from '../../trainers/compare.ts';
import { loadPrompts } from '../../trainers/rl/rollout.ts';
import { writeAtomically } from '../../io/file.ts';
import { AlignkitError } from '../../tensor/index.ts';
import { defineStage } from '../stage.ts';

export const BestOfNConfigSchema = z.strictObject({
  model: z.string().min(1).describe('The policy model folder.'),
  prompts: z.string().min(1).describe('Prompts: .txt (one per line) or JSONL / JSON / Parquet rows with a prompt field.'),
  prompt_field: z.string().min(1).default('prompt').describe('Field of each row holding the prompt.'),
  scorer: z.string().regex(/^(rm|module):.+/, "must be 'rm:DIR' or 'module:FILE'").describe("'rm:DIR' (a reward model folder) or 'module:FILE' (exports score(prompt, response) => number)."),
  n: z.number().int().gte(1).default(4).describe('Responses sampled per prompt.'),
  max_new_tokens: z.number().int().gte(1).default(64).describe('Most tokens per response.'),
  temperature: z.number().gte(0).default(1).describe('Sampling temperature (0 = greedy: every sample is the same).'),
  top_k: z.number().int().gte(0).default(0).describe('Top-k filtering (0 = off).'),
  top_p: z.number().gt(0).lte(1).default(1).describe('Nucleus filtering (1 = off).'),
  seed: z.number().int().gte(0).default(0).describe('Seed of the sampling streams.'),
});

const outFile = (dir: string) => path.join(dir, 'best_of_n.jsonl');

async function scorerOf(spec: string, tokDir: string): Promise<Scorer> {
  if (spec.startsWith('rm:')) return rewardModelScorer(spec.slice(3), loadTokenizer(tokDir));
  if (spec.startsWith('module:')) return moduleScorer(spec.slice(7));
  throw new AlignkitError(`scorer '${spec}': use rm:DIR or module:FILE`);
}

export const BEST_OF_N_STAGE = defineStage({
  type: 'best-of-n',
  description: 'rejection sampling: n responses per prompt, keep the best under a reward model or module (writes SFT data)',
  schema: BestOfNConfigSchema,
  outputs: (dir) => ({ output: outFile(dir) }),
  target: { metric: 'mean_best_score', higherIsBetter: true, label: 'mean score of the kept responses (before: of all samples)' },
  async run(cfg, ctx) {
    const model = loadModel(cfg.model, { trainable: false });
    const tok = loadTokenizer(cfg.model);
    const scorer = await scorerOf(cfg.scorer, cfg.model);
    try {
      const prompts = await loadPrompts(cfg.prompts, tok, { field: cfg.prompt_field, maxPositions: model.config.maxPositions, responseLength: cfg.max_new_tokens });
      const rows = await bestOfN(model, tok, prompts.texts, cfg.n, scorer, { maxNewTokens: cfg.max_new_tokens, temperature: cfg.temperature, topK: cfg.top_k, topP: cfg.top_p, seed: cfg.seed });
      fs.mkdirSync(ctx.outputDir, { recursive: true });
      writeAtomically('best-of-n', outFile(ctx.outputDir), (f) => f.write(new TextEncoder().encode(rows.map((r) => JSON.stringify(r)).join('\n') + '\n')));
      const best = rows.reduce((a, r) => a + r.score, 0) / Math.max(rows.length, 1);
      const all = rows.reduce((a, r) => a + r.candidates.reduce((x, c) => x + c.score, 0) / r.candidates.length, 0) / Math.max(rows.length, 1);
      return { metrics: { prompts: rows.length, mean_best_score: best, mean_sample_score: all }, target: { before: all, after: best } };
    } finally {
      scorer.dispose();
      model.dispose();
    }
  },
});
