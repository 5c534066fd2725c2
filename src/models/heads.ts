// Heads on top of the final hidden states:
//  - ValueHead: a scalar per token (PPO's critic), in TRL's AutoModelForCausalLMWithValueHead layout
//    `v_head.summary.weight` [1, hidden] + `v_head.summary.bias` [1].
//  - ScoreHead: a sequence classifier / reward model, `score.weight` [num_labels, hidden] (no bias) as HF
//    *ForSequenceClassification, read at the last non-padding token of each row (left or right padding).

import { ShapeError, fmtShape, indexSelect, intTensor, linear, reshape, type Tensor } from '../tensor/index.ts';

export const VALUE_HEAD_WEIGHT = 'v_head.summary.weight';
export const VALUE_HEAD_BIAS = 'v_head.summary.bias';
export const SCORE_HEAD_WEIGHT = 'score.weight';

function checkHidden(op: string, hidden: Tensor, C: number): [number, number] {
  if (hidden.rank !== 3 || hidden.shape[2] !== C) throw new ShapeError(`${op}: hidden must be [batch, seq, ${C}], got ${fmtShape(hidden.shape)}`);
  return [hidden.shape[0], hidden.shape[1]];
}

export class ValueHead {
  constructor(
    readonly weight: Tensor, // [1, C]
    readonly bias: Tensor, // [1]
  ) {
    if (weight.rank !== 2 || weight.shape[0] !== 1 || bias.rank !== 1 || bias.shape[0] !== 1)
      throw new ShapeError(`ValueHead: weight ${fmtShape(weight.shape)} / bias ${fmtShape(bias.shape)} must be [1, hidden] / [1]`);
  }

  get hiddenSize(): number {
    return this.weight.shape[1];
  }

  // values[b, t] = hidden[b, t, :] · w + bias        hidden [B, T, C] -> [B, T]
  forward(hidden: Tensor): Tensor {
    const [B, T] = checkHidden('ValueHead', hidden, this.hiddenSize);
    return reshape(linear(hidden, this.weight, this.bias), [B, T]);
  }

  namedParameters(): Map<string, Tensor> {
    return new Map([
      [VALUE_HEAD_WEIGHT, this.weight],
      [VALUE_HEAD_BIAS, this.bias],
    ]);
  }

  dispose(): void {
    this.weight.dispose();
    this.bias.dispose();
  }
}

/**
 * Index of the last real token of each row: the rightmost position where the mask is nonzero (as HF pools
 * at the rightmost non-pad token, so left and right padding both work); T - 1 without a mask; 0 for a row
 * with no real token (HF's argmax of an all-zero row).
 */
export function lastTokenIndices(attentionMask: Tensor | null | undefined, batch: number, seq: number): Int32Array {
  const out = new Int32Array(batch).fill(seq - 1);
  if (!attentionMask) return out;
  if (attentionMask.size !== batch * seq) throw new ShapeError(`lastTokenIndices: attentionMask ${fmtShape(attentionMask.shape)} must be [${batch}, ${seq}]`);
  const d = attentionMask.data as ArrayLike<number | bigint>;
  for (let b = 0; b < batch; b++) {
    out[b] = 0;
    for (let t = seq - 1; t >= 0; t--)
      if (d[b * seq + t]) {
        out[b] = t;
        break;
      }
  }
  return out;
}

/** hidden [B, T, C] -> hidden[b, index[b], :] as [B, C] (gradient flows back to the selected rows). */
export function selectTokens(hidden: Tensor, index: Int32Array): Tensor {
  const [B, T, C] = hidden.shape;
  const rows = intTensor(Array.from(index, (t, b) => b * T + t), [B]);
  return indexSelect(reshape(hidden, [B * T, C]), 0, rows);
}

export class ScoreHead {
  constructor(readonly weight: Tensor /* [L, C] */) {
    if (weight.rank !== 2) throw new ShapeError(`ScoreHead: weight ${fmtShape(weight.shape)} must be [num_labels, hidden]`);
  }

  get numLabels(): number {
    return this.weight.shape[0];
  }
  get hiddenSize(): number {
    return this.weight.shape[1];
  }

  /** Scores at the last real token of each row: hidden [B, T, C], mask [B, T] -> [B, L]. */
  forward(hidden: Tensor, attentionMask?: Tensor | null): Tensor {
    const [B, T] = checkHidden('ScoreHead', hidden, this.hiddenSize);
    return linear(selectTokens(hidden, lastTokenIndices(attentionMask, B, T)), this.weight);
  }

  /** Scores at every position: [B, T, L]. */
  perToken(hidden: Tensor): Tensor {
    checkHidden('ScoreHead', hidden, this.hiddenSize);
    return linear(hidden, this.weight);
  }

  namedParameters(): Map<string, Tensor> {
    return new Map([[SCORE_HEAD_WEIGHT, this.weight]]);
  }

  dispose(): void {
    this.weight.dispose();
  }
}
