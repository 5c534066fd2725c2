// Measurements of a model folder that the pipeline's eval stage and the RL stages' before/after numbers share:
// the completion loss on an SFT-format file, the mean reward of sampled responses to a prompt set, and the
// preference accuracy on pairs. Each one reuses the code path of the trainer it mirrors (SftDataset + batchNll,
// the RL rollout sampler and reward sources, evaluateDpo), so a number here means what it means there.

import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../models/index.ts';
import { loadChatTemplate, loadTokenizer } from '../tokenizer/index.ts';
import { SftDataset } from '../data/sft_dataset.ts';
import { collate } from '../data/collate.ts';
import { batchNll } from '../trainers/sft_loss.ts';
import { evaluateDpo } from '../trainers/dpo.ts';
import { DpoConfigSchema, parseConfig } from '../train/config.ts';
import { loadPrompts, rolloutRowSeed, sampleResponses } from '../trainers/rl/rollout.ts';
import { CombinedReward, rewardSourceFromSpec, type RewardSource } from '../trainers/rl/rewards.ts';
import { AlignkitError } from '../tensor/index.ts';

/** The folder holding a loadable full model for a trainer's output: output_dir/merged after LoRA with merge, else output_dir. */
export function modelFolderOf(outputDir: string): string {
  const merged = path.join(outputDir, 'merged');
  return !fs.existsSync(path.join(outputDir, 'model.safetensors')) && fs.existsSync(path.join(merged, 'config.json')) ? merged : outputDir;
}

/** Mean next-token loss (nats per target token) of the completions / assistant turns of an SFT-format file, and its perplexity. */
export async function completionLoss(modelDir: string, file: string, o: { maxLength: number; batchSize?: number }): Promise<{ loss: number; perplexity: number; tokens: number }> {
  const tok = loadTokenizer(modelDir);
  const model = loadModel(modelDir, { trainable: false });
  const ds = await SftDataset.open(file, tok, { maxLength: o.maxLength, truncation: 'right', completionOnlyLoss: true, assistantOnlyLoss: true, chatTemplate: loadChatTemplate(modelDir), packing: false });
  try {
    const pad = tok.padId ?? model.config.padTokenId ?? tok.eosId ?? 0;
    const bs = o.batchSize ?? 16;
    let nll = 0;
    let tokens = 0;
    for (let i = 0; i < ds.length; i += bs) {
      const rows = [];
      for (let j = i; j < Math.min(i + bs, ds.length); j++) rows.push(await ds.get(j));
      const r = batchNll(model, collate(rows, { padTokenId: pad }));
      nll += r.nll;
      tokens += r.tokens;
    }
    const loss = nll / Math.max(tokens, 1);
    return { loss, perplexity: Math.exp(loss), tokens };
  } finally {
    await ds.close();
    model.dispose();
  }
}

export interface MeanRewardOptions {
  prompts: string;
  promptField?: string;
  /** Reward specs as the RL trainers take them: module:FILE, rm:DIR, http:URL. */
  rewardFuncs: readonly string[];
  rewardWeights?: readonly number[] | null;
  samplesPerPrompt: number;
  maxNewTokens: number;
  temperature: number;
  seed: number;
}

/** Builds the reward sources of specs (disposed by the caller). */
export async function rewardOf(specs: readonly string[], weights: readonly number[] | null = null): Promise<CombinedReward> {
  const sources: RewardSource[] = [];
  try {
    for (const s of specs) sources.push(await rewardSourceFromSpec(s));
  } catch (e) {
    for (const s of sources) s.dispose();
    throw e;
  }
  return new CombinedReward(sources, weights);
}

/**
 * The mean reward of samplesPerPrompt responses sampled (seeded per row, as RL rollouts are) to every prompt. A
 * sample whose reward fails is an error: a mean over the survivors would not be comparable between models.
 */
export async function meanReward(modelDir: string, o: MeanRewardOptions, reward?: CombinedReward): Promise<{ mean: number; samples: number }> {
  const tok = loadTokenizer(modelDir);
  const model = loadModel(modelDir, { trainable: false });
  const own = reward ? null : await rewardOf(o.rewardFuncs, o.rewardWeights ?? null);
  const r = reward ?? (own as CombinedReward);
  try {
    const prompts = await loadPrompts(o.prompts, tok, { field: o.promptField, chatTemplate: loadChatTemplate(modelDir), maxPositions: model.config.maxPositions, responseLength: o.maxNewTokens });
    const n = o.samplesPerPrompt;
    const rows = prompts.ids.flatMap((ids) => Array.from({ length: n }, () => ids));
    const seeds = rows.map((_, i) => rolloutRowSeed(o.seed, 0, i));
    const stop = tok.stopIds.length ? [...tok.stopIds] : model.config.eosTokenIds;
    const out = sampleResponses(model, rows, seeds, { responseLength: o.maxNewTokens, temperature: o.temperature, topK: 0, topP: 1, stopTokenIds: stop, padTokenId: tok.padId ?? 0, forwardBatchSize: 64 });
    const samples = out.ids.map((ids, i) => ({ prompt: prompts.texts[Math.floor(i / n)], response: tok.decode(ids, { skipSpecialTokens: true }) }));
    const scored = await r.score(samples);
    let total = 0;
    scored.total.forEach((s, i) => {
      if (!s.ok) throw new AlignkitError(`mean reward of ${modelDir}: the reward failed for the response ${JSON.stringify(samples[i].response)} to ${JSON.stringify(samples[i].prompt)}: ${s.reason}`);
      total += s.value;
    });
    return { mean: total / samples.length, samples: samples.length };
  } finally {
    own?.dispose();
    model.dispose();
  }
}

/**
 * Preference accuracy on {prompt, chosen, rejected} pairs: with a reference, DPO's implicit-reward accuracy
 * (β(log π − log π_ref) larger for the chosen response; TRL's rewards/accuracies); without one, the fraction of
 * pairs whose chosen response has the higher log-probability under the model.
 */
export async function preferenceAccuracy(
  modelDir: string,
  file: string,
  o: { reference: string | null; beta: number; maxLength: number; maxPromptLength: number | null; scratchDir: string },
): Promise<{ accuracy: number; margin: number; pairs: number }> {
  const cfg = parseConfig(DpoConfigSchema, {
    overrides: {
      model_name_or_path: modelDir, dataset_path: file, eval_file: file, output_dir: o.scratchDir, ref_model: o.reference, reference_free: o.reference === null,
      beta: o.beta, max_length: o.maxLength, max_prompt_length: o.maxPromptLength, truncation_mode: 'keep_end', report_to: ['none'],
    },
  });
  const m = await evaluateDpo(cfg);
  return { accuracy: m['rewards/accuracies'], margin: m['rewards/margins'], pairs: m.pairs };
}
