// Per-row sequence log-probabilities for the preference trainers (DPO, IPO, KTO, ORPO, SimPO, CPO): the sum of
// log p(label | prefix) over each row's labelled tokens, with autograd through the model.
//
// Same code path as rollouts (src/generate/logprobs.ts): the model gets the ids, the attention mask and the
// position ids `positionIdsFromMask` derives, and tokens are scored by `tokenLogprobs` (the fused LM-head kernel:
// logits / temperature, z[target] - logsumexp(z)), so a log-prob computed while training equals the one computed
// while sampling. Only the hidden states of positions that predict a scored token go through the LM head, and
// never as [R, T, V] logits.

import type { PretrainedLM } from '../models/index.ts';
import { positionIdsFromMask, tokenLogprobs } from '../generate/logprobs.ts';
import type { FloatArray } from '../backend/index.ts';
import { empty, fromOp, indexSelect, intTensor, isGradEnabled, mul, reshape, sum, tensor, tidy, zeros, type Tensor } from '../tensor/index.ts';

/** The ignore index of labels (Hugging Face / TRL `label_pad_token_id`). */
export const IGNORE_INDEX = -100;

/** A collated batch of R rows of length T (row-major [R, T] arrays). */
export interface LogpsBatch {
  rows: number;
  seq: number;
  /** [R, T] token ids (padding: any id, e.g. the pad token). */
  inputIds: Int32Array;
  /** [R, T] 1 = real token, 0 = padding (left or right). */
  attentionMask: Int32Array;
  /** [R, T] the token to score at each position, or -100 (prompt, padding): scored as log p(labels[t+1] | ids[<= t]). */
  labels: Int32Array;
}

export interface SequenceLogpsOptions {
  /** Logits are divided by this before the softmax (match the sampling temperature). Default 1. */
  temperature?: number;
  /**
   * Also return `fullLogps` / `fullTokens`: the same sums over EVERY real next token (prompt included). TRL's ORPO
   * computes its NLL term over the full prompt + response; this gives it from the same forward pass.
   */
  fullSequence?: boolean;
}

export interface SequenceLogps {
  /** [R] sum of log p over each row's scored tokens (0 for a row without any); differentiable. */
  logps: Tensor;
  /** [R] number of scored tokens per row. */
  tokens: Float32Array;
  /** [R] sum of log p over every real next token of each row (only with `fullSequence`). */
  fullLogps?: Tensor;
  /** [R] number of real next tokens per row (only with `fullSequence`). */
  fullTokens?: Float32Array;
}

function checkBatch(b: LogpsBatch, vocab: number): void {
  const { rows, seq } = b;
  if (!Number.isSafeInteger(rows) || rows < 1) throw new RangeError(`sequenceLogps: rows must be a positive integer, got ${rows}`);
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError(`sequenceLogps: seq must be a positive integer, got ${seq}`);
  const n = rows * seq;
  for (const [field, arr] of [['inputIds', b.inputIds], ['attentionMask', b.attentionMask], ['labels', b.labels]] as const)
    if (arr.length !== n) throw new RangeError(`sequenceLogps: ${field} has ${arr.length} entries, expected rows * seq = ${rows} * ${seq} = ${n}`);
  for (let i = 0; i < n; i++) {
    const l = b.labels[i];
    if (l !== IGNORE_INDEX && (l < 0 || l >= vocab))
      throw new RangeError(`sequenceLogps: labels[${Math.floor(i / seq)}][${i % seq}] = ${l} is neither a token id in [0, ${vocab}) nor ${IGNORE_INDEX}`);
    const m = b.attentionMask[i];
    if (m !== 0 && m !== 1) throw new RangeError(`sequenceLogps: attentionMask[${Math.floor(i / seq)}][${i % seq}] = ${m} is not 0 or 1`);
  }
}

/** Which positions are scored: flat indices r*T + t whose next token is a target, with row and target ids. */
interface ScoredPositions {
  /** flat position r*T + t of the hidden state that predicts the target. */
  positions: Int32Array;
  /** row of each scored position. */
  row: Int32Array;
  /** token scored at each position. */
  target: Int32Array;
  /** 1 where the position counts toward `logps` (labelled), 0 where only toward `fullLogps`. */
  labelled: Uint8Array;
  tokens: Float32Array;
  fullTokens: Float32Array;
}

/**
 * A target at position t is labels[r, t+1] (or ids[r, t+1] in full-sequence mode) when both t and t+1 are real
 * tokens: a labelled padding position is never scored, and with left padding a row's first real token has no
 * prefix to be predicted from.
 */
function scoredPositions(b: LogpsBatch, full: boolean): ScoredPositions {
  const { rows, seq, inputIds, attentionMask: mask, labels } = b;
  const pos: number[] = [];
  const row: number[] = [];
  const target: number[] = [];
  const labelled: number[] = [];
  const tokens = new Float32Array(rows);
  const fullTokens = new Float32Array(rows);
  for (let r = 0; r < rows; r++)
    for (let t = 0; t + 1 < seq; t++) {
      const here = r * seq + t;
      if (!mask[here] || !mask[here + 1]) continue;
      const label = labels[here + 1];
      const isLabelled = label !== IGNORE_INDEX;
      if (full) {
        if (isLabelled && label !== inputIds[here + 1])
          throw new RangeError(
            `sequenceLogps: with fullSequence, labels[${r}][${t + 1}] = ${label} must equal inputIds[${r}][${t + 1}] = ${inputIds[here + 1]} or be ${IGNORE_INDEX}`,
          );
        fullTokens[r]++;
      } else if (!isLabelled) continue;
      pos.push(here);
      row.push(r);
      target.push(full ? inputIds[here + 1] : label);
      labelled.push(isLabelled ? 1 : 0);
      if (isLabelled) tokens[r]++;
    }
  return {
    positions: Int32Array.from(pos), row: Int32Array.from(row), target: Int32Array.from(target), labelled: Uint8Array.from(labelled),
    tokens, fullTokens,
  };
}

