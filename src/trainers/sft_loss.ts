// The SFT objective as pure functions over a collated batch: label shifting, the fused next-token loss with an
// external normaliser (forward + backward), and the summed NLL used for evaluation and perplexity.
import { fusedCrossEntropy, intTensor, linearLogprob, noGrad, reshape, tidy, type Tensor } from '../tensor/index.ts';
import type { PretrainedLM } from '../models/index.ts';
import type { Batch } from '../data/collate.ts';

/** targets[b, t] = labels[b, t+1] (-100 at the last position): the loss at t predicts the next token. */
export function shiftLabels(labels: Int32Array, batch: number, seq: number): Int32Array {
  const out = new Int32Array(batch * seq).fill(-100);
  for (let b = 0; b < batch; b++) for (let t = 0; t + 1 < seq; t++) out[b * seq + t] = labels[b * seq + t + 1];
  return out;
}

export function countTargets(t: Int32Array): number {
  let n = 0;
  for (const v of t) if (v !== -100) n++;
  return n;
}

/** The model's forward inputs for a collated batch. */
export function forwardInputs(b: Batch): { ids: Tensor; attentionMask: Tensor; positionIds: Tensor | null; documentIds: Tensor | null } {
  return {
    ids: intTensor(b.inputIds, [b.batch, b.seq]),
    attentionMask: intTensor(b.attentionMask, [b.batch, b.seq]),
    positionIds: b.positionIds ? intTensor(b.positionIds, [b.batch, b.seq]) : null,
    documentIds: b.documentIds ? intTensor(b.documentIds, [b.batch, b.seq]) : null,
  };
}

/** Summed NLL and target count of one batch (no graph): evaluation and perplexity. */
export function batchNll(model: PretrainedLM, b: Batch): { nll: number; tokens: number } {
  return noGrad(() =>
    tidy(() => {
      const inp = forwardInputs(b);
      const h = model.forward(inp.ids, { attentionMask: inp.attentionMask, positionIds: inp.positionIds, documentIds: inp.documentIds });
      const targets = shiftLabels(b.labels, b.batch, b.seq);
      const lp = linearLogprob(reshape(h, [b.batch * b.seq, model.config.hiddenSize]), model.lmHeadWeight(), intTensor(targets), { bias: model.lmHeadBias() });
      let nll = 0;
      const d = lp.data as Float32Array;
      for (let i = 0; i < targets.length; i++) if (targets[i] !== -100) nll -= d[i];
      return { nll, tokens: countTargets(targets) };
    }),
  );
}

/**
 * Forward + backward of one micro-batch: the summed next-token NLL of its target tokens divided by `normalizer`
 * (the target tokens of the whole optimizer step). Gradients accumulate into the parameters; returns the loss.
 */
export function sftLossBackward(model: PretrainedLM, b: Batch, normalizer: number): number {
  return tidy(() => {
    const inp = forwardInputs(b);
    const h = model.forward(inp.ids, { attentionMask: inp.attentionMask, positionIds: inp.positionIds, documentIds: inp.documentIds });
    const targets = intTensor(shiftLabels(b.labels, b.batch, b.seq));
    const loss = fusedCrossEntropy(reshape(h, [b.batch * b.seq, model.config.hiddenSize]), model.lmHeadWeight(), targets, { bias: model.lmHeadBias(), normalizer });
    const value = loss.item();
    loss.backward();
    return value;
  });
}

