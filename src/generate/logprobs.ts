// Per-token log-probabilities: the ONE code path shared by rollouts (generate) and trainers (PPO, GRPO,
// DPO...). A sampler that scores its tokens differently from the trainer is silently off-policy, so:
//   - trainers call `sequenceLogprobs` (hidden states -> fused linearLogprob, never [B, T, V] logits);
//   - generate computes the logits of the last position with `linear(h, lmHeadWeight, lmHeadBias)` and scores
//     the chosen token with `logprobAt`, which is the fused kernel's formula (z = logit / T, z[t] - lse(z));
//   - both feed the model the same inputs: left- or right-padded ids, the attention mask, and explicit
//     position ids from `positionIdsFromMask` (what HF generate does).
// test/generate/generate.test.ts checks that the two agree to 1e-5.

import type { CausalLM } from '../models/types.ts';
import { ShapeError, DTypeError, fmtShape } from '../tensor/errors.ts';
import { Tensor, intTensor, isGradEnabled, linearLogprob, narrow, noGrad, tidy, zeros } from '../tensor/index.ts';

/** Reads an int/uint8/float mask tensor as 0/1 numbers. */
export function maskValues(mask: Tensor): Uint8Array {
  const d = mask.data as ArrayLike<number | bigint>;
  const out = new Uint8Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = d[i] ? 1 : 0;
  return out;
}

/**
 * HF position ids for a [B, S] attention mask: cumsum(mask) - 1 along each row, and 1 at padding positions
 * (`position_ids.masked_fill_(attention_mask == 0, 1)`). Left padding therefore gives each row's first real
 * token position 0, exactly as if the row were alone. Returns an int32 [B, S] tensor.
 */
export function positionIdsFromMask(mask: Tensor): Tensor {
  if (mask.rank !== 2) throw new ShapeError(`positionIdsFromMask: attention mask must be [batch, seq], got ${fmtShape(mask.shape)}`);
  const [B, S] = mask.shape;
  const m = maskValues(mask);
  const pos = new Int32Array(B * S);
  for (let b = 0; b < B; b++) {
    let c = 0;
    for (let s = 0; s < S; s++) {
      const i = b * S + s;
      if (m[i]) pos[i] = c++;
      else pos[i] = 1;
    }
  }
  return intTensor(pos, [B, S]);
}

/**
 * log p(target | hidden) for hidden states [..., H] under the model's LM head, through the fused chunked
 * kernel (the logits are never materialised). Negative targets are ignored (logprob 0, no gradient).
 * Gradients flow to `hidden` and to the LM head when they require grad.
 */
export function tokenLogprobs(model: CausalLM, hidden: Tensor, targets: Tensor, opts: { temperature?: number } = {}): Tensor {
  return linearLogprob(hidden, model.lmHeadWeight(), targets, { bias: model.lmHeadBias(), temperature: opts.temperature ?? 1 });
}

export interface SequenceLogprobOptions {
  /** The logits are divided by this before the softmax (match the sampling temperature). Default 1. */
  temperature?: number;
}

/**
 * Log-probability of every token given its prefix, for a padded batch:
 *   out[b, t] = log p(ids[b, t+1] | ids[b, <= t])     ids [B, T] int32  ->  out [B, T-1]
 * (the usual shift: logits[:, :-1] scored against labels[:, 1:]). Entries whose target or whose
 * predicting position is padding (attentionMask 0) are 0 and get no gradient; with left padding that
 * includes each row's first real token, which has no prefix. The model runs once over the whole batch with
 * explicit position ids from the mask; gradients flow when the model's parameters require grad.
 */
export function sequenceLogprobs(model: CausalLM, ids: Tensor, attentionMask: Tensor | null = null, opts: SequenceLogprobOptions = {}): Tensor {
  ids.live('sequenceLogprobs');
  if (ids.rank !== 2) throw new ShapeError(`sequenceLogprobs: ids must be [batch, seq], got ${fmtShape(ids.shape)}`);
  if (ids.dtype !== 'int32') throw new DTypeError(`sequenceLogprobs: ids must be int32, got ${ids.dtype}`);
  const [B, T] = ids.shape;
  if (attentionMask && (attentionMask.rank !== 2 || attentionMask.shape[0] !== B || attentionMask.shape[1] !== T))
    throw new ShapeError(`sequenceLogprobs: attentionMask ${fmtShape(attentionMask.shape)} must be [${B}, ${T}] like ids`);
  if (T < 2) return zeros([B, Math.max(T - 1, 0)]);
  const m = attentionMask ? maskValues(attentionMask) : new Uint8Array(B * T).fill(1);
  const idv = ids.data as Int32Array;
  const tg = new Int32Array(B * (T - 1));
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T - 1; t++) {
      const here = b * T + t;
      tg[b * (T - 1) + t] = m[here] && m[here + 1] ? idv[here + 1] : -1;
    }
  const run = (): Tensor => {
    const mask = attentionMask ?? intTensor(new Int32Array(B * T).fill(1), [B, T]);
    const positionIds = positionIdsFromMask(mask);
    const hidden = model.forward(ids, { attentionMask: mask, positionIds }); // [B, T, H]
    const h = narrow(hidden, 1, 0, T - 1); // [B, T-1, H]: the positions that predict tokens 1..T-1
    const targets = intTensor(tg, [B, T - 1]);
    return tokenLogprobs(model, h, targets, { temperature: opts.temperature });
  };
  // With gradients the activations must outlive this call (backward reads them): they belong to the
  // caller's scope. Without, free them here.
  return isGradEnabled() ? run() : tidy(run);
}

/**
 * Convenience for scoring generated rows: prompt + completion per row, right-padded into [B, T], scored
 * with `sequenceLogprobs`, and each completion's logprobs read back as plain numbers (no gradient).
 */
export function completionLogprobs(model: CausalLM, prompts: readonly (readonly number[])[], completions: readonly (readonly number[])[], opts: SequenceLogprobOptions & { padTokenId?: number } = {}): number[][] {
  if (prompts.length !== completions.length)
    throw new RangeError(`completionLogprobs: ${prompts.length} prompts but ${completions.length} completions`);
  const B = prompts.length;
  if (B === 0) return [];
  prompts.forEach((p, b) => {
    if (p.length === 0) throw new RangeError(`completionLogprobs: prompt ${b} is empty (the first token has no prefix to be scored from)`);
  });
  const seqs = prompts.map((p, i) => [...p, ...completions[i]]);
  const T = Math.max(...seqs.map((s) => s.length));
  const pad = opts.padTokenId ?? model.config.padTokenId ?? 0;
  const ids = new Int32Array(B * T).fill(pad);
  const mask = new Int32Array(B * T);
  seqs.forEach((s, b) => {
    ids.set(s, b * T);
    mask.fill(1, b * T, b * T + s.length);
  });
  return noGrad(() =>
    tidy(() => {
      const lp = sequenceLogprobs(model, intTensor(ids, [B, T]), intTensor(mask, [B, T]), opts);
      const d = lp.toArray();
      return prompts.map((p, b) => {
        const out: number[] = [];
        for (let j = 0; j < completions[b].length; j++) out.push(d[b * (T - 1) + p.length - 1 + j]);
        return out;
      });
    }),
  );
}
