// Helpers for the model tests: fixture paths and reference files (written by fixtures/make_model_fixtures.py
// with Hugging Face transformers), per-token log-probs, and greedy decoding by full recompute or with a KV cache.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../../src/tensor/index.ts';
import type { PretrainedLM } from '../../src/models/index.ts';

export const MODEL_FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'models');
export const fixtureDir = (name: string): string => join(MODEL_FIXTURES, name);

export interface PaddedRef {
  ids: number[][];
  mask: number[][];
  positions: number[][];
  logprobs: number[][];
}
export interface GreedyRef {
  prompt_ids: number[][];
  mask: number[][];
  new_tokens: number;
  with_cache: number[][];
  without_cache: number[][];
}
export interface ModelRef {
  case: string;
  transformers_version: string;
  torch_version: string;
  model_type: string;
  dtype: string;
  sequences?: { ids: number[]; logprobs: number[]; last_logits: number[] }[];
  padded?: { right: PaddedRef; left: PaddedRef };
  greedy?: GreedyRef[];
  reward?: Record<'left' | 'right', { ids: number[][]; mask: number[][]; scores: number[][] }>;
}

export function readRef(name: string): ModelRef {
  return JSON.parse(readFileSync(join(MODEL_FIXTURES, `${name}.json`), 'utf8')) as ModelRef;
}

export const CAUSAL_CASES = ['gpt2', 'llama', 'llama3_rope', 'mistral', 'qwen2', 'qwen2_bf16', 'qwen3'];

export const ids2d = (rows: number[][]): T.Tensor => T.intTensor(rows.flat(), [rows.length, rows[0].length]);

/**
 * logprobs[b][t] = log p(ids[b][t+1] | ids[b][..t]) through the fused LM-head kernel; positions whose target
 * is padding come out 0 (target -100), like the references.
 */
export function tokenLogprobs(model: PretrainedLM, ids: number[][], mask?: number[][], positions?: number[][]): number[][] {
  return T.noGrad(() =>
    T.tidy(() => {
      const B = ids.length;
      const L = ids[0].length;
      const h = model.forward(ids2d(ids), { attentionMask: mask ? ids2d(mask) : null, positionIds: positions ? ids2d(positions) : null });
      const targets: number[] = [];
      for (let b = 0; b < B; b++)
        for (let t = 0; t < L; t++) targets.push(t + 1 < L && (!mask || (mask[b][t] && mask[b][t + 1])) ? ids[b][t + 1] : -100);
      const lp = T.linearLogprob(T.reshape(h, [B * L, model.config.hiddenSize]), model.lmHeadWeight(), T.intTensor(targets), { bias: model.lmHeadBias() });
      const d = lp.toArray();
      return Array.from({ length: B }, (_, b) => d.slice(b * L, b * L + L - 1));
    }),
  );
}

/** Logits of the last position of each row: [B][V]. */
function lastLogits(model: PretrainedLM, h: T.Tensor): T.Tensor {
  const [B, L, C] = h.shape;
  return model.logits(T.reshape(T.narrow(h, 1, L - 1, 1), [B, C]));
}

/** Greedy decoding by recomputing the whole (left-padded) sequence every step. */
export function greedyFull(model: PretrainedLM, prompt: number[][], mask: number[][], steps: number): number[][] {
  const seqs = prompt.map((r) => [...r]);
  const masks = mask.map((r) => [...r]);
  const out: number[][] = prompt.map(() => []);
  for (let s = 0; s < steps; s++) {
    const next = T.noGrad(() => T.tidy(() => T.argmax(lastLogits(model, model.forward(ids2d(seqs), { attentionMask: ids2d(masks) })), -1).toArray()));
    next.forEach((id, b) => {
      seqs[b].push(id);
      masks[b].push(1);
      out[b].push(id);
    });
  }
  return out;
}

/** Greedy decoding with the KV cache: the prompt once, then one token per step. */
export function greedyCached(model: PretrainedLM, prompt: number[][], mask: number[][], steps: number): number[][] {
  const B = prompt.length;
  const masks = mask.map((r) => [...r]);
  const out: number[][] = prompt.map(() => []);
  const cache = model.createCache(B, prompt[0].length + steps);
  try {
    let input = prompt;
    for (let s = 0; s < steps; s++) {
      const next = T.noGrad(() => T.tidy(() => T.argmax(lastLogits(model, model.forward(ids2d(input), { attentionMask: ids2d(masks), cache })), -1).toArray()));
      next.forEach((id, b) => {
        masks[b].push(1);
        out[b].push(id);
      });
      input = next.map((id) => [id]);
    }
  } finally {
    cache.dispose();
  }
  return out;
}

/** max |a - b| over positions where `valid` (default all). */
export function maxDelta(a: number[], b: number[], valid?: (i: number) => boolean): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (!valid || valid(i)) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
