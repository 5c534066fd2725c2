// A verifiable toy task for watching RLHF work on a laptop CPU in about a minute — the scaled-down twin of TRL's
// "make GPT-2 write positive reviews" example:
//   - prompts (data/rl/say_yes_prompts.jsonl): 16 ways of asking for the word "yes" ("Say yes:", "Reply with yes:")
//   - a programmatic reward (this module's `score`): the fraction of the response's words that are "yes"
//     (case and punctuation ignored; an empty response scores 0) — 1 for " yes", 0.5 for " yes no", 0 for " no";
//   - a reference policy that mostly breaks the rule: a tiny byte-level chat model (src/demo/tiny_chat.ts) trained
//     with SFT on data/rl/say_yes_sft.jsonl, where only 1 answer in 8 is " yes" and the others are " no", " maybe",
//     " never", " ok", " sure", " later" or " nope". Sampled at temperature 0.7 it says "yes" about one time in ten.
// PPO, GRPO and RLOO then raise the mean reward to ≥ 0.7 while the KL to that reference stays a few nats
// (test/trainers/rl/ppo_e2e.test.ts, grpo_e2e.test.ts; docs/rl.md shows the commands).
//
// The module is itself a reward module: `--reward module:src/trainers/rl/toy_task.ts` imports `score`.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTinyChatModel, type TinyChatModelOptions } from '../../demo/tiny_chat.ts';
import { SftConfigSchema, parseConfig } from '../../train/config.ts';
import { loadModel } from '../../models/index.ts';
import { loadTokenizer } from '../../tokenizer/index.ts';
import { runSft } from '../sft.ts';
import { loadPrompts, rolloutRowSeed, sampleResponses } from './rollout.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The toy task's prompts and SFT data, shipped in the repository. */
export const TOY_PROMPTS = path.join(ROOT, 'data', 'rl', 'say_yes_prompts.jsonl');
export const TOY_SFT_DATA = path.join(ROOT, 'data', 'rl', 'say_yes_sft.jsonl');
/** This file, for `module:` reward specs. */
export const TOY_REWARD_MODULE = fileURLToPath(import.meta.url);

export const TOY_TARGET_WORD = 'yes';

/** The words of a text, lower-cased, without surrounding punctuation. */
export function words(text: string): string[] {
  return text
    .toLowerCase()
    .split(/\s+/)
    .map((w) => w.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, ''))
    .filter((w) => w.length > 0);
}

/** The toy reward: the fraction of the response's words that are "yes" (0 for a response without words). */
export function score(_prompt: string, response: string): number {
  const w = words(response);
  return w.length === 0 ? 0 : w.filter((x) => x === TOY_TARGET_WORD).length / w.length;
}

export default score;

export interface ToyPolicyOptions {
  /** SFT optimizer steps. Default 120. */
  steps?: number;
  seed?: number;
  model?: TinyChatModelOptions;
}

/**
 * Writes the tiny byte-level chat model into `dir/base` and fine-tunes it on the toy SFT data into `dir/sft`
 * (the policy to start RL from, and its reference). Returns the SFT folder.
 */
export async function prepareToyPolicy(dir: string, o: ToyPolicyOptions = {}): Promise<string> {
  const seed = o.seed ?? 0;
  const base = writeTinyChatModel(path.join(dir, 'base'), { hidden: 48, layers: 2, heads: 4, kvHeads: 2, seed, ...o.model });
  const out = path.join(dir, 'sft');
  await runSft(
    parseConfig(SftConfigSchema, {
      overrides: {
        model_name_or_path: base, dataset_path: TOY_SFT_DATA, output_dir: out, max_steps: o.steps ?? 120, learning_rate: 3e-3,
        per_device_train_batch_size: 16, lr_scheduler_type: 'cosine', max_length: 64, seed, report_to: ['none'], disable_tqdm: true,
        save_strategy: 'no', logging_steps: 1000, weight_decay: 0, overwrite_output_dir: true,
      },
    }),
    { console: false },
  );
  return out;
}

export interface ToyEvalOptions {
  /** Responses sampled per prompt. Default 8. */
  samplesPerPrompt?: number;
  /** Default 0.7 (the RL configs' default). */
  temperature?: number;
  /** Most new tokens. Default 8. */
  maxNewTokens?: number;
  seed?: number;
}

/**
 * The mean toy reward of a model folder over samplesPerPrompt sampled responses to every toy prompt (the
 * before/after number of the toy task), with fixed seeds.
 */
export async function toyMeanReward(modelDir: string, o: ToyEvalOptions = {}): Promise<number> {
  const tok = loadTokenizer(modelDir);
  const model = loadModel(modelDir, { trainable: false });
  try {
    const n = o.samplesPerPrompt ?? 8;
    const maxNew = o.maxNewTokens ?? 8;
    const prompts = await loadPrompts(TOY_PROMPTS, tok, { maxPositions: model.config.maxPositions, responseLength: maxNew });
    const rows = prompts.ids.flatMap((ids) => Array.from({ length: n }, () => ids));
    const seeds = rows.map((_, r) => rolloutRowSeed(o.seed ?? 12345, 0, r));
    const stop = tok.stopIds.length ? [...tok.stopIds] : model.config.eosTokenIds;
    const out = sampleResponses(model, rows, seeds, {
      responseLength: maxNew, temperature: o.temperature ?? 0.7, topK: 0, topP: 1, stopTokenIds: stop, padTokenId: tok.padId ?? 0, forwardBatchSize: 64,
    });
    let total = 0;
    out.ids.forEach((ids, r) => (total += score(prompts.texts[Math.floor(r / n)], tok.decode(ids, { skipSpecialTokens: true }))));
    return total / rows.length;
  } finally {
    model.dispose();
  }
}