/**
 * out[s] = sum of values[k] over k with segment[k] = s (and keep[k] = 1 when given)      values [K] -> out [S]
 * d values[k] = g[segment[k]] (0 where not kept).
 */
export function segmentSum(values: Tensor, segment: Int32Array, numSegments: number, keep: Uint8Array | null = null): Tensor {
  values.live('segmentSum');
  if (values.rank !== 1 || values.shape[0] !== segment.length)
    throw new RangeError(`segmentSum: values [${values.shape.join(', ')}] must be [${segment.length}] (one per segment id)`);
  const v = values.data as FloatArray;
  const acc = new Float64Array(numSegments); // accumulate in float64, as the reductions in src/tensor do
  for (let k = 0; k < segment.length; k++) {
    const s = segment[k];
    if (s < 0 || s >= numSegments) throw new RangeError(`segmentSum: segment id ${s} at ${k} is out of range for ${numSegments} segments`);
    if (!keep || keep[k]) acc[s] += v[k];
  }
  const out = tensor(acc, [numSegments], values.backend);
  return fromOp(out, 'segmentSum', [values], (g) => {
    const gd = g.data as FloatArray;
    const dv = empty([segment.length], 'float', g.backend);
    const d = dv.storage.data as FloatArray;
    for (let k = 0; k < segment.length; k++) d[k] = !keep || keep[k] ? gd[segment[k]] : 0;
    return [dv];
  });
}

/**
 * Per-row sums of log p(labels[r, t+1] | ids[r, <= t]) over the positions whose shifted label is not -100 (and
 * whose two tokens are real), with autograd through the model; plus the per-row token counts. One forward pass
 * over all R rows (e.g. chosen and rejected rows concatenated, as TRL does).
 *
 * With gradients recorded, the activations stay in the caller's scope (backward needs them): call it inside the
 * `tidy` that also runs `backward()`. Under `noGrad` they are freed before returning.
 */
export function sequenceLogps(model: PretrainedLM, b: LogpsBatch, o: SequenceLogpsOptions = {}): SequenceLogps {
  checkBatch(b, model.config.vocabSize);
  const full = o.fullSequence === true;
  const sp = scoredPositions(b, full);
  const K = sp.positions.length;
  const run = (): SequenceLogps => {
    let logps: Tensor;
    let fullLogps: Tensor | undefined;
    if (K === 0) {
      // Nothing to score: skip the forward pass (the sums are 0 and carry no gradient).
      logps = zeros([b.rows]);
      if (full) fullLogps = zeros([b.rows]);
    } else {
      const ids = intTensor(b.inputIds, [b.rows, b.seq]);
      const mask = intTensor(b.attentionMask, [b.rows, b.seq]);
      const hidden = model.forward(ids, { attentionMask: mask, positionIds: positionIdsFromMask(mask) }); // [R, T, H]
      const H = model.config.hiddenSize;
      const picked = indexSelect(reshape(hidden, [b.rows * b.seq, H]), 0, intTensor(sp.positions)); // [K, H]
      const lp = tokenLogprobs(model, picked, intTensor(sp.target), { temperature: o.temperature }); // [K]
      logps = segmentSum(lp, sp.row, b.rows, full ? sp.labelled : null);
      if (full) fullLogps = segmentSum(lp, sp.row, b.rows);
    }
    return full ? { logps, tokens: sp.tokens, fullLogps, fullTokens: sp.fullTokens } : { logps, tokens: sp.tokens };
  };
  return isGradEnabled() ? run() : tidy(run);
}

/**
 * logps / tokens per row (TRL's `average_log_prob=True`, used by IPO, ORPO and SimPO); rows without tokens give
 * 0 (TRL would divide 0 by 0). Differentiable in `logps`.
 */
export function averageLogps(logps: Tensor, tokens: Float32Array): Tensor {
  if (logps.rank !== 1 || logps.shape[0] !== tokens.length)
    throw new RangeError(`averageLogps: logps [${logps.shape.join(', ')}] and ${tokens.length} token counts must be one per row`);
  const inv = Array.from(tokens, (n) => (n > 0 ? 1 / n : 0));
  return mul(logps, tensor(inv, [tokens.length], logps.backend));
}

/**
 * Token-mean negative log-likelihood of a group of rows: -sum(logps) / sum(tokens) — what PyTorch's
 * cross_entropy (mean over non-ignored targets) gives over the same tokens. A scalar; differentiable.
 */
export function meanTokenNll(logps: Tensor, tokens: Float32Array): Tensor {
  if (logps.rank !== 1 || logps.shape[0] !== tokens.length)
    throw new RangeError(`meanTokenNll: logps [${logps.shape.join(', ')}] and ${tokens.length} token counts must be one per row`);
  let n = 0;
  for (const t of tokens) n += t;
  if (n === 0) throw new RangeError('meanTokenNll: the rows have no scored tokens');
  return mul(sum(logps), -1 / n);
}
