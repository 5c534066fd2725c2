// `init-model`: a small randomly initialised chat model made on the spot (src/demo/tiny_chat.ts: a byte-level
// tokenizer with ChatML special tokens and chat template, and a Llama / Qwen2 / GPT-2 style model sized to it), so
// a pipeline can start from nothing — no download, no shipped weights.

import path from 'node:path';
import { z } from 'zod';
import { writeTinyChatModel } from '../../demo/tiny_chat.ts';
import { defineStage } from '../stage.ts';

const posInt = () => z.number().int().gte(1);

export const InitModelConfigSchema = z.strictObject({
  tokenizer: z.literal('byte-level').default('byte-level').describe("The tokenizer: 'byte-level' (one token per UTF-8 byte plus ChatML special tokens; any text round-trips)."),
  arch: z.enum(['llama', 'qwen2', 'gpt2']).default('llama').describe('Model family of the config.json written.'),
  hidden: posInt().default(64).describe('Hidden size.'),
  layers: posInt().default(2).describe('Transformer layers.'),
  heads: posInt().default(4).describe('Attention heads (must divide hidden).'),
  kv_heads: posInt().default(2).describe('Key/value heads (grouped-query attention; must divide heads). Ignored for gpt2.'),
  intermediate: posInt().nullable().default(null).describe('MLP inner size; null = 4 × hidden.'),
  seed: z.number().int().gte(0).default(0).describe('Seed of the weight initialisation.'),
}).superRefine((c, ctx) => {
  if (c.hidden % c.heads !== 0) ctx.addIssue({ code: 'custom', path: ['heads'], message: `${c.heads} must divide hidden (${c.hidden})` });
  if (c.arch !== 'gpt2' && c.heads % c.kv_heads !== 0) ctx.addIssue({ code: 'custom', path: ['kv_heads'], message: `${c.kv_heads} must divide heads (${c.heads})` });
});

const modelDir = (dir: string) => path.join(dir, 'model');

export const INIT_MODEL_STAGE = defineStage({
  type: 'init-model',
  description: 'a small randomly initialised chat model with a byte-level tokenizer (nothing is downloaded)',
  schema: InitModelConfigSchema,
  outputs: (dir) => ({ output: modelDir(dir) }),
  async run(cfg, ctx) {
    writeTinyChatModel(modelDir(ctx.outputDir), { arch: cfg.arch, hidden: cfg.hidden, layers: cfg.layers, heads: cfg.heads, kvHeads: cfg.kv_heads, intermediate: cfg.intermediate ?? undefined, seed: cfg.seed });
    return { metrics: { hidden: cfg.hidden, layers: cfg.layers } };
  },
});
